"""Exact resume: a `saelight fit` killed with SIGKILL mid-epoch, then resumed from its last
checkpoint, ends with bit-identical weights, optimiser state and best exports (CPU, fixed seeds)
to an uninterrupted run; so does a resume from an epoch-end checkpoint, from the time-interval
checkpoint of `RunCheckpoint` (the standard callbacks' `last.ckpt`), and from the checkpoint a
SIGTERM / SIGUSR1 saves before the console script exits 128 + signal. A resumed fit keeps the
generation of the fit it resumes, so its files before and after the kill agree."""

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from saelight.callbacks.checkpointing import EVERY_MINUTES, RunCheckpoint
from saelight.cli import main
from saelight.commands.train import standard_callbacks
from saelight.report.generations import run_generations

TESTS = Path(__file__).parent
CONFIG = TESTS / "data" / "tiny_csv.yaml"
STEPS_PER_EPOCH = 3  # 12 train rows / batch 4
SAELIGHT = str(Path(sys.executable).with_name("saelight"))  # the console script


EVERY_STEP = {
    "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
    "init_args": {"dirpath": "steps", "save_last": True, "save_top_k": 0, "every_n_train_steps": 1},
}


class KillAt(L.Callback):
    """SIGKILLs its own process as training reaches `step` (that step's checkpoint is on disk).

    Args:
        step: global step at which to die.
    """

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGKILL)


