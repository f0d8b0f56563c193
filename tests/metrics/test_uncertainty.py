"""Paired bootstrap intervals and seed spread against cases with a known answer."""

import math

import numpy as np
import pytest

from saelight.metrics.disentanglement import fit_lasso, importance_entropy, split_rows
from saelight.metrics.uncertainty import (
    bootstrap_weights,
    lasso_entropy_bootstrap,
    paired_difference,
    percentile_interval,
    resampled_mean,
    seed_mean_std,
)


def test_weights_draw_clips_uniformly_with_replacement() -> None:
    w = bootstrap_weights(2, 40_000, seed=1)
    assert (w.sum(1) == 2).all()
    # Two clips: resample means of (1, 0) are 0, 1/2, 1 with probability 1/4, 1/2, 1/4.
    means = resampled_mean(w, [1.0, 0.0])
    for value, p in ((0.0, 0.25), (0.5, 0.5), (1.0, 0.25)):
        assert np.mean(means == value) == pytest.approx(p, abs=0.01)
    np.testing.assert_array_equal(bootstrap_weights(5, 3, seed=7), bootstrap_weights(5, 3, seed=7))


def test_paired_difference_matches_the_normal_approximation() -> None:
    """400 clips: SAE right and dense wrong on 40, the reverse on 20. The bootstrap distribution
    of a mean has variance sigma^2 / n with sigma^2 the plug-in (ddof=0) variance of the per-clip
    difference d: E[d] = 20/400 = 0.05, E[d^2] = 60/400, so sigma^2 = 0.15 - 0.05^2 = 0.1475 and
    the 95 % interval is close to 0.05 +- 1.96 sqrt(0.1475 / 400) = 0.05 +- 0.0376."""
    a = np.zeros(400)
    b = np.zeros(400)
    a[:40] = 1
    b[40:60] = 1
    a[100:300] = b[100:300] = 1  # both right: cancels in the paired difference
    out = paired_difference(a, b, n_resamples=20_000, seed=0)
    assert out.estimate == pytest.approx(0.05)
    half = 1.959964 * math.sqrt(0.1475 / 400)
    assert out.low == pytest.approx(0.05 - half, abs=0.004)
    assert out.high == pytest.approx(0.05 + half, abs=0.004)
    samples = resampled_mean(bootstrap_weights(400, 20_000, seed=0), a - b)
    assert samples.std() == pytest.approx(math.sqrt(0.1475 / 400), rel=0.03)


def test_pairing_cancels_what_both_share() -> None:
    rng = np.random.default_rng(0)
    a = (rng.uniform(size=300) < 0.7).astype(float)
    same = paired_difference(a, a.copy())
    assert (same.estimate, same.low, same.high) == (0.0, 0.0, 0.0)
    # b = a except 6 clips flipped to wrong: every resample's difference is >= 0.
    b = a.copy()
    b[np.flatnonzero(a)[:6]] = 0
    out = paired_difference(a, b)
    assert out.estimate == pytest.approx(6 / 300) and out.low >= 0.0


def test_clips_with_several_rows_are_resampled_whole() -> None:
    sums, rows = np.array([3.0, 0.0, 2.0]), np.array([4.0, 1.0, 2.0])
    w = np.array([[1, 1, 1], [3, 0, 0], [0, 2, 1]])
    np.testing.assert_allclose(resampled_mean(w, sums, rows), [5 / 7, 9 / 12, 2 / 4])
    out = paired_difference(sums, np.zeros(3), rows, n_resamples=50)
    assert out.estimate == pytest.approx(5 / 7)


def test_percentile_interval_and_bad_levels() -> None:
    assert percentile_interval(1.0, np.arange(11.0), level=0.8)[1:] == pytest.approx((1.0, 9.0))
    with pytest.raises(ValueError, match="level"):
        percentile_interval(0.0, np.zeros(3), level=95)


def test_seed_mean_std_is_the_sample_std() -> None:
    values = [0.70, 0.74, 0.72, 0.69]
    mean, std = seed_mean_std(values)
    assert mean == pytest.approx(np.mean(values)) and std == pytest.approx(np.std(values, ddof=1))
    assert math.isnan(seed_mean_std([0.7])[1])


def test_lasso_entropy_bootstrap_refits_on_resampled_clips() -> None:
    rng = np.random.default_rng(3)
    latent = rng.standard_normal((120, 3))
    codes = np.maximum(latent @ rng.standard_normal((3, 16)), 0.0)
    factors = latent[:, :2] + 0.1 * rng.standard_normal((120, 2))
    groups = np.repeat(np.arange(60), 2)  # two rows per clip
    boot = lasso_entropy_bootstrap(codes, factors, n_resamples=4, seed=5, groups=groups)
    fit_idx, _ = split_rows(120, 0.2, 5, groups)
    _, inverse = np.unique(groups[fit_idx], return_inverse=True)
    w = bootstrap_weights(inverse.max() + 1, 4, seed=5)
    idx = np.repeat(fit_idx, w[2][inverse])
    h = importance_entropy(np.abs(fit_lasso(codes, factors, idx, alpha=0.1).coef).T)
    assert boot[2] == pytest.approx(h.mean())
    # The same rows, seed and groups give the same resamples: a representation paired with
    # itself differs by exactly 0 on every resample.
    again = lasso_entropy_bootstrap(codes, factors, n_resamples=4, seed=5, groups=groups)
    np.testing.assert_array_equal(boot - again, 0.0)
