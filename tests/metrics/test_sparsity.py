import numpy as np
import pytest
import torch

from saelight.metrics.sparsity import (
    L0,
    FeatureDensity,
    feature_density,
    l0,
    l0_histogram,
    log10_density,
)

Z = torch.tensor(
    [[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 3.0, 0.0], [0.0, 5.0, 1.0, 0.0], [0.0, 0.0, 4.0, -1.0]]
)


def test_hand_computed() -> None:
    # Nonzeros per row: 2, 1, 2, 2; per latent: 0, 2, 4, 1 of 4 rows.
    torch.testing.assert_close(l0(Z), torch.tensor(7 / 4))
    torch.testing.assert_close(l0_histogram(Z), torch.tensor([0, 1, 3, 0, 0]))
    out = feature_density(Z, dense_threshold=0.5)
    torch.testing.assert_close(out["density"], torch.tensor([0.0, 0.5, 1.0, 0.25]))
    torch.testing.assert_close(out["dead_fraction"], torch.tensor(0.25))
    torch.testing.assert_close(out["dense_fraction"], torch.tensor(0.25))  # 0.5 is not > 0.5
    # mean density 7/16: a latent firing at that rate misses all 4 rows with (9/16)^4
    torch.testing.assert_close(out["dead_floor"], torch.tensor((9 / 16) ** 4))
    torch.testing.assert_close(
        log10_density(torch.tensor([0.0, 1e-3])), torch.tensor([-10.0, -3.0])
    )


def _codes(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    pre = torch.relu(torch.randn(53, 3, 64, generator=g) - 1.0)  # (batch, time, d_sae)
    pre[..., :5] = 0  # dead latents
    return pre


def test_streamed_equals_one_shot_equals_numpy() -> None:
    z = _codes()
    rows = z.reshape(-1, 64).numpy()
    counts = np.count_nonzero(rows, axis=1)
    fires = np.count_nonzero(rows, axis=0)
    m_l0, m_density = L0(d_sae=64), FeatureDensity(d_sae=64, dense_threshold=0.2)
    for batch in z.split(8):
        m_l0.update(batch)
        m_density.update(batch)
    torch.testing.assert_close(m_l0.compute(), torch.tensor(counts.mean(), dtype=torch.float32))
    torch.testing.assert_close(m_l0.compute(), l0(z))
    hist = torch.from_numpy(np.bincount(counts, minlength=65))
    torch.testing.assert_close(m_l0.histogram(), hist)
    torch.testing.assert_close(l0_histogram(z), hist)

    expected = {
        "density": torch.tensor(fires / rows.shape[0], dtype=torch.float32),
        "dead_fraction": torch.tensor(np.mean(fires == 0), dtype=torch.float32),
        "dense_fraction": torch.tensor(np.mean(fires / rows.shape[0] > 0.2), dtype=torch.float32),
        "dead_floor": torch.tensor(
            (1 - fires.sum() / rows.size) ** rows.shape[0], dtype=torch.float32
        ),
    }
    torch.testing.assert_close(m_density.compute(), expected)
    torch.testing.assert_close(feature_density(z, dense_threshold=0.2), expected)
    assert expected["dead_fraction"] >= 5 / 64


def test_merged_states_equal_one_shot() -> None:
    z = _codes(seed=1)
    rank0, rank1 = L0(d_sae=64), L0(d_sae=64)
    rank0.update(z[:20])
    rank1.update(z[20:])
    rank0.merge_state(rank1)
    torch.testing.assert_close(rank0.compute(), l0(z))
    torch.testing.assert_close(rank0.histogram(), l0_histogram(z))
    d0, d1 = FeatureDensity(d_sae=64), FeatureDensity(d_sae=64)
    d0.update(z[:20])
    d1.update(z[20:])
    d0.merge_state(d1)
    torch.testing.assert_close(d0.compute(), feature_density(z))


def test_forward_returns_batch_value() -> None:
    z = _codes(seed=2)
    metric = L0(d_sae=64)
    torch.testing.assert_close(metric(z[:7]), l0(z[:7]))
    metric(z[7:])
    torch.testing.assert_close(metric.compute(), l0(z))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="d_sae=64"):
        L0(d_sae=64).update(torch.zeros(2, 32))
    with pytest.raises(ValueError, match="dense_threshold"):
        FeatureDensity(d_sae=4, dense_threshold=1.5)
    with pytest.raises(ValueError, match="d_sae"):
        FeatureDensity(d_sae=0)
