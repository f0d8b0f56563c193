"""A collapsed SAE gets its ⚠ in the report's causal section, as beside the claims that use it."""

import json
from pathlib import Path
from typing import Any

from saelight.evaluation.results import write_results
from saelight.report.build import write_report
from saelight.report.splice_section import collapsed_saes, splice_tables


def _sae(sparsity: float) -> dict[str, Any]:
    """One SAE of splice.json, one label value ablated."""
    top = {"label": "vowel", "value": "a", "kind": "top", "latents": [3], "target_drop": 0.25}
    top |= {"target_value_drop": 0.5, "others_drop": {}, "others_drop_mean": None}
    rand = {**top, "kind": "random", "latents": [9], "target_drop": 0.0}
    return {
        "sparsity": sparsity,
        "fidelity_recovered": 0.8,
        "per_layer": {"2": {"fvu": 0.25, "cosine": 0.9, "fidelity": 0.8}},
        "reconstruction": {"fvu": 0.125, "cosine": 0.97},
        "probe": {"vowel": {"clean_acc": 1.0, "spliced_acc": 0.875, "drop": 0.125}},
        "ablation": [top, rand],
    }


def _results() -> list[dict[str, Any]]:
    """Layer 1: dense, a healthy 90 % SAE and a collapsed 99 % SAE (FVU 159)."""
    base = {"layer": 1, "probe_vowel_acc": 0.8}
    sae = {**base, "kind": "sae", "architecture": "topk", "d_sae": 64, "dead_fraction": 0.1}
    return [
        {**base, "name": "dense", "kind": "dense", "d_sae": 8},
        {**sae, "name": "topk_s90", "sparsity": 0.9, "fvu": 0.2, "l0": 6.0},
        {**sae, "name": "topk_s99", "sparsity": 0.99, "fvu": 159.05, "l0": 1.0},
    ]


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    write_results(run, _results(), {"backbone": {"model": "m"}})
    saes = {"L01_topk_s90": _sae(0.9), "L01_topk_s99": _sae(0.99)}
    payload = {"split": "test", "n_clips": 4, "audio_seconds": 4.0, "k_ablate": 1}
    payload["layers"] = [{"layer": 1, "num_layers": 2, "saes": saes}]
    (run / "splice").mkdir()
    (run / "splice" / "splice.json").write_text(json.dumps(payload))
    return run


def test_collapsed_sae_rows_get_the_marker_in_both_splice_tables(tmp_path: Path) -> None:
    payload = json.loads((_run(tmp_path) / "splice" / "splice.json").read_text())
    collapsed = collapsed_saes(_results())
    assert collapsed[(1, "topk_s99")] == collapsed[(1, "L01_topk_s99")] == ["FVU 159.05 >= 0.9"]
    fidelity, ablation = splice_tables(payload, collapsed=collapsed)
    assert [r[0] for r in fidelity.cells] == ["L01_topk_s90", "L01_topk_s99 ⚠"]
    assert [r[0] for r in ablation.cells] == ["L01_topk_s90", "L01_topk_s99 ⚠"]
    assert [r[0] for r in splice_tables(payload)[0].cells] == ["L01_topk_s90", "L01_topk_s99"]


def test_report_causal_section_flags_the_collapsed_sae(tmp_path: Path) -> None:
    text = write_report([_run(tmp_path)], tmp_path / "report", figures=False).read_text()
    causal = text.split("## Causal evaluation", 1)[1].split("\n## ", 1)[0]
    assert "- ⚠ collapsed SAEs, marked ⚠ in the tables" in causal
    assert "L01_topk_s99 (FVU 159.05 >= 0.9)" in causal
    assert causal.count("| L01_topk_s99 ⚠ | L1 |") == 2  # fidelity and ablation rows
    assert causal.count("| L01_topk_s90 | L1 |") == 2  # the healthy SAE is not flagged
