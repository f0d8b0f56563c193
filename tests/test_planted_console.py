"""Planted ground truth through the installed console script, as docs/planted_ground_truth.md
shows it: `saelight planted` writes the cache, `saelight fit | inspect | report` run on it
unchanged, and results.json and report.md carry each SAE's ground-truth scores. Bad options stop
with one line naming the field."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
DOC = ROOT / "docs" / "planted_ground_truth.md"
# One torch thread: tiny SAEs on a shared 2-core machine, where two threads spin against the
# other jobs (a 10x slower fit under load).
ENV = {
    **os.environ,
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "WANDB_MODE": "offline",
    "OMP_NUM_THREADS": "1",
}
# Each command of the doc -> the arguments the test appends (later ones win).
DOC_RUNS: dict[str, list[str]] = {
    "saelight planted --out runs/planted/cache": [],
    "saelight fit --config configs/planted.yaml": ["--trainer.max_epochs", "10"],
    "saelight inspect --run runs/planted": [],
    "saelight report runs/planted": [],
}
GT_KEYS = ("gt_mcc", "gt_precision", "gt_recall", "gt_f1", "gt_uniqueness", "gt_shrinkage")
MCC_FLOOR = 0.7
"""Measured at 10 epochs (AMD EPYC, 2 cores): MCC 0.82, 0.82 and 0.77 at k = 8, 5 and 3."""


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=300, env=ENV
    )


def doc_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", DOC.read_text(), flags=re.S)
    lines = [line.split("  #")[0].strip() for block in blocks for line in block.splitlines()]
    return [line for line in lines if line.startswith("saelight ")]


@pytest.mark.slow
def test_planted_cache_fit_inspect_report_as_documented(tmp_path: Path) -> None:
    commands = doc_commands()
    assert commands == list(DOC_RUNS)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    outputs, walls = {}, {}
    for line in commands:
        t0 = time.perf_counter()
        done = saelight(*line.split()[1:], *DOC_RUNS[line], cwd=tmp_path)
        walls[line] = time.perf_counter() - t0
        assert done.returncode == 0, f"{line}\n{done.stderr[-3000:]}"
        assert "Traceback" not in done.stderr, line
        outputs[line] = done.stdout
    print({k.split()[1]: round(v, 1) for k, v in walls.items()})
    assert "10000 rows (train 280, val 40, test 80 clips)" in outputs[commands[0]]
    run = tmp_path / "runs/planted"
    rows = json.loads((run / "results/results.json").read_text())["rows"]
    saes = [r for r in rows if r["kind"] == "sae"]
    assert [r["name"] for r in saes] == ["topk_s87.5", "topk_s92", "topk_s95"]
    assert not any(k in r for r in rows if r["kind"] == "dense" for k in GT_KEYS)
    for r in saes:
        print(r["name"], {k: round(r[k], 3) for k in (*GT_KEYS, "fvu", "probe_class_acc")})
        assert set(GT_KEYS) <= set(r) and r["gt_mcc"] > MCC_FLOOR, r["name"]
        assert 0 < r["gt_f1"] <= 1 and 0 < r["gt_uniqueness"] <= 1 and r["gt_shrinkage"] > 0
    assert max(r["gt_mcc"] for r in saes) > 0.8
    assert "probe_class_acc" in saes[0]  # the `class` label is probed like any label
    report = (run / "report/report.md").read_text()
    assert "## Planted ground truth" in report
    assert "| layer | SAE | mcc | precision | recall | f1 | uniqueness | shrinkage |" in report
    assert "Backbone(s): planted-d32-f64 (frame)" in report
    pages = sorted(p.parent.name for p in (run / "explorer").glob("*/index.html"))
    assert pages == ["L00_topk_s87p5", "L00_topk_s92", "L00_topk_s95"]
    assert "explorer L00_topk_s92" in outputs["saelight inspect --run runs/planted"]


@pytest.mark.parametrize(
    ("option", "value", "line"),
    [
        ("--n_features", "0", "n_features must be >= 1, got 0"),
        ("--frequency_high", "1.5", "frequency_high must be in [frequency_low, 1], got 1.5"),
        ("--label_features", "1", "label_features must be 0 (no label) or >= 2 (classes), got 1"),
    ],
)
def test_a_bad_option_is_one_line_naming_the_field(
    tmp_path: Path, option: str, value: str, line: str
) -> None:
    done = saelight("planted", "--out", "cache", option, value, cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [f"saelight: error: planted recipe: {line}"]
    assert not (tmp_path / "cache").exists()


def test_fit_before_planted_says_what_to_run(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    done = saelight("fit", "--config", "configs/planted.yaml", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "saelight: error: runs/planted/cache holds no planted cache (no planted.json); write it "
        "first with `saelight planted --out runs/planted/cache`"
    )
