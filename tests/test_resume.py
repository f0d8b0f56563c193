"""Exact resume: a `saelight fit` killed with SIGKILL mid-epoch, then resumed from its last
checkpoint, ends with bit-identical weights, optimiser state and best exports (CPU, fixed seeds)
to an uninterrupted run; so does a resume from an epoch-end checkpoint."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

from saelight.cli import main

TESTS = Path(__file__).parent
CONFIG = TESTS / "data" / "tiny_csv.yaml"
STEPS_PER_EPOCH = 3  # 12 train rows / batch 4


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


def shared(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Cache and backbone shared by this session's tests, built here if no test has yet.

    Built before any fit: building the random backbone draws from torch's RNG, which would shift
    the SAE initialisation of the run that happened to build it.
    """
    base = tmp_path_factory.getbasetemp()
    args = [
        "--data.cache.directory",
        str(base / "tiny_cache"),
        "--data.cache.backbone.init_args.save_dir",
        str(base / "tiny_models"),
    ]
    main(["cache", "--config", str(CONFIG), "--trainer.default_root_dir", str(base), *args])
    return args


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
    assert best_a == best_b


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("uninterrupted")
    with pytest.MonkeyPatch.context() as monkeypatch:
        fit(run, monkeypatch, *shared(tmp_path_factory))
    return run


def test_fit_killed_mid_epoch_resumes_bit_identical(
    uninterrupted: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kill = {"class_path": "test_resume.KillAt", "init_args": {"step": STEPS_PER_EPOCH + 1}}
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    cmd = [
        sys.executable, "-m", "saelight.cli", "fit", "--config", str(CONFIG),
        "--trainer.default_root_dir", ".", *shared(tmp_path_factory),
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
    fit(tmp_path, monkeypatch, *shared(tmp_path_factory), *resume)
    assert_same_training_state(uninterrupted, tmp_path)


def test_resume_from_an_epoch_end_checkpoint_is_bit_identical(
    uninterrupted: Path,
    tmp_path: Path,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fit(tmp_path, monkeypatch, *shared(tmp_path_factory), "--trainer.max_epochs", "2")
    loader = load(tmp_path / "checkpoints" / "last.ckpt")["loops"]["fit_loop"]["state_dict"]
    assert loader["combined_loader"][0]["batches"] == STEPS_PER_EPOCH
    fit(tmp_path, monkeypatch, *shared(tmp_path_factory), "--ckpt_path", "checkpoints/last.ckpt")
    assert_same_training_state(uninterrupted, tmp_path)
