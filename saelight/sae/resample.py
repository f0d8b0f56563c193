"""Re-initialising dead latents on the inputs the SAE reconstructs worst (Bricken et al. 2023).

AuxK only gives dead latents a gradient; at high sparsity with few training rows most of them
never win a top-k slot again. A resampled latent starts as the direction of a residual the SAE
misses, so it fires on that input's neighbourhood at once and is trained by the main loss.

Drawing ∝ ‖residual‖² with replacement, as in the original recipe, breaks on real activations:
transformers hold "massive activations" at a few fixed positions (Whisper-base layer 5: row
norms 20x the median), whose residuals take nearly every draw, so dozens of latents get one
direction, fire together on those rows and the reconstruction overshoots (held-out FVU 159 on
Whisper, 34-154 on planted data, see tests/sae/test_resample_outliers.py). Here rows whose norm
exceeds `MAX_NORM_MULTIPLE` × the batch median are never drawn (dictionary_learning's
`max_activation_norm_multiple`), rows are drawn without replacement, and a direction within
`MAX_COSINE` of another new or live latent is skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.io.defaults import OUTLIER_NORM_MULTIPLE
from saelight.sae.base import SAE

RESIDUAL_ROWS = 256
"""Rows whose residuals are computed at once (their dense codes: 256 · d_sae floats)."""
LATENT_AXIS = {"W_enc": 1, "W_dec": 0, "b_enc": 0}
"""The axis along which each resampled parameter holds one entry per latent."""
MAX_NORM_MULTIPLE = OUTLIER_NORM_MULTIPLE
"""A row whose centred norm ‖s·x − b_dec‖ exceeds this multiple of the batch median never seeds
a latent (massive activations)."""
MAX_COSINE = 0.9
"""A candidate direction whose |cos| with a live or another new latent exceeds this is skipped."""
SPARE_DRAWS = 64
"""Candidates drawn beyond twice the dead count, so that skipped near-duplicates can be replaced."""
ENCODER_SCALE = 0.2
"""New encoder column norm / mean live encoder column norm (Bricken et al.'s 0.2). On planted
massive activations (tests/test_resample_outliers.py's data) 1.0 blew the loss up to 590x its
low (a new latent's full-size encoder fires hardest on the massive rows) and ended at FVU 0.81 on
the normal rows, 0.5 spiked 120x once and ended at 0.11, 0.2 never passed 5.5x and ended at 0.16."""
DECODER_BLOCK = 8192
"""Decoder rows compared with the candidates at once (a (candidates, block) matrix)."""


def residuals(sae: SAE, x: Tensor) -> Tensor:
    """x: (batch, d_in) raw -> e = s·x − s·x̂: (batch, d_in), in the normalised space.

    In blocks of rows: the dense codes of a whole frame-level batch at d_sae 65k would be 1 GB.
    """
    return torch.cat(
        [
            sae.normalize(part) - sae.decode_normalized(sae.encode(part)).float()
            for part in x.split(RESIDUAL_ROWS)
        ]
    )


def candidate_rows(
    sae: SAE, x: Tensor, residual: Tensor, n: int, generator: torch.Generator
) -> Tensor:
    """Up to 2n + `SPARE_DRAWS` distinct row indices of x, in draw order.

    Row r is eligible when ‖e_r‖ > 0 and ‖s·x_r − b_dec‖ ≤ `MAX_NORM_MULTIPLE` · median_r′; the
    eligible rows are drawn without replacement with probability ∝ ‖e_r‖² (Bricken et al.).
    At least half the batch is eligible unless its residuals vanish (the median bounds half).
    """
    weight = residual.square().sum(1)
    norm = (sae.normalize(x) - sae.b_dec.float()).norm(dim=1)
    eligible = (weight > 0) & (norm <= MAX_NORM_MULTIPLE * norm.median())
    weight = torch.where(eligible, weight, torch.zeros_like(weight))
    count = int(eligible.sum())
    if count == 0:
        return torch.zeros(0, dtype=torch.long, device=x.device)
    draws = min(count, 2 * n + SPARE_DRAWS)
    return torch.multinomial(weight, draws, replacement=False, generator=generator)


def distinct_directions(u: Tensor, taken: Tensor, n: int) -> Tensor:
    """Indices of at most n rows of u: (m, d_in) unit, in order, none within `MAX_COSINE`.

    A row is kept when |cos| ≤ MAX_COSINE with every row of `taken`: (t, d_in) (the live
    latents' decoder directions) and with every earlier row of u. Comparing with every earlier
    row, kept or not, makes this one matrix product instead of a loop; it may skip a few more.
    """
    near = torch.zeros(u.shape[0], dtype=torch.bool, device=u.device)
    for block in taken.split(DECODER_BLOCK) if taken.shape[0] else ():
        near |= (u @ block.T).abs().amax(1) > MAX_COSINE
    earlier = (u @ u.T).abs().tril(diagonal=-1)
    near |= (earlier > MAX_COSINE).any(1)
    return (~near).nonzero().squeeze(1)[:n]


@torch.no_grad()
def resample_dead_latents(
    sae: SAE,
    x: Tensor,
    dead: Tensor,
    optimizer: torch.optim.Optimizer | None,
    generator: torch.Generator,
) -> int:
    """Re-initialises the latents `dead` marks from the residuals of batch `x`.

    Candidate rows r of x are drawn as in `candidate_rows` (no outliers, no repeats,
    ∝ ‖e_r‖², e = s·x − s·x̂), and kept as in `distinct_directions` (no two latents within
    `MAX_COSINE`). The i-th dead latent j (in index order) with a kept direction u = e_r/‖e_r‖
    becomes W_dec[j] = u (times the mean live decoder-row norm when rows are not unit-norm),
    W_enc[:, j] = u · mean live encoder column norm · `ENCODER_SCALE`, b_enc[j] = 0: a new
    latent points like a live one and starts small, so it enters the top k on rows close to its
    direction but cannot swamp a row far from it. The optimiser's per-entry state (Adam's
    moments) of those latents restarts at 0. Dead latents beyond the kept directions stay as
    they are, to be drawn from a later batch.

    Args:
        sae: the SAE, changed in place.
        x: (batch, d_in) raw activations, the same on every rank.
        dead: (d_sae,) bool, True for the latents to re-initialise.
        optimizer: holds the SAE's parameters; None leaves optimiser state alone.
        generator: draws the rows (seeded by the caller, so a resumed run draws the same).

    Returns:
        n, the number of latents re-initialised: the first n of `dead.nonzero()` (0 when none
        is dead or x is reconstructed exactly).
    """
    latents = dead.nonzero().squeeze(1)
    if latents.numel() == 0:
        return 0
    x = x.float()
    residual = residuals(sae, x)
    rows = candidate_rows(sae, x, residual, latents.numel(), generator)
    if rows.numel() == 0:
        return 0
    live = ~dead
    u = F.normalize(residual[rows], dim=1)
    u = u[distinct_directions(u, F.normalize(sae.W_dec[live].float(), dim=1), latents.numel())]
    latents = latents[: u.shape[0]]
    any_live = bool(live.any())
    enc_norm = sae.W_enc[:, live].norm(dim=0).mean() if any_live else 1.0
    dec_norm = 1.0
    if not sae.unit_norm_decoder and any_live:
        dec_norm = sae.W_dec[live].norm(dim=1).mean()
    sae.W_dec[latents] = (u * dec_norm).to(sae.W_dec.dtype)
    sae.W_enc[:, latents] = (u.T * enc_norm * ENCODER_SCALE).to(sae.W_enc.dtype)
    sae.b_enc[latents] = 0
    if optimizer is not None:
        reset_optimizer_state(sae, latents, optimizer)
    return int(latents.numel())


def reset_optimizer_state(sae: SAE, latents: Tensor, optimizer: torch.optim.Optimizer) -> None:
    """Zeroes every per-entry state tensor (Adam's exp_avg, exp_avg_sq, ...) of `latents`."""
    for name, axis in LATENT_AXIS.items():
        param = getattr(sae, name)
        for value in optimizer.state.get(param, {}).values():
            if isinstance(value, Tensor) and value.shape == param.shape:
                value.index_fill_(axis, latents.to(value.device), 0)
