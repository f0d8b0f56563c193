"""An int8 shortlist for the sparse path's encoder matmul, on CPUs without native bf16.

Where bf16 matmuls are emulated (AVX2-only CPUs such as AMD EPYC Rome/Milan) the fp32 encoder
matmul is most of the TopK step. oneDNN's int8 matmul (`torch._int_mm`) runs it ~1.8x faster
there (benchmarks/README.md); like the bf16 shortlist it only picks each row's `candidates`,
whose pre-activations `encoder_topk` then recomputes in fp32 before it takes the top k.

The quantisation makes each row's ranking key one integer matmul, with no float pass over the
(rows, d_sae) block:

- x - b_dec per row to ±`X_LEVELS`: rows differ in norm by orders of magnitude (silence and
  speech), and one scale for the batch missed 39 % of the top-32 entries of 4096 rows with
  log-normal norms (per row: 0.1 %, and none with the margin);
- W_enc per tensor to ±`W_LEVELS`, 7 bits: AVX2 multiplies u8 by s8 with int16 pair sums
  (vpmaddubsw), which saturate beyond that (with ±127 weights oneDNN's AVX2 products are wrong);
- b_enc through `BIAS_COLUMNS` extra input columns: W's extra rows hold b_enc in steps of β,
  row b's extra columns sum to Q_b = β / (s_b · s_W), its bias multiplier in the row's units.
  Rounding Q_b errs by at most half a step of β per latent, less than the matmul's own rounding;
  Q_b is capped at X_LEVELS · BIAS_COLUMNS by coarsening the scale of a row so small that its
  biases dominate it.

`SAELIGHT_INT8_SHORTLIST=on|off` overrides the measurement (`auto`, the default, checks once
per process that the int8 product is exact and faster than fp32).
"""

from __future__ import annotations

from functools import lru_cache

import torch
from torch import Tensor

from saelight.sae.kernels.cpu_probe import median_seconds, overridable

ENV = "SAELIGHT_INT8_SHORTLIST"
X_LEVELS = 127
W_LEVELS = 63
BIAS_COLUMNS = 8
MARGIN = 32
"""Extra candidates per row (at least; k for k > 32). With 7-bit weights, on data with log-normal
row norms and four dimensions 15-50x the others, k + 16 still missed 0.04-0.16 % of the top-32
entries of 4096 rows and k + 32 none (tests/sae/test_int8_shortlist.py); the bf16 shortlist
needs k + 8 on the same data."""
TINY = 1e-30


def candidates(k: int, d_sae: int) -> int:
    """How many int8 candidates each row's exact re-rank looks at."""
    return min(d_sae, k + max(MARGIN, k))


MIN_BATCH = 2048
MIN_D_IN = 512
MAX_CANDIDATE_SHARE = 1 / 64


def pays_off(batch: int, d_in: int, d_sae: int, k: int) -> bool:
    """Whether the int8 shortlist beats the plain fp32 step at this shape. It saves ~40 % of a
    batch · d_in · d_sae matmul, but costs a quantised and a transposed W_enc per step (d_in ·
    d_sae), per-entry fp32 dots of the candidates (batch · n · d_in, at a tenth of the matmul's
    speed) and a top-n. Whole steps, int8 over fp32, AVX2 kernels (d_in, d_sae, k, batch):
    768, 6144, 32, 4096: 1.17; 1024, 16384, 64, 2048: 1.00; 768, 24576, 64, 1024: 0.96;
    768, 2048, 20, 4096: 0.88; 256, 4096, 32, 1024: 0.94; 128, 8192, 16, 512: 1.01. So: large
    batches, wide inputs, and candidates at most 1/64 of the latents."""
    small_share = candidates(k, d_sae) <= d_sae * MAX_CANDIDATE_SHARE
    return batch >= MIN_BATCH and d_in >= MIN_D_IN and small_share


