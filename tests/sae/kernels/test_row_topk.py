"""The sparse path's row top-n: torch.topk's entries wherever they are non-negative."""

from __future__ import annotations

import pytest
import torch

from saelight.sae.kernels.row_topk import GROUP, row_topk_indices


def sorted_values(z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    return z.gather(1, idx).float().sort(-1).values


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
@pytest.mark.parametrize(("d", "n"), [(6144, 40), (2048, 28), (512, 13), (4096, 8), (300, 5)])
def test_non_negative_rows_match_torch_topk(d: int, n: int, dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(d + n)
    z = (torch.randn(50, d, generator=g).abs() + 0.01).to(dtype)
    z[0, 2 * GROUP : 3 * GROUP] += 50  # a row's best side by side
    z[1, :: max(1, d // n)] += 50  # spread over the row
    z[2, 5 :: d // GROUP] += 50  # one strided group (entries 5, 5 + d/16, ...) holds them all
    idx = row_topk_indices(z, n)
    assert idx.shape == (50, n) and int(idx.unique(dim=1).shape[1]) == n
    ref = z.topk(n, dim=-1).indices
    torch.testing.assert_close(sorted_values(z, idx), sorted_values(z, ref), rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_negative_entries_rank_below_every_non_negative_one(dtype: torch.dtype) -> None:
    g = torch.Generator().manual_seed(0)
    z = (-torch.rand(20, 1024, generator=g) - 0.5).to(dtype)
    positive = torch.randperm(1024, generator=g)[:7]
    z[:, positive] = torch.rand(20, 7, generator=g).to(dtype)
    z[:, positive[0]] = 0.0  # zero counts as non-negative
    idx = row_topk_indices(z, 12)
    for row in idx:
        assert set(positive.tolist()) <= set(row.tolist())
    assert bool((z.gather(1, idx) < 0).sum(1).eq(5).all())
