"""Whether this CPU multiplies bf16 matrices natively, which decides the sparse path's shortlist.

On CPUs with AMX or AVX512-BF16 a bf16 matmul runs 4-6x faster than fp32, so the TopK sparse path
finds each row's candidate latents with a bf16 encoder matmul and re-ranks them exactly in fp32
(`encoder_topk.topk_pre_activations`), even when the run itself is fp32. Elsewhere (AVX2-only
CPUs such as AMD EPYC Rome/Milan) oneDNN emulates bf16 about 100-1000x slower than fp32, and
that shortlist would be a trap: there the shortlist is int8 where that is exact and faster
(`kernels.int8_shortlist`), else the step stays fp32. The choice is measured once per
process (flags, then timed matmuls in each dtype: `bf16_matmul_is_faster`), because CPU flags
alone can lie: `ONEDNN_MAX_CPU_ISA=AVX2` or a VM can hide the instructions oneDNN would use.

`SAELIGHT_BF16_SHORTLIST=on|off` overrides the measurement (`auto`, the default, measures), as
`SAELIGHT_INT8_SHORTLIST` does for int8.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch

from saelight.sae.kernels.cpu_probe import median_seconds, overridable
from saelight.sae.kernels.int8_shortlist import cpu_has_fast_int8
from saelight.sae.kernels.int8_shortlist import pays_off as int8_pays_off

ENV = "SAELIGHT_BF16_SHORTLIST"
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
"""/proc/cpuinfo flags of native bf16 matmuls (AMX tiles, AVX512-BF16 dot products)."""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> set[str]:
    """The `flags` of the first CPU in `cpuinfo`; empty where the file is absent (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _bf16_over_fp32(rows: int, d_in: int, d_out: int, repeats: int) -> float:
    """Time of a (rows × d_in) @ (d_in × d_out) product in bf16 over that in fp32."""
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(rows, d_in, generator=g), torch.randn(d_in, d_out, generator=g)
    a16, b16 = a.bfloat16(), b.bfloat16()
    return median_seconds(lambda: a16 @ b16, repeats) / median_seconds(lambda: a @ b, repeats)


def bf16_matmul_is_faster(rows: int = 64, d_in: int = 256, d_out: int = 1024) -> bool:
    """Is a bf16 matmul faster than fp32 here? First a 33 MFLOP product in each dtype (~0.1 ms
    in fp32, ~0.07 with AMX, ~40 ms where bf16 is emulated), which settles the emulated case;
    unless bf16 was 4x slower there, a 16x larger product decides, 5 times each: at 0.1 ms the
    gap is within the noise of a busy machine (the small one alone once chose fp32 on AMX)."""
    if _bf16_over_fp32(rows, d_in, d_out, 3) > 4:
        return False
    return _bf16_over_fp32(4 * rows, 2 * d_in, 2 * d_out, 5) < 1


@lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """True if this process's CPU matmuls in bf16 faster than in fp32 (see the module doc)."""

    def measure() -> bool:
        flags = cpu_flags()
        return not (flags and not flags & set(BF16_FLAGS)) and bf16_matmul_is_faster()

    return overridable(ENV, measure)


def shortlist_dtype(
    weight: torch.Tensor, compute: torch.dtype, batch: int | None = None, k: int | None = None
) -> torch.dtype:
    """The dtype the sparse path's encoder matmul runs in: `compute` (the autocast or weight
    dtype), except an fp32 matmul on CPU, which shortlists in bf16 where the CPU has native bf16
    and else in int8 where that is exact and faster (`kernels.int8_shortlist`) and, given
    the step's `batch` and `k`, pays off at its shape (`int8_shortlist.pays_off`)."""
    if compute != torch.float32 or weight.device.type != "cpu":
        return compute
    if cpu_has_native_bf16():
        return torch.bfloat16
    if not cpu_has_fast_int8():
        return compute
    if batch is not None and k is not None and not int8_pays_off(batch, *weight.shape, k):
        return compute
    return torch.int8


def emulated_bf16_warning(precision: object, accelerator: object) -> str | None:
    """The warning for a bf16 `trainer.precision` that would run on a CPU without native bf16
    (its matmuls emulated, ~100x slower than fp32); None when nothing is wrong."""
    if "bf16" not in str(precision):
        return None
    on_cpu = str(accelerator) == "cpu" or (
        str(accelerator) in ("auto", "None") and not torch.cuda.is_available()
    )
    if not on_cpu or cpu_has_native_bf16():
        return None
    return (
        f"trainer.precision {precision} on a CPU without native bf16 matmuls (no AMX or "
        "AVX512-BF16): they are emulated, ~100x slower than fp32; leave trainer.precision "
        "unset (32-true)"
    )
