"""ReLU SAE with an L1 penalty, the "standard" SAE (Bricken et al. 2023; Anthropic, April 2024)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from saelight.sae.base import SAE


class ReLUSAE(SAE):
    """z = ReLU((s·x - b_dec) W_enc + b_enc), trained with the L1 penalty

        aux_loss = l1_coefficient · mean_b Σ_i z_bi · ||W_dec[i]||

    (the decoder-norm factor is `l1_weight_by_decoder_norm`; it stops the penalty being dodged by
    shrinking z and growing W_dec when the decoder is not unit-norm). Anthropic's λ = 5 on a loss
    summed over dims corresponds to l1_coefficient ≈ 5 / d_in here, where the mse is a mean.
    """

    architecture = "relu"
    sparsity_attr = "l1_coefficient"
    saelens_architecture = "standard"

    def __init__(
        self,
        d_in: int,
        d_sae: int = 2048,
        l1_coefficient: float = 5e-3,
        l1_weight_by_decoder_norm: bool = True,
        **kwargs: Any,
    ) -> None:
        """Builds a ReLU SAE.

        Args:
            d_in: width of the activations.
            d_sae: number of latents.
            l1_coefficient: weight of the L1 penalty (the value a sparsity schedule warms up).
            l1_weight_by_decoder_norm: weight each latent's |z| by its decoder row norm.
            **kwargs: the common switches of `SAE`.
        """
        super().__init__(d_in, d_sae, **kwargs)
        if l1_coefficient < 0:
            raise ValueError(f"l1_coefficient must be >= 0, got {l1_coefficient}")
        self.l1_coefficient = l1_coefficient
        self.l1_weight_by_decoder_norm = l1_weight_by_decoder_norm

    def activate(self, z_pre: Tensor) -> Tensor:
        return F.relu(z_pre)

    def aux_loss(self, z_pre: Tensor, z: Tensor) -> Tensor:
        """l1_coefficient · mean_b Σ_i z_bi (· ||W_dec[i]||), times `loss_scale`."""
        weighted = z * self.W_dec.norm(dim=1) if self.l1_weight_by_decoder_norm else z.float()
        return self.l1_coefficient * weighted.sum(dim=-1).mean() * self.loss_scale
