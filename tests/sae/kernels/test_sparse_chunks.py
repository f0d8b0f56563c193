"""The fast sparse step's kernels: chunked top-k with bf16 shortlist and exact re-ranking, the
blocked transposes, lazy dense codes in SAEOutput, and fused Adam for SAEModule."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from saelight.module import prefer_fused
from saelight.sae import SAE, TopKSAE
from saelight.sae.kernels import encoder_topk
from saelight.sae.kernels.sparse_ops import (
    _by_latent_sum,
    _by_latent_sum_t,
    exact_pre_activations,
    pattern_from_topk,
    topk_pre_activations,
    transposed,
)
from saelight.sae.kernels.sparse_pattern import latent_order

D_IN, D_SAE, K, BATCH = 16, 64, 4, 37  # 37 rows: the last chunk is a short one


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of 5 rows and transposes in blocks of 2-3 rows, so every loop runs many times."""
    monkeypatch.setattr(encoder_topk, "CHUNK_ELEMENTS", 5 * D_SAE)
    monkeypatch.setattr(encoder_topk, "TRANSPOSE_BLOCK", 40)


def tensors(seed: int = 0) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(BATCH, D_IN, generator=g) + 1
    b_dec = torch.randn(D_IN, generator=g)
    W_enc = torch.randn(D_IN, D_SAE, generator=g)
    b_enc = torch.randn(D_SAE, generator=g)
    return x, b_dec, W_enc, b_enc


@pytest.mark.usefixtures("small_chunks")
@pytest.mark.parametrize("dtype", [None, torch.bfloat16])
def test_chunked_topk_is_the_exact_topk(dtype: torch.dtype | None) -> None:
    x, b_dec, W_enc, b_enc = tensors()
    z_pre = (x - b_dec) @ W_enc + b_enc
    values, idx, dense = topk_pre_activations(x, b_dec, W_enc, b_enc, K, sorted=True, dtype=dtype)
    assert dense is None  # chunked on CPU: no (batch, d_sae) matrix
    assert values.dtype == torch.float32
    expected = z_pre.topk(K, dim=-1, sorted=True)
    torch.testing.assert_close(values, expected.values)
    torch.testing.assert_close(idx, expected.indices)


def test_exact_pre_activations_and_transposes(small_chunks: None) -> None:
    x, b_dec, W_enc, b_enc = tensors(1)
    idx = torch.randint(0, D_SAE, (BATCH, 6), generator=torch.Generator().manual_seed(2))
    z_pre = (x - b_dec) @ W_enc + b_enc
    torch.testing.assert_close(
        exact_pre_activations(x, b_dec, W_enc, b_enc, idx), z_pre.gather(1, idx)
    )
    assert torch.equal(transposed(W_enc), W_enc.t().contiguous())
    assert transposed(W_enc, torch.bfloat16).dtype == torch.bfloat16
    p = pattern_from_topk(idx, D_SAE, transpose=True)
    w = torch.randn(idx.numel(), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(_by_latent_sum_t(p, w, x), _by_latent_sum(p, w, x).t())


@pytest.mark.usefixtures("small_chunks", "fp32_only")
@pytest.mark.parametrize("name", ["topk", "hierarchical_topk"])
def test_chunked_sparse_step_equals_dense(name: str) -> None:
    kwargs = {"k": K} if name == "topk" else {"ks": [1, 3, K]}
    results = []
    for sparse in (False, True):
        torch.manual_seed(0)
        sae = SAE.registry[name](D_IN, D_SAE, sparse=sparse, **kwargs)
        x = tensors()[0]
        sae.initialize_from_data(x)
        out = sae(x, torch.arange(D_SAE) % 3 == 0)
        (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
        results.append((out, {n: p.grad for n, p in sae.named_parameters()}))
    (dense, grads_d), (sparse_out, grads_s) = results
    torch.testing.assert_close(sparse_out.x_hat, dense.x_hat)
    torch.testing.assert_close(sparse_out.z, dense.z)
    for n, g in grads_d.items():
        torch.testing.assert_close(grads_s[n], g, msg=n)


def test_bf16_sparse_step_matches_fp32(small_chunks: None) -> None:
    """The bf16 matmul only shortlists: codes and loss are those of the fp32 step."""
    losses = []
    for autocast in (False, True):
        torch.manual_seed(0)
        sae = TopKSAE(D_IN, D_SAE, k=K, sparse=True)
        x = tensors()[0]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = sae(x)
        losses.append((F.mse_loss(out.x_hat.float(), x), out.z.float()))
    torch.testing.assert_close(losses[1][0], losses[0][0])
    torch.testing.assert_close(losses[1][1], losses[0][1])


def test_output_builds_dense_codes_lazily_and_fired_matches() -> None:
    torch.manual_seed(0)
    sae = TopKSAE(D_IN, D_SAE, k=K, sparse=True)
    x = tensors()[0]
    out = sae(x)
    assert tuple.__getitem__(out, 1) is None and out.codes is not None
    x_hat, z, aux, codes = out
    assert z.shape == (BATCH, D_SAE) and torch.equal(out[1], z) and codes is out.codes
    assert torch.equal(out.codes.fired(), (out.z > 0).any(0))
    assert torch.equal(out._asdict()["z"], z)


def test_prefer_fused_keeps_the_update_and_explicit_choices() -> None:
    params = [torch.nn.Parameter(torch.randn(5, 3)) for _ in range(2)]
    copies = [torch.nn.Parameter(p.detach().clone()) for p in params]
    fused = prefer_fused(torch.optim.Adam([{"params": params, "name": "a"}], lr=0.1))
    assert fused.defaults["fused"] and fused.param_groups[0]["name"] == "a"
    plain = torch.optim.Adam(copies, lr=0.1)
    for opt, ps in ((fused, params), (plain, copies)):
        for _ in range(3):
            opt.zero_grad()
            sum((p**2).sum() for p in ps).backward()
            opt.step()
    for p, q in zip(params, copies, strict=True):
        torch.testing.assert_close(p, q)
    explicit = torch.optim.Adam(params, foreach=False)
    assert prefer_fused(explicit) is explicit
    sgd = torch.optim.SGD(params, lr=0.1)
    assert prefer_fused(sgd) is sgd


@pytest.mark.parametrize("d_sae", [64, 1 << 15, 70_000])
def test_latent_order_is_the_stable_argsort_of_short_and_long_keys(d_sae: int) -> None:
    """Short key arrays are padded for the radix sort: the padding (the key type's maximum,
    which latent 32767 shares at d_sae 2^15) never lands among the real entries."""
    g = torch.Generator().manual_seed(4)
    for size in (10, 40_000):
        cols = torch.randint(0, d_sae, (size,), generator=g)
        cols[:3] = d_sae - 1
        expected = torch.argsort(cols, stable=True)
        assert torch.equal(latent_order(cols, d_sae), expected)
