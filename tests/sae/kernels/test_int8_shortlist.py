"""The int8 shortlist: exact int32 keys, a bias that ranks, the exact top-k after re-ranking."""

from __future__ import annotations

import pytest
import torch

from saelight.sae.kernels import encoder_topk, int8_shortlist
from saelight.sae.kernels.encoder_topk import topk_pre_activations
from saelight.sae.kernels.int8_shortlist import (
    BIAS_COLUMNS,
    W_LEVELS,
    X_LEVELS,
    QuantizedEncoder,
    inner_width,
)


def encoder_of(W_enc: torch.Tensor, b_enc: torch.Tensor, block_rows: int = 5) -> QuantizedEncoder:
    return QuantizedEncoder(W_enc.t().contiguous(), b_enc, block_rows)


def test_keys_are_the_integer_product_of_the_quantised_operands() -> None:
    g = torch.Generator().manual_seed(0)
    W, b = torch.randn(21, 40, generator=g), torch.randn(40, generator=g)
    x_c = torch.randn(19, 21, generator=g) * torch.logspace(-3, 2, 19).unsqueeze(1)
    enc = encoder_of(W, b)
    x_q = torch.empty(19, inner_width(21), dtype=torch.int8)
    keys = enc.keys(x_c, x_q, torch.empty(19, 40, dtype=torch.int32))
    assert inner_width(21) == 32 and enc.weight.shape == (32, 40)
    assert enc.weight.abs().max() <= W_LEVELS and x_q[:, :29].abs().max() <= X_LEVELS
    assert not enc.weight[21 + BIAS_COLUMNS :].any()  # padding: x_q's last 3 columns never count
    assert torch.equal(keys.long(), x_q.long() @ enc.weight.long())  # independent int64 product
    # scaled back, the keys are x_c W + b up to the quantisation, on every row's own scale
    s_b = (x_c.abs().amax(1) / X_LEVELS).clamp_min(enc.beta / (enc.s_w * X_LEVELS * BIAS_COLUMNS))
    approx = keys.double() * (s_b * enc.s_w).unsqueeze(1).double()
    exact = (x_c @ W + b).double()
    scale = x_c.norm(dim=1, keepdim=True).double() * W.norm(dim=0).double() + b.abs().max()
    assert ((approx - exact).abs() / scale).max() < 0.02


def test_a_zero_row_ranks_the_latents_by_their_bias() -> None:
    b = torch.tensor([0.5, -1.0, 2.0, 0.0, 1.0, -0.3, 0.7, 1.5])
    enc = encoder_of(torch.randn(16, 8, generator=torch.Generator().manual_seed(1)), b)
    x_q = torch.empty(2, inner_width(16), dtype=torch.int8)
    keys = enc.keys(torch.zeros(2, 16), x_q, torch.empty(2, 8, dtype=torch.int32))
    # the bias columns carry the capped multiplier, split as evenly as integers allow
    assert x_q[:, 16:24].sum(1).tolist() == [X_LEVELS * BIAS_COLUMNS] * 2
    assert x_q[:, 16:24].max() - x_q[:, 16:24].min() <= 1
    assert torch.equal(keys[0].argsort(), b.argsort())


def hard_batch(seed: int, rows: int = 4096, d_in: int = 768, d_sae: int = 6144) -> tuple:
    """Log-normal row norms (quiet and loud frames), 4 dimensions 15x the others, an offset,
    biases as large as the typical pre-activation: the data int8.MARGIN was sized on."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, d_in, generator=g)
    x[:, :4] *= 15
    x = x * torch.exp(torch.randn(rows, 1, generator=g)) + 0.3
    W_enc = torch.randn(d_in, d_sae, generator=g) / d_in**0.5
    return x, torch.randn(d_in, generator=g) * 0.3, W_enc, torch.randn(d_sae, generator=g)


def wrong_entries(x, b_dec, W_enc, b_enc, k: int = 32) -> int:  # noqa: ANN001
    """Top-k values of the int8 path that are not the fp32 top-k's (ties aside)."""
    expected, _, _ = topk_pre_activations(x, b_dec, W_enc, b_enc, k, sorted=True)
    got, idx, dense = topk_pre_activations(x, b_dec, W_enc, b_enc, k, True, torch.int8)
    assert dense is None and got.dtype == torch.float32
    z = (x - b_dec) @ W_enc + b_enc
    torch.testing.assert_close(got, z.gather(1, idx), rtol=1e-5, atol=1e-4)  # exact fp32 values
    return int(((got - expected).abs() > 1e-4 * expected.abs().clamp_min(1)).sum())