def inner_width(d_in: int) -> int:
    """Columns of the int8 operands: d_in, the bias columns, padded to a multiple of 8."""
    return -(-(d_in + BIAS_COLUMNS) // 8) * 8


class QuantizedEncoder:
    """W_enc and b_enc as one int8 (d_sae, inner_width) matrix and the scales its rows need.

    Built from the transposed fp32 weight W_t (d_sae, d_in), which the exact re-rank reads too,
    in blocks of `block_rows` rows scaled and rounded while in cache (5 vs 11 ms at 768 × 6144
    when built from W_enc with the transposition in the same loop, AVX2 kernels).
    """

    def __init__(self, W_t: Tensor, b_enc: Tensor, block_rows: int) -> None:
        d_sae, self.d_in = W_t.shape
        low, high = torch.aminmax(W_t)  # one pass, no |W| temporary (6x faster than inf-norm)
        self.s_w = torch.maximum(high, -low).clamp_min(TINY) / W_LEVELS
        self.beta = b_enc.abs().amax().clamp_min(TINY) / W_LEVELS
        q = W_t.new_empty(d_sae, inner_width(self.d_in), dtype=torch.int8)
        q[:, self.d_in + BIAS_COLUMNS :] = 0  # padding (only its columns: no full zero fill)
        scaled = W_t.new_empty(min(block_rows, d_sae), self.d_in)
        for lo in range(0, d_sae, block_rows):
            block = W_t[lo : lo + block_rows]
            q[lo : lo + block_rows, : self.d_in] = torch.mul(
                block, 1 / self.s_w, out=scaled[: block.shape[0]]
            ).round_()
        q[:, self.d_in : self.d_in + BIAS_COLUMNS] = b_enc.div(self.beta).round_().unsqueeze(1)
        self.weight = q.t()  # (inner, d_sae), column-major: oneDNN's fastest layout (~15 %)

    def rows(self, x_c: Tensor, out: Tensor) -> Tensor:
        """x_c: (rows, d_in) centred fp32 input -> `out` (rows, inner) int8, bias columns set."""
        d_in, q_max = self.d_in, X_LEVELS * BIAS_COLUMNS
        s = x_c.abs().amax(1).div_(X_LEVELS)
        s = torch.maximum(s, self.beta / (self.s_w * q_max)).clamp_min_(TINY)
        out[:, :d_in] = x_c.div(s.unsqueeze(1)).round_()
        multiplier = (self.beta / (s * self.s_w)).round_().clamp_max_(q_max).long()
        share = torch.arange(BIAS_COLUMNS, device=x_c.device)
        out[:, d_in : d_in + BIAS_COLUMNS] = multiplier.unsqueeze(1) // BIAS_COLUMNS + (
            share < multiplier.unsqueeze(1) % BIAS_COLUMNS
        )
        return out

    def keys(self, x_c: Tensor, x_q: Tensor, out: Tensor) -> Tensor:
        """(rows, d_sae) int32 keys whose row-wise order approximates that of x_c W + b."""
        return torch._int_mm(self.rows(x_c, x_q), self.weight, out=out)


def int8_matmul_is_exact_and_faster(rows: int = 512, d_in: int = 768, d_out: int = 4096) -> bool:
    """One (rows × d_in) @ (d_in × d_out) product in int8 (7-bit weights) and in fp32: is the
    int8 one exact and faster? The shape of a shortlist chunk (3.2 GFLOP, ~15 ms in fp32 on 2
    AVX2 cores, run once per process where bf16 is not native): oneDNN's int8 products pay a
    per-call cost that small ones do not hide (AVX2 kernels, 256 × 776 × 1024: int8 slower
    than fp32), and its kernel depends on the inner width, so the operands are `inner_width`
    wide as the shortlist's are (on the AMX CPU exactly 768 took 28 ms at 1024 outputs, 776
    took 0.24)."""
    g = torch.Generator().manual_seed(0)
    inner = inner_width(d_in)
    a = torch.randint(-X_LEVELS, X_LEVELS + 1, (rows, inner), generator=g, dtype=torch.int8)
    b = torch.randint(-W_LEVELS, W_LEVELS + 1, (d_out, inner), generator=g, dtype=torch.int8).t()
    try:
        product = torch._int_mm(a, b)
    except RuntimeError:  # no int8 matmul kernel in this build
        return False
    # a corner against int64 arithmetic (a saturating kernel errs everywhere)
    exact = torch.equal(product[:16, :512].long(), a[:16].long() @ b[:, :512].long())
    af, bf = a.float(), b.float()
    int8, fp32 = median_seconds(lambda: torch._int_mm(a, b), 3), median_seconds(lambda: af @ bf, 3)
    return exact and int8 < fp32


@lru_cache(maxsize=1)
def cpu_has_fast_int8() -> bool:
    """True if this process's CPU runs the shortlist's int8 matmul exactly and faster than fp32."""
    return overridable(ENV, lambda: int8_matmul_is_exact_and_faster())
