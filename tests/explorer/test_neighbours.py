"""Nearest latents (decoder cosine, co-activation Jaccard) and quantile-band examples, against
brute-force dense computations on small random inputs, block path included."""

import numpy as np
import pytest
import scipy.sparse as sp

from saelight.explorer.neighbours import coactivation_neighbours, decoder_neighbours
from saelight.explorer.quantiles import quantile_samples


def _brute_top(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each row's k largest finite entries, ties to the lower column (stable sort)."""
    ids = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return ids, np.take_along_axis(scores, ids, 1)


def _codes(n: int = 300, d: int = 40, density: float = 0.08, seed: int = 0) -> sp.csc_matrix:
    return sp.random(n, d, density=density, format="csc", random_state=seed, dtype=np.float32)


@pytest.mark.parametrize("block", [512, 7, 1])
def test_decoder_cosine_matches_brute_force(block: int) -> None:
    w = np.random.default_rng(0).normal(size=(50, 8))
    got = decoder_neighbours(w, k=5, block=block)
    unit = w / np.linalg.norm(w, axis=1, keepdims=True)
    cos = unit @ unit.T
    np.fill_diagonal(cos, -np.inf)
    ids, scores = _brute_top(cos, 5)
    np.testing.assert_array_equal(got.ids, ids)
    np.testing.assert_allclose(got.scores, scores, atol=1e-6)
    assert got.of(3) == list(zip(ids[3].tolist(), got.scores[3].tolist(), strict=True))


def test_ties_go_to_the_lower_id_even_past_the_shortlist() -> None:
    w = np.eye(3)[np.arange(30) % 3]  # ten copies of each axis: nine exact ties at cosine 1
    got = decoder_neighbours(w, k=2, block=4)
    for j in range(30):
        assert got.ids[j].tolist() == [i for i in range(j % 3, 30, 3) if i != j][:2]
    assert (got.scores == 1.0).all()


def test_decoder_cosine_zero_rows_and_more_neighbours_than_latents() -> None:
    w = np.array([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]])
    got = decoder_neighbours(w, k=4)
    assert got.ids[0].tolist() == [2, 1, -1, -1]  # the zero row has cosine 0 with every row
    np.testing.assert_allclose(got.scores[0, :2], [np.sqrt(0.5), 0.0], atol=1e-6)
    assert np.isnan(got.scores[0, 2:]).all() and len(got.of(0)) == 2


@pytest.mark.parametrize("block", [512, 6])
def test_coactivation_jaccard_matches_brute_force(block: int) -> None:
    codes = _codes()
    got = coactivation_neighbours(codes, k=5, block=block)
    fired = (codes.toarray() > 0).astype(np.float64)
    both = fired.T @ fired
    fires = fired.sum(0)
    jaccard = both / (fires[:, None] + fires[None, :] - both)
    jaccard[both == 0] = -np.inf  # never together: not a neighbour
    np.fill_diagonal(jaccard, -np.inf)
    ids, scores = _brute_top(jaccard, 5)
    listed = np.isfinite(scores)
    np.testing.assert_array_equal(got.ids[listed], ids[listed])
    np.testing.assert_allclose(got.scores[listed], scores[listed], rtol=1e-6)
    assert (got.ids[~listed] == -1).all() and np.isnan(got.scores[~listed]).all()


def test_latents_that_always_fire_together_are_each_others_first() -> None:
    dense = _codes(density=0.2, seed=1).toarray()
    rows = np.random.default_rng(2).random(len(dense)) < 0.3
    dense[:, 11] = np.where(rows, 1.0, 0.0)
    dense[:, 29] = np.where(rows, 0.5, 0.0)  # other codes, the same firing rows
    got = coactivation_neighbours(sp.csc_matrix(dense), k=3, block=8)
    assert got.ids[11, 0] == 29 and got.ids[29, 0] == 11
    assert got.scores[11, 0] == got.scores[29, 0] == 1.0


def test_quantile_samples_lie_in_their_bands_and_skip_the_top_rows() -> None:
    codes = _codes(n=400, density=0.15)
    dense = codes.toarray()
    top_n, bands, per_band = 3, 4, 2
    top_positions = np.argsort(-dense, axis=0, kind="stable")[:top_n]
    top_values = np.take_along_axis(dense, top_positions, 0)
    drawn = quantile_samples(codes, top_positions, top_values, bands, per_band, seed=5)
    assert drawn.positions.shape == (bands * per_band, 40) and drawn.n_bands == bands
    for j in range(40):
        rows = np.flatnonzero(dense[:, j] > 0)
        ranked = rows[np.lexsort((rows, dense[rows, j]))]  # ascending code, then position
        band_of = {int(p): r * bands // len(rows) for r, p in enumerate(ranked)}
        samples = drawn.of(j)
        for p, v, b in samples:
            assert band_of[p] == b and v == pytest.approx(dense[p, j])
            assert p not in top_positions[:, j]
        got = [b for _, _, b in samples]
        assert got == sorted(got, reverse=True)  # highest band first
        free = {b: sum(1 for p, c in band_of.items() if c == b and p not in top_positions[:, j])
                for b in range(bands)}  # fmt: skip
        assert all(got.count(b) == min(per_band, free[b]) for b in range(bands))
    again = quantile_samples(codes, top_positions, top_values, bands, per_band, seed=5)
    np.testing.assert_array_equal(again.positions, drawn.positions)  # deterministic
    other = quantile_samples(codes, top_positions, top_values, bands, per_band, seed=6)
    assert not np.array_equal(other.positions, drawn.positions)


def test_quantile_slots_are_breadth_first_and_empty_ones_are_zero() -> None:
    dense = np.zeros((10, 2), np.float32)
    dense[:, 0] = np.arange(1, 11)  # latent 0 fires on every row; latent 1 never
    none = np.zeros((1, 2), np.int64), np.zeros((1, 2))
    drawn = quantile_samples(sp.csc_matrix(dense), *none, bands=2, per_band=2)
    assert drawn.bands[:, 0].tolist() == [1, 0, 1, 0]  # the first row of each band, then seconds
    assert (drawn.values[:2, 0] > 0).all() and (drawn.values[drawn.bands[:, 0] == 1, 0] > 5).all()
    assert (drawn.values[:, 1] == 0).all() and drawn.of(1) == []
    with pytest.raises(ValueError, match="must be >= 1"):
        quantile_samples(sp.csc_matrix(dense), *none, bands=0)
