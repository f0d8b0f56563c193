"""Sparse training path for the TopK family: only the encoder matmul stays dense.

With k active latents out of d_sae, a dense step costs five (batch × d_in × d_sae) matmuls: the
encoder, the decoder, and three in the backward pass. Here the decoder is a gather of the k
selected rows of `W_dec` (`F.embedding_bag`), and every backward product touches only the
batch·k selected entries:

    dL/dW_dec[i] = Σ_b z[b, i] · dL/dx_hat[b]          (transposed embedding_bag, entries by latent)
    dL/dz[b, j]  = <dL/dx_hat[b], W_dec[idx[b, j]]>    (embedding_bag's per-sample-weight backward)
    dL/dW_enc    = x_cᵀ G,  G the sparse (batch, d_sae) gradient of the selected pre-activations
                 = (transposed embedding_bag of x_c rows, entries by latent)ᵀ

so no (batch, k, d_in) temporary is ever built. For TopK and HierarchicalTopK,
`topk_pre_activations` (`kernels.encoder_topk`) runs the encoder matmul and the top-k without
autograd. Under bf16 autocast that matmul only shortlists candidates, which are re-ranked in fp32;
the selected fp32 values enter autograd through `_SelectLinear` (its forward does no work) and the
decoder and every sparse product run in fp32, so bf16 buys the dense matmul's speed without the
dense bf16 step's loss drift. An fp32 step shortlists too, in bf16 where the CPU has native bf16
matmuls and in int8 elsewhere where that is faster (`kernels.native_bf16.shortlist_dtype`):
the same exact top-k at the lower-precision matmul's speed. BatchTopK selects over the whole
batch's bf16 z_pre and runs its sparse products in that dtype (fp32 accumulation inside
embedding_bag). Gradients come back in each parameter's dtype (fp32 master weights). Autocast is
switched off inside the functions because it would upcast embedding_bag. Nothing reads a value
back to the host off CPU, so CUDA steps do not synchronise.

`SPARSE_AUTO_MAX_DENSITY` and `SPARSE_AUTO_MIN_ELEMENTS` (the `sparse` switch's auto mode) are
the crossovers where the sparse step measured faster than the dense one on CPU; the measurements
are in benchmarks/README.md ("Sparse vs dense step").
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.sae.kernels.encoder_topk import (  # noqa: F401 (re-exported: the sparse path's API)
    exact_pre_activations,
    topk_pre_activations,
    transposed,
)
from saelight.sae.kernels.native_bf16 import shortlist_dtype
from saelight.sae.kernels.sparse_pattern import (  # noqa: F401 (re-exported: the sparse path's API)
    TRANSPOSE_BLOCK,
    Pattern,
    _by_latent,
    _by_latent_sum,
    _by_latent_sum_t,
    _counts_to_offsets,
    _pattern,
    pattern_from_flat,
    pattern_from_topk,
)

SPARSE_AUTO_MAX_DENSITY = 1 / 64
SPARSE_AUTO_MIN_ELEMENTS = 1 << 18
"""Smallest batch · d_sae for the auto sparse path: below it the sparse path's fixed costs (the
pattern, its by-latent sort, the blocked transposes) outweigh the dense matmuls it saves."""


def use_sparse(sparse: bool | None, k: int, d_sae: int, batch: int | None = None) -> bool:
    """The `sparse` switch of the TopK family: None means auto, i.e. k/d_sae <= the max density
    and (when `batch` is given) batch · d_sae >= `SPARSE_AUTO_MIN_ELEMENTS`."""
    if sparse is not None:
        return sparse
    big_enough = batch is None or batch * d_sae >= SPARSE_AUTO_MIN_ELEMENTS
    return k / d_sae <= SPARSE_AUTO_MAX_DENSITY and big_enough


def compute_dtype(t: Tensor) -> torch.dtype:
    """The dtype matmuls on `t` run in: the autocast dtype inside autocast, else t's own."""
    device = t.device.type
    return torch.get_autocast_dtype(device) if torch.is_autocast_enabled(device) else t.dtype


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


class _SelectLinear(torch.autograd.Function):
    """vals[e] = (x[rows[e]] - b_dec) · W_enc[:, cols[e]] + b_enc[cols[e]], sparse backward.

    The forward values come in precomputed (`z_sel`, read from the pre-activations that were
    needed anyway to choose the pattern), so the forward pass does no work. b_dec is an input of
    its own because its gradient, -Σ_b dL/dx_c[b] = -W_enc · dL/db_enc, is a mat-vec, while the
    gradient w.r.t. x would be an embedding_bag over W_encᵀ (only run if x requires grad). The
    W_enc gradient is taken over the rows of x itself, minus b_dec ⊗ dL/db_enc, so no centred
    copy of the batch is made.
    """

    @staticmethod
    def forward(ctx, x, b_dec, W_enc, b_enc, z_sel, p):  # type: ignore[override]
        ctx.p = p
        ctx.save_for_backward(x, W_enc, b_enc, b_dec)
        return z_sel.clone()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, W_enc, b_enc, b_dec = ctx.saved_tensors
        p: Pattern = ctx.p
        grad_x = grad_b_dec = grad_W = grad_b = None
        with torch.autocast(grad.device.type, enabled=False):
            if ctx.needs_input_grad[0]:
                W_t = transposed(W_enc, grad.dtype)
                grad_x = F.embedding_bag(
                    p.cols, W_t, p.offsets, mode="sum", per_sample_weights=grad
                ).to(x.dtype)
            grad_b = torch.zeros_like(b_enc).index_add_(0, p.cols, grad.to(b_enc.dtype))
            if ctx.needs_input_grad[2]:
                # Σ_e g_e (x[row_e] - b_dec) = Σ_e g_e x[row_e] - b_dec · dL/db_enc per latent.
                grad_W = _by_latent_sum_t(p, grad, x.to(grad.dtype)).to(W_enc.dtype)
                grad_W.addr_(b_dec.to(W_enc.dtype), grad_b, alpha=-1)
            if ctx.needs_input_grad[1]:
                grad_b_dec = -(W_enc @ grad_b).to(b_dec.dtype)
            if not ctx.needs_input_grad[3]:
                grad_b = None
        return grad_x, grad_b_dec, grad_W, grad_b, None, None


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
    """
    if sparse:
        z_sel = torch.take(z_pre.detach(), p.flat)
        return F.relu(_SelectLinear.apply(x, b_dec, W_enc, b_enc, z_sel, p))
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
        (vals (batch·k,) differentiable w.r.t. the encoder, in W_enc's dtype; idx (batch, k);
        the Pattern, ready for the sparse backward; z_pre (batch, d_sae) without grad, or None:
        see `topk_pre_activations`).
    """
    dtype = shortlist_dtype(W_enc, compute_dtype(W_enc), x.shape[0], k)
    top, idx, z_pre = topk_pre_activations(x, b_dec, W_enc, b_enc, k, sorted, dtype)
    p = pattern_from_topk(idx, W_enc.shape[1], transpose=True)
    vals = F.relu(_SelectLinear.apply(x, b_dec, W_enc, b_enc, top.reshape(-1), p))
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
