"""Each row's k largest encoder pre-activations without autograd: the sparse path's encoder.

The encoder matmul runs in row chunks on CPU (each chunk's block is used while in cache, and no
(batch, d_sae) buffer is allocated, so no page faults), and each chunk's top-k is
`kernels.row_topk`. A lower-precision matmul (bf16 where the CPU has native bf16, int8
elsewhere: `kernels.native_bf16.shortlist_dtype`) only shortlists each row's candidates,
whose pre-activations are recomputed in fp32 before the top k is taken, while the chunk's rows
are still in cache.
"""

from __future__ import annotations

import torch
from torch import Tensor

from saelight.sae.kernels.int8_shortlist import QuantizedEncoder, inner_width
from saelight.sae.kernels.int8_shortlist import candidates as int8_candidates
from saelight.sae.kernels.row_topk import row_topk_indices
from saelight.sae.kernels.sparse_pattern import TRANSPOSE_BLOCK, latent_order

RERANK_MARGIN = 8
"""Extra bf16 candidates per sample re-ranked in fp32 (see `topk_pre_activations`)."""
CHUNK_ELEMENTS = 1 << 22
"""Pre-activations per chunk on CPU (8 MB in bf16): cache-sized, and under glibc's mmap threshold,
so the chunk buffer is recycled from the heap instead of page-faulted in on every step."""


