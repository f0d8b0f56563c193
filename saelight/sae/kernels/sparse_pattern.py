"""Sparsity patterns of TopK codes: which (row, latent) pairs are selected, in both orders.

The sparse training path (`sparse_ops`) needs the batch·k selected entries grouped by row (for the
decoder gather) and by latent (for the weight gradients); `Pattern` holds both, built once per
step, and `_by_latent_sum*` are the per-latent reductions over it.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

TRANSPOSE_BLOCK = 1 << 18
"""Elements per block of the CPU transposing copies: 1 MB of fp32 stays in L2, and blocks this
large keep the number of parallel regions (each a thread barrier) low."""


class Pattern(NamedTuple):
    """Where a (batch, d_sae) code matrix is non-zero: nnz entries ordered by sample."""

    rows: Tensor
    """(nnz,) sample of each entry, non-decreasing."""
    cols: Tensor
    """(nnz,) latent of each entry."""
    flat: Tensor
    """(nnz,) rows * d_sae + cols, the entry's index in the flattened matrix."""
    offsets: Tensor
    """(batch,) index of each sample's first entry (embedding_bag bags)."""
    d_sae: int
    by_latent: tuple[Tensor, Tensor, Tensor] | None
    """For the transposed products: (order sorting the entries by latent, rows in that order,
    (d_sae,) index of each latent's first entry); None on the dense path."""


def _counts_to_offsets(index: Tensor, size: int) -> Tensor:
    """Exclusive cumulative count of `index` values; scatter_add, unlike bincount, never syncs."""
    counts = torch.zeros(size, dtype=torch.long, device=index.device)
    counts.scatter_add_(0, index, torch.ones_like(index))
    return counts.cumsum(0) - counts


RADIX_SORT_MIN = 1 << 15
"""Fewest elements PyTorch's CPU sort sorts by radix (ATen's GRAIN_SIZE): 0.2 ms for 32,768 int16
keys, 1.8 ms for 32,767 (std::stable_sort), so shorter key arrays are padded up to it."""


def latent_order(cols: Tensor, d_sae: int) -> Tensor:
    """The stable permutation that sorts `cols` (latent indices < d_sae): entries by latent."""
    # int16 keys when they fit: 2 radix passes instead of 8 (3x faster on CPU).
    keys = cols.to(torch.int16) if d_sae <= 1 << 15 else cols
    short = RADIX_SORT_MIN - keys.numel()
    if short <= 0 or keys.device.type != "cpu":
        return torch.argsort(keys, stable=True)
    # Padding keys sort after every real one: larger, or equal and later (the sort is stable).
    padded = torch.cat([keys, keys.new_full((short,), torch.iinfo(keys.dtype).max)])
    return torch.argsort(padded, stable=True)[: keys.numel()]


def _pattern(rows: Tensor, cols: Tensor, offsets: Tensor, d_sae: int, transpose: bool) -> Pattern:
    by_latent = None
    if transpose:
        order = latent_order(cols, d_sae)
        by_latent = (order, rows[order], _counts_to_offsets(cols, d_sae))
    return Pattern(rows, cols, rows * d_sae + cols, offsets, d_sae, by_latent)


def pattern_from_topk(idx: Tensor, d_sae: int, transpose: bool = False) -> Pattern:
    """idx: (batch, k) latent indices per sample; `transpose` prepares the sparse backward."""
    batch, k = idx.shape
    rows = torch.arange(batch, device=idx.device).repeat_interleave(k)
    offsets = torch.arange(0, batch * k, k, device=idx.device)
    return _pattern(rows, idx.contiguous().view(-1), offsets, d_sae, transpose)


def pattern_from_flat(flat: Tensor, batch: int, d_sae: int, transpose: bool = False) -> Pattern:
    """flat: (nnz,) indices into the flattened (batch, d_sae) matrix, in any order."""
    flat = torch.sort(flat).values
    rows, cols = flat // d_sae, flat % d_sae
    return _pattern(rows, cols, _counts_to_offsets(rows, batch), d_sae, transpose)


def _by_latent(p: Pattern) -> tuple[Tensor, Tensor, Tensor]:
    if p.by_latent is None:
        raise ValueError("the sparse backward needs a Pattern built with transpose=True")
    return p.by_latent


def _by_latent_sum(p: Pattern, weights: Tensor, dense: Tensor) -> Tensor:
    """out[i] = Σ_{entries e of latent i} weights[e] · dense[rows[e]]: (d_sae, dense.shape[1]).

    The sparse-transpose × dense product Gᵀ·dense, as one embedding_bag with a bag per latent.
    """
    order, rows_by_latent, latent_offsets = _by_latent(p)
    return F.embedding_bag(
        rows_by_latent, dense, latent_offsets, mode="sum", per_sample_weights=weights[order]
    )


def _by_latent_sum_t(p: Pattern, weights: Tensor, dense: Tensor) -> Tensor:
    """`_by_latent_sum(p, weights, dense)` transposed, as a contiguous (dense.shape[1], d_sae).

    On CPU it is built a block of latents at a time (`TRANSPOSE_BLOCK`), each block written into
    its columns while still in cache: no (d_sae, dim) temporary, no slow whole-matrix transpose.
    """
    if dense.device.type != "cpu":
        return _by_latent_sum(p, weights, dense).t().contiguous()
    order, rows_by_latent, latent_offsets = _by_latent(p)
    weights = weights[order]
    starts = latent_offsets.tolist() + [len(order)]
    out = dense.new_empty(dense.shape[1], p.d_sae)
    step = max(1, TRANSPOSE_BLOCK // dense.shape[1])
    for c0 in range(0, p.d_sae, step):
        c1 = min(c0 + step, p.d_sae)
        a, b = starts[c0], starts[c1]
        offsets = latent_offsets[c0:c1] - a
        block = F.embedding_bag(
            rows_by_latent[a:b], dense, offsets, per_sample_weights=weights[a:b], mode="sum"
        )
        out[:, c0:c1].copy_(block.t())
    return out