def test_int8_path_returns_the_exact_topk_on_hard_data() -> None:
    assert int8_shortlist.candidates(32, 6144) == 64
    assert wrong_entries(*hard_batch(0)) == 0


def test_the_margin_is_what_makes_it_exact(monkeypatch: pytest.MonkeyPatch) -> None:
    """k + 16 candidates miss entries on the same data: the test data is hard enough."""
    monkeypatch.setattr(encoder_topk, "int8_candidates", lambda k, d_sae: k + 16)
    assert wrong_entries(*hard_batch(0)) > 0


def test_small_chunks_and_a_short_last_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(encoder_topk, "CHUNK_ELEMENTS", 5 * 64)
    x, b_dec, W_enc, b_enc = hard_batch(3, rows=37, d_in=20, d_sae=64)
    z = (x - b_dec) @ W_enc + b_enc
    values, idx, _ = topk_pre_activations(x, b_dec, W_enc, b_enc, 4, True, torch.int8)
    torch.testing.assert_close(values, z.topk(4).values)
    torch.testing.assert_close(idx, z.topk(4).indices)


@pytest.mark.parametrize("saturates", [True, False])
def test_the_probe_rejects_a_saturating_int8_kernel(
    monkeypatch: pytest.MonkeyPatch, saturates: bool
) -> None:
    """AVX2's int16 pair sums saturate beyond 7-bit weights: a kernel that clips is not used,
    however fast (the timing is faked in int8's favour), and an exact one is."""

    def kernel(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        product = a.float() @ b.float()  # exact: |sums| < 2^24
        return (product.clamp(-(1 << 15), (1 << 15) - 1) if saturates else product).int()

    monkeypatch.setattr(torch, "_int_mm", kernel)
    timings = iter([1.0, 2.0])  # int8 first, then fp32
    monkeypatch.setattr(int8_shortlist, "median_seconds", lambda product, repeats: next(timings))
    assert int8_shortlist.int8_matmul_is_exact_and_faster() is not saturates


@pytest.mark.parametrize(("value", "expected"), [("on", True), ("off", False), (" On", True)])
def test_environment_overrides_the_int8_measurement(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: bool
) -> None:
    monkeypatch.setenv(int8_shortlist.ENV, value)
    monkeypatch.setattr(int8_shortlist, "int8_matmul_is_exact_and_faster", lambda: not expected)
    int8_shortlist.cpu_has_fast_int8.cache_clear()
    try:
        assert int8_shortlist.cpu_has_fast_int8() is expected
    finally:
        int8_shortlist.cpu_has_fast_int8.cache_clear()


@pytest.mark.parametrize(
    ("d_in", "d_sae", "k", "batch", "faster"),
    [
        (768, 6144, 32, 4096, True),  # 1.17x the fp32 step (AVX2 kernels)
        (1024, 16384, 64, 2048, True),  # 1.00x
        (768, 24576, 64, 1024, False),  # 0.96x: W_enc's per-step costs on a small batch
        (768, 2048, 20, 4096, False),  # 0.88x: 52 candidates of 2048 latents
        (256, 4096, 32, 1024, False),  # 0.94x
        (128, 8192, 16, 512, False),  # 1.01x
    ],
)
def test_int8_is_used_at_the_shapes_where_it_was_measured_faster(
    d_in: int, d_sae: int, k: int, batch: int, faster: bool
) -> None:
    assert int8_shortlist.pays_off(batch, d_in, d_sae, k) is faster


def test_a_small_step_stays_fp32_on_an_int8_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    from saelight.sae import TopKSAE
    from saelight.sae.kernels import native_bf16, sparse_ops

    monkeypatch.setattr(native_bf16, "cpu_has_native_bf16", lambda: False)
    monkeypatch.setattr(native_bf16, "cpu_has_fast_int8", lambda: True)
    seen: list = []
    real = sparse_ops.topk_pre_activations

    def spy(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        seen.append(args[-1] if len(args) > 6 else kwargs.get("dtype"))
        return real(*args, **kwargs)

    monkeypatch.setattr(sparse_ops, "topk_pre_activations", spy)
    sae = TopKSAE(32, 256, k=4, sparse=True)
    sae(torch.randn(64, 32))
    assert seen == [torch.float32]
