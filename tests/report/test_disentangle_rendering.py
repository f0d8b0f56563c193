"""Disentanglement numbers a reader could misread: a NaN completeness is "not computable" (not
"above dense"), and a negative DCI informativeness is shown clipped at 0 beside its raw value."""

import math
from typing import Any

import numpy as np

from saelight.metrics.disentanglement import lasso_completeness
from saelight.report.claims import claim_line
from saelight.report.claims_disentangle import completeness_claim
from saelight.report.tables import INFORMATIVENESS_NOTE, standard_table

NAN = float("nan")


def _rows(sae_completeness: list[float], dense: float = 0.5) -> list[dict[str, Any]]:
    """Layer 3: a dense row and one SAE per completeness value."""
    rows = [{"layer": 3, "name": "dense", "kind": "dense", "completeness_mean": dense}]
    rows += [
        {"layer": 3, "name": f"topk_s{90 + i}", "kind": "sae", "architecture": "topk",
         "sparsity": 0.9 + i / 100, "completeness_mean": c, "fvu": 0.2, "l0": 8.0}
        for i, c in enumerate(sae_completeness)
    ]  # fmt: skip
    return rows


def test_all_nan_completeness_renders_not_computable() -> None:
    claim = completeness_claim(_rows([NAN, NAN, NAN]))
    assert claim.holds is None and claim.point is None
    line = claim_line("3-paper", claim)
    assert "➖ not computable" in line and "3/3 SAEs not computable" in line
    assert "✅" not in line and "+nan" not in line
    assert "above dense" not in claim.explanation  # once "3/3 SAEs above dense, smallest +nan"


def test_a_nan_completeness_does_not_count_as_above_dense() -> None:
    claim = completeness_claim(_rows([0.6, NAN, 0.7]))
    assert claim.holds is None  # two above, one unknown: "every SAE" is not established
    assert claim.explanation.startswith("2/3 SAEs above dense")
    assert "smallest difference +0.100" in claim.explanation
    assert "1/3 SAEs not computable" in claim.explanation and "L3 topk_s91" in claim.explanation
    assert completeness_claim(_rows([0.6, NAN, 0.4])).holds is False  # one below: fails anyway
    assert completeness_claim(_rows([0.6, 0.7])).holds is True
    assert completeness_claim(_rows([0.6, 0.7], dense=NAN)).holds is None  # dense NaN too


def test_lasso_mean_is_nan_when_a_top_factor_has_no_coefficient() -> None:
    """What a NaN row means: one of the top factors' Lasso kept no code."""
    rng = np.random.default_rng(0)
    codes = rng.normal(size=(200, 6))
    factors = {"read": codes[:, 0] * 2 + 0.1 * rng.normal(size=200), "noise": rng.normal(size=200)}
    out = lasso_completeness(codes, factors, top=2, held_out=False, alpha=0.5)
    noise = out.factor_names.index("noise")
    assert not out.importance[:, noise].any() and math.isnan(out.completeness[noise])
    assert math.isnan(out.summary["completeness_mean"]) and math.isfinite(out.summary["r2_mean"])
    assert math.isnan(out.summary["effective_dims"])
    single = lasso_completeness(codes, factors, top=1, held_out=False, alpha=0.5)
    assert not math.isnan(single.summary["completeness_mean"])


def test_negative_informativeness_is_clipped_beside_raw_with_a_note() -> None:
    rows = [
        {"layer": 5, "name": "dense", "kind": "dense", "dci_informativeness": 0.42},
        {"layer": 5, "name": "topk_s99", "kind": "sae", "sparsity": 0.99,
         "dci_informativeness": -33.97, "dci_completeness": 0.3},
    ]  # fmt: skip
    table = standard_table(rows)
    assert table is not None
    assert table.columns == ["layer", "representation", "dci_completeness", "dci_informativeness"]
    assert table.cells == [
        ["L5", "dense", "–", "0.420"],
        ["L5", "topk_s99", "0.300", "0.000 (raw -33.970)"],
    ]
    text = table.markdown()
    assert text.endswith("\n\n" + INFORMATIVENESS_NOTE)
    assert "negative when a Lasso predicts" in text and "docs/metrics_disentanglement.md" in text
    no_dci = standard_table([{**r, "dci_informativeness": None} for r in rows])
    assert no_dci is not None and no_dci.note == ""
