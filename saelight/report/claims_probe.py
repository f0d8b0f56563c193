"""Claims 1 and 2 of `saelight.report.claims`: probe accuracy and reconstruction vs sparsity."""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Literal

from saelight.evaluation.results import Row, group_rows, probe_acc_key, where
from saelight.io.defaults import DATA_SEED
from saelight.metrics.uncertainty import LEVEL, N_RESAMPLES
from saelight.report.collapse import collapse_notes
from saelight.report.intervals import Resamples, accuracy_samples, fmt_interval, median_interval
from saelight.report.verdict import Claim, pct, points


def probe_accuracy_claim(
    rows: list[Row],
    label: str = "technique",
    tolerance: float = 0.05,
    max_drop: float = 0.10,
    max_sparsity: float = 0.95,
    level: float = LEVEL,
    n_resamples: int = N_RESAMPLES,
    seed: int = DATA_SEED,
) -> Claim:
    """Claim 1: SAE codes keep the information a probe finds in the dense activations.

    Compared: each SAE with sparsity <= `max_sparsity` against the dense row of its own (model,
    layer). Holds when the median over those SAEs of SAE − dense accuracy is >= −`tolerance`
    and every one is >= −`max_drop`; with per-clip predictions on every compared row, the lower
    end of the median's paired bootstrap interval must also be >= −`tolerance`. A median, not
    every SAE, because the paper concludes the codes keep task information although one layer
    (MERT L7) sits 5–8 points below dense at every sparsity; `max_drop` still fails a run
    where one SAE loses most of the information.

    Args:
        rows: result rows (dense + SAE).
        label: the probed label (`probe_<label>_acc`); the paper probes the singing technique.
        tolerance: allowed median drop, in [0, 1] accuracy units (0.05 = 5 points).
        max_drop: allowed drop of any single SAE.
        max_sparsity: sparser SAEs are left out (the paper's 99 % drops more, as it reports).
        level: coverage of the interval.
        n_resamples: bootstrap resamples.
        seed: seeds the resamples.
    """
    key = probe_acc_key(label)
    rule = (
        f"median over SAEs with sparsity <= {pct(max_sparsity)} of (SAE − dense accuracy of the "
        f"same layer) >= {points(-tolerance)} points, the lower end of its "
        f"{pct(level)} paired bootstrap interval over test clips too; every such SAE >= "
        f"{points(-max_drop)} points"
    )
    pairs = []
    for group, (dense, saes) in group_rows(rows).items():
        if dense is None or dense.get(key) is None:
            continue
        for row in saes:
            s = row.get("sparsity")
            if row.get(key) is not None and s is not None and float(s) <= max_sparsity + 1e-9:
                pairs.append((float(row[key]) - float(dense[key]), group, row, dense))
    if not pairs:
        missing = f"no SAE with sparsity <= {pct(max_sparsity)} and a dense row has `{key}`"
        return Claim(None, missing, rule)
    diffs = [p[0] for p in pairs]
    median, worst = statistics.median(diffs), min(pairs, key=lambda p: p[0])
    point = median >= -tolerance - 1e-12 and worst[0] >= -max_drop - 1e-12
    resamples = Resamples(n_resamples, seed, level)
    samples = [accuracy_samples(row, dense, label, resamples) for _, _, row, dense in pairs]
    interval = None
    if all(s is not None for s in samples):
        interval = median_interval(median, [s[1] for s in samples if s is not None], resamples)
    holds = point and (interval is None or interval.low >= -tolerance - 1e-12)
    text = f"median SAE − dense {points(median)} points"
    text += f" {fmt_interval(interval)}" if interval else ""
    text += (
        f" over {len(pairs)} SAEs; worst {points(worst[0])} ({where(worst[1], worst[2])}: "
        f"{100 * worst[2][key]:.2f} vs dense {100 * worst[3][key]:.2f})"
    )
    below = _layers_below(pairs, tolerance)
    if below:
        text += f"; every SAE more than {100 * tolerance:g} points below in: {', '.join(below)}"
    if interval is None:
        missing = sum(s is None for s in samples)
        text += f"; point estimates only: {missing} of {len(pairs)} SAE/dense pairs lack per-clip "
        text += "predictions for an interval"
    collapsed = collapse_notes((where(g, r), r) for _, g, r, _ in pairs)
    return Claim(holds, text, rule, collapsed, point)


