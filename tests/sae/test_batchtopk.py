"""BatchTopKSAE: k·batch activations per training batch, EMA threshold for inference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from saelight.sae import BatchTopKSAE
from saelight.sae.batchtopk import batch_topk_indices

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32


def make(**kwargs) -> BatchTopKSAE:
    torch.manual_seed(0)
    return BatchTopKSAE(D_IN, D_SAE, **{"k": K, **kwargs})


def data() -> torch.Tensor:
    return torch.randn(BATCH, D_IN, generator=torch.Generator().manual_seed(1)) * 2 + 1


@pytest.mark.parametrize("sparse", [False, True])
def test_training_keeps_exactly_k_times_batch_largest(sparse: bool) -> None:
    sae, x = make(sparse=sparse), data()
    sae.initialize_from_data(x)
    out = sae(x)
    assert int((out.z > 0).sum()) == K * BATCH
    per_sample = (out.z > 0).sum(dim=1)
    assert per_sample.min() != per_sample.max()  # the budget is shared, not per sample
    z_pre = F.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc).detach()
    cutoff = z_pre.flatten().topk(K * BATCH).values[-1]
    torch.testing.assert_close(out.z.detach(), torch.where(z_pre >= cutoff, z_pre, 0))


def test_batch_topk_indices_exact_on_cpu_path() -> None:
    z = torch.randn(50, 40, generator=torch.Generator().manual_seed(3))
    z[0] += 10  # one sample holds many of the batch's largest entries
    got = batch_topk_indices(z, 3).sort().values
    want = z.flatten().topk(150).indices.sort().values
    assert torch.equal(got, want)


def test_threshold_ema_and_inference() -> None:
    sae, x = make(threshold_momentum=0.5), data()
    sae.initialize_from_data(x)
    assert sae.threshold == 0 and "threshold" in sae.state_dict()
    z1 = sae(x).z
    first = z1[z1 > 0].min()
    torch.testing.assert_close(sae.threshold, first)  # first update sets it directly
    with torch.no_grad():
        sae.b_enc += 0.3
    z2 = sae(x).z
    torch.testing.assert_close(sae.threshold, 0.5 * first + 0.5 * z2[z2 > 0].min())
    sae.eval()
    before = sae.threshold.clone()
    sae(x)
    torch.testing.assert_close(sae.threshold, before)  # eval mode leaves θ alone
    z_pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    expected = torch.where(z_pre > sae.threshold, z_pre, 0)
    torch.testing.assert_close(sae.encode(x), expected)
