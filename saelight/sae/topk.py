"""TopK SAE (Gao et al. 2024, arXiv:2406.04093), plus the k validation and AuxK loss its family
(BatchTopK, HierarchicalTopK) shares."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.sae.base import SAE, SAEOutput
from saelight.sae.sparse_ops import (
    SparseCodes,
    decode_codes,
    dense_codes,
    gather_codes,
    pattern_from_topk,
    sparse_topk_codes,
    use_sparse,
)


def resolve_k(k: int | None, sparsity: float | None, d_sae: int, field: str = "k") -> int:
    """Exactly one of `k` or `sparsity` (k = int((1 - sparsity) * d_sae)); 1 <= k <= d_sae."""
    if sparsity is not None and k is None:
        if not 0 <= sparsity < 1:
            raise ValueError(f"`sparsity` must be in [0, 1), got {sparsity}")
        k = int((1 - sparsity) * d_sae)
        field = f"{field} = int((1 - sparsity) * d_sae)"
    elif k is None or sparsity is not None:
        raise ValueError(
            f"give exactly one of `{field}` or `sparsity`, got {field}={k}, sparsity={sparsity}"
        )
    if not 1 <= k <= d_sae:
        raise ValueError(f"`{field}` must be in [1, d_sae={d_sae}], got {k}")
    return k


def check_aux_k(aux_k: int, aux_k_coefficient: float) -> None:
    """ValueError unless both AuxK settings are >= 0."""
    if aux_k < 0 or aux_k_coefficient < 0:
        raise ValueError(
            f"aux_k and aux_k_coefficient must be >= 0, got {aux_k} and {aux_k_coefficient}"
        )


def topk_codes(z_pre: Tensor, k: int) -> Tensor:
    """z_pre: (batch, d_sae) -> dense TopK_k(ReLU(z_pre)), (batch, d_sae)."""
    vals, idx = z_pre.topk(k, dim=-1, sorted=False)
    return dense_codes(F.relu(vals).view(-1), pattern_from_topk(idx, z_pre.shape[1]))


def auxk_loss(
    sae: Any,
    x_n: Tensor,
    z_pre: Tensor | None,
    x_hat: Tensor,
    dead_mask: Tensor | None,
    sparse: bool,
) -> Tensor:
    """AuxK (Gao et al. 2024, App. B.1) for an SAE with `aux_k` and `aux_k_coefficient`.

    The top-`aux_k` ReLU pre-activations among dead latents reconstruct the residual
    e = x - x_hat (detached): ê = Σ z_aux W_dec (no bias). Gao weights mse(ê, e)/var(e) against
    the main loss mse(x_hat, x)/var(x); the trainer's main loss is the un-normalised mse, so this
    returns α · mse(ê, e) · var(x)/var(e) (ratio detached; var = mean over dims of the batch
    variance), times `loss_scale`. Exactly 0 when `dead_mask` is None or has no True entry.

    Args:
        sae: the TopK-family SAE (its weights, `aux_k`, `aux_k_coefficient`, `loss_scale`).
        x_n: (batch, d_in) input in the normalised space.
        z_pre: (batch, d_sae) pre-activations (without grad on the sparse path); None is
            allowed on the sparse CPU path, which never reads them.
        x_hat: (batch, d_in) reconstruction in the normalised space.
        dead_mask: (d_sae,) bool, True for dead latents.
        sparse: use the sparse encoder/decoder backward.
    """
    zero = x_n.new_zeros((), dtype=torch.float32)
    if dead_mask is None or sae.aux_k == 0 or sae.aux_k_coefficient == 0:
        return zero
    dead = dead_mask.to(device=x_n.device, dtype=torch.bool)
    # The sparse path gathers batch·aux_k decoder rows, several times the main path's batch·k;
    # on CPU a dense pass over just the dead columns is far cheaper, and listing them (a host
    # read-back) costs nothing there. GPUs keep the sync-free masked top-k.
    on_dead_columns = sparse and dead.device.type == "cpu"
    if z_pre is None and not on_dead_columns:
        raise ValueError("AuxK needs the dense pre-activations off the sparse CPU path")
    e_hat = auxk_reconstruction(sae, x_n, z_pre, dead, sparse, on_dead_columns)
    if e_hat is None:
        return zero
    with torch.no_grad():
        x, e = x_n.float(), (x_n - x_hat).float()
        var_x = (x - x.mean(0)).square().mean()
        var_e = (e - e.mean(0)).square().mean().clamp_min(torch.finfo(e.dtype).tiny)
    loss = F.mse_loss(e_hat.float(), e) * (var_x / var_e)
    return sae.aux_k_coefficient * dead.any() * loss * sae.loss_scale


def auxk_reconstruction(
    sae: Any, x_n: Tensor, z_pre: Tensor | None, dead: Tensor, sparse: bool, on_dead_columns: bool
) -> Tensor | None:
    """ê = Σ ReLU(z_aux) W_dec over the top-aux_k dead latents of each sample: (batch, d_in).

    `on_dead_columns` recomputes the dead latents' pre-activations densely (reads the number of
    dead latents back to the host; returns None when there are none); otherwise the masked top-k
    of `z_pre` goes through the sparse or dense path like the main codes.
    """
    k_aux = min(sae.aux_k, sae.d_sae)
    if on_dead_columns:
        cols = dead.nonzero().squeeze(1)
        if cols.numel() == 0:
            return None
        z_dead = torch.addmm(sae.b_enc[cols], x_n - sae.b_dec, sae.W_enc[:, cols])
        if cols.numel() > k_aux:
            vals, idx = z_dead.topk(k_aux, dim=-1, sorted=False)
            z_dead = dense_codes(vals.reshape(-1), pattern_from_topk(idx, cols.numel()))
        return F.relu(z_dead) @ sae.W_dec[cols]
    assert z_pre is not None
    with torch.no_grad():
        masked = z_pre.detach().masked_fill(~dead, float("-inf"))
        idx = masked.topk(k_aux, dim=-1, sorted=False).indices
    p = pattern_from_topk(idx, sae.d_sae, transpose=sparse)
    vals = gather_codes(z_pre, p, sparse, x_n, sae.b_dec, sae.W_enc, sae.b_enc)
    # Fewer dead latents than aux_k: the filler entries are live ones, zeroed here.
    return decode_codes(vals * dead[p.cols], sae.W_dec, p, sparse)


class TopKSAE(SAE):
    """z = TopK_k(ReLU((s·x - b_dec) W_enc + b_enc)). Gao et al. 2024, arXiv:2406.04093.

    Every sample keeps exactly its k largest activations (fewer only if fewer are positive).
    `aux_loss` is AuxK (see `auxk_loss`). The paper preset of saelight is `decoder_bias=False,
    unit_norm_decoder=False, encoder_init_from_decoder=False, b_dec_init="zeros",
    aux_k_coefficient=0`.
    """

    architecture = "topk"
    sparsity_attr = "k"

    def __init__(
        self,
        d_in: int,
        d_sae: int = 2048,
        k: int | None = None,
        sparsity: float | None = None,
        aux_k: int = 256,
        aux_k_coefficient: float = 1 / 32,
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
            sparse: sparse decoder and sparse backward (saelight.sae.sparse_ops); None = auto,
                on when k / d_sae <= `SPARSE_AUTO_MAX_DENSITY` (1/64).
            **kwargs: the common switches of `SAE` (decoder_bias, unit_norm_decoder,
                encoder_init_from_decoder, b_dec_init, normalize_input).
        """
        super().__init__(d_in, d_sae, **kwargs)
        self.k = resolve_k(k, sparsity, d_sae)
        check_aux_k(aux_k, aux_k_coefficient)
        self.aux_k, self.aux_k_coefficient, self.sparse = aux_k, aux_k_coefficient, sparse

    def activate(self, z_pre: Tensor) -> Tensor:
        return topk_codes(z_pre, min(self.k, self.d_sae))

    def forward(self, x: Tensor, dead_mask: Tensor | None = None) -> SAEOutput:
        """x: (batch, d_in) -> SAEOutput with AuxK as `aux_loss` (0 when `dead_mask` is None)."""
        k = min(self.k, self.d_sae)  # an annealing schedule may start above d_sae
        sparse = use_sparse(self.sparse, k, self.d_sae)
        x_n = self.normalize(x)
        if sparse:
            vals, _, p, z_pre = sparse_topk_codes(x_n, self.b_dec, self.W_enc, self.b_enc, k)
        else:
            z_pre = self.pre_activation(x_n - self.b_dec)
            idx = z_pre.detach().topk(k, dim=-1, sorted=False).indices
            p = pattern_from_topk(idx, self.d_sae)
            vals = gather_codes(z_pre, p, False, x_n, self.b_dec, self.W_enc, self.b_enc)
        x_hat = decode_codes(vals, self.W_dec, p, sparse) + self.b_dec
        aux = auxk_loss(self, x_n, z_pre, x_hat, dead_mask, sparse)
        return SAEOutput(self.denormalize(x_hat), None, aux, SparseCodes(vals, p))
