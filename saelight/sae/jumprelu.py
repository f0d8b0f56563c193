"""JumpReLU SAE (Rajamanoharan et al. 2024, "Jumping Ahead", arXiv:2407.14435)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from saelight.sae.base import SAE


def _rectangle(u: Tensor) -> Tensor:
    """K(u) = 1 if -1/2 < u < 1/2 else 0, the paper's kernel."""
    return ((u > -0.5) & (u < 0.5)).to(u.dtype)


class _JumpReLU(torch.autograd.Function):
    """z · H(z - θ); ∂/∂z = H(z - θ), ∂/∂θ = -(θ/ε) K((z - θ)/ε) (paper eq. 11)."""

    @staticmethod
    def forward(ctx, z_pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(z_pre, threshold)
        ctx.bandwidth = bandwidth
        return z_pre * (z_pre > threshold)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z_pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        grad_z = grad * (z_pre > threshold)
        kernel = _rectangle((z_pre.float() - threshold) / eps)
        grad_t = (grad.float() * kernel).sum(0) * (-threshold / eps)
        return grad_z, grad_t, None


class _Step(torch.autograd.Function):
    """H(z - θ); ∂/∂z = 0, ∂/∂θ = -(1/ε) K((z - θ)/ε) (paper eq. 12)."""

    @staticmethod
    def forward(ctx, z_pre: Tensor, threshold: Tensor, bandwidth: float) -> Tensor:
        ctx.save_for_backward(z_pre, threshold)
        ctx.bandwidth = bandwidth
        return (z_pre > threshold).to(z_pre.dtype)

    @staticmethod
    def backward(ctx, grad: Tensor):
        z_pre, threshold = ctx.saved_tensors
        eps = ctx.bandwidth
        kernel = _rectangle((z_pre.float() - threshold) / eps)
        return None, (grad.float() * kernel).sum(0) / -eps, None


class JumpReLUSAE(SAE):
    """z = JumpReLU_θ(z_pre) = z_pre · H(z_pre - θ), θ = exp(log_threshold) learned per latent.

    Trained with the L0 penalty aux_loss = l0_coefficient · mean_b Σ_i H(z_pre,bi - θ_i); the
    Heaviside step has zero gradient, so θ is trained through straight-through estimators with a
    rectangle kernel of width `bandwidth` (ε) around the threshold. Defaults follow SAELens
    (θ₀ = 0.01, ε = 0.05); SAELens' l0_coefficient 1 on a loss summed over dims is ≈ 1/d_in here.
    The export stores `threshold` (SAELens naming), not its log.
    """

    architecture = "jumprelu"
    sparsity_attr = "l0_coefficient"
    saelens_architecture = "jumprelu"

    def __init__(
        self,
        d_in: int,
        d_sae: int = 2048,
        l0_coefficient: float = 1e-3,
        threshold_init: float = 0.01,
        bandwidth: float = 0.05,
        **kwargs: Any,
    ) -> None:
        """Builds a JumpReLU SAE.

        Args:
            d_in: width of the activations.
            d_sae: number of latents.
            l0_coefficient: weight of the L0 penalty (the value a sparsity schedule warms up).
            threshold_init: initial θ of every latent, > 0.
            bandwidth: width ε of the rectangle kernel of the straight-through estimators, > 0.
            **kwargs: the common switches of `SAE`.
        """
        super().__init__(d_in, d_sae, **kwargs)
        if threshold_init <= 0 or bandwidth <= 0 or l0_coefficient < 0:
            raise ValueError(
                "need threshold_init > 0, bandwidth > 0, l0_coefficient >= 0; got "
                f"{threshold_init}, {bandwidth}, {l0_coefficient}"
            )
        self.l0_coefficient = l0_coefficient
        self.threshold_init, self.bandwidth = threshold_init, bandwidth
        self.log_threshold = nn.Parameter(torch.full((d_sae,), math.log(threshold_init)))

    @property
    def threshold(self) -> Tensor:
        """θ: (d_sae,)."""
        return self.log_threshold.exp()

    def activate(self, z_pre: Tensor) -> Tensor:
        return _JumpReLU.apply(z_pre, self.threshold, self.bandwidth)

    def aux_loss(self, z_pre: Tensor, z: Tensor) -> Tensor:
        """l0_coefficient · mean_b Σ_i H(z_pre,bi - θ_i), times `loss_scale`."""
        l0 = _Step.apply(z_pre, self.threshold, self.bandwidth).float().sum(dim=-1).mean()
        return self.l0_coefficient * l0 * self.loss_scale

    def export_state(self) -> dict[str, Tensor]:
        state = super().export_state()
        state["threshold"] = state.pop("log_threshold").exp()
        return state

    def import_state(self, tensors: dict[str, Tensor]) -> None:
        tensors = dict(tensors)
        tensors["log_threshold"] = tensors.pop("threshold").log()
        super().import_state(tensors)
