"""Each claim's second verdict: does the trained SAE beat its random baselines (`model.baselines`)?

A claim that a random SAE at the same width and k passes as well says little about training
(arXiv 2602.14111: frozen-random SAEs score within a few points of trained ones). Each baseline
row names its kind (`baseline`) and is paired with the SAE of the same layer it was built beside
(its name minus `_<kind>`); every kind must be beaten:

- 1+baseline:<label>: the median over pairs of SAE − baseline probe accuracy > 0, and the lower
  end of its paired bootstrap interval over test clips too (point estimates where rows lack
  per-clip predictions).
- 2+baseline: the median over pairs of FVU_SAE / FVU_baseline < 1.
- 3+baseline: the median over pairs of D_SAE / D_baseline < 1 (D = exp(H), effective code
  dimensions per factor: the SAE's codes are more disentangled than a random code's).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from saelight.evaluation.results import (
    EFFECTIVE_DIMS,
    Row,
    group_rows,
    is_baseline,
    probe_acc_key,
    where,
)
from saelight.io.defaults import DATA_SEED
from saelight.metrics.uncertainty import LEVEL, N_RESAMPLES
from saelight.report.intervals import (
    Resamples,
    accuracy_samples,
    fmt_interval,
    median_interval,
)
from saelight.report.verdict import Claim, pct, points

Pair = tuple[str, Row, Row, str]
"""(baseline kind, SAE row, baseline row, where)."""


def baseline_pairs(rows: list[Row]) -> list[Pair]:
    """Every (kind, SAE row, its baseline row) of the same model and layer."""
    pairs = []
    for group, (_, members) in group_rows(rows).items():
        by_name = {str(r["name"]): r for r in members if not is_baseline(r)}
        for row in members:
            kind = row.get("baseline")
            if not is_baseline(row) or not kind:
                continue
            sae = by_name.get(str(row["name"]).removesuffix(f"_{kind}"))
            if sae is not None:
                pairs.append((str(kind), sae, row, where(group, sae)))
    return pairs


def _per_kind(
    pairs: list[Pair], value: Callable[[Row, Row], float | None]
) -> dict[str, list[tuple[float, Pair]]]:
    out: dict[str, list[tuple[float, Pair]]] = {}
    for pair in pairs:
        v = value(pair[1], pair[2])
        if v is not None:
            out.setdefault(pair[0], []).append((v, pair))
    return out


def _ratio(key: str) -> Callable[[Row, Row], float | None]:
    def ratio(sae: Row, base: Row) -> float | None:
        a, b = sae.get(key), base.get(key)
        if a is None or b is None or not float(b) > 0:
            return None
        return float(a) / float(b)

    return ratio


def probe_baseline_claim(
    rows: list[Row],
    label: str,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = DATA_SEED,
) -> Claim:
    """Claim 1's second verdict on `label`: SAE − baseline probe accuracy above 0 for each kind."""
    key = probe_acc_key(label)
    rule = (
        "for every baseline kind: median over SAE/baseline pairs of (SAE − baseline accuracy) "
        f"> 0 points, the lower end of its {pct(level)} paired bootstrap interval over test "
        "clips too"
    )

    def diff(sae: Row, base: Row) -> float | None:
        if sae.get(key) is None or base.get(key) is None:
            return None
        return float(sae[key]) - float(base[key])

    kinds = _per_kind(baseline_pairs(rows), diff)
    if not kinds:
        return Claim(None, f"no SAE/baseline pair has `{key}`", rule)
    resamples = Resamples(n_resamples, seed, level)
    holds, point, parts = True, True, []
    for kind, found in sorted(kinds.items()):
        median = statistics.median(v for v, _ in found)
        samples = [accuracy_samples(p[1], p[2], label, resamples) for _, p in found]
        interval = None
        if all(s is not None for s in samples):
            interval = median_interval(median, [s[1] for s in samples if s is not None], resamples)
        point = point and median > 0
        holds = holds and median > 0 and (interval is None or interval.low > 0)
        text = f"vs {kind}: median {points(median)} points"
        text += f" {fmt_interval(interval)}" if interval else " (point estimate)"
        parts.append(text + f" over {len(found)} SAEs")
    return Claim(holds, "; ".join(parts), rule, point=point)


def ratio_baseline_claim(rows: list[Row], key: str, what: str) -> Claim:
    """Claims 2 and 3's second verdict: the median over pairs of `key`_SAE / `key`_baseline < 1
    for every kind (`what` names the quantity in the rule)."""
    rule = f"for every baseline kind: median over SAE/baseline pairs of {what} ratio < 1"
    kinds = _per_kind(baseline_pairs(rows), _ratio(key))
    if not kinds:
        return Claim(None, f"no SAE/baseline pair has `{key}`", rule)
    holds, parts = True, []
    for kind, found in sorted(kinds.items()):
        median = statistics.median(v for v, _ in found)
        worst = max(found, key=lambda f: f[0])
        holds = holds and median < 1
        parts.append(
            f"vs {kind}: median {median:.3g} over {len(found)} SAEs, worst {worst[0]:.3g} "
            f"({worst[1][3]})"
        )
    return Claim(holds, "; ".join(parts), rule)


def baseline_claims(rows: list[Row], labels: list[str], **boot: Any) -> dict[str, Claim]:
    """{"1+baseline:<label>", "2+baseline", "3+baseline"}: empty when no row is a baseline."""
    if not any(is_baseline(r) for r in rows):
        return {}
    out = {f"1+baseline:{label}": probe_baseline_claim(rows, label, **boot) for label in labels}
    out["2+baseline"] = ratio_baseline_claim(rows, "fvu", "FVU")
    out["3+baseline"] = ratio_baseline_claim(rows, EFFECTIVE_DIMS, "effective-dimensions")
    return out
