"""The splice numbers in report.md and W&B: `SAEEvaluation(splice=True)` at fit end and
`saelight splice --wandb`, through the console script on a tiny frame-level run; and the
report section's cells on a hand-written payload."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from saelight.metrics.uncertainty import paired_difference
from saelight.report.splice_section import ablation_rows, fidelity_rows, splice_tables

TINY = Path(__file__).parents[1] / "data" / "tiny.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
CALLBACKS = (
    "[{class_path: saelight.callbacks.BestSAEExport}, {class_path: saelight.callbacks."
    "SAEEvaluation, init_args: {probe: logistic, k_sparse: 0, disentanglement: false, "
    "splice: true, splice_max_clips: 6}}]"
)


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def payload() -> dict[str, Any]:
    """One layer, one SAE, one label with two values: the splice.json shape, by hand."""
    top = {"label": "vowel", "value": "a", "kind": "top", "latents": [3], "target_drop": 0.25}
    top |= {"target_value_drop": 0.5, "others_drop": {}, "others_drop_mean": None}
    rand = {**top, "kind": "random", "latents": [9], "target_drop": 0.0, "target_value_drop": 0.0}
    sae = {
        "sparsity": 0.9,
        "fidelity_recovered": 0.8125,
        "per_layer": {"2": {"fvu": 0.25, "cosine": 0.9375, "fidelity": 0.8125}},
        "reconstruction": {"fvu": 0.125, "cosine": 0.96875},
        "probe": {"vowel": {"clean_acc": 1.0, "spliced_acc": 0.875, "drop": 0.125}},
        "ablation": [top, rand],
    }
    layer = {"layer": 1, "num_layers": 2, "saes": {"L01_topk_s90": sae}}
    return {"split": "test", "n_clips": 4, "audio_seconds": 4.0, "k_ablate": 1, "layers": [layer]}


def test_tables_hold_the_payload_numbers_in_points() -> None:
    fidelity, ablation = splice_tables(payload())
    assert fidelity.cells == [
        ["L01_topk_s90", "L1", "90 %", "0.812", "0.250", "0.938", "0.125", "12.5"]
    ]
    assert fidelity.columns[-1] == "probe drop vowel (pt)"
    row = ["L01_topk_s90", "L1", "vowel", "a", "25.0", "0.0", "50.0", "0.0", "-", "-", "-"]
    assert ablation.cells == [row]  # no per-clip counts (older splice.json): no interval
    assert fidelity_rows(payload())[1][0][3] == 0.8125  # W&B gets the raw value
    assert ablation_rows(payload())[1][0][4] == 25.0


def test_the_ablation_gap_gets_a_paired_interval_over_clips() -> None:
    data = payload()
    top, rand = data["layers"][0]["saes"]["L01_topk_s90"]["ablation"]
    # 4 clips of 10 frames: the top-k ablation leaves 5, 6, 4, 5 right; the random one 9, 10, 8, 9.
    top |= {"target_clip_correct": [5, 6, 4, 5], "target_clip_rows": [10] * 4}
    rand |= {"target_clip_correct": [9, 10, 8, 9], "target_clip_rows": [10] * 4}
    (row,) = ablation_rows(data)[1]
    expected = paired_difference([9, 10, 8, 9], [5, 6, 4, 5], [10] * 4)
    assert expected.estimate == pytest.approx(0.4)  # (36 - 20) / 40: top-k costs 40 points more
    text = f"{100 * expected.estimate:+.2f} [{100 * expected.low:+.2f}, {100 * expected.high:+.2f}]"
    assert row[-1] == text and text.startswith("+40.00 [+")
    rows = [10, 10, 10, 12]  # clips that disagree between the two sets: no pairing, no interval
    rand["target_clip_rows"] = rows
    assert ablation_rows(data)[1][0][-1] is None


def test_no_ablation_table_without_ablations() -> None:
    data = payload()
    data["layers"][0]["saes"]["L01_topk_s90"]["ablation"] = []
    assert [t.slug for t in splice_tables(data)] == ["splice_fidelity"]


@pytest.fixture(scope="module")
def spliced_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-epoch frame-level fit with W&B offline and SAEEvaluation(splice=True)."""
    run = tmp_path_factory.mktemp("spliced")
    args = ["fit", "--config", str(TINY), "--trainer.default_root_dir", "."]
    args += ["--data.cache.pooling", "frame", "--trainer.max_epochs", "1"]
    done = saelight(*args, "--trainer.callbacks", CALLBACKS, cwd=run)
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def logged(path: Path, read: Any) -> dict[str, dict[str, Any]]:
    """{history key: its value} of an offline .wandb file (media come field by field)."""
    out: dict[str, dict[str, Any]] = {}
    for record in read(path):
        if record.WhichOneof("record_type") != "history":
            continue
        for item in record.history.item:
            parts = [item.key] if item.key else list(item.nested_key)
            value = json.loads(item.value_json)
            if len(parts) == 1:
                out[parts[0]] = value if isinstance(value, dict) else {"_type": "scalar"}
            else:
                out.setdefault("/".join(parts[:-1]), {})[parts[-1]] = value
    return out