class Slow(L.Callback):
    """Sleeps `seconds` after every training batch, so that a time interval spans a few batches.

    Args:
        seconds: sleep per batch.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_batch_end(self, *args: Any) -> None:
        time.sleep(self.seconds)


class SignalAt(L.Callback):
    """Sends `signum` to its own process as training reaches `step`, once.

    Args:
        step: global step at which to signal.
        signum: the signal (15 SIGTERM, 10 SIGUSR1).
    """

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum, self.sent = step, signum, False

    def on_train_batch_start(self, trainer: L.Trainer, *args: Any) -> None:
        if trainer.global_step == self.step and not self.sent:
            self.sent = True
            os.kill(os.getpid(), self.signum)


def fit(run: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    run.mkdir(exist_ok=True)
    monkeypatch.chdir(run)
    main(["fit", "--config", str(CONFIG), "--trainer.default_root_dir", ".", *args])


def load(path: Path) -> dict[str, Any]:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_training_state(a: Path, b: Path) -> None:
    ca, cb = load(a / "checkpoints" / "last.ckpt"), load(b / "checkpoints" / "last.ckpt")
    assert ca["global_step"] == cb["global_step"] == 3 * STEPS_PER_EPOCH
    assert ca["state_dict"].keys() == cb["state_dict"].keys()
    for key, value in ca["state_dict"].items():
        assert torch.equal(value, cb["state_dict"][key]), key
    adam_a, adam_b = ca["optimizer_states"][0]["state"], cb["optimizer_states"][0]["state"]
    for param in adam_a:
        for key in adam_a[param]:
            assert torch.equal(adam_a[param][key], adam_b[param][key]), (param, key)
    best_a = json.loads((a / "saes" / "best.json").read_text())
    best_b = json.loads((b / "saes" / "best.json").read_text())
    assert drop_generation(best_a) == drop_generation(best_b)
    # The resumed fit kept the killed one's generation: its files, before and after, agree.
    generations = run_generations(b)
    assert len(generations) > 2 and len(set(generations.values())) == 1, generations
    assert None not in generations.values()


def drop_generation(best: dict[str, Any]) -> dict[str, Any]:
    """best.json without its `generation` stamps (two fits differ in it, by design)."""
    return {
        key: {k: v for k, v in entry.items() if k != "generation"} for key, entry in best.items()
    }


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory, tiny_cache_args: list[str]) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        fit(run, monkeypatch, *tiny_cache_args)
    return run


def test_fit_killed_mid_epoch_resumes_bit_identical(
    uninterrupted: Path,
    tmp_path: Path,
    tiny_cache_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kill = {"class_path": "test_resume.KillAt", "init_args": {"step": STEPS_PER_EPOCH + 1}}
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "saelight.cli", "fit", "--config", str(CONFIG),
        "--trainer.default_root_dir", ".", *tiny_cache_args,
        f"--trainer.callbacks+={json.dumps(EVERY_STEP)}",
        f"--trainer.callbacks+={json.dumps(kill)}",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    ckpt = load(tmp_path / "steps" / "last.ckpt")
    assert ckpt["global_step"] == STEPS_PER_EPOCH + 1  # one batch into the second epoch
    loader = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert loader == [{"epoch": 1, "batches": 1, "global_batch": 4}]

    resume = ["--ckpt_path", "steps/last.ckpt", f"--trainer.callbacks+={json.dumps(EVERY_STEP)}"]
    fit(tmp_path, monkeypatch, *tiny_cache_args, *resume)
    assert_same_training_state(uninterrupted, tmp_path)


def test_resume_from_an_epoch_end_checkpoint_is_bit_identical(
    uninterrupted: Path,
    tmp_path: Path,
    tiny_cache_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fit(tmp_path, monkeypatch, *tiny_cache_args, "--trainer.max_epochs", "2")
    loader = load(tmp_path / "checkpoints" / "last.ckpt")["loops"]["fit_loop"]["state_dict"]
    assert loader["combined_loader"][0]["batches"] == STEPS_PER_EPOCH
    fit(tmp_path, monkeypatch, *tiny_cache_args, "--ckpt_path", "checkpoints/last.ckpt")
    assert_same_training_state(uninterrupted, tmp_path)


def spec(cls: type, **init_args: Any) -> str:
    """A `--trainer.callbacks+=` value for `cls` (a class of this module or of saelight)."""
    module = "test_resume" if cls.__module__ in ("__main__", __name__) else cls.__module__
    if module.startswith("saelight.callbacks."):
        module = "saelight.callbacks"
    path = f"{module}.{cls.__name__}"
    return f"--trainer.callbacks+={json.dumps({'class_path': path, 'init_args': init_args})}"


def console_fit(run: Path, tiny_cache_args: list[str], *args: str) -> Any:
    """`saelight fit` of the tiny config in `run`, through the console script."""
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    cmd = [SAELIGHT, "fit", "--config", str(CONFIG), "--trainer.default_root_dir", "."]
    cmd += [*tiny_cache_args, *args]
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(cmd, cwd=run, env=env, capture_output=True, text=True, timeout=300)


def test_standard_callbacks_save_last_ckpt_on_the_shipped_interval() -> None:
    (checkpoint,) = [c for c in standard_callbacks("run") if "Checkpoint" in c.class_path]
    assert checkpoint.class_path == "saelight.callbacks.RunCheckpoint"
    callback = RunCheckpoint(**vars(checkpoint.init_args))
    assert callback.every_minutes == EVERY_MINUTES
    assert callback.save_last and callback.save_top_k == 0


def test_fit_killed_resumes_from_an_interval_checkpoint_bit_identical(
    uninterrupted: Path,
    tmp_path: Path,
    tiny_cache_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """RunCheckpoint as the standard callbacks ship it, its interval lowered from 10 minutes to
    2 s; every batch lasts at least 0.4 s, so an interval spans at most 5 batches. The SIGKILLed
    run leaves a `last.ckpt` less than one interval of training older than the kill (a wall-clock
    age would also count the validation between epochs), and resuming from it ends
    bit-identical."""
    interval_s, per_batch_s, kill_step = 2.0, 0.4, 3 * STEPS_PER_EPOCH - 1
    checkpoint = spec(RunCheckpoint, dirpath="steps", every_minutes=interval_s / 60)
    slow, kill = spec(Slow, seconds=per_batch_s), spec(KillAt, step=kill_step)
    done = console_fit(tmp_path, tiny_cache_args, checkpoint, slow, kill)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    step = load(tmp_path / "steps" / "last.ckpt")["global_step"]
    batches_per_interval = math.ceil(interval_s / per_batch_s)
    # a save may land right after the last batch before the kill (global_step == kill_step)
    assert kill_step - batches_per_interval <= step <= kill_step, (step, done.stderr[-2000:])

    fit(tmp_path, monkeypatch, *tiny_cache_args, "--ckpt_path", "last", checkpoint)
    assert_same_training_state(uninterrupted, tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGUSR1])
def test_signal_saves_last_ckpt_exits_nonzero_and_resumes_bit_identical(
    signum: int,
    uninterrupted: Path,
    tmp_path: Path,
    tiny_cache_args: list[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The tiny config's plain ModelCheckpoint (last.ckpt only at the end): the signal alone
    makes the run save, at the end of the batch it arrived in."""
    step = STEPS_PER_EPOCH + 1
    done = console_fit(tmp_path, tiny_cache_args, spec(SignalAt, step=step, signum=int(signum)))
    assert done.returncode == 128 + signum, done.stderr[-3000:]
    name = signal.Signals(signum).name
    saved = f"{name} received: saved {tmp_path / 'checkpoints' / 'last.ckpt'} at step {step + 1}"
    assert saved in done.stderr, done.stderr[-3000:]
    assert load(tmp_path / "checkpoints" / "last.ckpt")["global_step"] == step + 1
    assert not list((tmp_path / "checkpoints").glob(".*tmp*"))  # the atomic write's temp file

    fit(tmp_path, monkeypatch, *tiny_cache_args, "--ckpt_path", "last")
    assert_same_training_state(uninterrupted, tmp_path)
