"""LatentStats: streamed over batches equals one shot equals a numpy reference."""

import numpy as np
import pytest
import torch

from saelight.explorer.stats import LatentStats


def _codes(n: int = 90, d: int = 12, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.maximum(rng.normal(size=(n, d)) - 0.7, 0.0).round(2).astype(np.float32)
    z[:, 3] = 0.0  # a dead latent
    z[:2, 4] = [1.0, 2.0]  # a latent firing on fewer rows than top_n
    z[2:, 4] = 0.0
    return z


def _summary(z: np.ndarray, batch: int, top_n: int = 5):
    stats = LatentStats(z.shape[1], top_n)
    for i in range(0, len(z), batch):
        stats.update(torch.from_numpy(z[i : i + batch]))
    return stats.finish()


@pytest.mark.parametrize("batch", [7, 90])
def test_streamed_matches_reference(batch: int) -> None:
    z = _codes()
    s = _summary(z, batch)
    assert s.n_rows == len(z)
    np.testing.assert_array_equal(s.fires, (z > 0).sum(0))
    np.testing.assert_allclose(s.total, z.sum(0, dtype=np.float64), rtol=1e-6)
    np.testing.assert_array_equal(s.max, z.max(0))
    np.testing.assert_array_equal(s.codes.toarray(), z)
    np.testing.assert_allclose(s.frequency, (z > 0).mean(0))
    fires = (z > 0).sum(0)
    expected_mean = np.where(fires > 0, z.sum(0) / np.maximum(fires, 1), 0.0)
    np.testing.assert_allclose(s.mean_when_firing, expected_mean, rtol=1e-6)
    np.testing.assert_array_equal(s.top_values, -np.sort(-z, axis=0)[:5])
    np.testing.assert_array_equal(np.take_along_axis(z, s.top_positions, 0), s.top_values)
    assert s.top_values[2:, 4].tolist() == [0.0, 0.0, 0.0] and s.top_positions[:2, 4].tolist() == [
        1,
        0,
    ]


def test_histogram_counts_firing_rows() -> None:
    z = _codes()
    s = _summary(z, 16)
    hist = s.histogram(bins=4)
    assert hist.shape == (z.shape[1], 4)
    np.testing.assert_array_equal(hist.sum(1), (z > 0).sum(0))
    j = 0
    reference, _ = np.histogram(z[z[:, j] > 0, j], bins=4, range=(0.0, z[:, j].max()))
    np.testing.assert_array_equal(hist[j], reference)


def test_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="d_sae and top_n"):
        LatentStats(0)
    with pytest.raises(ValueError, match=r"codes must be \(batch, 3\)"):
        LatentStats(3).update(torch.zeros(2, 4))
    empty = LatentStats(3).finish()
    assert empty.n_rows == 0 and empty.codes.shape == (0, 3)


def test_doctests() -> None:
    import doctest

    from saelight.explorer import selectivity, stats

    for module in (stats, selectivity):
        assert doctest.testmod(module).failed == 0
