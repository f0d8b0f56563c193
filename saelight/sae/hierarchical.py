"""Hierarchical TopK SAE: one dictionary trained at a ladder of k at once (Matryoshka over k).

Derived here for saelight (no library ships it); the idea follows Matryoshka SAEs (Bussmann et al.
2025, arXiv:2503.17547), which nest prefixes of the dictionary, but nests prefixes of each sample's
activations sorted by size instead, so that the same SAE can be evaluated at every k of its ladder.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.sae.base import SAE, SAEOutput
from saelight.sae.kernels import SparseCodes, decode_codes, pattern_from_topk, use_sparse
from saelight.sae.topk_family import (
    AUX_K,
    AUX_K_COEFFICIENT,
    AUX_K_ROWS,
    TopKFamilySAE,
    resolve_k,
)


def resolve_ks(ks: list[int] | None, sparsities: list[float] | None, d_sae: int) -> list[int]:
    """Exactly one of `ks` or `sparsities`, each k in [1, d_sae]; returned sorted, distinct."""
    if ks is not None and sparsities is None:
        out = [resolve_k(k, None, d_sae, f"ks[{i}]") for i, k in enumerate(ks)]
    elif sparsities is not None and ks is None:
        out = [resolve_k(None, s, d_sae, f"ks[{i}]") for i, s in enumerate(sparsities)]
    else:
        raise ValueError(f"give exactly one of `ks` or `sparsities`, got {ks} and {sparsities}")
    if not out or len(set(out)) != len(out):
        raise ValueError(f"`ks` must be non-empty and distinct, got {out}")
    return sorted(out)


class HierarchicalTopKSAE(TopKFamilySAE):
    """TopK SAE trained at every k of the ladder K = `ks` at once.

    With v_1 >= v_2 >= ... the ReLU activations of a sample sorted by size, i_j their latents,
    TopK_k(z) keeps the first k of them and x̂_k = Σ_{j<=k} v_j W_dec[i_j] + b_dec, so the
    reconstructions of consecutive k are prefix sums of the same sorted list. The loss is

        L = (1/|K|) Σ_{k∈K} mean_{b,d} (x - x̂_k)²

    (mean over batch and dims, as the main mse). `forward` returns x_hat = x̂_{max K} and

        aux_loss = (1/|K|) Σ_{k∈K} mse(x̂_k, x) - mse(x̂_{max K}, x) + AuxK,

    so the trainer's `mse(x_hat, x) + aux_loss` equals L + AuxK up to float rounding. As for
    every SAE here, the terms are computed in the normalised space and multiplied by
    `loss_scale`; AuxK uses the residual of x̂_{max K}. `encode` keeps the top `k` (an attribute,
    default max K): set `sae.k` to evaluate the SAE at any k of its ladder. The ladder itself is
    fixed; a sparsity schedule on `k` only changes `encode`. SAELens loads the export as a TopK
    SAE at `k`.
    """

    architecture = "hierarchical_topk"

    def __init__(
        self,
        d_in: int,
        d_sae: int = 2048,
        ks: list[int] | None = None,
        sparsities: list[float] | None = None,
        k: int | None = None,
        aux_k: int = AUX_K,
        aux_k_coefficient: float = AUX_K_COEFFICIENT,
        aux_k_rows: int | None = AUX_K_ROWS,
        sparse: bool | None = None,
        **kwargs: Any,
    ) -> None:
        """Builds a hierarchical TopK SAE.

        Args:
            d_in: width of the activations.
            d_sae: number of latents.
            ks: the ladder of k trained at once; give exactly one of `ks` and `sparsities`.
            sparsities: the ladder as sparsities, k = int((1 - sparsity) * d_sae).
            k: the k used by `encode`; None = max of the ladder.
            aux_k: dead latents used by the AuxK loss.
            aux_k_coefficient: AuxK weight α; 0 disables AuxK.
            aux_k_rows: rows of each batch AuxK reconstructs (evenly spaced); None = all.
            sparse: sparse decoder and backward; None = auto (max(ks) / d_sae <= 1/64).
            **kwargs: the common switches of `SAE`.
        """
        super().__init__(d_in, d_sae, **kwargs)
        self.ks = resolve_ks(ks, sparsities, d_sae)
        self.k = self.ks[-1] if k is None else resolve_k(k, None, d_sae)
        configured = {resolve_k(None, s, d_sae): s for s in sparsities or []}
        self._init_topk_family(aux_k, aux_k_coefficient, aux_k_rows, sparse, configured)

    @classmethod
    def sparsity_init_args(cls, sparsity: float) -> dict[str, Any]:
        """None: the ladder is this SAE's own sparsity axis, trained at once."""
        raise ValueError(
            f"model.sparsities builds one SAE per sparsity, but {cls.__name__} trains a whole "
            "ladder at once: set model.sparsities: null and give the ladder as its `sparsities` "
            "(or `ks`) init arg"
        )

    def eval_variants(self) -> dict[str, SAE]:
        """One copy per k of the ladder, `@k<k>`, each encoding at that k."""
        variants: dict[str, SAE] = {}
        for k in self.ks:
            rung = copy.deepcopy(self)
            rung.k = k
            variants[f"@k{k}"] = rung
        return variants

    def forward(self, x: Tensor, dead_mask: Tensor | None = None) -> SAEOutput:
        """x: (batch, d_in) -> SAEOutput at k = max(ks); `aux_loss` carries the other ks."""
        k_max = self.ks[-1]
        sparse = use_sparse(self.sparse, k_max, self.d_sae, x.shape[0])
        x_n = self.normalize(x)
        vals, idx, p, z_pre = self.select_topk(x_n, k_max, sparse, sorted=True)
        x_hat: Tensor = self.b_dec
        mses, start = [], 0
        for k in self.ks:
            seg = pattern_from_topk(idx[:, start:k], self.d_sae, transpose=sparse)
            seg_vals = vals.view(-1, k_max)[:, start:k].reshape(-1)
            x_hat = x_hat + decode_codes(seg_vals, self.W_dec, seg, sparse)
            mses.append(F.mse_loss(x_hat.float(), x_n.float()))
            start = k
        multi_k = (torch.stack(mses).mean() - mses[-1]) * self.loss_scale
        aux = multi_k + self.auxk_loss(x_n, z_pre, x_hat, dead_mask, sparse)
        return SAEOutput(self.denormalize(x_hat), None, aux, SparseCodes(vals, p))
