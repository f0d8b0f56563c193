"""JumpReLUSAE: thresholded codes, L0 penalty and the straight-through threshold gradients."""

from __future__ import annotations

import math

import pytest
import torch

from saelight.sae import JumpReLUSAE

D_IN, D_SAE = 16, 64


def make(**kwargs) -> JumpReLUSAE:
    torch.manual_seed(0)
    return JumpReLUSAE(D_IN, D_SAE, **kwargs)


def test_threshold_behaviour() -> None:
    sae = make(threshold_init=0.5, l0_coefficient=0.01)
    x = torch.randn(8, D_IN)
    z_pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    out = sae(x)
    torch.testing.assert_close(out.z, torch.where(z_pre > 0.5, z_pre, 0))
    assert ((out.z == 0) | (out.z > 0.5)).all()  # jumps from 0 straight to above θ
    l0 = (z_pre > 0.5).float().sum(1).mean()
    torch.testing.assert_close(out.aux_loss, 0.01 * l0)
    torch.testing.assert_close(sae.encode(x), out.z)


def test_straight_through_gradients() -> None:
    """∂/∂θ of JumpReLU is -(θ/ε)K((z-θ)/ε) and of the step -(1/ε)K((z-θ)/ε) (paper eqs. 11-12)."""
    eps, theta = 0.5, 2.0
    sae = make(bandwidth=eps, l0_coefficient=1.0)
    sae.log_threshold = torch.nn.Parameter(torch.full((5,), math.log(theta)))
    z_pre = torch.tensor([[1.7, 1.9, 2.1, 2.3, 4.0]])
    kernel = torch.tensor([0.0, 1.0, 1.0, 0.0, 0.0])  # |z - θ| < ε/2
    sae.activate(z_pre).sum().backward()
    # d/dlog θ = θ · d/dθ
    torch.testing.assert_close(sae.log_threshold.grad, theta * -(theta / eps) * kernel)
    sae.log_threshold.grad = None
    sae.aux_loss(z_pre, z_pre).backward()
    torch.testing.assert_close(sae.log_threshold.grad, theta * -(1 / eps) * kernel)
    z = z_pre.clone().requires_grad_()
    sae.activate(z).sum().backward()
    torch.testing.assert_close(z.grad, (z_pre > theta).float())


def test_export_stores_threshold(tmp_path) -> None:
    from safetensors.torch import load_file

    sae = make(threshold_init=0.25)
    sae.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "sae_weights.safetensors"))
    torch.testing.assert_close(weights["threshold"], torch.full((D_SAE,), 0.25))
    assert "log_threshold" not in weights


@pytest.mark.parametrize("kwargs", [{"threshold_init": 0.0}, {"bandwidth": -1.0}])
def test_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="threshold_init > 0"):
        make(**kwargs)
