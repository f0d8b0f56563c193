"""Latent naming on planted codes: a latent planted on "f0 above 200 Hz" is named by f0 with that
range, a label latent by its label value, a positional latent is flagged; every score equals an
independent computation (sklearn's AUROC, scipy's Spearman, eta² by hand)."""

from __future__ import annotations

import doctest

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from saelight.metrics import latent_naming
from saelight.metrics.latent_naming import (
    eta_squared,
    held_out_rows,
    name_latents,
    positional_scores,
    spearman,
)

CLIPS, FRAMES = 40, 25
F0, FRY, POSITIONAL, NOISE, DEAD = range(5)


def planted() -> tuple[np.ndarray, dict, dict, np.ndarray, np.ndarray]:
    """(codes, descriptors, labels, clip of each row, frame of each row) with planted latents."""
    rng = np.random.default_rng(0)
    n = CLIPS * FRAMES
    clip = np.repeat(np.arange(CLIPS), FRAMES)
    frame = np.tile(np.arange(FRAMES), CLIPS)
    f0 = rng.uniform(100, 400, n)
    f0[rng.random(n) < 0.2] = np.nan  # unvoiced frames
    technique = np.where(clip % 4 == 0, "fry", "straight")
    z = np.zeros((n, 5))
    z[:, F0] = np.where(f0 > 200, 1 + rng.random(n), 0.0)
    z[:, FRY] = np.where(technique == "fry", rng.random(n) + 0.5, 0.1 * rng.random(n))
    z[:, POSITIONAL] = np.maximum(0, 3 - frame) + 0.05 * rng.random(n)
    z[:, NOISE] = np.maximum(rng.normal(size=n), 0)
    descriptors = {"f0_hz": f0, "intensity_db": rng.normal(60, 5, n)}
    return z, descriptors, {"technique": technique}, clip, frame


@pytest.fixture(scope="module")
def named():
    z, descriptors, labels, clip, frame = planted()
    return name_latents(sp.csc_matrix(z), descriptors, labels, clip, frame), planted()


def test_f0_latent_is_named_by_f0_above_200_hz(named) -> None:
    names, _ = named
    assert (names.source[F0], names.kind[F0], names.hi[F0]) == ("f0_hz", "range", None)
    assert 175 <= names.lo[F0] <= 225  # the quantile edge nearest the planted 200 Hz
    assert names.auroc[F0] > 0.95 and names.spearman[F0] > 0.6
    edges, mean = names.tuning[F0]["edges"], names.tuning[F0]["mean"]
    centres = (np.array(edges[1:]) + np.array(edges[:-1])) / 2
    assert all(m == 0 for m, c in zip(mean, centres, strict=True) if c < 180)
    assert all(m > 1 for m, c in zip(mean, centres, strict=True) if c > 220)


def test_label_latent_named_by_its_value_and_noise_scores_near_chance(named) -> None:
    names, _ = named
    assert (names.source[FRY], names.kind[FRY], names.lo[FRY]) == ("technique", "label", "fry")
    assert names.auroc[FRY] > 0.95 and np.isnan(names.spearman[FRY])
    assert abs(names.auroc[NOISE] - 0.5) < 0.1
    assert names.source[DEAD] is None and np.isnan(names.auroc[DEAD])


def test_positional_latent_is_flagged_and_others_are_not(named) -> None:
    names, _ = named
    assert names.positional[POSITIONAL] > 0.9
    assert np.nanmax(names.positional[[F0, FRY, NOISE]]) < 0.1


def test_held_out_scores_equal_sklearn_and_scipy(named) -> None:
    names, (z, descriptors, _, clip, _) = named
    held = held_out_rows(clip)
    f0 = descriptors["f0_hz"][held]
    inside = np.isfinite(f0) & (f0 >= names.lo[F0])
    assert names.auroc[F0] == pytest.approx(roc_auc_score(inside, z[held, F0]), abs=1e-12)
    ok = np.isfinite(f0)
    expected = spearmanr(z[held, F0][ok], f0[ok]).statistic
    assert names.spearman[F0] == pytest.approx(expected, abs=1e-12)
    fry = planted()[2]["technique"][held] == "fry"
    assert names.auroc[FRY] == pytest.approx(roc_auc_score(fry, z[held, FRY]), abs=1e-12)


def test_spearman_with_ties_and_zeros_equals_scipy() -> None:
    rng = np.random.default_rng(1)
    z = np.round(np.maximum(rng.normal(size=(300, 4)), 0), 1)
    x = np.round(rng.normal(size=300), 1)
    x[::9] = np.nan
    ok = np.isfinite(x)
    expected = [spearmanr(z[ok, j], x[ok]).statistic for j in range(4)]
    np.testing.assert_allclose(spearman(sp.csc_matrix(z), x), expected, atol=1e-12)


def test_eta_squared_by_hand_and_positional_score_on_a_copy() -> None:
    z, groups = np.array([1.0, 2.0, 3.0, 5.0]), np.array([0, 0, 1, 1])
    # mean 2.75; SS_between = 4 * 1.25² = 6.25; SS_total = 1.75² + .75² + .25² + 2.25² = 8.75
    assert eta_squared(z, groups) == pytest.approx(6.25 / 8.75)
    rng = np.random.default_rng(2)
    a, f = np.maximum(rng.normal(size=(60, 3)), 0), rng.integers(0, 5, 60)
    codes = sp.csc_matrix(np.vstack([a, a]))
    held = np.r_[np.zeros(60, bool), np.ones(60, bool)]  # held-out rows = the fit rows again
    scores = positional_scores(codes, np.r_[f, f], held)
    np.testing.assert_allclose(scores, [eta_squared(a[:, j], f) for j in range(3)], atol=1e-12)
    assert np.isnan(positional_scores(codes, np.full(120, -1), held)).all()


def test_held_out_rows_keep_clips_whole() -> None:
    clip = np.repeat(np.arange(10), 3)
    held = held_out_rows(clip)
    assert held.reshape(10, 3).all(1).sum() == 5 and (held.reshape(10, 3).std(1) == 0).all()
    assert held_out_rows(np.zeros(4)).tolist() == [False, True, False, True]


def test_doctests() -> None:
    assert doctest.testmod(latent_naming).failed == 0
