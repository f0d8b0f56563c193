"""Uncertainty of held-out scores: paired bootstrap over test clips, and spread across seeds.

A probe accuracy on the paper's ~400 test clips moves by several points between seeds and crops,
so an SAE − dense difference means little without an interval. The bootstrap here resamples whole
test clips (Efron & Tibshirani 1993, ch. 13, percentile interval) and is *paired*: the SAE and the
dense representation are scored on the same resampled clips, so clip difficulty, which both share,
cancels out of their difference.

Scores are given per clip as a sum and a row count (``sums[c]``: correct test rows of clip ``c``;
``rows[c]``: its test rows, all 1 for clip-level pooling), so frame-level runs are resampled by clip
too (a cluster bootstrap) rather than by frame, which would treat correlated frames as independent.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from saelight.io.defaults import DATA_SEED, EVAL_SEED
from saelight.metrics.disentanglement import (
    ArrayLike,
    FactorsLike,
    as_codes,
    as_factors,
    as_label_array,
    fit_lasso,
    importance_entropy,
    split_rows,
)

#: Resamples per interval: percentile intervals need their tails, so ~10^3, not the ~200 of a std.
N_RESAMPLES = 2000
LEVEL = 0.95


class Interval(NamedTuple):
    """A point estimate with its two-sided percentile interval."""

    estimate: float
    """the statistic on the original clips."""
    low: float
    """the ``(1 - level) / 2`` quantile of the resampled statistic."""
    high: float
    """the ``(1 + level) / 2`` quantile of the resampled statistic."""


def bootstrap_weights(
    n_clips: int, n_resamples: int = N_RESAMPLES, seed: int = DATA_SEED
) -> np.ndarray:
    """How often each clip is drawn in each resample: ``(n_resamples, n_clips)`` int counts.

    Resample ``b`` draws ``n_clips`` clips uniformly with replacement (one seeded
    ``numpy.random.default_rng(seed)``), so every representation scored on the same ``n_clips``
    clips with the same seed gets the same resamples: that is what pairs them.

    Example:
        >>> bootstrap_weights(3, 2, seed=0).sum(1)
        array([3, 3])
    """
    if n_clips < 1 or n_resamples < 1:
        raise ValueError(f"need n_clips >= 1 and n_resamples >= 1, got {n_clips}, {n_resamples}")
    draws = np.random.default_rng(seed).integers(0, n_clips, size=(n_resamples, n_clips))
    offsets = np.arange(n_resamples)[:, None] * n_clips
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * n_clips)
    return counts.reshape(n_resamples, n_clips)


def resampled_mean(
    weights: np.ndarray, sums: Sequence[float] | np.ndarray, rows: Sequence[float] | None = None
) -> np.ndarray:
    r"""The per-row mean (e.g. accuracy) in every resample: ``(n_resamples,)``.

    .. math:: \hat a_b = \frac{\sum_c w_{bc}\, s_c}{\sum_c w_{bc}\, n_c}

    with :math:`w_{bc}` the draws of clip ``c`` in resample ``b`` (:func:`bootstrap_weights`),
    :math:`s_c` its summed score and :math:`n_c` its rows (1 when ``rows`` is None).

    Example:
        >>> resampled_mean(np.array([[2, 0], [1, 1]]), [1.0, 0.0])
        array([1. , 0.5])
    """
    s = np.asarray(sums, dtype=np.float64)
    n = np.ones_like(s) if rows is None else np.asarray(rows, dtype=np.float64)
    if s.shape != (weights.shape[1],) or n.shape != s.shape:
        raise ValueError(
            f"{weights.shape[1]} clips in the resamples, got sums {s.shape} and rows {n.shape}"
        )
    return (weights @ s) / (weights @ n)


def percentile_interval(estimate: float, samples: np.ndarray, level: float = LEVEL) -> Interval:
    """``estimate`` with the ``(1 ± level) / 2`` quantiles of ``samples`` (numpy's linear rule).

    Example:
        >>> percentile_interval(50.0, np.arange(101.0), level=0.5)
        Interval(estimate=50.0, low=25.0, high=75.0)
    """
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    q = [(1 - level) / 2, (1 + level) / 2]
    low, high = np.quantile(np.asarray(samples, dtype=np.float64), q)
    return Interval(float(estimate), float(low), float(high))


def paired_difference(
    sums_a: Sequence[float] | np.ndarray,
    sums_b: Sequence[float] | np.ndarray,
    rows: Sequence[float] | None = None,
    *,
    n_resamples: int = N_RESAMPLES,
    level: float = LEVEL,
    seed: int = DATA_SEED,
) -> Interval:
    r"""Mean score of ``a`` minus that of ``b`` on the same clips, with a paired bootstrap interval.

    The estimate is :math:`\sum_c s^a_c / \sum_c n_c - \sum_c s^b_c / \sum_c n_c`; the interval is
    the percentile interval of the same difference over resamples of the clips that draw the same
    clips for ``a`` and ``b`` (:func:`resampled_mean` with one :func:`bootstrap_weights`).
    Identical scores give ``[0, 0]`` however noisy each is.

    Args:
        sums_a: ``(clips,)`` summed score of ``a`` per clip (correct rows for an accuracy).
        sums_b: ``(clips,)`` the same for ``b``, clip for clip.
        rows: ``(clips,)`` rows per clip (default: one).
        n_resamples: bootstrap resamples.
        level: coverage of the interval.
        seed: seeds the resamples.

    Example:
        >>> paired_difference([1, 1, 0, 1], [1, 0, 0, 1], n_resamples=200).estimate
        0.25
    """
    a, b = np.asarray(sums_a, dtype=np.float64), np.asarray(sums_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"a and b need one score per clip, got shapes {a.shape} and {b.shape}")
    n = np.ones_like(a) if rows is None else np.asarray(rows, dtype=np.float64)
    w = bootstrap_weights(a.size, n_resamples, seed)
    samples = resampled_mean(w, a - b, n)
    return percentile_interval(float((a - b).sum() / n.sum()), samples, level)


def seed_mean_std(values: Sequence[float]) -> tuple[float, float]:
    r"""Mean and sample std (``ddof=1``) of one score over seeds; std is nan for one seed.

    ``ddof=1`` because a handful of seeds is a small sample of the seed distribution; with
    :math:`m` seeds, :math:`s = \sqrt{\sum_i (x_i - \bar x)^2 / (m - 1)}`.

    Example:
        >>> mean, std = seed_mean_std([0.70, 0.74, 0.72])
        >>> round(mean, 6), round(std, 6)
        (0.72, 0.02)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        raise ValueError("no values")
    std = float(np.std(x, ddof=1)) if x.size > 1 else float("nan")
    return float(x.mean()), std


def lasso_entropy_bootstrap(
    codes: ArrayLike,
    factors: FactorsLike,
    *,
    alpha: float = 0.1,
    n_resamples: int = 100,
    held_out: bool = True,
    test_fraction: float = 0.2,
    seed: int = EVAL_SEED,
    groups: ArrayLike | None = None,
    max_iter: int = 10_000,
) -> np.ndarray:
    """Mean importance entropy over ``factors``, refitted on bootstrap resamples of the clips.

    The rows ``lasso_completeness`` fits on (the same ``held_out``, ``test_fraction``, ``seed`` and
    ``groups`` split) are resampled by group (clip) with :func:`bootstrap_weights` seeded with
    ``seed``; each resample refits the Lasso and averages
    :func:`~saelight.metrics.disentanglement.importance_entropy` ``H_j`` over the factors (a factor
    constant on a resample, or whose Lasso keeps no code, is left out; nan when none is left). Two
    representations of the same rows with the same seed get the same resamples, so their
    per-resample values are paired. Pass the row's top factors by R².

    Args:
        codes: ``(rows, K)`` codes.
        factors: ``(rows, F)`` factors, or a mapping name -> ``(rows,)``: the top factors.
        alpha: Lasso regularisation (the paper's 0.1).
        n_resamples: bootstrap resamples.
        held_out: resample the same fit rows as ``lasso_completeness(held_out=...)``.
        test_fraction: share of rows it holds out.
        seed: seeds its split and the resamples.
        groups: ``(rows,)`` clip ids: rows of one clip are resampled together.
        max_iter: coordinate-descent iterations per factor.

    Returns:
        ``(n_resamples,)`` mean entropy in nats per resample.
    """
    z = as_codes(codes)
    y, _ = as_factors(factors, None, z.shape[0])
    if held_out:
        fit_idx, _ = split_rows(z.shape[0], test_fraction, seed, groups)
    else:
        fit_idx = np.arange(z.shape[0])
    g = np.arange(z.shape[0]) if groups is None else as_label_array(groups, z.shape[0], "groups")
    _, g_inv = np.unique(g[fit_idx], return_inverse=True)
    weights = bootstrap_weights(int(g_inv.max()) + 1, n_resamples, seed)
    out = np.full(n_resamples, np.nan)
    for b in range(n_resamples):
        idx = np.repeat(fit_idx, weights[b][g_inv])
        varies = np.ptp(y[idx], axis=0) > 0
        if not varies.any():
            continue
        fit = fit_lasso(z, y[:, varies], idx, alpha=alpha, max_iter=max_iter)
        h = importance_entropy(np.abs(fit.coef).T, axis=0)
        if np.isfinite(h).any():
            out[b] = float(np.mean(h[np.isfinite(h)]))
    return out
