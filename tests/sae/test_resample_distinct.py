"""Resampling on a batch of repeated directions and outlier rows: no two latents get one
direction, and a row far above the batch's median norm never seeds a latent."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from saelight.sae import TopKSAE
from saelight.sae.resample import MAX_COSINE, MAX_NORM_MULTIPLE, resample_dead_latents

D_IN, D_SAE = 16, 64


def batch() -> tuple[torch.Tensor, torch.Tensor]:
    """40 rows along 4 directions (scaled copies), 24 noise rows, 8 rows 20x the median norm."""
    g = torch.Generator().manual_seed(123)
    directions = F.normalize(torch.randn(4, D_IN, generator=g), dim=1)
    repeated = directions.repeat(10, 1) * torch.rand(40, 1, generator=g).add(0.5)
    noise = torch.randn(24, D_IN, generator=g) * 0.3
    massive = torch.zeros(8, D_IN)
    massive[:, 3] = 20 * torch.cat([repeated, noise]).norm(dim=1).median()
    return torch.cat([repeated, noise, massive]), massive[0]


def test_no_two_latents_share_a_direction_and_outliers_seed_none() -> None:
    x, massive = batch()
    sae = TopKSAE(D_IN, D_SAE, k=2)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[8:] = True  # 56 dead latents, more than the batch has distinct directions
    before = sae.W_dec.detach().clone()
    n = resample_dead_latents(sae, x, dead, None, torch.Generator().manual_seed(0))
    assert 0 < n < 56
    new = F.normalize(sae.W_dec[dead.nonzero().squeeze(1)[:n]], dim=1)
    kept = F.normalize(torch.cat([sae.W_dec[~dead], new]), dim=1)  # live and new latents
    assert (kept @ kept.T).abs().fill_diagonal_(0).max() <= MAX_COSINE
    assert (new @ F.normalize(massive, dim=0)).abs().max() < 0.9
    assert MAX_NORM_MULTIPLE < 20
    rest = dead.nonzero().squeeze(1)[n:]  # left dead, to be drawn from a later batch
    torch.testing.assert_close(sae.W_dec[rest], before[rest])


def test_repeated_draws_over_batches_never_duplicate() -> None:
    x, _ = batch()
    sae = TopKSAE(D_IN, D_SAE, k=2)
    dead = torch.ones(D_SAE, dtype=torch.bool)
    dead[:4] = False
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        n = resample_dead_latents(sae, x, dead, None, g)
        dead[dead.nonzero().squeeze(1)[:n]] = False
    W = F.normalize(sae.W_dec[~dead], dim=1)
    cos = (W @ W.T).abs().fill_diagonal_(0)
    assert cos.max() <= MAX_COSINE
