"""The three claims of Mariotte et al. 2025 (arXiv:2509.24793), checked on a run's result rows.

1. SAE codes keep task information: probe accuracy on the codes stays within a few points of the
   dense activations up to 95 % sparsity.
2. Reconstruction degrades sharply at the highest sparsity (99 % in the paper).
3. SAE codes are more disentangled than the dense activations: higher completeness (the paper's
   number, and the K-fair variant that removes the 2048-vs-768 log K effect).

Every check takes the rows of `saelight.evaluation.results` (one per SAE and one "dense" row per
layer; an optional `model` key tells backbones apart when runs are merged) and returns a `Claim`:
`holds` is True, False, or None when the rows lack what the check needs, and `explanation` quotes
the numbers it compared. Rows are grouped by (model, layer); an SAE is only compared with the
dense row of its own layer.
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

from saelight.evaluation.results import (
    Row,
    completeness_key,
    group_rows,
    probe_acc_key,
    where,
)


class Claim(NamedTuple):
    """The verdict of one claim on one set of rows."""

    holds: bool | None
    """True / False, or None when the rows lack the numbers the check needs."""
    explanation: str
    """One sentence with the numbers behind the verdict."""


def _pct(value: float) -> str:
    return f"{100 * value:.2f} %"


def probe_accuracy_claim(
    rows: list[Row], label: str = "technique", tolerance: float = 0.05, max_sparsity: float = 0.95
) -> Claim:
    """Claim 1: every SAE with sparsity <= `max_sparsity` probes `label` at least as well as the
    dense activations of its layer, minus `tolerance`.

    Args:
        rows: result rows (dense + SAE).
        label: the probed label (`probe_<label>_acc`); the paper probes the singing technique.
        tolerance: allowed accuracy drop, in [0, 1] accuracy units (0.05 = 5 points).
        max_sparsity: sparser SAEs are left out of the claim (the paper's 99 % drops more).
    """
    key = probe_acc_key(label)
    gaps: list[tuple[float, str, float, float]] = []
    for group, (dense, saes) in group_rows(rows).items():
        if dense is None or dense.get(key) is None:
            continue
        for row in saes:
            s = row.get("sparsity")
            if row.get(key) is None or s is None or float(s) > max_sparsity + 1e-9:
                continue
            gaps.append((row[key] - dense[key], where(group, row), row[key], dense[key]))
    if not gaps:
        return Claim(
            None,
            f"no SAE with sparsity <= {_pct(max_sparsity)} and a dense row has "
            f"`{key}`: claim 1 cannot be checked",
        )
    worst = min(gaps)
    failing = [g for g in gaps if g[0] < -tolerance - 1e-12]
    holds = not failing
    text = (
        f"{len(gaps)} SAEs with sparsity <= {_pct(max_sparsity)}, "
        f"worst SAE − dense {100 * worst[0]:+.2f} points ({worst[1]}: {_pct(worst[2])} vs "
        f"dense {_pct(worst[3])}); allowed drop {100 * tolerance:.2f} points"
    )
    if failing:
        text += "; too low: " + ", ".join(f"{g[1]} ({100 * g[0]:+.2f})" for g in sorted(failing))
    return Claim(holds, text)


def reconstruction_claim(
    rows: list[Row], metric: Literal["fvu", "mse"] = "fvu", ratio: float = 1.5
) -> Claim:
    """Claim 2: in every layer, `metric` at the highest sparsity is >= `ratio` x its value at the
    lowest sparsity (FVU and MSE give the same ratio on one layer's test set).

    Args:
        rows: result rows (dense + SAE).
        metric: "fvu" or "mse"; falls back to the other one when it is missing.
        ratio: how much worse the sparsest SAE must reconstruct to call the drop sharp.
    """
    if metric not in ("fvu", "mse"):
        raise ValueError(f"metric must be 'fvu' or 'mse', got {metric!r}")
    found: list[tuple[float, str, Row, Row, str]] = []
    for group, (_, saes) in group_rows(rows).items():
        use = (
            metric
            if all(r.get(metric) is not None for r in saes)
            else ("mse", "fvu")[metric == "mse"]
        )
        saes = [r for r in saes if r.get("sparsity") is not None and r.get(use) is not None]
        if len(saes) < 2 or float(saes[-1]["sparsity"]) <= float(saes[0]["sparsity"]):
            continue
        low, high = saes[0], saes[-1]
        value = high[use] / low[use] if low[use] > 0 else float("inf")
        found.append((value, where(group), low, high, use))
    if not found:
        return Claim(
            None, "no layer has SAEs at two sparsities with fvu/mse: claim 2 cannot be checked"
        )
    holds = all(f[0] >= ratio for f in found)
    parts = [
        f"{name}: {use.upper()} {_fmt(high[use])} at {_pct(high['sparsity'])} vs {_fmt(low[use])} "
        f"at {_pct(low['sparsity'])} = {value:.2f}x"
        for value, name, low, high, use in found
    ]
    return Claim(holds, f"needs >= {ratio:g}x in every layer; " + "; ".join(parts))


def completeness_claim(rows: list[Row], kfair: bool = False, margin: float = 0.0) -> Claim:
    """Claim 3: every SAE's mean completeness (top-10 factors by R²) exceeds the dense layer's by
    more than `margin`.

    Args:
        rows: result rows (dense + SAE).
        kfair: compare `completeness_kfair_mean` (same log K for codes and dense) instead of the
            paper's `completeness_mean` (log 2048 vs log 768).
        margin: required excess over dense completeness.
    """
    key = completeness_key("kfair" if kfair else "paper")
    worst: list[tuple[float, str, float, float]] = []
    for group, (dense, saes) in group_rows(rows).items():
        if dense is None or dense.get(key) is None:
            continue
        for row in saes:
            if row.get(key) is not None:
                worst.append((row[key] - dense[key], where(group, row), row[key], dense[key]))
    variant = "K-fair" if kfair else "paper's K"
    if not worst:
        return Claim(
            None, f"no `{key}` for both SAE and dense rows: claim 3 ({variant}) cannot be checked"
        )
    low = min(worst)
    failing = [w for w in worst if w[0] <= margin]
    holds = not failing
    text = (
        f"{variant}: {len(worst) - len(failing)}/{len(worst)} SAEs above dense by more than "
        f"{margin:g}; smallest difference {low[0]:+.3f} ({low[1]}: {low[2]:.3f} vs dense "
        f"{low[3]:.3f})"
    )
    return Claim(holds, text)


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def check_claims(rows: list[Row], label: str = "technique", **thresholds: Any) -> dict[str, Claim]:
    """All claims on `rows`: {"1": ..., "2": ..., "3": ..., "3-kfair": ...}.

    Args:
        rows: result rows.
        label: label of claim 1.
        **thresholds: `tolerance`, `max_sparsity` (claim 1), `ratio`, `metric` (claim 2), `margin`
            (claim 3); absent ones keep the defaults of the check functions.
    """
    unknown = sorted(set(thresholds) - {"tolerance", "max_sparsity", "metric", "ratio", "margin"})
    if unknown:
        raise ValueError(
            f"unknown claim thresholds {unknown}; allowed: tolerance, max_sparsity, "
            "metric, ratio, margin"
        )

    def pick(*names: str) -> dict[str, Any]:
        return {n: thresholds[n] for n in names if thresholds.get(n) is not None}

    return {
        "1": probe_accuracy_claim(rows, label, **pick("tolerance", "max_sparsity")),
        "2": reconstruction_claim(rows, **pick("metric", "ratio")),
        "3": completeness_claim(rows, kfair=False, **pick("margin")),
        "3-kfair": completeness_claim(rows, kfair=True, **pick("margin")),
    }


CLAIM_TITLES = {
    "1": "Claim 1 — SAE codes keep task information",
    "2": "Claim 2 — reconstruction degrades sharply at the highest sparsity",
    "3": "Claim 3 — SAE codes are more complete than dense (paper's K)",
    "3-kfair": "Claim 3 — SAE codes are more complete than dense (K-fair)",
}


def claim_line(name: str, claim: Claim) -> str:
    """A Markdown bullet: '- **Claim 1 — ...**: yes/no/n.a. — explanation'."""
    mark = {True: "✅ holds", False: "❌ does not hold", None: "➖ not computable"}[claim.holds]
    return f"- **{CLAIM_TITLES[name]}**: {mark} — {claim.explanation}"
