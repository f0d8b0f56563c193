"""Baselines and seeds of one fit in the report (issue 26), on hand-built result rows: each claim's
second verdict against the random baselines, baseline rows kept out of the paper's claims but
shown as table columns, and the seeds of one fit merged into mean ± std with their stability."""

from pathlib import Path
from typing import Any

import numpy as np
import torch

from saelight.evaluation.results import write_results
from saelight.evaluation.seeds import replicate_groups, tag_seeds
from saelight.report.build import write_report
from saelight.report.claims import check_claims
from saelight.report.runs import load_rows
from saelight.sae import TopKSAE

N = 100
CORRECT = "probe_technique_clip_correct"


def row(name: str, right: int, kind: str = "sae", **extra: Any) -> dict[str, Any]:
    """A layer-3 row whose probe is right on the first `right` of N clips."""
    correct = [1] * right + [0] * (N - right)
    base = {"layer": 3, "name": name, "kind": kind, CORRECT: correct}
    if kind != "dense":
        base |= {"architecture": "topk", "d_sae": 64, "sparsity": 0.9, "l0": 6.0}
    return base | {"probe_technique_acc": right / N, **extra}


def rows(baseline_right: int, baseline_fvu: float, baseline_dims: float) -> list[dict[str, Any]]:
    return [
        row("dense", 80, "dense", d_sae=8, effective_dims=4.0),
        row("topk_s90", 78, fvu=0.2, effective_dims=3.0, dead_fraction=0.0),
        row("topk_s90_random", baseline_right, "baseline", baseline="random",
            fvu=baseline_fvu, effective_dims=baseline_dims, dead_fraction=0.0),
    ]  # fmt: skip


def test_each_claim_gets_a_verdict_against_the_baselines() -> None:
    good = check_claims(rows(baseline_right=40, baseline_fvu=0.7, baseline_dims=6.0))
    assert list(good)[:2] == ["1:technique", "1+baseline:technique"]  # each verdict by its claim
    for name in ("1+baseline:technique", "2+baseline", "3+baseline"):
        assert good[name].holds is True, (name, good[name])
    assert "vs random: median +38.00 points [" in good["1+baseline:technique"].explanation
    assert "vs random: median 0.286 over 1 SAEs" in good["2+baseline"].explanation
    bad = check_claims(rows(baseline_right=79, baseline_fvu=0.1, baseline_dims=2.0))
    assert bad["1+baseline:technique"].holds is False  # +-1 point: the random SAE is as good
    assert bad["2+baseline"].holds is False and bad["3+baseline"].holds is False
    # The paper's claim 1 sees the SAE only: a baseline 40 points below dense does not fail it.
    assert good["1:technique"].holds is True and "over 1 SAEs" in good["1:technique"].explanation


def test_no_baselines_no_second_verdict() -> None:
    claims = check_claims(rows(40, 0.7, 6.0)[:2])
    assert not any("+baseline" in n for n in claims)


def test_the_report_shows_baseline_columns_and_verdicts(tmp_path: Path) -> None:
    write_results(tmp_path / "run", rows(40, 0.7, 6.0), {"backbone": {"model": "m"}})
    text = write_report([tmp_path / "run"], tmp_path / "report", figures=False).read_text()
    assert "Claim 1 (technique) vs random baselines" in text
    assert "Claim 2 vs random baselines" in text and "Claim 3 vs random baselines" in text
    assert "| layer | dense | topk_s90 | topk_s90_random |" in text


def test_seeds_of_one_fit_merge_into_mean_std_and_stability(tmp_path: Path) -> None:
    torch.manual_seed(0)
    a, b = TopKSAE(8, 16, k=2), TopKSAE(8, 16, k=2)
    same = TopKSAE(8, 16, k=2)
    same.load_state_dict(a.state_dict())
    layer = [row("dense", 80, "dense", d_sae=8), row("topk_s90", 70), row("topk_s90_seed1", 74)]
    replicate_of = {"topk_s90": None, "topk_s90_seed1": "topk_s90"}
    assert replicate_groups(replicate_of) == {"topk_s90": ["topk_s90", "topk_s90_seed1"]}
    tag_seeds(layer, replicate_of, {"topk_s90": a, "topk_s90_seed1": same})
    assert layer[1]["stability"] == layer[2]["stability"] == 1.0  # identical dictionaries
    assert layer[2]["replicate_of"] == "topk_s90" and layer[2]["seed"] == 1
    tag_seeds(layer, replicate_of, {"topk_s90": a, "topk_s90_seed1": b})
    assert layer[1]["stability"] < 0.8  # two random inits
    write_results(tmp_path / "run", layer, {"backbone": {"model": "m"}, "seed": 42})
    merged, _, notes = load_rows([tmp_path / "run"])
    (sae,) = [r for r in merged if r["kind"] == "sae"]
    assert sae["name"] == "topk_s90" and sae["n_seeds"] == 2 and not notes
    assert np.isclose(sae["probe_technique_acc"], 0.72)
    assert np.isclose(sae["probe_technique_acc_seed_std"], np.std([0.70, 0.74], ddof=1))
    text = write_report([tmp_path / "run"], tmp_path / "report", figures=False).read_text()
    assert "± = std across 2 seeds" in text and "72.00 ± 2.83" in text
    stability = f"| L3 | {layer[1]['stability']:.3f} |"
    assert "### Seed stability: mean pairwise MCC" in text and stability in text
