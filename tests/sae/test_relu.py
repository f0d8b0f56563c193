"""ReLUSAE: ReLU codes and the decoder-norm-weighted L1 penalty."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from saelight.sae import ReLUSAE

D_IN, D_SAE = 16, 64


def test_codes_and_l1_penalty_match_reference() -> None:
    torch.manual_seed(0)
    sae = ReLUSAE(D_IN, D_SAE, l1_coefficient=0.1, unit_norm_decoder=False)
    x = torch.randn(8, D_IN)
    out = sae(x)
    z = F.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    torch.testing.assert_close(out.z, z)
    norms = sae.W_dec.norm(dim=1)
    expected = 0.1 * sum(float((z[b] * norms).sum().detach()) for b in range(8)) / 8
    torch.testing.assert_close(out.aux_loss, torch.tensor(expected))
    sae.l1_weight_by_decoder_norm = False
    torch.testing.assert_close(sae(x).aux_loss, 0.1 * z.sum(1).mean())


def test_penalty_is_in_normalised_units() -> None:
    """mse + aux equals the normalised-space loss times 1/s², so λ does not depend on the scale."""
    torch.manual_seed(0)
    x = torch.randn(8, D_IN)
    losses = []
    for scale in (1.0, 100.0):
        torch.manual_seed(0)
        sae = ReLUSAE(D_IN, D_SAE, l1_coefficient=0.1, normalize_input=True)
        sae.initialize_from_data(x * scale)
        out = sae(x * scale)
        losses.append((F.mse_loss(out.x_hat, x * scale) + out.aux_loss) / scale**2)
    torch.testing.assert_close(losses[0], losses[1])
