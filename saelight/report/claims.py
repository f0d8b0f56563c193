"""The paper's conclusions (Mariotte et al. 2025, arXiv:2509.24793) checked on a run's result rows.

Each claim is stated as the paper states it and calibrated so that the paper's own tables
(`paper_results.json`, read by `saelight.report.paper`) satisfy it; `tests/report` checks both
that and that each claim fails on a table where it should not hold. Every `Claim` carries its
`rule` (thresholds, which rows, which baseline), printed next to the verdict.

1. SAE codes keep task information (one claim per probed label): the median over SAEs with
   sparsity <= 95 % of SAE − dense probe accuracy (same layer) is >= −5 points, and no such SAE
   is more than 10 points below. The paper: median −1.25, worst −7.7 (MERT L7 is 5–8 points below
   at every sparsity, yet the paper concludes the codes keep the information).
2. Reconstruction degrades sharply at the highest sparsity: in every layer the error of the
   sparsest SAE is >= 1.5x that of the next sparsity down. The paper: 1.58–2.54x from 95 to 99 %
   (against the lowest sparsity WavLM's unusually bad 75 % SAEs give 1.09x and 0.75x).
3. SAE codes are more disentangled: fewer code dimensions carry each factor. Measured by the
   effective number of dimensions exp(H_j), which, unlike the paper's completeness 1 − H_j / log K,
   does not depend on the code width K (2048 vs 768); in every layer the median over SAEs of
   D_SAE / D_dense is < 1. The paper's own comparison (completeness with its K, every SAE above
   dense) is checked beside it as claim "3-paper".
4. Pitch factors lead the top-10 factors in early layers, formants/MFCC in late layers.

Intervals (`saelight.report.intervals`): a claim on SAE − dense differences holds only when its
95 % paired bootstrap interval over test clips satisfies the rule too; rows without per-clip data
(the paper's tables, older runs) are judged on point estimates, and the explanation says so.
Collapsed SAEs (`saelight.report.collapse`) that a claim uses are listed next to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from saelight.evaluation.results import Row, is_baseline, probed_labels
from saelight.report.claims_baseline import baseline_claims
from saelight.report.claims_disentangle import (
    completeness_claim,
    effective_dims_claim,
    top_factor_claim,
)
from saelight.report.claims_probe import probe_accuracy_claim, reconstruction_claim
from saelight.report.verdict import Claim

__all__ = [
    "CLAIM_TITLES",
    "THRESHOLDS",
    "Claim",
    "check_claims",
    "claim_line",
    "claim_title",
    "completeness_claim",
    "effective_dims_claim",
    "probe_accuracy_claim",
    "reconstruction_claim",
    "top_factor_claim",
]


THRESHOLDS: dict[str, tuple[str, ...]] = {
    "1": ("tolerance", "max_drop", "max_sparsity"),
    "2": ("metric", "ratio"),
    "3": ("max_ratio",),
    "3-paper": ("margin",),
    "intervals": ("level", "n_resamples", "seed"),
}
"""Threshold names `check_claims` accepts, by claim."""


def check_claims(
    rows: list[Row], labels: Sequence[str] | str | None = None, **thresholds: Any
) -> dict[str, Claim]:
    """All claims on `rows`: {"1:<label>": ..., "2": ..., "3": ..., "3-paper": ..., "4": ...},
    each followed by its "+baseline" verdict when the rows hold random baselines (baseline rows
    are left out of the paper's claims; see `saelight.report.claims_baseline`).

    Args:
        rows: result rows (see `saelight.evaluation.results`).
        labels: labels of claim 1 (default: every probed label; "technique" when none is).
        **thresholds: `tolerance`, `max_drop`, `max_sparsity` (claim 1), `metric`, `ratio`
            (claim 2), `max_ratio` (claim 3), `margin` (claim 3-paper), `level`, `n_resamples`,
            `seed` (intervals); absent or None ones keep the defaults of the check functions.
    """
    allowed = sorted({n for names in THRESHOLDS.values() for n in names})
    unknown = sorted(set(thresholds) - set(allowed))
    if unknown:
        raise ValueError(f"unknown claim thresholds {unknown}; allowed: {', '.join(allowed)}")

    def pick(*names: str) -> dict[str, Any]:
        return {n: thresholds[n] for n in names if thresholds.get(n) is not None}

    if isinstance(labels, str):
        labels = [labels]
    labels = list(labels) if labels else probed_labels(rows) or ["technique"]
    boot = pick(*THRESHOLDS["intervals"])
    baselines = baseline_claims(rows, labels, **boot)
    rows = [r for r in rows if not is_baseline(r)]  # the paper's claims are on SAEs only
    out = {
        f"1:{label}": probe_accuracy_claim(rows, label, **pick(*THRESHOLDS["1"]), **boot)
        for label in labels
    }
    out["2"] = reconstruction_claim(rows, **pick(*THRESHOLDS["2"]))
    out["3"] = effective_dims_claim(rows, **pick(*THRESHOLDS["3"]), **pick("level"))
    out["3-paper"] = completeness_claim(rows, **pick(*THRESHOLDS["3-paper"]))
    out["4"] = top_factor_claim(rows)
    return with_baselines(out, baselines)


def with_baselines(claims: dict[str, Claim], baselines: dict[str, Claim]) -> dict[str, Claim]:
    """`claims` in order, each followed by its "+baseline" verdict ("1:a" by "1+baseline:a")."""
    out: dict[str, Claim] = {}
    for name, claim in claims.items():
        out[name] = claim
        base, sep, label = name.partition(":")
        twin = f"{base}+baseline{sep}{label}"
        if twin in baselines:
            out[twin] = baselines[twin]
    return out


CLAIM_TITLES = {
    "1": "Claim 1 ({label}) — SAE codes keep task information",
    "2": "Claim 2 — reconstruction degrades sharply at the highest sparsity",
    "3": "Claim 3 — fewer dimensions carry each factor in SAE codes (K-independent)",
    "3-paper": "Claim 3 as the paper computes it — SAE completeness above dense (paper's K)",
    "4": "Claim 4 — pitch factors lead early layers, formants/MFCC late layers",
    "1+baseline": "Claim 1 ({label}) vs random baselines — the SAE's codes beat them on probes",
    "2+baseline": "Claim 2 vs random baselines — the SAE reconstructs better than they do",
    "3+baseline": "Claim 3 vs random baselines — fewer dimensions per factor than theirs",
}


def claim_title(name: str) -> str:
    """Title of a `check_claims` key, e.g. '1:vowel' -> 'Claim 1 (vowel) — …'."""
    base, _, label = name.partition(":")
    return CLAIM_TITLES[base].format(label=label)


MARKS = {True: "✅ holds", False: "❌ does not hold", None: "➖ not computable"}
NOT_ESTABLISHED = "❔ not established"


def claim_line(name: str, claim: Claim) -> str:
    """Markdown bullet with the verdict, then indented bullets with its rule and collapsed SAEs.

    '❔ not established' marks a claim whose point estimates satisfy the rule but whose interval
    does not.
    """
    mark = NOT_ESTABLISHED if claim.holds is False and claim.point else MARKS[claim.holds]
    lines = [f"- **{claim_title(name)}**: {mark} — {claim.explanation}"]
    if claim.rule:
        lines.append(f"  - rule: {claim.rule}")
    if claim.collapsed:
        lines.append(f"  - ⚠ uses collapsed SAEs: {'; '.join(claim.collapsed)}")
    return "\n".join(lines)
