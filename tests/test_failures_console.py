"""Exception kinds beyond saelight's own checks, through the installed console script: a YAML
typo, a Trainer value Lightning refuses, a checkpoint that is a directory, truncated, pickled
or of another grid, a report folder that is a file, a run's saved config with a syntax error.
Each: exit 2, one line naming the file or field, no traceback; `--debug` brings it back."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

TINY = Path(__file__).parent / "data" / "tiny_csv.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=600, env=env
    )


def one_line(done: subprocess.CompletedProcess, *words: str) -> str:
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("saelight: error:")]
    for word in words:
        assert word in line, line
    return line


def fit(tmp_path: Path, *extra: str) -> subprocess.CompletedProcess:
    return saelight("fit", "--config", str(TINY), *extra, cwd=tmp_path)


def test_yaml_typo_in_the_users_config(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("trainer:\n  max_epochs: [1, 2\n")
    done = saelight("fit", "--config", str(bad), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr


def test_trainer_value_lightning_refuses(tmp_path: Path) -> None:
    one_line(fit(tmp_path, "--trainer.max_epochs", "-5"), "max_epochs")


def test_checkpoint_that_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    one_line(fit(tmp_path, "--ckpt_path", str(tmp_path / "ckpt")), str(tmp_path / "ckpt"))


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "last.ckpt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"x" * 4096)
    path.write_bytes(path.read_bytes()[:1000])
    one_line(fit(tmp_path, "--ckpt_path", str(path)), str(path), "not a complete checkpoint")


def test_pickle_checkpoint_never_runs_its_payload(tmp_path: Path) -> None:
    path, marker = tmp_path / "evil.ckpt", tmp_path / "pwned"

    class Payload:
        def __reduce__(self) -> tuple:
            return (open, (str(marker), "w"))

    path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    done = fit(tmp_path, "--ckpt_path", str(path))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert not marker.exists()


def test_report_out_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "run" / "results").mkdir(parents=True)
    out = tmp_path / "taken"
    out.write_text("a file")
    done = saelight("report", str(tmp_path / "run"), "--out", str(out), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert out.read_text() == "a file"


def test_saved_config_with_a_syntax_error(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "saes" / "L01_x").mkdir(parents=True)
    (run / "saes" / "L01_x" / "cfg.json").write_text("{}")
    (run / "config.yaml").write_text("data: {cache: [\n")
    one_line(saelight("inspect", "--run", str(run), cwd=tmp_path), "config.yaml")


@pytest.mark.parametrize("flag", ["--debug"])
def test_debug_shows_the_traceback(tmp_path: Path, flag: str) -> None:
    done = saelight(flag, "fit", "--config", str(TINY), "--trainer.max_epochs", "-5", cwd=tmp_path)
    assert done.returncode != 0 and "Traceback" in done.stderr
