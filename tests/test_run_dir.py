"""A run directory has one writer, keeps its config.yaml until a fit passes its start-up checks,
and `saelight test` scores a finished run: all through the console script (`saelight`)."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest

from saelight.callbacks.run_lock import RunLock
from saelight.cli import main

TESTS = Path(__file__).parent
CONFIG = TESTS / "data" / "tiny_csv.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))


class Hold(L.Callback):
    """Writes `holding` when training starts, then sleeps up to `seconds` (holding the run)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_start(self, *args: Any) -> None:
        Path("holding").write_text(str(os.getpid()))
        time.sleep(self.seconds)


class FailInSanityCheck(L.Callback):
    """A start-up check that fails after setup and before training starts."""

    def on_sanity_check_end(self, *args: Any) -> None:
        raise ValueError("late start-up failure")


def callback(cls: type, **init_args: Any) -> str:
    spec = {"class_path": f"test_run_dir.{cls.__name__}", "init_args": init_args}
    return f"--trainer.callbacks+={json.dumps(spec)}"


def saelight(cwd: Path, *args: str, **popen: Any) -> Any:
    """`saelight <args>` in `cwd` (this folder importable for the test callbacks)."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    cmd = [SAELIGHT, *args]
    if popen:
        return subprocess.Popen(cmd, cwd=cwd, env=env, text=True, **popen)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def fit_args(tiny_cache_args: list[str], *args: str) -> list[str]:
    return ["fit", "--config", str(CONFIG), "--trainer.default_root_dir", ".", *args,
            *tiny_cache_args]  # fmt: skip


def test_a_second_fit_on_a_run_directory_stops_naming_the_holder(
    tmp_path: Path, tiny_cache_args: list[str]
) -> None:
    first = saelight(
        tmp_path,
        *fit_args(tiny_cache_args, callback(Hold, seconds=120)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "holding").exists():
            assert first.poll() is None, "the first fit ended before training started"
            assert time.monotonic() < deadline, "the first fit never started training"
            time.sleep(0.5)
        second = saelight(tmp_path, *fit_args(tiny_cache_args))
        assert second.returncode == 2, second.stderr[-3000:]
        lines = second.stderr.strip().splitlines()
        assert lines[-1].startswith("saelight: error: run directory"), second.stderr[-3000:]
        assert f"is being written by pid {first.pid} " in lines[-1]
        assert "--trainer.default_root_dir" in lines[-1]
        assert not list(tmp_path.glob("csv/version_1"))  # the second wrote nothing
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=60)
    # The kernel dropped the killed holder's lock: the run resumes without cleaning up.
    RunLock(tmp_path).acquire().release()


def test_a_fit_failing_its_start_up_checks_writes_no_config(
    tmp_path: Path, tiny_cache_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(TESTS))
    with pytest.raises(ValueError, match="late start-up failure"):
        main(fit_args(tiny_cache_args, callback(FailInSanityCheck)))
    assert not list(tmp_path.rglob("config.yaml"))
    RunLock(tmp_path).acquire().release()  # released although the fit failed in-process


def test_saelight_test_scores_a_finished_run(
    tmp_path: Path, tiny_cache_args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run with the standard loggers (config.yaml at the run's root), then `saelight test`."""
    monkeypatch.chdir(tmp_path)
    main([*fit_args(tiny_cache_args), "--trainer.logger", "null", "--trainer.max_epochs", "1"])
    config = (tmp_path / "config.yaml").read_text()
    ckpt = tmp_path / "checkpoints" / "last.ckpt"
    done = saelight(tmp_path, "test", "--config", "config.yaml", "--ckpt_path", str(ckpt))
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "config.yaml").read_text() == config  # the fit's, not the test's
    (metrics,) = sorted(tmp_path.glob("csv/version_1/metrics.csv"))
    rows = list(csv.DictReader(metrics.open()))
    assert any(row.get("test/mse_mean") for row in rows)
    assert any(row.get("L1/topk_s75/test/fvu") for row in rows)
