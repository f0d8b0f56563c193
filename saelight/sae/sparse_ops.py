"""Sparse training path for the TopK family: only the encoder matmul stays dense.

With k active latents out of d_sae, a dense step costs five (batch × d_in × d_sae) matmuls: the
encoder, the decoder, and three in the backward pass. Here the decoder is a gather of the k
selected rows of `W_dec` (`F.embedding_bag`), and every backward product touches only the
batch·k selected entries:

    dL/dW_dec[i] = Σ_b z[b, i] · dL/dx_hat[b]          (transposed embedding_bag, entries by latent)
    dL/dz[b, j]  = <dL/dx_hat[b], W_dec[idx[b, j]]>    (embedding_bag's per-sample-weight backward)
    dL/dW_enc    = x_cᵀ G,  G the sparse (batch, d_sae) gradient of the selected pre-activations
                 = (transposed embedding_bag of x_c rows, entries by latent)ᵀ

so no (batch, k, d_in) temporary is ever built. `topk_pre_activations` runs the encoder matmul
and the top-k without autograd, in row chunks on CPU (each chunk's (rows, d_sae) block is reused
while it is still in cache, and no (batch, d_sae) buffer is allocated, so no page faults either);
the selected values then enter autograd through `_SelectLinear`, whose forward does no work. The
products run in the autocast dtype (bf16, with fp32 accumulation inside embedding_bag) and the
gradients are returned in each parameter's own dtype (fp32 master weights). Autocast is switched
off inside the functions because it would upcast embedding_bag to fp32. Nothing here reads a
value back to the host, so CUDA steps do not synchronise.

`SPARSE_AUTO_MAX_DENSITY` (auto mode of the `sparse` switch): benchmarks/scaling.py times a full
bf16-autocast training step (forward, backward, fused Adam) of both paths on a d_sae × k grid;
see benchmarks/README.md for the crossover it measured on the development machine's AMX CPU.
Dense bf16 matmuls are relatively cheaper still on GPUs (no GPU run yet).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

SPARSE_AUTO_MAX_DENSITY = 1 / 32
CHUNK_ELEMENTS = 1 << 22
"""Pre-activations per chunk on CPU (8 MB in bf16): cache-sized, and under glibc's mmap threshold,
so the chunk buffer is recycled from the heap instead of page-faulted in on every step."""


def use_sparse(sparse: bool | None, k: int, d_sae: int) -> bool:
    """The `sparse` switch of the TopK family: None means auto (k/d_sae <= the max density)."""
    return sparse if sparse is not None else k / d_sae <= SPARSE_AUTO_MAX_DENSITY


def compute_dtype(t: Tensor) -> torch.dtype:
    """The dtype matmuls on `t` run in: the autocast dtype inside autocast, else t's own."""
    device = t.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else t.dtype


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


class SparseCodes(NamedTuple):
    """A (batch, d_sae) code matrix as its selected entries: the TopK family's `SAEOutput.codes`."""

    values: Tensor
    """(nnz,) non-negative codes (a selected entry may be 0 after the ReLU)."""
    pattern: Pattern
    """Where each value sits."""

    def dense(self) -> Tensor:
        """The (batch, d_sae) matrix; 0 outside the pattern."""
        return dense_codes(self.values, self.pattern)

    def fired(self) -> Tensor:
        """(d_sae,) bool: latents with a positive code in at least one sample. No host sync."""
        hits = torch.zeros(self.pattern.d_sae, device=self.values.device)
        return hits.index_add_(0, self.pattern.cols, (self.values.detach() > 0).float()) > 0


def _counts_to_offsets(index: Tensor, size: int) -> Tensor:
    """Exclusive cumulative count of `index` values; scatter_add, unlike bincount, never syncs."""
    counts = torch.zeros(size, dtype=torch.long, device=index.device)
    counts.scatter_add_(0, index, torch.ones_like(index))
    return counts.cumsum(0) - counts


def _pattern(rows: Tensor, cols: Tensor, offsets: Tensor, d_sae: int, transpose: bool) -> Pattern:
    by_latent = None
    if transpose:
        # int16 keys when they fit: the radix sort then makes 2 passes instead of 8 (5x faster
        # on CPU, and less exposed to the other threads of a busy machine).
        keys = cols.to(torch.int16) if d_sae <= 1 << 15 else cols
        order = torch.argsort(keys, stable=True)
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


