"""BatchTopK SAE (Bussmann, Leask & Nanda 2024, arXiv:2412.06410)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from saelight.sae.base import SAEOutput
from saelight.sae.kernels import (
    SparseCodes,
    decode_codes,
    gather_codes,
    pattern_from_flat,
    use_sparse,
)
from saelight.sae.topk_family import (
    AUX_K,
    AUX_K_COEFFICIENT,
    AUX_K_ROWS,
    TopKFamilySAE,
    resolve_k,
)


def batch_topk_indices(z_pre: Tensor, k: int) -> Tensor:
    """z_pre: (batch, d_sae) -> (k·batch,) flat indices of the largest entries of the batch.

    On CPU a top-(k·batch) over the flattened batch runs ~10x slower than the encoder matmul, so
    it is narrowed first: the smallest of the per-sample top-k values is a lower bound on the
    (k·batch)-th largest entry, so the entries above it contain the answer. This reads a count
    back (`nonzero`), which costs nothing on CPU but would synchronise a GPU, where the plain
    flat top-k is fast.
    """
    flat = z_pre.reshape(-1)
    if z_pre.device.type != "cpu":
        return flat.topk(k * z_pre.shape[0], sorted=False).indices
    lower = z_pre.topk(k, dim=-1, sorted=False).values.min()
    candidates = (flat >= lower).nonzero().squeeze(1)
    keep = flat[candidates].topk(k * z_pre.shape[0], sorted=False).indices
    return candidates[keep]


class BatchTopKSAE(TopKFamilySAE):
    """Training: z keeps the k·batch largest ReLU activations of the whole batch (so samples get
    a variable number of latents, k on average). Inference (`encode`): z = z_pre · 1[z_pre > θ]
    with θ the `threshold` buffer, an EMA over training batches of the smallest kept positive
    activation (θ = 0, i.e. plain ReLU, before the first training step). `forward` always uses
    the batch top-k; call `encode`/`decode` for inference. `aux_loss` is AuxK.

    The export stores θ once per latent, as SAELens does when it saves a BatchTopK SAE for
    inference, so SAELens loads it as the JumpReLU SAE that `encode` is.
    """

    architecture = "batchtopk"
    saelens_architecture = "jumprelu"

    def __init__(
        self,
        d_in: int,
        d_sae: int = 2048,
        k: int | None = None,
        sparsity: float | None = None,
        aux_k: int = AUX_K,
        aux_k_coefficient: float = AUX_K_COEFFICIENT,
        aux_k_rows: int | None = AUX_K_ROWS,
        threshold_momentum: float = 0.99,
        sparse: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Builds a BatchTopK SAE.

        Args:
            d_in: width of the activations.
            d_sae: number of latents.
            k: mean active latents per sample; give exactly one of `k` and `sparsity`.
            sparsity: fraction of inactive latents, k = int((1 - sparsity) * d_sae).
            aux_k: dead latents used by the AuxK loss.
            aux_k_coefficient: AuxK weight α; 0 disables AuxK.
            aux_k_rows: rows of each batch AuxK reconstructs (evenly spaced); None = all.
            threshold_momentum: EMA momentum of the inference threshold θ, in [0, 1).
            sparse: sparse decoder and backward; None = auto (k / d_sae <= 1/64).
            **kwargs: the common switches of `SAE`.
        """
        super().__init__(d_in, d_sae, **kwargs)
        self.k = resolve_k(k, sparsity, d_sae)
        if not 0 <= threshold_momentum < 1:
            raise ValueError(f"threshold_momentum must be in [0, 1), got {threshold_momentum}")
        configured = {} if sparsity is None else {self.k: sparsity}
        self._init_topk_family(aux_k, aux_k_coefficient, aux_k_rows, sparse, configured)
        self.threshold_momentum = threshold_momentum
        self.register_buffer("threshold", torch.zeros(()))

    def activate(self, z_pre: Tensor) -> Tensor:
        return z_pre * (z_pre > self.threshold)

    def saelens_fields(self) -> dict[str, Any]:
        return {"k": self.active_k}

    def export_state(self) -> dict[str, Tensor]:
        state = super().export_state()
        state["threshold"] = state["threshold"].expand(self.d_sae).clone()
        return state

    def import_state(self, tensors: dict[str, Tensor]) -> None:
        """Takes θ as a scalar (older exports) or once per latent, then all equal."""
        tensors = dict(tensors)
        theta = tensors["threshold"].reshape(-1)
        if theta.numel() > 1 and not bool((theta == theta[0]).all()):
            raise ValueError("BatchTopKSAE has one threshold θ; the export holds several")
        tensors["threshold"] = theta[0].clone()
        super().import_state(tensors)

    @torch.no_grad()
    def _update_threshold(self, kept: Tensor) -> None:
        """EMA of the smallest positive kept activation; the first update sets θ directly."""
        smallest = torch.where(kept > 0, kept, float("inf")).min().float()
        smallest = torch.where(smallest.isfinite(), smallest, self.threshold)
        ema = self.threshold_momentum * self.threshold + (1 - self.threshold_momentum) * smallest
        self.threshold.copy_(torch.where(self.threshold > 0, ema, smallest))

    def forward(self, x: Tensor, dead_mask: Tensor | None = None) -> SAEOutput:
        """x: (batch, d_in) -> SAEOutput with batch top-k codes; updates θ in training mode."""
        k = self.active_k
        sparse = use_sparse(self.sparse, k, self.d_sae, x.shape[0])
        x_n = self.normalize(x)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not sparse):
            z_pre = self.pre_activation(x_n - self.b_dec)
        flat = batch_topk_indices(z_pre.detach(), k)
        p = pattern_from_flat(flat, x.shape[0], self.d_sae, transpose=sparse)
        vals = gather_codes(z_pre, p, sparse, x_n, self.b_dec, self.W_enc, self.b_enc)
        if self.training:
            self._update_threshold(vals.detach())
        x_hat = decode_codes(vals, self.W_dec, p, sparse) + self.b_dec
        aux = self.auxk_loss(x_n, z_pre, x_hat, dead_mask, sparse)
        return SAEOutput(self.denormalize(x_hat), None, aux, SparseCodes(vals, p))
