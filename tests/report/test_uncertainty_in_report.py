"""The report's intervals, seed merging and collapse flags on hand-built result rows."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from saelight.evaluation.results import write_results
from saelight.metrics.uncertainty import paired_difference
from saelight.report.build import write_report
from saelight.report.claims import check_claims, claim_line
from saelight.report.collapse import collapse_reasons
from saelight.report.intervals import Resamples, accuracy_interval
from saelight.report.runs import load_rows

N = 200


def layer_rows(flips: tuple[int, int], seed_offset: int = 0, **sae: Any) -> list[dict[str, Any]]:
    """Dense right on 150 of 200 clips; the SAE gains `flips[0]` clips and loses `flips[1]`."""
    dense = np.zeros(N, dtype=int)
    dense[:150] = 1
    code = dense.copy()
    code[150 : 150 + flips[0]] = 1
    code[: flips[1]] = 0
    code[150 + flips[0] : 150 + flips[0] + seed_offset] = 1  # a seed gains `seed_offset` clips
    base = {"layer": 3, "probe_technique_acc": 0.0}
    key = "probe_technique_clip_correct"
    rows = [
        {**base, "name": "dense", "kind": "dense", "d_sae": 8, key: dense},
        {**base, "name": "topk_s90", "kind": "sae", "architecture": "topk", "d_sae": 64,
         "sparsity": 0.9, key: code, "fvu": 0.2, "dead_fraction": 0.1,
         "l0": 6.0, **sae},
    ]  # fmt: skip
    for row in rows:
        row["probe_technique_acc"] = float(np.mean(row["probe_technique_clip_correct"]))
        row["probe_technique_clip_correct"] = row["probe_technique_clip_correct"].tolist()
    return rows


def test_report_interval_is_the_paired_bootstrap_of_the_clips() -> None:
    dense, sae = layer_rows((2, 6))
    got = accuracy_interval(sae, dense, "technique", Resamples(n_resamples=500, seed=3))
    ref = paired_difference(
        sae["probe_technique_clip_correct"],
        dense["probe_technique_clip_correct"],
        n_resamples=500,
        seed=3,
    )
    assert got == pytest.approx(ref) and got.estimate == pytest.approx(-4 / N)


def test_a_claim_holds_only_when_its_interval_says_so() -> None:
    tight = check_claims(layer_rows((2, 6)))["1:technique"]  # -2 points, few clips differ
    assert tight.holds is True and "[-" in tight.explanation
    # -3 points as well, but 66 clips change: the interval reaches below -5 points.
    wide = check_claims(layer_rows((30, 36)))["1:technique"]
    assert wide.point is True and wide.holds is False
    assert "❔ not established" in claim_line("1:technique", wide)


def test_seeds_merge_into_mean_and_std(tmp_path: Path) -> None:
    runs = []
    for seed in (1, 2, 3):
        runs.append(tmp_path / f"seed{seed}")
        rows = layer_rows((2, 6), seed_offset=seed)
        write_results(runs[-1], rows, {"backbone": {"model": "m"}, "seed": seed})
    rows, _, notes = load_rows(runs)
    sae = next(r for r in rows if r["name"] == "topk_s90")
    # Seed s gets 146 + s of 200 clips right: mean 148 / 200, sample std 1 / 200.
    assert sae["n_seeds"] == 3 and sae["probe_technique_acc"] == pytest.approx(0.74)
    assert sae["probe_technique_acc_seed_std"] == pytest.approx(0.005)
    assert sae["probe_technique_clip_correct"][152:155] == pytest.approx([1, 2 / 3, 1 / 3])
    assert not notes
    text = write_report(runs, tmp_path / "report", figures=False).read_text()
    assert "technique: test accuracy (%); ± = std across 3 seeds" in text
    assert "| L3 | 75.00 ± 0.00 | 74.00 ± 0.50 |" in text
    assert "| L3 | -1.00 [-" in text  # the interval of the seed-mean difference
    # The same seed twice is a duplicate, not a replicate.
    _, _, notes = load_rows([runs[0], runs[0]])
    assert any("kept" in n for n in notes)


def test_collapse_rule_and_flags_next_to_the_claims() -> None:
    assert collapse_reasons({"kind": "sae", "dead_fraction": 0.95}) == ["dead 95 % >= 90 %"]
    assert collapse_reasons({"kind": "sae", "fvu": 1.2, "l0": 0.5}) == [
        "FVU 1.20 >= 0.9",
        "L0 0.50 < 1",
    ]
    assert collapse_reasons({"kind": "dense", "fvu": 1.2}) == []
    assert collapse_reasons({"kind": "sae", "dead_fraction": 0.5, "fvu": 0.1, "l0": 8}) == []
    claim = check_claims(layer_rows((2, 6), dead_fraction=0.97))["1:technique"]
    assert claim.collapsed == ("L3 topk_s90 (dead 97 % >= 90 %)",)
    assert "⚠ uses collapsed SAEs: L3 topk_s90" in claim_line("1:technique", claim)
    assert not check_claims(layer_rows((2, 6)))["1:technique"].collapsed