def table_file(wandb_file: Path, value: dict[str, Any]) -> dict[str, Any]:
    """The JSON of a logged wandb.Table (under the offline run's files/)."""
    return json.loads((wandb_file.parent / "files" / value["path"]).read_text())


def expected_fidelity(splice: dict[str, Any]) -> dict[str, float]:
    return {
        name: row["fidelity_recovered"]
        for layer in splice["layers"]
        for name, row in layer["saes"].items()
    }


@pytest.mark.slow
def test_fit_end_splice_reaches_report_and_wandb(spliced_run: Path, wandb_records: Any) -> None:
    splice = json.loads((spliced_run / "splice" / "splice.json").read_text())
    assert splice["n_clips"] == 6 and {len(layer["saes"]) for layer in splice["layers"]} == {2}
    report = (spliced_run / "report" / "report.md").read_text()
    section = report.split("## Causal evaluation", 1)[1].split("\n## ", 1)[0]
    assert "docs/causal_evaluation.md" in section and "![splice](splice.png)" in section
    for layer in splice["layers"]:
        final = str(layer["num_layers"])
        for name, row in layer["saes"].items():
            line = next(ln for ln in section.splitlines() if ln.startswith(f"| {name} |"))
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert cells[3] == f"{row['fidelity_recovered']:.3f}"
            assert cells[4] == f"{row['per_layer'][final]['fvu']:.3f}"
            assert cells[5] == f"{row['per_layer'][final]['cosine']:.3f}"
            drops = [f"{100 * p['drop']:.1f}" for _, p in sorted(row["probe"].items())]
            assert cells[7:] == drops and drops
            top = next(a for a in row["ablation"] if a["kind"] == "top" and "target_drop" in a)
            start = f"| {name} | L{layer['layer']} | {top['label']} | {top['value']} | "
            assert f"{start}{100 * top['target_drop']:.1f} |" in section
    assert (spliced_run / "report" / "splice.png").read_bytes()[:4] == b"\x89PNG"

    (run_file,) = (spliced_run / "wandb").glob("offline-run-*/run-*.wandb")
    keys = logged(run_file, wandb_records)
    assert keys["splice/fidelity"]["_type"] == "table-file"
    assert keys["splice/ablation"]["_type"] == "table-file"
    assert keys["splice/figure"]["_type"] == "image-file"
    assert keys["report/table/splice_fidelity"]["_type"] == "table-file"
    assert keys["report/splice"]["_type"] == "image-file"
    table = table_file(run_file, keys["splice/fidelity"])
    column = table["columns"].index("fidelity recovered")
    assert {r[0]: r[column] for r in table["data"]} == pytest.approx(expected_fidelity(splice))


@pytest.mark.slow
def test_splice_command_logs_its_own_wandb_run(
    spliced_run: Path, tmp_path: Path, wandb_records: Any
) -> None:
    out = tmp_path / "again"
    args = ["splice", "--run", str(spliced_run), "--out", str(out), "--max_clips", "6"]
    done = saelight(*args, "--k_ablate", "1", "--wandb", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    splice = json.loads((out / "splice.json").read_text())
    (run_file,) = (out / "wandb").glob("offline-run-*/run-*.wandb")
    keys = logged(run_file, wandb_records)
    assert {"splice/fidelity", "splice/ablation", "splice/figure"} <= set(keys)
    table = table_file(run_file, keys["splice/ablation"])
    probed = [  # one row per (SAE, label value) whose label the probes could read
        a
        for layer in splice["layers"]
        for row in layer["saes"].values()
        for a in row["ablation"]
        if a["kind"] == "top" and "target_drop" in a
    ]
    assert len(table["data"]) == len(probed) > 0
    fidelity = table_file(run_file, keys["splice/fidelity"])
    column = fidelity["columns"].index("fidelity recovered")
    assert {r[0]: r[column] for r in fidelity["data"]} == pytest.approx(expected_fidelity(splice))


@pytest.mark.slow
def test_a_clip_run_skips_the_splice_and_still_reports(tmp_path: Path) -> None:
    args = ["fit", "--config", str(TINY), "--trainer.default_root_dir", "."]
    args += [
        "--data.cache.pooling",
        "clip",
        "--trainer.max_epochs",
        "1",
        "--trainer.logger",
        "false",
    ]
    done = saelight(*args, "--trainer.callbacks", CALLBACKS, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (tmp_path / "splice").exists()
    assert "## Causal evaluation" not in (tmp_path / "report" / "report.md").read_text()