def _layers_below(pairs: list, tolerance: float) -> list[str]:
    by_layer: dict[str, list[float]] = defaultdict(list)
    for diff, group, _, _ in pairs:
        by_layer[where(group)].append(diff)
    return [name for name, d in by_layer.items() if max(d) < -tolerance - 1e-12]


def reconstruction_claim(
    rows: list[Row], metric: Literal["fvu", "mse"] = "fvu", ratio: float = 1.5
) -> Claim:
    """Claim 2: the error jumps at the highest sparsity.

    Compared, in every (model, layer) and architecture: the sparsest SAE against the SAE at the
    next sparsity down (95 % for the paper's 99 %). Holds when every such ratio is >= `ratio`.
    The step, not the lowest sparsity, is the baseline: the paper's WavLM SAEs at 75–80 %
    reconstruct worse than at 85–90 %, although the error clearly jumps from 95 to 99 %. FVU and
    MSE give the same ratio on one layer's test set. Point estimates (no interval).

    Args:
        rows: result rows (dense + SAE).
        metric: "fvu" or "mse"; falls back to the other one when a layer lacks it.
        ratio: how much worse the sparsest SAE must reconstruct to call the step sharp.
    """
    if metric not in ("fvu", "mse"):
        raise ValueError(f"metric must be 'fvu' or 'mse', got {metric!r}")
    rule = (
        f"in every layer (and architecture), {metric.upper()} (else {_other(metric).upper()}) of "
        f"the sparsest SAE >= {ratio:g}x that of the SAE at the next sparsity down; point "
        "estimates on the test split"
    )
    found: list[tuple[float, str, Row, Row, str]] = []
    for group, (_, saes) in group_rows(rows).items():
        by_arch: dict[str, list[Row]] = defaultdict(list)
        for r in saes:
            if r.get("sparsity") is not None:
                by_arch[str(r.get("architecture", ""))].append(r)
        for arch_rows in by_arch.values():
            use = metric if all(r.get(metric) is not None for r in arch_rows) else _other(metric)
            arch_rows = [r for r in arch_rows if r.get(use) is not None]
            levels = sorted({float(r["sparsity"]) for r in arch_rows})
            if len(levels) < 2:
                continue
            high = next(r for r in arch_rows if float(r["sparsity"]) == levels[-1])
            low = next(r for r in arch_rows if float(r["sparsity"]) == levels[-2])
            value = high[use] / low[use] if low[use] > 0 else float("inf")
            name = where(group) + (f" {high.get('architecture')}" if len(by_arch) > 1 else "")
            found.append((value, name, low, high, use))
    if not found:
        return Claim(None, "no layer has SAEs at two sparsities with fvu/mse", rule)
    holds = all(f[0] >= ratio for f in found)
    parts = [
        f"{name}: {use.upper()} {high[use]:.4g} at {pct(high['sparsity'])} vs {low[use]:.4g} at "
        f"{pct(low['sparsity'])} = {value:.2f}x"
        for value, name, low, high, use in found
    ]
    worst = min(found, key=lambda f: f[0])
    text = f"smallest step {worst[0]:.2f}x ({worst[1]}); " + "; ".join(parts)
    collapsed = collapse_notes((f[1] + f" {r['name']}", r) for f in found for r in f[2:4])
    return Claim(holds, text, rule, collapsed, holds)


def _other(metric: str) -> str:
    return "mse" if metric == "fvu" else "fvu"
