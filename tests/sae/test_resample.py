"""Dead-latent resampling: each dead latent becomes a residual direction of the batch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from saelight.sae import TopKSAE
from saelight.sae.resample import ENCODER_SCALE, resample_dead_latents

D_IN, D_SAE = 8, 32
DEAD = [0, 5, 7, 30]


def trained() -> tuple[TopKSAE, torch.Tensor, torch.optim.Adam]:
    torch.manual_seed(0)
    sae = TopKSAE(D_IN, D_SAE, k=4)
    x = torch.randn(64, D_IN, generator=torch.Generator().manual_seed(1))
    sae.initialize_from_data(x)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(3):
        opt.zero_grad()
        F.mse_loss(sae(x).x_hat, x).backward()
        opt.step()
    return sae, x, opt


def test_dead_latents_become_unit_residual_directions_and_lose_their_adam_state() -> None:
    sae, x, opt = trained()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[DEAD] = True
    with torch.no_grad():
        codes = torch.zeros(64, D_SAE)
        z_pre = F.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
        top = z_pre.topk(4, dim=-1)
        codes.scatter_(1, top.indices, top.values)
        residual = x - (codes @ sae.W_dec + sae.b_dec)  # by hand: no input scaling by default
    directions = F.normalize(residual, dim=1)
    live_enc_norm = sae.W_enc[:, ~dead].norm(dim=0).mean()
    before = {n: p.detach().clone() for n, p in sae.named_parameters()}
    n = resample_dead_latents(sae, x, dead, opt, torch.Generator().manual_seed(0))
    assert n == len(DEAD)
    for j in DEAD:
        # W_dec[j] is the unit residual of one of the batch's rows
        assert (directions - sae.W_dec[j]).norm(dim=1).min() < 1e-5
        torch.testing.assert_close(sae.W_enc[:, j], sae.W_dec[j] * live_enc_norm * ENCODER_SCALE)
        assert sae.b_enc[j] == 0
    live = ~dead
    torch.testing.assert_close(sae.W_enc[:, live], before["W_enc"][:, live])
    torch.testing.assert_close(sae.W_dec[live], before["W_dec"][live])
    torch.testing.assert_close(sae.b_dec, before["b_dec"])
    for name, axis in (("W_enc", 1), ("W_dec", 0), ("b_enc", 0)):
        state = opt.state[getattr(sae, name)]
        for key in ("exp_avg", "exp_avg_sq"):
            assert state[key].index_select(axis, torch.tensor(DEAD)).abs().sum() == 0
            assert state[key].index_select(axis, live.nonzero().squeeze(1)).abs().sum() > 0


def test_the_generator_decides_the_rows_and_no_dead_latent_changes_nothing() -> None:
    runs = []
    for _ in range(2):
        sae, x, _ = trained()
        dead = torch.zeros(D_SAE, dtype=torch.bool)
        dead[DEAD] = True
        resample_dead_latents(sae, x, dead, None, torch.Generator().manual_seed(3))
        runs.append(sae.W_dec.detach().clone())
    torch.testing.assert_close(runs[0], runs[1])
    sae, x, opt = trained()
    before = sae.W_dec.detach().clone()
    none = torch.zeros(D_SAE, dtype=torch.bool)
    assert resample_dead_latents(sae, x, none, opt, torch.Generator()) == 0
    torch.testing.assert_close(sae.W_dec, before)


def test_a_resampled_latent_is_positive_on_the_row_it_came_from() -> None:
    sae, x, _ = trained()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[DEAD] = True
    with torch.no_grad():
        sae.b_enc[dead] = -1e3  # dead for good before
    assert not (sae.encode(x)[:, dead] > 0).any()
    resample_dead_latents(sae, x, dead, None, torch.Generator().manual_seed(0))
    # Before the top k: at ENCODER_SCALE 0.2 a new latent starts small (it enters the top k as
    # Adam grows it; tests/test_resample_outliers.py trains through that).
    z_pre = sae.pre_activation(sae.center(x))
    assert bool((z_pre[:, dead] > 0).any(0).all())
