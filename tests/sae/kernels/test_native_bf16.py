"""The shortlist is chosen per CPU: bf16 where bf16 matmuls are native, else int8 where that is
exact and faster, else none (fp32)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from saelight.sae import TopKSAE
from saelight.sae.kernels import native_bf16, sparse_ops


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A fresh measurement for this test (the choice is cached per process), without the env
    override."""
    monkeypatch.delenv(native_bf16.ENV, raising=False)
    monkeypatch.setattr(native_bf16, "cpu_has_fast_int8", lambda: False)
    native_bf16.cpu_has_native_bf16.cache_clear()
    yield monkeypatch
    native_bf16.cpu_has_native_bf16.cache_clear()


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse avx2 fma\n\n")
    assert native_bf16.cpu_flags(info) == {"fpu", "sse", "avx2", "fma"}
    assert native_bf16.cpu_flags(tmp_path / "absent") == set()


def test_avx2_only_cpu_falls_back_to_fp32_without_timing(fresh: pytest.MonkeyPatch) -> None:
    fresh.setattr(native_bf16, "cpu_flags", lambda: {"avx2", "fma"})

    def no_timing() -> bool:
        raise AssertionError("an AVX2-only CPU needs no bf16 timing")

    fresh.setattr(native_bf16, "bf16_matmul_is_faster", no_timing)
    assert native_bf16.cpu_has_native_bf16() is False
    assert native_bf16.shortlist_dtype(torch.zeros(2, 2), torch.float32) == torch.float32
    # ... to int8 where that is exact and faster, to fp32 where not
    fresh.setattr(native_bf16, "cpu_has_fast_int8", lambda: True)
    assert native_bf16.shortlist_dtype(torch.zeros(2, 2), torch.float32) == torch.int8
    assert native_bf16.shortlist_dtype(torch.zeros(2, 2), torch.float64) == torch.float64


def test_flags_that_oneDNN_cannot_use_fall_back_to_fp32(fresh: pytest.MonkeyPatch) -> None:
    """Flags present but bf16 slower (ONEDNN_MAX_CPU_ISA=AVX2, a VM): the timing decides."""
    fresh.setattr(native_bf16, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    fresh.setattr(native_bf16, "bf16_matmul_is_faster", lambda: False)
    assert native_bf16.cpu_has_native_bf16() is False
    native_bf16.cpu_has_native_bf16.cache_clear()
    fresh.setattr(native_bf16, "bf16_matmul_is_faster", lambda: True)
    assert native_bf16.cpu_has_native_bf16() is True
    assert native_bf16.shortlist_dtype(torch.zeros(2, 2), torch.float32) == torch.bfloat16
    # bf16 autocast keeps its own dtype, and so does a float64 step
    assert native_bf16.shortlist_dtype(torch.zeros(2, 2), torch.bfloat16) == torch.bfloat16
    assert native_bf16.shortlist_dtype(torch.zeros(2, 2), torch.float64) == torch.float64


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("off", False), ("OFF ", False)])
def test_environment_overrides_the_measurement(
    fresh: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    fresh.setenv(native_bf16.ENV, value)
    fresh.setattr(native_bf16, "cpu_flags", lambda: {"avx2"})
    assert native_bf16.cpu_has_native_bf16() is expected


def test_timing_probe_returns_a_decision() -> None:
    assert native_bf16.bf16_matmul_is_faster(rows=8, d_in=16, d_out=32) in (True, False)


REAL_TOPK = sparse_ops.topk_pre_activations
CHOICES = {"fp32": (False, False), "bf16": (True, False), "int8": (False, True)}
"""(native bf16, fast int8) of a CPU of each kind."""


def _fp32_step(monkeypatch: pytest.MonkeyPatch, cpu: str) -> tuple:
    """One fp32 sparse step on a CPU told what it has (`CHOICES`); the dtypes its encoder
    matmuls ran in."""
    native, int8 = CHOICES[cpu]
    monkeypatch.setattr(native_bf16, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(native_bf16, "cpu_has_fast_int8", lambda: int8)
    seen: list[torch.dtype] = []

    def spy(x, b_dec, W_enc, b_enc, k, sorted=False, dtype=None):  # noqa: ANN001, ANN202
        seen.append(W_enc.dtype if dtype is None else dtype)
        return REAL_TOPK(x, b_dec, W_enc, b_enc, k, sorted, dtype)

    monkeypatch.setattr(sparse_ops, "topk_pre_activations", spy)
    monkeypatch.setattr(native_bf16, "int8_pays_off", lambda *shape: True)  # at this tiny shape
    torch.manual_seed(0)
    sae = TopKSAE(32, 256, k=4, sparse=True)
    x = torch.randn(64, 32, generator=torch.Generator().manual_seed(1))
    sae.initialize_from_data(x)
    out = sae(x, torch.arange(256) % 4 == 0)
    main = F.mse_loss(out.x_hat, x)
    (main + out.aux_loss).backward()
    return seen, out.z.detach(), main.detach(), out.aux_loss.detach(), sae.W_enc.grad


def test_shortlist_gives_the_fp32_codes_and_loss(monkeypatch: pytest.MonkeyPatch) -> None:
    seen32, z32, mse32, aux32, grad32 = _fp32_step(monkeypatch, "fp32")
    seen16, z16, mse16, aux16, grad16 = _fp32_step(monkeypatch, "bf16")
    seen8, z8, mse8, aux8, grad8 = _fp32_step(monkeypatch, "int8")
    assert seen32 == [torch.float32] and seen16 == [torch.bfloat16] and seen8 == [torch.int8]
    torch.testing.assert_close(z16, z32)  # the exact fp32 top-k, values included
    torch.testing.assert_close(mse16, mse32)
    torch.testing.assert_close(z8, z32)
    torch.testing.assert_close(mse8, mse32)
    # the AuxK pass over dead latents ran in bf16 on the bf16 CPU: close, not equal; in fp32
    # on the int8 one (bf16 is emulated there)
    assert aux32 > 0
    torch.testing.assert_close(aux16, aux32, rtol=2e-2, atol=0)
    assert not torch.equal(aux16, aux32)
    torch.testing.assert_close(aux8, aux32)
    assert F.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0) > 0.999
    torch.testing.assert_close(grad8, grad32)
