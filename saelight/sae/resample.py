"""Re-initialising dead latents on the inputs the SAE reconstructs worst (Bricken et al. 2023).

AuxK only gives dead latents a gradient; at high sparsity with few training rows most of them
never win a top-k slot again. A resampled latent starts as the direction of a residual the SAE
misses, so it fires on that input's neighbourhood at once and is trained by the main loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.sae.base import SAE

RESIDUAL_ROWS = 256
"""Rows whose residuals are computed at once (their dense codes: 256 · d_sae floats)."""
LATENT_AXIS = {"W_enc": 1, "W_dec": 0, "b_enc": 0}
"""The axis along which each resampled parameter holds one entry per latent."""


@torch.no_grad()
def resample_dead_latents(
    sae: SAE,
    x: Tensor,
    dead: Tensor,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator,
) -> int:
    """Re-initialises the latents `dead` marks from the residuals of batch `x`.

    Each dead latent j draws a row r of `x` with probability ∝ ‖e_r‖², e = s·x − s·x̂ (the
    residual in the normalised space), and becomes u = e_r/‖e_r‖: W_dec[j] = u (times the mean
    live decoder-row norm when rows are not unit-norm), W_enc[:, j] = u · mean live encoder
    column norm, b_enc[j] = 0. Bricken et al. shrink the encoder by 0.2 for an L1 SAE; a TopK
    latent that small would not enter the top k and stay dead. The optimiser's per-entry state
    (Adam's moments) of those latents restarts at 0.

    Args:
        sae: the SAE, changed in place.
        x: (batch, d_in) raw activations, the same on every rank.
        dead: (d_sae,) bool, True for the latents to re-initialise.
        optimizer: holds the SAE's parameters; None leaves optimiser state alone.
        generator: draws the rows (seeded by the caller, so a resumed run draws the same).

    Returns:
        The number of latents re-initialised (0 when none is dead or x is reconstructed exactly).
    """
    latents = dead.nonzero().squeeze(1)
    if latents.numel() == 0:
        return 0
    x = x.float()
    # In blocks of rows: the dense codes of a whole frame-level batch at d_sae 65k would be 1 GB.
    residual = torch.cat(
        [
            sae.normalize(part) - sae.decode_normalized(sae.encode(part)).float()
            for part in x.split(RESIDUAL_ROWS)
        ]
    )
    weight = residual.square().sum(1)
    if not bool(weight.sum() > 0):
        return 0
    n = latents.numel()
    rows = torch.multinomial(weight, n, replacement=n > weight.numel(), generator=generator)
    u = F.normalize(residual[rows], dim=1)
    live = ~dead
    any_live = bool(live.any())
    enc_norm = sae.W_enc[:, live].norm(dim=0).mean() if any_live else 1.0
    dec_norm = 1.0
    if not sae.unit_norm_decoder and any_live:
        dec_norm = sae.W_dec[live].norm(dim=1).mean()
    sae.W_dec[latents] = (u * dec_norm).to(sae.W_dec.dtype)
    sae.W_enc[:, latents] = (u.T * enc_norm).to(sae.W_enc.dtype)
    sae.b_enc[latents] = 0
    if optimizer is not None:
        reset_optimizer_state(sae, latents, optimizer)
    return n


def reset_optimizer_state(sae: SAE, latents: Tensor, optimizer: torch.optim.Optimizer) -> None:
    """Zeroes every per-entry state tensor (Adam's exp_avg, exp_avg_sq, ...) of `latents`."""
    for name, axis in LATENT_AXIS.items():
        param = getattr(sae, name)
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, Tensor) and value.shape == param.shape:
                value.index_fill_(axis, latents.to(value.device), 0)
