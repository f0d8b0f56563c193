import math

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_squared_error, r2_score

from saelight.metrics.reconstruction import (
    FVU,
    MSE,
    CosineSimilarity,
    cosine_similarity,
    fvu,
    mse,
)

X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
X_HAT = torch.tensor([[1.0, 0.0], [3.0, 5.0]])


def test_hand_computed() -> None:
    # Squared errors 0, 4, 0, 1; per-dim means (2, 3) give total variance 1 + 1 + 1 + 1.
    torch.testing.assert_close(mse(X, X_HAT), torch.tensor(5 / 4))
    torch.testing.assert_close(fvu(X, X_HAT), torch.tensor(5 / 4))
    cos = (1 / math.sqrt(5) + 29 / (5 * math.sqrt(34))) / 2
    torch.testing.assert_close(cosine_similarity(X, X_HAT), torch.tensor(cos))


def _data(seed: int = 0, mean: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = mean + torch.randn(37, 5, 16, generator=g)  # (batch, time, d_in): rows are frames
    return x, x + 0.3 * torch.randn(x.shape, generator=g)


def _reference(x: torch.Tensor, x_hat: torch.Tensor) -> dict[str, float]:
    a = x.reshape(-1, x.shape[-1]).double().numpy()
    b = x_hat.reshape(-1, x.shape[-1]).double().numpy()
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    return {
        "mse": mean_squared_error(a, b),
        # 1 - variance-weighted R² = Σ SSE / Σ SST with per-dimension means.
        "fvu": 1 - r2_score(a, b, multioutput="variance_weighted"),
        "cos": cos.mean(),
    }


@pytest.mark.parametrize("mean", [0.0, 1000.0])  # a large mean would break float32 sums
def test_streamed_equals_one_shot_equals_sklearn(mean: float) -> None:
    x, x_hat = _data(mean=mean)
    ref = _reference(x, x_hat)
    metrics = {
        "mse": (MSE(), mse),
        "fvu": (FVU(), fvu),
        "cos": (CosineSimilarity(), cosine_similarity),
    }
    for name, (metric, fn) in metrics.items():
        for xb, xb_hat in zip(x.split(10), x_hat.split(10), strict=True):  # last batch is short
            metric.update(xb, xb_hat)
        expected = torch.tensor(ref[name], dtype=torch.float32)
        torch.testing.assert_close(metric.compute(), expected, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(fn(x, x_hat), expected, rtol=1e-5, atol=1e-6)


def test_merged_states_equal_one_shot() -> None:
    """What a DDP all-reduce does: sum the states of two ranks."""
    x, x_hat = _data(seed=1)
    for cls, fn in ((MSE, mse), (FVU, fvu), (CosineSimilarity, cosine_similarity)):
        rank0, rank1 = cls(), cls()
        rank0.update(x[:20], x_hat[:20])
        rank1.update(x[20:], x_hat[20:])
        rank0.merge_state(rank1)
        torch.testing.assert_close(rank0.compute(), fn(x, x_hat))


def test_forward_returns_batch_value_and_accumulates() -> None:
    x, x_hat = _data(seed=2)
    metric = FVU()
    torch.testing.assert_close(metric(x[:10], x_hat[:10]), fvu(x[:10], x_hat[:10]))
    metric(x[10:], x_hat[10:])
    torch.testing.assert_close(metric.compute(), fvu(x, x_hat))
    metric.reset()
    metric.update(x[:3], x_hat[:3])
    torch.testing.assert_close(metric.compute(), fvu(x[:3], x_hat[:3]))


def test_perfect_and_mean_reconstruction() -> None:
    x, _ = _data(seed=3)
    torch.testing.assert_close(fvu(x, x), torch.tensor(0.0))
    mean = x.reshape(-1, 16).mean(0).expand_as(x)
    torch.testing.assert_close(fvu(x, mean), torch.tensor(1.0))
    torch.testing.assert_close(cosine_similarity(x, 2 * x), torch.tensor(1.0))


def test_bad_shapes() -> None:
    with pytest.raises(ValueError, match="same shape"):
        mse(torch.zeros(2, 3), torch.zeros(2, 4))
    metric = FVU()
    metric.update(torch.zeros(2, 3), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="d_in changed"):
        metric.update(torch.zeros(2, 4), torch.zeros(2, 4))
