"""TopK SAE (Gao et al. 2024, arXiv:2406.04093)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from saelight.sae.base import SAEOutput
from saelight.sae.kernels import SparseCodes, decode_codes, use_sparse
from saelight.sae.topk_family import (
    AUX_K,
    AUX_K_COEFFICIENT,
    AUX_K_ROWS,
    TopKFamilySAE,
    resolve_k,
)


class TopKSAE(TopKFamilySAE):
    """z = TopK_k(ReLU((s·x - b_dec) W_enc + b_enc)). Gao et al. 2024, arXiv:2406.04093.

    Every sample keeps exactly its k largest activations (fewer only if fewer are positive).
    `aux_loss` is AuxK (see `TopKFamilySAE.auxk_loss`). The paper preset of saelight is
    `decoder_bias=False, unit_norm_decoder=False, encoder_init_from_decoder=False,
    b_dec_init="zeros", aux_k_coefficient=0`.
    """

    architecture = "topk"

    def __init__(
        self,
        d_in: int,
        d_sae: int = 2048,
        k: int | None = None,
        sparsity: float | None = None,
        aux_k: int = AUX_K,
        aux_k_coefficient: float = AUX_K_COEFFICIENT,
        aux_k_rows: int | None = AUX_K_ROWS,
        sparse: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Builds a TopK SAE.

        Args:
            d_in: width of the activations.
            d_sae: number of latents.
            k: active latents per sample; give exactly one of `k` and `sparsity`.
            sparsity: fraction of inactive latents, k = int((1 - sparsity) * d_sae).
            aux_k: dead latents used by the AuxK loss (Gao et al. use 512 at d_sae 2^15+).
            aux_k_coefficient: AuxK weight α (Gao et al.: 1/32); 0 disables AuxK.
            aux_k_rows: rows of each batch AuxK reconstructs (evenly spaced); None = all.
            sparse: sparse decoder and sparse backward (kernels.sparse_ops); None = auto,
                on when k / d_sae <= `SPARSE_AUTO_MAX_DENSITY` (1/64).
            **kwargs: the common switches of `SAE` (decoder_bias, unit_norm_decoder,
                encoder_init_from_decoder, b_dec_init, normalize_input).
        """
        super().__init__(d_in, d_sae, **kwargs)
        self.k = resolve_k(k, sparsity, d_sae)
        configured = {} if sparsity is None else {self.k: sparsity}
        self._init_topk_family(aux_k, aux_k_coefficient, aux_k_rows, sparse, configured)

    def forward(self, x: Tensor, dead_mask: Tensor | None = None) -> SAEOutput:
        """x: (batch, d_in) -> SAEOutput with AuxK as `aux_loss` (0 when `dead_mask` is None)."""
        k = self.active_k
        sparse = use_sparse(self.sparse, k, self.d_sae, x.shape[0])
        x_n = self.normalize(x)
        vals, _, p, z_pre = self.select_topk(x_n, k, sparse)
        x_hat = decode_codes(vals, self.W_dec, p, sparse) + self.b_dec
        aux = self.auxk_loss(x_n, z_pre, x_hat, dead_mask, sparse)
        return SAEOutput(self.denormalize(x_hat), None, aux, SparseCodes(vals, p))
