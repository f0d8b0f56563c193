"""The divergence guard through the console script: a loss spike injected into one SAE of a
2-SAE grid gives one WARNING line naming it, the step and the jump; under `rollback` that SAE is
put back while the other's weights and optimiser state equal an uninterrupted run's; under
`stop` the run ends with one error line."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

TESTS = Path(__file__).parent
CONFIG = TESTS / "data" / "tiny_csv.yaml"
SPIKED, OTHER = "L01_topk_s90", "L02_topk_s90"
SPIKE_STEP = 12

INJECTOR = '''
import lightning as L
import torch


class InjectSpike(L.Callback):
    """Multiplies one SAE's encoder by 1000 as training reaches `step`: its loss jumps."""

    def __init__(self, key: str, step: int) -> None:
        self.key, self.step = key, step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                pl_module.saes[self.key].W_enc.mul_(1000.0)
'''


def console(args: list[str], cwd: Path, extra_path: Path | None = None) -> Any:
    """`saelight <args>` as a subprocess of the installed console script."""
    exe = Path(sys.executable).with_name("saelight")
    path = os.pathsep.join(filter(None, [str(extra_path or ""), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": path}
    return subprocess.run(
        [str(exe), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared cache and backbone, and the injector module on a folder for PYTHONPATH."""
    root = tmp_path_factory.mktemp("divergence")
    data = ["--data.cache.directory", "cache", "--data.cache.backbone.init_args.save_dir", "models"]
    done = console(
        ["cache", "--config", str(CONFIG), "--trainer.default_root_dir", ".", *data], root
    )
    assert done.returncode == 0, done.stderr[-3000:]
    (root / "inject_spike.py").write_text(INJECTOR)
    return root


def fit(base: Path, name: str, policy: str, spike: bool) -> tuple[Path, Any]:
    """A tiny fit (2 SAEs, 15 steps, a check at every step) under `policy`, in base/name."""
    config = yaml.safe_load(CONFIG.read_text())
    config["trainer"]["callbacks"] = [
        {
            "class_path": "lightning.pytorch.callbacks.ModelCheckpoint",
            "init_args": {"dirpath": "checkpoints", "save_last": True, "save_top_k": 0},
        }
    ]
    if spike:
        injector = {"key": SPIKED, "step": SPIKE_STEP}
        config["trainer"]["callbacks"].append(
            {"class_path": "inject_spike.InjectSpike", "init_args": injector}
        )
    config["data"]["cache"]["directory"] = str(base / "cache")
    config["data"]["cache"]["backbone"]["init_args"]["save_dir"] = str(base / "models")
    config["trainer"]["max_epochs"] = 5  # 15 steps: the guard compares after its warm-up
    config["model"]["sparsities"] = [0.9]
    config["model"]["divergence"] = policy
    run = base / name
    run.mkdir()
    (run / "fit.yaml").write_text(yaml.safe_dump(config))
    done = console(["fit", "--config", "fit.yaml", "--trainer.default_root_dir", "."], run, base)
    return run, done


def checkpoint(run: Path) -> dict[str, Any]:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def group_state(ckpt: dict[str, Any], key: str) -> dict[int, dict[str, torch.Tensor]]:
    """The optimiser state of the param group named `key` (one group per SAE)."""
    opt = ckpt["optimizer_states"][0]
    (group,) = [g for g in opt["param_groups"] if g["name"] == key]
    return {i: opt["state"][i] for i in group["params"]}


def last_metric(run: Path, name: str) -> float:
    (path,) = run.glob("csv/**/metrics.csv")
    rows = [r for r in csv.DictReader(path.open()) if r.get(name)]
    return float(rows[-1][name])


def test_a_spike_in_one_sae_is_rolled_back_and_the_other_trains_untouched(base: Path) -> None:
    clean, done = fit(base, "clean", "rollback", spike=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "diverged" not in done.stderr
    spiked, done = fit(base, "rollback", "rollback", spike=True)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if "diverged" in line]
    assert len(lines) == 1, done.stderr[-3000:]
    assert lines[0].startswith(f"{SPIKED} diverged at step {SPIKE_STEP}: loss ")
    assert " -> " in lines[0] and "(x" in lines[0] and "rolled back to step 11" in lines[0]
    a, b = checkpoint(clean), checkpoint(spiked)
    for name, value in a["state_dict"].items():
        if f".{OTHER}." in name:
            assert torch.equal(value, b["state_dict"][name]), name
    state_a, state_b = group_state(a, OTHER), group_state(b, OTHER)
    for i, entries in state_a.items():
        for k, v in entries.items():
            assert torch.equal(v, state_b[i][k]), (i, k)
    # the spiked SAE was put back: finite, no 1000x encoder, close to the clean run's
    enc_a, enc_b = (c["state_dict"][f"saes.{SPIKED}.W_enc"] for c in (a, b))
    assert torch.isfinite(enc_b).all()
    assert enc_b.norm() < 1.5 * enc_a.norm()
    assert last_metric(spiked, "L1/topk_s90/train/divergences") == 1
    assert last_metric(spiked, "L2/topk_s90/train/divergences") == 0


def test_stop_ends_the_run_with_one_error_line(base: Path) -> None:
    _, done = fit(base, "stop", "stop", spike=True)
    assert done.returncode == 2, done.stderr[-3000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"saelight: error: {SPIKED} diverged at step {SPIKE_STEP}"), error
    assert "Traceback" not in done.stderr