def _by_latent_sum(p: Pattern, weights: Tensor, dense: Tensor) -> Tensor:
    """out[i] = Σ_{entries e of latent i} weights[e] · dense[rows[e]]: (d_sae, dense.shape[1]).

    The sparse-transpose × dense product Gᵀ·dense, as one embedding_bag with a bag per latent.
    """
    if p.by_latent is None:
        raise ValueError("the sparse backward needs a Pattern built with transpose=True")
    order, rows_by_latent, latent_offsets = p.by_latent
    return F.embedding_bag(
        rows_by_latent, dense, latent_offsets, mode="sum", per_sample_weights=weights[order]
    )


@torch.no_grad()
def topk_pre_activations(
    x_c: Tensor, W_enc: Tensor, b_enc: Tensor, k: int, sorted: bool = False
) -> tuple[Tensor, Tensor, Tensor | None]:
    """The k largest of z_pre = x_c W_enc + b_enc per sample, without autograd.

    Args:
        x_c: (batch, d_in) centred encoder input, in the dtype the matmul runs in.
        W_enc: (d_in, d_sae) encoder weight (cast to x_c's dtype).
        b_enc: (d_sae,) encoder bias.
        k: entries kept per sample.
        sorted: return each sample's entries in descending order.

    Returns:
        (values (batch, k), latent indices (batch, k), z_pre): z_pre (batch, d_sae) when it was
        computed in one piece (off CPU, or a batch within one chunk), else None.
    """
    batch, d_sae = x_c.shape[0], W_enc.shape[1]
    W, b = W_enc.to(x_c.dtype), b_enc.to(x_c.dtype)
    rows = max(1, CHUNK_ELEMENTS // d_sae) if x_c.device.type == "cpu" else batch
    with torch.autocast(x_c.device.type, enabled=False):
        if rows >= batch:
            z_pre = torch.addmm(b, x_c, W)
            values, idx = z_pre.topk(k, dim=-1, sorted=sorted)
            return values, idx, z_pre
        values = x_c.new_empty(batch, k)
        idx = torch.empty(batch, k, dtype=torch.long, device=x_c.device)
        chunk = x_c.new_empty(rows, d_sae)
        for lo in range(0, batch, rows):
            hi = min(lo + rows, batch)
            z = torch.addmm(b, x_c[lo:hi], W, out=chunk[: hi - lo])
            torch.topk(z, k, dim=-1, sorted=sorted, out=(values[lo:hi], idx[lo:hi]))
    return values, idx, None


class _SelectLinear(torch.autograd.Function):
    """vals[e] = (x[rows[e]] - b_dec) · W_enc[:, cols[e]] + b_enc[cols[e]], sparse backward.

    The forward values come in precomputed (`z_sel`, read from the pre-activations that were
    needed anyway to choose the pattern), so the forward pass does no work. b_dec is an input of
    its own because its gradient, -Σ_b dL/dx_c[b] = -W_enc · dL/db_enc, is a mat-vec, while the
    gradient w.r.t. x would be an embedding_bag over W_encᵀ (only run if x requires grad).
    `x_c` = (x - b_dec) in z_sel's dtype, if the caller already has it.
    """

    @staticmethod
    def forward(ctx, x, b_dec, W_enc, b_enc, z_sel, p, x_c=None):  # type: ignore[override]
        ctx.p = p
        if x_c is None:
            x_c = (x - b_dec).to(z_sel.dtype)
        ctx.save_for_backward(x_c, W_enc, b_enc, b_dec)
        return z_sel.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x_c, W_enc, b_enc, b_dec = ctx.saved_tensors
        p: Pattern = ctx.p
        grad = grad.to(x_c.dtype)
        grad_x = grad_b_dec = grad_W = grad_b = None
        with torch.autocast(grad.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                W_t = W_enc.t().to(x_c.dtype).contiguous()
                grad_x = F.embedding_bag(
                    p.cols, W_t, p.offsets, mode="sum", per_sample_weights=grad
                )
            if ctx.needs_input_grad[2]:
                # .t() of the (d_sae, d_in) product has W_enc's column-major strides (see
                # SAE.__init__), so autograd takes it as the gradient without a copy.
                grad_W = _by_latent_sum(p, grad, x_c).t().to(W_enc.dtype)
            if ctx.needs_input_grad[1] or ctx.needs_input_grad[3]:
                grad_b = torch.zeros_like(b_enc).index_add_(0, p.cols, grad.to(b_enc.dtype))
                if ctx.needs_input_grad[1]:
                    grad_b_dec = -(W_enc @ grad_b).to(b_dec.dtype)
        return grad_x, grad_b_dec, grad_W, grad_b, None, None, None


class _SparseDecode(torch.autograd.Function):
    """out[b] = Σ_{entries e of sample b} vals[e] · W_dec[cols[e]]: (batch, d_in).

    The forward gathers from a copy of W_dec in vals' dtype (half the bytes under bf16); the
    per-entry dot products of the backward read the fp32 master W_dec, which is as fast on CPU
    (no conversions) and keeps no extra copy alive between forward and backward.
    """

    @staticmethod
    def forward(ctx, vals, W_dec, p):  # type: ignore[override]
        with torch.autocast(vals.device.type, enabled=False):
            out = F.embedding_bag(
                p.cols, W_dec.to(vals.dtype), p.offsets, mode="sum", per_sample_weights=vals
            )
        ctx.p = p
        ctx.save_for_backward(vals, W_dec)
        return out

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        vals, W_dec = ctx.saved_tensors
        p: Pattern = ctx.p
        grad_vals = grad_W = None
        with torch.autocast(grad.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                # mode 0 = sum, padding_idx -1 = none; the same kernel embedding_bag's own
                # backward uses: one dot product per entry, no (nnz, d_in) gather.
                grad_vals = torch.ops.aten._embedding_bag_per_sample_weights_backward(
                    grad.to(W_dec.dtype).contiguous(), W_dec, p.cols, p.offsets, p.rows, 0, -1
                ).to(vals.dtype)
            if ctx.needs_input_grad[1]:
                grad_W = _by_latent_sum(p, vals, grad.to(vals.dtype).contiguous())
                grad_W = grad_W.to(W_dec.dtype)
        return grad_vals, grad_W, None


def gather_codes(
    z_pre: Tensor,
    p: Pattern,
    sparse: bool,
    x: Tensor,
    b_dec: Tensor,
    W_enc: Tensor,
    b_enc: Tensor,
    x_c: Tensor | None = None,
) -> Tensor:
    """ReLU(z_pre) at the pattern's entries, (nnz,), differentiable w.r.t. the encoder.

    Args:
        z_pre: (batch, d_sae) pre-activations (x - b_dec) W_enc + b_enc; on the sparse path
            computed without grad (the gradient comes from `_SelectLinear` instead).
        p: the selected entries.
        sparse: use the sparse backward.
        x: (batch, d_in) the (normalised) encoder input, before subtracting b_dec.
        b_dec: (d_in,) decoder bias.
        W_enc: (d_in, d_sae) encoder weight.
        b_enc: (d_sae,) encoder bias.
        x_c: optional (x - b_dec) in z_pre's dtype, if already computed.
    """
    if sparse:
        z_sel = torch.take(z_pre.detach(), p.flat)
        return F.relu(_SelectLinear.apply(x, b_dec, W_enc, b_enc, z_sel, p, x_c))
    return F.relu(torch.take(z_pre, p.flat))


def sparse_topk_codes(
    x: Tensor, b_dec: Tensor, W_enc: Tensor, b_enc: Tensor, k: int, sorted: bool = False
) -> tuple[Tensor, Tensor, Pattern, Tensor | None]:
    """The sparse path's TopK encoder: ReLU of each sample's k largest pre-activations.

    Args:
        x: (batch, d_in) the (normalised) encoder input, before subtracting b_dec.
        b_dec: (d_in,) decoder bias.
        W_enc: (d_in, d_sae) encoder weight.
        b_enc: (d_sae,) encoder bias.
        k: latents kept per sample.
        sorted: order each sample's entries by decreasing pre-activation.

    Returns:
        (vals (batch·k,) differentiable w.r.t. the encoder, idx (batch, k), the Pattern ready
        for the sparse backward, z_pre (batch, d_sae) without grad or None: see
        `topk_pre_activations`).
    """
    with torch.no_grad():
        x_c = (x - b_dec).to(compute_dtype(W_enc))
    top, idx, z_pre = topk_pre_activations(x_c, W_enc, b_enc, k, sorted)
    p = pattern_from_topk(idx, W_enc.shape[1], transpose=True)
    vals = F.relu(_SelectLinear.apply(x, b_dec, W_enc, b_enc, top.view(-1), p, x_c))
    return vals, idx, p, z_pre


def dense_codes(vals: Tensor, p: Pattern) -> Tensor:
    """vals: (nnz,) -> the (batch, d_sae) matrix holding them at the pattern's entries."""
    batch = p.offsets.shape[0]
    # index_put_ into a fresh buffer: on CPU, scatter/scatter_ copy the whole buffer twice more.
    z = vals.new_zeros(batch * p.d_sae).index_put_((p.flat,), vals)
    return z.view(batch, p.d_sae)


def decode_codes(vals: Tensor, W_dec: Tensor, p: Pattern, sparse: bool) -> Tensor:
    """vals: (nnz,) -> Σ_e vals[e] · W_dec[cols[e]] per sample, (batch, d_in), without b_dec."""
    if sparse:
        return _SparseDecode.apply(vals, W_dec, p)
    return dense_codes(vals, p) @ W_dec
