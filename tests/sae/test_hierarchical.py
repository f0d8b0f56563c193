"""HierarchicalTopKSAE: the multi-k loss against a hand computation, and the k ladder."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from saelight.sae import HierarchicalTopKSAE

D_IN, D_SAE = 16, 64


@pytest.mark.parametrize("sparse", [False, True])
def test_loss_equals_the_mean_over_the_ladder(sparse: bool) -> None:
    torch.manual_seed(0)
    sae = HierarchicalTopKSAE(D_IN, D_SAE, ks=[4, 1, 2], sparse=sparse, normalize_input=True)
    x = torch.randn(8, D_IN) * 5
    sae.initialize_from_data(x)
    out = sae(x)
    assert sae.ks == [1, 2, 4] and sae.k == 4
    s = sae.input_scale
    z_pre = F.relu((x * s - sae.b_dec) @ sae.W_enc + sae.b_enc).detach()
    per_k = []
    for k in (1, 2, 4):
        total = 0.0
        for b in range(8):
            top = z_pre[b].topk(k)
            x_hat = (top.values[:, None] * sae.W_dec[top.indices]).sum(0) + sae.b_dec
            total += float(((x_hat / s - x[b]) ** 2).sum().detach())
        per_k.append(total / (8 * D_IN))
    expected = torch.tensor(sum(per_k) / 3)
    torch.testing.assert_close(F.mse_loss(out.x_hat, x) + out.aux_loss, expected)
    torch.testing.assert_close(F.mse_loss(out.x_hat, x), torch.tensor(per_k[-1]))
    assert ((out.z > 0).sum(1) == 4).all()


def test_encode_follows_the_k_attribute() -> None:
    torch.manual_seed(0)
    sae = HierarchicalTopKSAE(D_IN, D_SAE, sparsities=[0.5, 0.75], k=8)
    assert sae.ks == [16, 32] and sae.k == 8
    with torch.no_grad():
        sae.b_enc.fill_(5.0)
    x = torch.randn(4, D_IN)
    assert ((sae.encode(x) > 0).sum(1) == 8).all()
    sae.k = 16
    assert ((sae.encode(x) > 0).sum(1) == 16).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of `ks` or `sparsities`"),
        ({"ks": [2, 2]}, "distinct"),
        ({"ks": []}, "non-empty"),
        ({"ks": [2, 65]}, r"`ks\[1\]` must be in \[1, d_sae=64\]"),
        ({"ks": [2], "k": 0}, r"`k` must be in"),
    ],
)
def test_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        HierarchicalTopKSAE(D_IN, D_SAE, **kwargs)
