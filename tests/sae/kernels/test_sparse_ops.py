"""The sparse path (saelight.sae.kernels.sparse_ops) gives the dense path's loss and gradients."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from saelight.sae import SAE
from saelight.sae.kernels.sparse_ops import (
    SPARSE_AUTO_MAX_DENSITY,
    SPARSE_AUTO_MIN_ELEMENTS,
    decode_codes,
    gather_codes,
    pattern_from_flat,
    pattern_from_topk,
    use_sparse,
)

D_IN, D_SAE, BATCH = 16, 64, 32
FAMILY = {"topk": {"k": 4}, "batchtopk": {"k": 4}, "hierarchical_topk": {"ks": [1, 3, 6]}}


def loss_and_grads(name: str, sparse: bool, autocast: bool = False):
    torch.manual_seed(0)
    sae = SAE.registry[name](D_IN, D_SAE, sparse=sparse, normalize_input=True, **FAMILY[name])
    x = torch.randn(BATCH, D_IN, generator=torch.Generator().manual_seed(1)) * 2 + 1
    sae.initialize_from_data(x)
    dead = torch.arange(D_SAE) % 3 == 0
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
        out = sae(x, dead)
    loss = F.mse_loss(out.x_hat, x) + out.aux_loss
    loss.backward()
    grads = {n: p.grad for n, p in sae.named_parameters()}
    return loss.detach(), out.z.detach().float(), grads


@pytest.mark.usefixtures("fp32_only")
@pytest.mark.parametrize("name", sorted(FAMILY))
def test_sparse_equals_dense_in_fp32(name: str) -> None:
    loss_d, z_d, grads_d = loss_and_grads(name, sparse=False)
    loss_s, z_s, grads_s = loss_and_grads(name, sparse=True)
    torch.testing.assert_close(loss_s, loss_d)
    torch.testing.assert_close(z_s, z_d)
    assert set(grads_d) == {"W_enc", "b_enc", "W_dec", "b_dec"}
    for n in grads_d:
        assert grads_d[n].abs().sum() > 0, n
        torch.testing.assert_close(grads_s[n], grads_d[n], msg=n)


@pytest.mark.parametrize("name", sorted(FAMILY))
def test_sparse_bf16_autocast_is_close_to_fp32(name: str) -> None:
    loss_ref, _, grads_ref = loss_and_grads(name, sparse=False)
    loss, _, grads = loss_and_grads(name, sparse=True, autocast=True)
    torch.testing.assert_close(loss, loss_ref, rtol=0.05, atol=0)
    for n, g in grads.items():
        assert g.dtype == torch.float32
        cos = F.cosine_similarity(g.flatten(), grads_ref[n].flatten(), dim=0)
        assert cos > 0.97, (n, cos)


def test_sparse_functions_pass_gradcheck() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 3, dtype=torch.double, generator=g, requires_grad=True)
    W_enc = torch.randn(3, 7, dtype=torch.double, generator=g, requires_grad=True)
    b_enc = (torch.randn(7, dtype=torch.double, generator=g) + 10).requires_grad_()
    W_dec = torch.randn(7, 3, dtype=torch.double, generator=g, requires_grad=True)
    b_dec = torch.randn(3, dtype=torch.double, generator=g, requires_grad=True)
    # samples with 2, 0, 1, 2 and 1 active latents, one latent used twice
    p = pattern_from_flat(torch.tensor([0, 8, 20, 22, 27, 34]), 5, 7, transpose=True)

    def encode_decode(x, b_dec, W_enc, b_enc, W_dec, sparse=True):
        z_pre = torch.addmm(b_enc, x - b_dec, W_enc)  # b_enc + 10 keeps the entries > 0
        vals = gather_codes(z_pre, p, sparse, x, b_dec, W_enc, b_enc)
        return decode_codes(vals, W_dec, p, sparse)

    inputs = (x, b_dec, W_enc, b_enc, W_dec)
    torch.testing.assert_close(encode_decode(*inputs), encode_decode(*inputs, sparse=False))
    assert torch.autograd.gradcheck(encode_decode, inputs)


def test_patterns() -> None:
    idx = torch.tensor([[3, 1], [0, 3]])
    p = pattern_from_topk(idx, 4, transpose=True)
    assert p.rows.tolist() == [0, 0, 1, 1] and p.flat.tolist() == [3, 1, 4, 7]
    assert p.offsets.tolist() == [0, 2]
    order, rows_by_latent, latent_offsets = p.by_latent
    assert p.cols[order].tolist() == [0, 1, 3, 3] and latent_offsets.tolist() == [0, 1, 2, 2]
    q = pattern_from_flat(torch.tensor([9, 2, 3]), batch=3, d_sae=4)
    assert q.rows.tolist() == [0, 0, 2] and q.cols.tolist() == [2, 3, 1]
    assert q.offsets.tolist() == [0, 2, 2] and q.by_latent is None


def test_auto_switch() -> None:
    assert use_sparse(None, 32, 6144) and not use_sparse(None, 2048, 4096)
    assert use_sparse(True, 2048, 4096) and not use_sparse(False, 1, 4096)
    assert use_sparse(None, int(SPARSE_AUTO_MAX_DENSITY * 1000), 1000)
    assert not use_sparse(None, int(SPARSE_AUTO_MAX_DENSITY * 1000) + 2, 1000)
    # a small step stays dense (the paper's batch 16 at d_sae 2048, k 20); a large one is sparse
    assert not use_sparse(None, 20, 2048, batch=16)
    assert use_sparse(None, 20, 2048, batch=SPARSE_AUTO_MIN_ELEMENTS // 2048)
    assert use_sparse(True, 20, 2048, batch=16)  # an explicit switch wins