def transposed(src: Tensor, dtype: torch.dtype | None = None) -> Tensor:
    """src: (m, n) -> its transpose as a contiguous (n, m) tensor, in `dtype` (default src's).

    On CPU the copy goes a block of source rows at a time (`TRANSPOSE_BLOCK`): 3x faster than
    `.t().contiguous()` (4 vs 13 ms at 768 × 6144 fp32), whose strided writes miss the cache.
    """
    dtype = src.dtype if dtype is None else dtype
    if src.device.type != "cpu":
        return src.t().to(dtype).contiguous()
    out = src.new_empty(src.shape[1], src.shape[0], dtype=dtype)
    step = max(1, TRANSPOSE_BLOCK // src.shape[1])
    for lo in range(0, src.shape[0], step):
        out[:, lo : lo + step].copy_(src[lo : lo + step].t())
    return out


def exact_pre_activations(
    x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, idx: Tensor
) -> Tensor:
    """z_pre[b, idx[b, j]] = (x[b] - b_dec) · W_enc[:, idx[b, j]] + b_enc[idx[b, j]], (batch, n).

    One dot product per entry (embedding_bag's per-sample-weight backward kernel, over the rows
    of a transposed copy of W_enc), no (batch, n, d_in) gather; b_dec enters as the per-latent
    constant b_enc - b_dec W_enc, so no centred copy of x is made. In W_enc's dtype.
    """
    return _entry_values(x, transposed(W_enc), _centred_bias(b_dec, W_enc, b_enc), idx)


def _centred_bias(b_dec: Tensor, W_enc: Tensor, b_enc: Tensor) -> Tensor:
    """b_enc - b_dec W_enc: (d_sae,), the bias of the uncentred input."""
    return torch.addmv(b_enc, W_enc.t(), b_dec.to(W_enc.dtype), alpha=-1)


def _entry_values(x: Tensor, W_t: Tensor, bias: Tensor, idx: Tensor) -> Tensor:
    """x[b] · W_t[idx[b, j]] + bias[idx[b, j]]: (rows, n) in W_t's dtype.

    The dots run in latent order, so each row of W_t is read once for all the samples that
    picked it: for 4096 × 64 entries at d_in 768 the dots take 10 ms instead of 22-26 (AMX and
    AVX2 kernels), the sort ~1.5 (`latent_order`).
    """
    batch, n = idx.shape
    cols = idx.reshape(-1)
    order = latent_order(cols, W_t.shape[0])
    offsets = torch.arange(0, batch * n, n, device=idx.device)
    dots = torch.ops.aten._embedding_bag_per_sample_weights_backward(
        x.to(W_t.dtype).contiguous(), W_t, cols[order], offsets, order // n, 0, -1
    )
    out = torch.empty_like(dots).index_put_((order,), dots + bias[cols[order]])
    return out.view(batch, n)


def _chunk_rows(batch: int, d_sae: int, device: torch.device) -> int:
    """Rows per chunk of the encoder matmul: cache-sized on CPU, in even chunks (4096 rows at
    d_sae 6144 in 7 of <= 586, not 6 of 682 and one of 4 whose matmul alone took 2 ms, a full
    chunk's 30, in an AVX2 profile); the whole batch elsewhere."""
    rows = max(1, CHUNK_ELEMENTS // d_sae) if device.type == "cpu" else batch
    return -(-batch // -(-batch // rows)) if rows < batch else batch


def _topk_matmul(x: Tensor, b_dec: Tensor, W: Tensor, b: Tensor, k: int, sorted: bool):
    """Top k per row of (x - b_dec) W + b in W's dtype: (values, idx, z_pre or None); in row
    chunks on CPU, where each chunk's centred input and pre-activations are cache-sized
    temporaries and the top k come from `row_topk_indices`."""
    batch, d_sae = x.shape[0], W.shape[1]
    rows = _chunk_rows(batch, d_sae, x.device)
    if rows >= batch:
        z_pre = torch.addmm(b, (x - b_dec).to(W.dtype), W)
        return (*z_pre.topk(k, dim=-1, sorted=sorted), z_pre)
    values, idx = W.new_empty(batch, k), torch.empty(batch, k, dtype=torch.long, device=x.device)
    chunk = W.new_empty(rows, d_sae)
    for lo in range(0, batch, rows):
        hi = min(lo + rows, batch)
        z = torch.addmm(b, (x[lo:hi] - b_dec).to(W.dtype), W, out=chunk[: hi - lo])
        top = row_topk_indices(z, k)
        top_values = z.gather(1, top)
        if sorted:
            top_values, order = top_values.sort(dim=-1, descending=True)
            top = top.gather(1, order)
        values[lo:hi], idx[lo:hi] = top_values, top
    return values, idx, None


def _shortlisted_topk(
    x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, k: int, sorted: bool, dtype
):
    """Top k per row from a `dtype` (bf16 or int8) shortlist re-ranked in W_enc's precision:
    (values, idx, the bf16 z_pre when computed in one piece, else None)."""
    batch, d_sae = x.shape[0], W_enc.shape[1]
    rows = _chunk_rows(batch, d_sae, x.device)
    W_t = transposed(W_enc)
    if dtype == torch.int8:
        n = int8_candidates(k, d_sae)
        encoder = QuantizedEncoder(W_t, b_enc, max(1, TRANSPOSE_BLOCK // x.shape[1]))
        x_q = torch.empty(rows, inner_width(x.shape[1]), dtype=torch.int8, device=x.device)
        chunk = torch.empty(rows, d_sae, dtype=torch.int32, device=x.device)

        def keys(lo: int, hi: int) -> Tensor:
            return encoder.keys(x[lo:hi] - b_dec, x_q[: hi - lo], chunk[: hi - lo])

    else:
        n = min(d_sae, k + max(RERANK_MARGIN, k // 4))
        W_low, b_low = W_enc.to(dtype), b_enc.to(dtype)
        chunk = W_low.new_empty(rows, d_sae)

        def keys(lo: int, hi: int) -> Tensor:
            x_c = (x[lo:hi] - b_dec).to(dtype)
            return torch.addmm(b_low, x_c, W_low, out=chunk[: hi - lo])

    bias = _centred_bias(b_dec, W_enc, b_enc)
    values = W_enc.new_empty(batch, k)
    idx = torch.empty(batch, k, dtype=torch.long, device=x.device)
    for lo in range(0, batch, rows):
        hi = min(lo + rows, batch)
        z = keys(lo, hi)
        # One piece (off CPU): torch.topk, as `_topk_matmul` uses there.
        cand = row_topk_indices(z, n) if rows < batch else z.topk(n, dim=-1, sorted=False).indices
        # Re-ranked per chunk, while its rows of x are in cache: 27 vs 43 ms for 4096 × 64
        # candidates at d_in 768 (AVX2 kernels, before the latent order) than over the batch.
        exact = _entry_values(x[lo:hi], W_t, bias, cand)
        values[lo:hi], pos = exact.topk(k, dim=-1, sorted=sorted)
        idx[lo:hi] = cand.gather(1, pos)
    z_pre = chunk if rows >= batch and dtype != torch.int8 else None
    return values, idx, z_pre


@torch.no_grad()
def topk_pre_activations(
    x: Tensor,
    b_dec: Tensor,
    W_enc: Tensor,
    b_enc: Tensor,
    k: int,
    sorted: bool = False,
    dtype: torch.dtype | None = None,
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The k largest of z_pre = (x - b_dec) W_enc + b_enc per sample, without autograd.

    With a `dtype` (bf16, int8) lower than W_enc's, the matmul in that dtype only shortlists
    candidates: each sample's top k + `RERANK_MARGIN` (at least; k/4 for large k) of the bf16
    z_pre, or `int8_shortlist.candidates` of the int8 keys, are recomputed in W_enc's precision
    and the top k of those are returned. That is the exact top-k, values included, unless more
    than the margin entries sit within the shortlist's rounding (bf16 ~0.4 %) of the k-th value.
    Without it, bf16 rounding alone swaps near-tied latents in and out of the code, and the
    training loss drifts from an fp32 run (~1e-3 after 30 steps, as much as with dense bf16
    autocast).

    Args:
        x: (batch, d_in) encoder input, before subtracting b_dec.
        b_dec: (d_in,) decoder bias.
        W_enc: (d_in, d_sae) encoder weight.
        b_enc: (d_sae,) encoder bias.
        k: entries kept per sample.
        sorted: return each sample's entries in descending order.
        dtype: the dtype the matmul runs in (default W_enc's).

    Returns:
        (values (batch, k) in W_enc's dtype, latent indices (batch, k), z_pre): z_pre
        (batch, d_sae) in `dtype` when computed in one piece in fp32 or bf16, else None.
    """
    dtype = W_enc.dtype if dtype is None else dtype
    with torch.autocast(x.device.type, enabled=False):
        if dtype == W_enc.dtype:
            return _topk_matmul(x, b_dec, W_enc, b_enc, k, sorted)
        return _shortlisted_topk(x, b_dec, W_enc, b_enc, k, sorted, dtype)
