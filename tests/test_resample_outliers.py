"""Dead-latent resampling on planted massive activations (issue 24): normal rows plus rows 20x
the median norm at two fixed frame positions, as in Whisper-base layer 5. With the library
defaults (SAEModule's, TopK at k/d_sae = 1 %) the SAE must still reconstruct the normal rows;
the former resampling (∝ ‖residual‖², with replacement) ended at held-out FVU 34-154 here."""

from __future__ import annotations

import functools

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from saelight.data.batches import TensorBatches
from saelight.metrics.reconstruction import fvu
from saelight.module import SAEModule
from saelight.sae import TopKSAE

D_IN, FRAMES, MASSIVE_AT, MULTIPLE = 64, 64, (5, 6), 20.0


def planted(clips: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(clips · FRAMES, D_IN) rows: 3 of 96 atoms each, an offset, and at frames MASSIVE_AT one
    dimension MULTIPLE x the normal rows' median norm; returns the rows and the outlier mask."""
    g = torch.Generator().manual_seed(seed)
    atoms = F.normalize(torch.randn(96, D_IN, generator=torch.Generator().manual_seed(99)), dim=1)
    n = clips * FRAMES
    pick = torch.rand(n, 96, generator=g).argsort(1)[:, :3]
    codes = torch.zeros(n, 96).scatter_(1, pick, torch.rand(n, 3, generator=g) * 2 + 0.5)
    x = codes @ atoms + 0.05 * torch.randn(n, D_IN, generator=g) + 1.0
    outlier = torch.isin(torch.arange(n) % FRAMES, torch.tensor(MASSIVE_AT))
    median = x[~outlier].norm(dim=1).median()
    x[outlier, 7] += MULTIPLE * median
    x[outlier] += 0.5 * torch.randn(int(outlier.sum()), D_IN, generator=g)
    return x, outlier


@pytest.mark.slow  # 500 steps of a 2048-latent SAE: ~50 s of CPU
def test_massive_activations_do_not_blow_up_resampling() -> None:
    L.seed_everything(0, verbose=False)
    x, _ = planted(200, seed=0)
    x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(1))]
    module = SAEModule([functools.partial(TopKSAE, d_sae=2048)], sparsities=[0.99], d_in=D_IN)
    trainer = L.Trainer(
        max_epochs=5,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(module, DataLoader(TensorBatches(x, 128), batch_size=None, shuffle=True))
    (sae,) = module.saes.values()
    assert sae.k == 20
    held_out, outlier = planted(50, seed=100)
    normal = held_out[~outlier]
    with torch.no_grad():
        assert float(fvu(normal, sae.decode(sae.encode(normal)))) < 1.0
