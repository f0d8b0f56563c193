"""Every `configs/**/*.yaml` parses and validates through the real CLI parser (no model is
loaded: class instantiation is switched off); the paper configs hold the paper's protocol; the W&B
sweep gives each run its own directory; `configs/paper/run_all.sh` runs every paper config."""

import itertools
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from saelight.commands.train import SaelightCLI, make_cli
from saelight.io.config_bases import load_with_bases

ROOT = Path(__file__).resolve().parents[1]
SWEEPS = ROOT / "configs" / "sweeps"
# A `base.yaml` is not a run of its own: it is parsed through every overlay naming it.
CONFIGS = sorted(
    p
    for p in (ROOT / "configs").rglob("*.yaml")
    if SWEEPS not in p.parents and p.name != "base.yaml"
)
PAPER = {  # backbone, layers (Mariotte et al. 2025, sec. Protocol)
    "hubert": ("facebook/hubert-base-ls960", [3, 12]),
    "wavlm": ("microsoft/wavlm-base-plus", [1, 12]),
    "ast": ("MIT/ast-finetuned-audioset-10-10-0.4593", [6, 12]),
    "mert": ("m-a-p/MERT-v1-95M", [4, 7]),
}
ROOT_FLAG = "--data.cache.source.init_args.root"


@pytest.fixture()
def parse(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """parse(args) -> the validated config Namespace, without instantiating any class."""
    monkeypatch.setattr(SaelightCLI, "instantiate_classes", lambda self: None)
    monkeypatch.setattr(sys, "argv", ["saelight"])  # LightningCLI warns when both are given
    monkeypatch.chdir(ROOT)  # relative paths resolve as `wandb agent` in the repo root sees them

    def run(args: list[str]) -> Any:
        return make_cli(args, run=False).config

    return run


def needs_root(path: Path) -> list[str]:
    source = load_with_bases(path)["data"]["cache"]["source"]
    return [ROOT_FLAG, "/data/VocalSet"] if source["class_path"].endswith("VocalSet") else []


def config_args(path: Path) -> list[str]:
    """An overlay (no `data` section, e.g. cluster/slurm_ddp.yaml) is parsed over the quickstart."""
    if "data" not in load_with_bases(path):
        return ["--config", str(ROOT / "configs" / "quickstart.yaml"), "--config", str(path)]
    return ["--config", str(path), *needs_root(path)]


def test_paper_overlays_hold_only_their_differences() -> None:
    for name in PAPER:
        for folder in ("configs/paper", "configs/paper/frame"):
            path = ROOT / folder / f"{name}.yaml"
            values = yaml.safe_load(path.read_text())
            assert values["base"] == "base.yaml" and set(values) == {"base", "trainer", "data"}
            assert len(path.read_text().splitlines()) <= 15, path
    frame = load_with_bases(ROOT / "configs/paper/frame/hubert.yaml")
    assert frame["data"]["cache"]["pooling"] == "frame" and frame["data"]["batch_size"] == 4096
    assert frame["model"]["saes"][0]["init_args"]["aux_k_coefficient"] == 0  # from paper/base


def test_configs_are_found() -> None:
    names = {str(p.relative_to(ROOT / "configs")) for p in CONFIGS}
    expected = {f"paper/{n}.yaml" for n in PAPER} | {f"paper/frame/{n}.yaml" for n in PAPER}
    assert expected | {"quickstart.yaml", "layer_sweep_hubert.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_config_parses(parse, path: Path) -> None:  # noqa: ANN001
    config = parse(config_args(path))
    assert config.model.saes and config.data.cache.init_args.directory


def test_vocalset_root_is_required(tmp_path: Path) -> None:
    """Through the console script: one line naming the missing field."""
    saelight = str(Path(sys.executable).with_name("saelight"))
    done = subprocess.run(
        [saelight, "fit", "--config", str(ROOT / "configs/paper/hubert.yaml")],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("saelight: error:")]
    assert "data.cache.source" in line and "the following arguments are required: root" in line


@pytest.mark.parametrize("name", sorted(PAPER))
@pytest.mark.parametrize("frame", [False, True], ids=["clip", "frame"])
def test_paper_protocol(parse, name: str, frame: bool) -> None:  # noqa: ANN001
    path = ROOT / "configs" / "paper" / ("frame" if frame else "") / f"{name}.yaml"
    c = parse(["--config", str(path), ROOT_FLAG, "/data/VocalSet"])
    cache = c.data.cache.init_args
    backbone = cache.backbone.init_args
    assert (backbone.model, backbone.layers) == PAPER[name]
    assert backbone.trust_remote_code is (name == "mert")
    assert backbone.mask_padding is (frame or name != "ast")  # the paper pools AST's padding
    assert cache.source.class_path == "saelight.audio.VocalSet"
    assert cache.source.init_args.root == "/data/VocalSet" and cache.source.init_args.seed == 42
    assert cache.pooling == ("frame" if frame else "clip") and cache.crop_seconds == 5
    assert cache.test_full_length and cache.egemaps
    assert cache.protocol == "paper"  # test_head rows for the probes; SAEEvaluation follows it
    assert (c.data.batch_size, cache.crops_per_file) == ((4096, 1) if frame else (16, 10))
    assert c.seed_everything == 42
    (sae,) = c.model.saes
    assert sae.class_path == "saelight.sae.TopKSAE"
    preset = {
        k: sae.init_args[k]
        for k in (
            "d_sae",
            "decoder_bias",
            "unit_norm_decoder",
            "encoder_init_from_decoder",
            "b_dec_init",
            "aux_k_coefficient",
            "normalize_input",
        )
    }
    assert preset == {
        "d_sae": 2048,
        "decoder_bias": False,
        "unit_norm_decoder": False,
        "encoder_init_from_decoder": False,
        "b_dec_init": "zeros",
        "aux_k_coefficient": 0,
        "normalize_input": False,
    }
    assert c.model.sparsities == [0.75, 0.8, 0.85, 0.9, 0.95, 0.99]
    assert c.model.optimizer.class_path == "torch.optim.Adam"
    assert c.model.optimizer.init_args.lr == 1e-3
    # 10 epochs over 10 crops per file, validated 10 times each = the paper's 100 epochs.
    assert (c.trainer.max_epochs, c.trainer.val_check_interval) == (
        (100, 1.0) if frame else (10, 0.1)
    )
    callbacks = [cb.class_path for cb in c.trainer.callbacks]
    assert {"saelight.callbacks.BestSAEExport", "saelight.callbacks.SAEEvaluation"} <= set(
        callbacks
    )
    run_dir = f"runs/paper/{'frame/' if frame else ''}{name}"
    assert c.trainer.default_root_dir == run_dir and cache.directory == f"{run_dir}/cache"
    assert {lg.init_args.save_dir for lg in c.trainer.logger} == {run_dir}


def sweep_commands() -> list[list[str]]:
    """The command of every run of the grid, built the way `wandb agent` builds it."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    sweep = yaml.safe_load((SWEEPS / "paper_grid.yaml").read_text())
    assert sweep["program"] == "saelight" and sweep["method"] == "grid"
    names = list(sweep["parameters"])
    commands = []
    for combo in itertools.product(*(sweep["parameters"][n]["values"] for n in names)):
        flags = create_sweep_command_args(
            {"args": {n: {"value": v} for n, v in zip(names, combo, strict=True)}}
        )
        macros = {"${env}": ["/usr/bin/env"], "${args}": flags["args"]}
        commands.append([a for c in sweep["command"] for a in macros.get(str(c), [str(c)])])
    return commands


def test_sweep_runs_are_the_grid(parse, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    commands = sweep_commands()
    grid = {(c[-2], c[-1]) for c in commands}  # the ${args} flags: one pair per run
    assert len(commands) == len(grid) == 12
    monkeypatch.setenv("VOCALSET_ROOT", "/data/VocalSet")
    seen = set()
    for i in (0, 11):  # parsing takes ~1 s: one run of each layer
        assert commands[i][:3] == ["/usr/bin/env", "saelight", "fit"]
        monkeypatch.setenv("WANDB_RUN_ID", f"run{i}")
        c = parse(commands[i][3:])
        cache = c.data.cache.init_args
        (layer,) = cache.backbone.init_args.layers
        seen.add((layer, *c.model.sparsities))
        assert cache.directory == f"runs/sweep_cache/hubert_L{layer}"
        assert cache.backbone.init_args.model == PAPER["hubert"][0]
        assert cache.source.init_args.root == "/data/VocalSet" and cache.crops_per_file == 10
        assert c.trainer.default_root_dir == f"runs/sweep/run{i}"
        assert {lg.init_args.save_dir for lg in c.trainer.logger} == {f"runs/sweep/run{i}"}
        assert c.trainer.logger[0].init_args.offline is False
        (checkpoint,) = [cb for cb in c.trainer.callbacks if "ModelCheckpoint" in cb.class_path]
        assert checkpoint.init_args.dirpath == f"runs/sweep/run{i}/checkpoints"
    assert seen == {(3, 0.75), (12, 0.99)}


def test_run_all_fits_every_paper_config(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "saelight"
    fake.parent.mkdir()
    fake.write_text(f'#!/usr/bin/env bash\necho "$*" >> {tmp_path / "calls"}\n')
    fake.chmod(0o755)
    env = {**os.environ, "PATH": f"{fake.parent}:{os.environ['PATH']}", "VOCALSET_ROOT": "/v"}
    script = ROOT / "configs" / "paper" / "run_all.sh"
    subprocess.run(
        ["bash", str(script), "--trainer.devices", "1"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    calls = (tmp_path / "calls").read_text().splitlines()
    fits = [c for c in calls if c.startswith("fit ")]
    expected = [
        f"configs/paper/{d}{n}.yaml"
        for d in ("", "frame/")
        for n in ("hubert", "wavlm", "ast", "mert")
    ]
    assert [c.split()[2] for c in fits] == expected
    assert all(c.endswith(f"{ROOT_FLAG} /v --trainer.devices 1") for c in fits)
    reports = [c for c in calls if c.startswith("report ")]
    runs = " ".join(f"runs/paper/{n}" for n in ("hubert", "wavlm", "ast", "mert"))
    assert reports == [
        f"report {runs} --out runs/paper/report",
        f"report {runs.replace('paper/', 'paper/frame/')} --out runs/paper/frame/report",
    ]
