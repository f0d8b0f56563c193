"""The surface a user touches: the installed `saelight` console script, run as a subprocess.

`saelight --help` names every subcommand, each subcommand's `--help` is its own, and every
`saelight …` line of the README runs — literally, with only the substitutions listed in
`README_RUNS` (fewer epochs, a cache that exists offline).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).parents[1]
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
SUBCOMMANDS = (
    "fit",
    "validate",
    "test",
    "cache",
    "report",
    "inspect",
    "layer-sweep",
    "push",
    "splice",
    "steer",
    "explain",
    "planted",
)
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}


def saelight(
    *args: str, cwd: Path | None = None, timeout: int = 600
) -> subprocess.CompletedProcess:  # noqa: E501
    return subprocess.run(
        [SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=ENV
    )


def documented_commands(path: Path) -> list[str]:
    """Every `saelight …` line inside the ```bash blocks of a Markdown file, comments dropped."""
    blocks = re.findall(r"```bash\n(.*?)```", path.read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("saelight ")]


def test_help_lists_every_subcommand_one_line_each() -> None:
    done = saelight("--help")
    assert done.returncode == 0, done.stderr
    listed = {m.group(1) for m in re.finditer(r"^  (\S+)\s{2,}\S", done.stdout, flags=re.M)}
    assert listed == set(SUBCOMMANDS)


@pytest.mark.parametrize(
    "name",
    ["cache", "report", "inspect", "layer-sweep", "push", "splice", "steer", "explain", "planted"],
)
def test_each_subcommand_help_is_its_own(name: str) -> None:
    from saelight.cli import verb_function

    done = saelight(name, "--help")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: saelight {name}")
    first_words = " ".join(verb_function(name).__doc__.split()[:4])
    assert first_words in " ".join(done.stdout.split())
    assert "--trainer.max_epochs" not in done.stdout  # not the Trainer's help


def test_every_documented_command_is_registered() -> None:
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    used = {line.split()[1] for path in docs for line in documented_commands(path)}
    assert used and used <= set(SUBCOMMANDS), sorted(used - set(SUBCOMMANDS))


def test_unknown_subcommand_is_one_clear_line() -> None:
    done = saelight("inspekt")
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "inspekt" in done.stderr


# README line -> extra arguments appended when the test runs it (the README's own arguments stay;
# later arguments win in LightningCLI and jsonargparse). Every README `saelight` line must be here.
README_RUNS: dict[str, list[str]] = {
    "saelight cache --config configs/quickstart.yaml": [],
    "saelight fit --config configs/quickstart.yaml --trainer.max_epochs 100": [
        "--trainer.max_epochs",
        "2",
    ],
    "saelight fit --config configs/quickstart.yaml --print_config": [],
    # One sparsity: 1 SAE x (1 + 3 baselines) x 2 seeds x 2 layers.
    "saelight fit --config configs/quickstart_baselines.yaml": [
        *("--trainer.max_epochs", "2", "--model.sparsities", "[0.9]"),
        *("--data.cache.directory", "runs/quickstart/cache"),
        *("--data.cache.backbone.init_args.save_dir", "runs/quickstart/models"),
    ],
    "saelight report runs/quickstart": [],
    "saelight inspect --run runs/quickstart --out runs/quickstart/explorer": [],
    "saelight fit --config configs/paper/hubert.yaml --data.cache.source.init_args.root "
    "/path/to/VocalSet": ["--print_config"],
    "saelight cache --config configs/layer_sweep_hubert.yaml --data.cache.source.init_args.root "
    "/path/to/VocalSet": ["--print_config"],
    "saelight layer-sweep --cache runs/layer_sweep/hubert/cache --label technique": [],
    "saelight push --run runs/quickstart --local_dir runs/quickstart/hub": [],
    # my_clip.wav: a 2 s tone the test writes first (the README's stand-in for the user's file).
    "saelight explain my_clip.wav --run runs/quickstart": [],
    # 2 CPU processes (gloo) instead of 4 GPUs: the same strategy on this 2-core machine.
    "saelight fit --config configs/quickstart.yaml --trainer.devices 4 --trainer.strategy ddp": [
        "--trainer.devices",
        "2",
        "--trainer.max_epochs",
        "1",
    ],
}
# What a normal run must not print: warnings the user can do nothing about (issue 14).
NOISE = (
    "LightningCLI's args parameter",
    "IterableDataset` has `__len__`",
    "LeafSpec",
    "litlogger",
    "anonymous setting",
    "Total FLOPs",
)
# The layer sweep reads a 13-layer HuBERT cache nobody can build offline: it runs on the
# quickstart's cache (the same format), copied to the documented path.
LAYER_SWEEP_CACHE = "runs/layer_sweep/hubert/cache"


@pytest.mark.slow
def test_readme_commands_run_as_a_user_runs_them(tmp_path: Path) -> None:
    commands = documented_commands(ROOT / "README.md")
    assert set(commands) == set(README_RUNS), set(commands) ^ set(README_RUNS)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    t = np.arange(32_000) / 16_000
    sf.write(tmp_path / "my_clip.wav", 0.3 * np.sin(2 * np.pi * 220 * t), 16_000)
    logs: dict[str, str] = {}
    for line in commands:
        if "layer-sweep" in line:
            shutil.copytree(tmp_path / "runs/quickstart/cache", tmp_path / LAYER_SWEEP_CACHE)
        args = line.split()[1:] + README_RUNS[line]
        if "--print_config" in args:  # --print_config must come last to see every override
            args = [a for a in args if a != "--print_config"] + ["--print_config"]
        done = saelight(*args, cwd=tmp_path)
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, line
        logs[line] = done.stdout + done.stderr
        for noise in NOISE:  # the output goes to a pipe, as to a log file: no noise there
            assert noise not in logs[line], (line, noise)
        if "--print_config" in args:
            assert "class_path" in done.stdout
    cache_log = logs["saelight cache --config configs/quickstart.yaml"]
    assert re.search(r"extracting clips into \S+: \d+/800 done in", cache_log)
    fit_log = logs["saelight fit --config configs/quickstart.yaml --trainer.max_epochs 100"]
    assert re.search(r"epoch 2/2 · step \d+/\d+ \(100 %\) · .* rows/s · ETA", fit_log)
    assert "extracting clips" not in fit_log  # the cache was complete
    run = tmp_path / "runs/quickstart"
    rows = json.loads((run / "results/results.json").read_text())["rows"]
    assert {r["name"] for r in rows} == {"dense", "topk_s75", "topk_s90", "topk_s99"}
    assert "Claim 1" in (run / "report/report.md").read_text()
    pages = sorted(p.parent.name for p in (run / "explorer").glob("*/index.html"))
    assert pages == sorted(p.name for p in (run / "saes").glob("L*"))
    assert (tmp_path / "runs/layer_sweep/hubert/layer_sweep/layer_sweep_technique.json").exists()
    report = (tmp_path / "runs/quickstart_baselines/report/report.md").read_text()
    names = ("topk_s90", "topk_s90_frozen_decoder", "topk_s90_frozen_encoder", "topk_s90_random")
    assert f"| layer | {' | '.join(names)} |" in report  # a column per baseline
    for claim in ("Claim 1 (technique) vs random baselines", "Claim 2 vs random baselines"):
        assert claim in report
    assert "± = std across 2 seeds" in report and "### Seed stability" in report
    explained = json.loads((run / "explain" / "explain.json").read_text())
    assert "my_clip.wav" in json.dumps(explained)
