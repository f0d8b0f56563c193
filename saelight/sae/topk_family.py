"""What the TopK family (TopK, BatchTopK, HierarchicalTopK) shares: k and its sparsity, AuxK, and
the sparse/dense choice of each sample's top-k codes.

One place, so an architecture of the family states only how it picks its codes, and so the grid,
the evaluation and the export ask the SAE (`target_sparsity`, `identity`) instead of reading `k`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.sae.base import SAE
from saelight.sae.kernels import (
    Pattern,
    compute_dtype,
    decode_codes,
    dense_codes,
    gather_codes,
    pattern_from_topk,
    shortlist_dtype,
    sparse_topk_codes,
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


AUX_K = 256
"""Dead latents AuxK reconstructs the residual with (Gao et al. 2024's k_aux = 512 at d_sae 32k+;
256 keeps its cost small at the widths audio SAEs use)."""
AUX_K_COEFFICIENT = 1 / 32
"""Weight of the AuxK loss (Gao et al. 2024)."""
AUX_K_ROWS = 256
"""Rows of a batch AuxK reconstructs by default (`aux_rows`). With 10 % dead latents at d_sae
6144, batch 4096, the pass cost the fp32 step 30 % on all rows, 15 % / 14 % on 1024 and 5-8 % /
6-9 % on 256 (AMX / AVX2 kernels, benchmarks/README.md); on frame-level quickstart SAEs (batch
1024) 256 rows left the dead fraction and FVU where all rows did."""


def check_aux_k(aux_k: int, aux_k_coefficient: float, aux_k_rows: int | None = None) -> None:
    """ValueError unless the AuxK settings are >= 0 (and `aux_k_rows`, if given, >= 1)."""
    if aux_k < 0 or aux_k_coefficient < 0:
        raise ValueError(
            f"aux_k and aux_k_coefficient must be >= 0, got {aux_k} and {aux_k_coefficient}"
        )
    if aux_k_rows is not None and aux_k_rows < 1:
        raise ValueError(f"aux_k_rows must be >= 1 or None (all rows), got {aux_k_rows}")


def aux_rows(batch: int, aux_k_rows: int | None) -> slice:
    """The rows AuxK reconstructs: every s-th row, s = ceil(batch / aux_k_rows), so at most
    `aux_k_rows` of them spread over the whole batch (all rows when None or batch <= it).

    Their mean AuxK loss is an unbiased estimate of the batch's for shuffled rows and, spread
    out, stays close to it when rows come in runs from one clip.
    """
    if aux_k_rows is None or batch <= aux_k_rows:
        return slice(None)
    return slice(None, None, -(-batch // aux_k_rows))


def topk_codes(z_pre: Tensor, k: int) -> Tensor:
    """z_pre: (batch, d_sae) -> dense TopK_k(ReLU(z_pre)), (batch, d_sae)."""
    vals, idx = z_pre.topk(k, dim=-1, sorted=False)
    return dense_codes(F.relu(vals).view(-1), pattern_from_topk(idx, z_pre.shape[1]))


class TopKFamilySAE(SAE, abstract=True):
    """Base of the SAEs whose sparsity knob is k, the number of active latents per sample.

    A subclass resolves its k (or ladder) in `__init__`, then calls `_init_topk_family` with the
    sparsities it was configured with, so that `target_sparsity` reports the configured value
    (0.95 at d_sae 2048, not 1 - 102/2048 = 0.9502) and the export keeps it.
    """

    sparsity_attr = "k"
    saelens_architecture = "topk"
    k: int
    aux_k: int
    aux_k_coefficient: float
    aux_k_rows: int | None
    sparse: bool | None

    def _init_topk_family(
        self,
        aux_k: int,
        aux_k_coefficient: float,
        aux_k_rows: int | None,
        sparse: bool | None,
        configured: dict[int, float],
    ) -> None:
        """Stores the AuxK settings, the `sparse` switch and {k: configured sparsity}."""
        check_aux_k(aux_k, aux_k_coefficient, aux_k_rows)
        self.aux_k, self.aux_k_coefficient, self.sparse = aux_k, aux_k_coefficient, sparse
        self.aux_k_rows = aux_k_rows
        self._sparsity_of_k = dict(configured)

    @classmethod
    def sparsity_init_args(cls, sparsity: float) -> dict[str, Any]:
        """A grid sparsity s replaces the spec's k: k = int((1 - s) * d_sae)."""
        return {"k": None, "sparsity": sparsity}

    @property
    def active_k(self) -> int:
        """The k `encode` uses: `k`, capped at d_sae (an annealing schedule may start above)."""
        return min(self.k, self.d_sae)

    @property
    def target_sparsity(self) -> float:
        """The configured sparsity that gave the active k, else 1 - k / d_sae."""
        k = self.active_k
        return self._sparsity_of_k.get(k, 1.0 - k / self.d_sae)

    @property
    def sparsity_knob(self) -> float:
        return float(self.k)

    @sparsity_knob.setter
    def sparsity_knob(self, value: float) -> None:
        self.k = round(value)

    def identity(self) -> dict[str, Any]:
        return {**super().identity(), "k": self.active_k}

    def init_kwargs(self) -> dict[str, Any]:
        """The constructor arguments, in the form they were configured: `sparsity` (or
        `sparsities`) rather than k while k still is what that sparsity gives."""
        kwargs = super().init_kwargs()
        if "k" in kwargs:
            kwargs["k"] = self.active_k
        names = self.init_parameters()
        if "sparsity" in names and self.active_k in self._sparsity_of_k:
            del kwargs["k"]
            kwargs["sparsity"] = self._sparsity_of_k[self.active_k]
        ks = kwargs.get("ks")
        if "sparsities" in names and ks and all(k in self._sparsity_of_k for k in ks):
            del kwargs["ks"]
            kwargs["sparsities"] = [self._sparsity_of_k[k] for k in ks]
        return kwargs

    @classmethod
    def init_args_from_cfg(cls, cfg: dict[str, Any]) -> dict[str, Any]:
        args = super().init_args_from_cfg(cfg)
        if args.get("sparsity") is not None:
            # An export writes k (for SAELens and for readers) next to the sparsity it comes from.
            args.pop("k", None)
        return args

    def saelens_fields(self) -> dict[str, Any]:
        return {"k": self.active_k, "rescale_acts_by_decoder_norm": False}

    def activate(self, z_pre: Tensor) -> Tensor:
        return topk_codes(z_pre, self.active_k)

    def select_topk(
        self, x_n: Tensor, k: int, sparse: bool, sorted: bool = False
    ) -> tuple[Tensor, Tensor, Pattern, Tensor | None]:
        """Each sample's top-k codes on the sparse or the dense path.

        Args:
            x_n: (batch, d_in) input in the normalised space.
            k: codes kept per sample.
            sparse: use the sparse encoder/decoder backward (kernels.sparse_ops).
            sorted: return each row's codes by decreasing size (the hierarchical prefixes).

        Returns:
            (vals (batch·k,), idx (batch, k), pattern, z_pre (batch, d_sae) or None on the
            sparse CPU path, which never forms it).
        """
        if sparse:
            return sparse_topk_codes(x_n, self.b_dec, self.W_enc, self.b_enc, k, sorted=sorted)
        z_pre = self.pre_activation(x_n - self.b_dec)
        idx = z_pre.detach().topk(k, dim=-1, sorted=sorted).indices
        p = pattern_from_topk(idx, self.d_sae)
        vals = gather_codes(z_pre, p, False, x_n, self.b_dec, self.W_enc, self.b_enc)
        return vals, idx, p, z_pre

    def auxk_loss(
        self,
        x_n: Tensor,
        z_pre: Tensor | None,
        x_hat: Tensor,
        dead_mask: Tensor | None,
        sparse: bool,
    ) -> Tensor:
        """AuxK (Gao et al. 2024, App. B.1), weighted by `aux_k_coefficient`.

        The top-`aux_k` ReLU pre-activations among dead latents reconstruct the residual
        e = x - x_hat (detached): ê = Σ z_aux W_dec (no bias). Gao weights mse(ê, e)/var(e)
        against the main loss mse(x_hat, x)/var(x); the trainer's main loss is the un-normalised
        mse, so this returns α · mse(ê, e) · var(x)/var(e) (ratio detached; var = mean over dims
        of the batch variance), times `loss_scale`, all over the rows `aux_rows` picks (at most
        `aux_k_rows`). Exactly 0 when `dead_mask` is None or has no True entry.

        Args:
            x_n: (batch, d_in) input in the normalised space.
            z_pre: (batch, d_sae) pre-activations (without grad on the sparse path); None is
                allowed on the sparse CPU path, which never reads them.
            x_hat: (batch, d_in) reconstruction in the normalised space.
            dead_mask: (d_sae,) bool, True for dead latents.
            sparse: use the sparse encoder/decoder backward.
        """
        zero = x_n.new_zeros((), dtype=torch.float32)
        if dead_mask is None or self.aux_k == 0 or self.aux_k_coefficient == 0:
            return zero
        dead = dead_mask.to(device=x_n.device, dtype=torch.bool)
        if dead.device.type == "cpu" and not bool(dead.any()):
            return zero  # on CPU the check is free; it saves the masked top-k and its decode
        # The sparse path gathers batch·aux_k decoder rows, several times the main path's
        # batch·k; on CPU a dense pass over just the dead columns is far cheaper, and listing
        # them (a host read-back) costs nothing there. GPUs keep the sync-free masked top-k.
        on_dead_columns = sparse and dead.device.type == "cpu"
        if z_pre is None and not on_dead_columns:
            raise ValueError("AuxK needs the dense pre-activations off the sparse CPU path")
        rows = aux_rows(x_n.shape[0], self.aux_k_rows)
        x_rows = x_n[rows]
        z_rows = None if z_pre is None else z_pre[rows]
        e_hat = self.auxk_reconstruction(x_rows, z_rows, dead, sparse, on_dead_columns)
        if e_hat is None:
            return zero
        with torch.no_grad():
            x = x_rows.float()
            e = x - x_hat[rows].float()
            var_x = (x - x.mean(0)).square().mean()
            var_e = (e - e.mean(0)).square().mean().clamp_min(torch.finfo(e.dtype).tiny)
        loss = F.mse_loss(e_hat.float(), e) * (var_x / var_e)
        return self.aux_k_coefficient * dead.any() * loss * self.loss_scale

    def auxk_reconstruction(
        self, x_n: Tensor, z_pre: Tensor | None, dead: Tensor, sparse: bool, on_dead_columns: bool
    ) -> Tensor | None:
        """ê = Σ ReLU(z_aux) W_dec over the top-aux_k dead latents of each sample: (batch, d_in).

        `on_dead_columns` recomputes the dead latents' pre-activations densely (reads the number
        of dead latents back to the host; returns None when there are none); otherwise the
        masked top-k of `z_pre` goes through the sparse or dense path like the main codes.
        """
        k_aux = min(self.aux_k, self.d_sae)
        if on_dead_columns:
            cols = dead.nonzero().squeeze(1)
            if cols.numel() == 0:
                return None
            # An fp32 step runs this auxiliary pass in bf16 where the CPU has native bf16 (as
            # the main path's shortlist does; an int8 shortlist has no exact re-rank here, so
            # the pass stays fp32); under autocast it already runs in its dtype.
            compute = compute_dtype(x_n)
            shortlist = shortlist_dtype(self.W_enc, compute)
            low = shortlist == torch.bfloat16 and compute != shortlist
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=low):
                # b_dec enters as the per-latent constant b_enc - b_dec W: its gradient is then a
                # mat-vec, not a (batch × d_in × dead) matmul back through the centred input.
                # index_select: its backward is an index_add_, not index's sorting index_put_
                W = self.W_enc.index_select(1, cols)
                z_dead = torch.addmm(self.b_enc.index_select(0, cols) - self.b_dec @ W, x_n, W)
                if cols.numel() > k_aux:
                    vals, idx = z_dead.topk(k_aux, dim=-1, sorted=False)
                    z_dead = dense_codes(vals.reshape(-1), pattern_from_topk(idx, cols.numel()))
                return F.relu(z_dead) @ self.W_dec.index_select(0, cols)
        if z_pre is None:
            raise ValueError("the masked AuxK top-k needs the dense pre-activations")
        with torch.no_grad():
            masked = z_pre.detach().masked_fill(~dead, float("-inf"))
            idx = masked.topk(k_aux, dim=-1, sorted=False).indices
        p = pattern_from_topk(idx, self.d_sae, transpose=sparse)
        vals = gather_codes(z_pre, p, sparse, x_n, self.b_dec, self.W_enc, self.b_enc)
        # Fewer dead latents than aux_k: the filler entries are live ones, zeroed here.
        return decode_codes(vals * dead[p.cols], self.W_dec, p, sparse)
