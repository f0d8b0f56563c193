"""Each row's n largest pre-activations on CPU: the top-k (or bf16 shortlist) of the sparse path.

`torch.topk` over the encoder's output chunks was a fifth of the AMX training step (6.5 ms per
682 × 6144 bf16 chunk, 39 ms per step at batch 4096) and a tenth of the AVX2 one (5.3 ms per fp32
chunk). Two things make it cheaper:

- the float bit patterns are compared as signed integers of their width (int16 for bf16, int32
  for fp32): non-negative values keep their order and every negative value ranks below them
  (their order among themselves is reversed; a negative pre-activation is a code ReLU zeroes, so
  which of them fill a row changes neither the codes, the loss nor its gradient, only which
  latent a zero code is filed under);
- the n largest entries of a row lie in at most n of its groups of `GROUP` entries, those with
  the n largest maxima (up to ties), and again in n subgroups of `SUBGROUP` of those: two max
  passes and three small top-k's instead of one top-k over the whole row.
"""

from __future__ import annotations

import torch
from torch import Tensor

GROUP = 16
SUBGROUP = 4


def _top_groups(keys: Tensor, n: int, size: int) -> tuple[Tensor, Tensor]:
    """keys (rows, m) -> (ids (rows, n), entries (rows, size · n)) of the n groups with the
    largest maxima, group j being the entries j, j + m/size, j + 2m/size, ...: the maxima are
    then an element-wise max of `size` contiguous slices (4x faster than over neighbours), and
    entry s · n + c of a row is member s of its c-th chosen group."""
    rows = keys.shape[0]
    strided = keys.view(rows, size, -1)
    ids = strided.amax(1).topk(n, dim=-1, sorted=False).indices
    return ids, strided.gather(2, ids.unsqueeze(1).expand(-1, size, -1)).view(rows, -1)


INT_OF = {
    torch.bfloat16: torch.int16,
    torch.float16: torch.int16,
    torch.float32: torch.int32,
    torch.float64: torch.int64,
    torch.int32: torch.int32,
}
"""The signed integer type whose order matches a float type's on non-negative values; int32 keys
(the int8 shortlist's products) are their own."""


def row_topk_indices(z: Tensor, n: int) -> Tensor:
    """z: (rows, d) float or int32 -> (rows, n) indices of each row's n largest entries, unordered.

    Non-negative entries are ranked exactly as `torch.topk` ranks them (up to ties); negative
    ones only below them (see the module docstring). Two levels of groups when d is a multiple
    of `GROUP` and n groups hold at most half of a row, else one top-k over the integer view.
    """
    keys = z.view(INT_OF[z.dtype])
    d = keys.shape[1]
    if d % GROUP or 2 * n * GROUP > d:
        return keys.topk(n, dim=-1, sorted=False).indices
    ids, entries = _top_groups(keys, n, GROUP)  # entries: (rows, GROUP · n)
    sub_ids, sub_entries = _top_groups(entries, n, SUBGROUP)  # (rows, SUBGROUP · n)
    pos = sub_entries.topk(n, dim=-1, sorted=False).indices
    in_entries = _unstride(sub_ids, pos, n, GROUP * n // SUBGROUP)
    return _unstride(ids, in_entries, n, d // GROUP)


def _unstride(ids: Tensor, pos: Tensor, n: int, stride: int) -> Tensor:
    """Entry `pos` of `_top_groups(keys, n, size)`'s entries -> its column in `keys`: member
    s = pos // n of group ids[pos % n], i.e. ids[pos % n] + s · stride (stride = m / size)."""
    member = torch.div(pos, n, rounding_mode="floor")
    return ids.gather(1, pos - member * n) + member * stride
