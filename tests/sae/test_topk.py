"""TopKSAE maths against hand-written references: codes, L0, k validation, AuxK."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from saelight.sae import TopKSAE
from saelight.sae.topk_family import aux_rows

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32


def make(**kwargs) -> TopKSAE:
    torch.manual_seed(0)
    return TopKSAE(D_IN, D_SAE, **{"k": K, **kwargs})


def data(batch: int = BATCH) -> torch.Tensor:
    return torch.randn(batch, D_IN, generator=torch.Generator().manual_seed(1)) * 2 + 1


def reference_codes(sae: TopKSAE, x: torch.Tensor, k: int) -> torch.Tensor:
    z_pre = F.relu((x * sae.input_scale - sae.b_dec) @ sae.W_enc + sae.b_enc)
    threshold = z_pre.sort(dim=-1, descending=True).values[:, k - 1 : k]
    return torch.where(z_pre >= threshold, z_pre, 0)


@pytest.mark.parametrize("sparse", [False, True])
def test_codes_match_reference_and_l0_is_exactly_k(sparse: bool) -> None:
    sae, x = make(sparse=sparse, normalize_input=True), data()
    sae.initialize_from_data(x)
    with torch.no_grad():
        sae.b_enc.fill_(5.0)  # every pre-activation positive, so L0 must be exactly k
        out = sae(x)
    assert ((out.z > 0).sum(dim=1) == K).all()
    expected = reference_codes(sae, x, K)
    torch.testing.assert_close(out.z, expected)
    torch.testing.assert_close(sae.encode(x), expected)
    x_hat = (expected @ sae.W_dec + sae.b_dec) / sae.input_scale
    torch.testing.assert_close(out.x_hat, x_hat)


def test_k_attribute_drives_encode() -> None:
    sae, x = make(), data()
    with torch.no_grad():
        sae.b_enc.fill_(5.0)
    sae.k = 9
    assert ((sae.encode(x) > 0).sum(dim=1) == 9).all()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "exactly one of `k` or `sparsity`"),
        ({"k": 4, "sparsity": 0.9}, "exactly one of `k` or `sparsity`"),
        ({"k": 0}, r"`k` must be in \[1, d_sae=64\], got 0"),
        ({"k": 65}, r"`k` must be in \[1, d_sae=64\], got 65"),
        ({"sparsity": 1.0}, r"`sparsity` must be in \[0, 1\)"),
        ({"sparsity": -0.1}, r"`sparsity` must be in \[0, 1\)"),
        ({"sparsity": 0.999}, r"k = int\(\(1 - sparsity\) \* d_sae\)` must be in"),
        ({"k": 4, "aux_k": -1}, "aux_k"),
    ],
)
def test_k_validation(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TopKSAE(D_IN, D_SAE, **kwargs)


def test_sparsity_sets_k() -> None:
    assert TopKSAE(D_IN, D_SAE, sparsity=0.9).k == int(0.1 * D_SAE) == 6
    assert TopKSAE(D_IN, D_SAE, sparsity=0.0).k == D_SAE


def test_paper_preset_has_no_decoder_bias_and_no_auxk() -> None:
    sae = make(
        decoder_bias=False,
        unit_norm_decoder=False,
        encoder_init_from_decoder=False,
        b_dec_init="zeros",
        aux_k_coefficient=0.0,
    )
    x = data()
    sae.initialize_from_data(x)
    assert "b_dec" not in dict(sae.named_parameters()) and not sae.b_dec.any()
    out = sae(x, torch.ones(D_SAE, dtype=torch.bool))
    assert out.aux_loss == 0


def reference_auxk(sae: TopKSAE, x: torch.Tensor, dead: torch.Tensor, aux_k: int) -> torch.Tensor:
    """Gao et al. App. B.1, written out densely; `TopKFamilySAE.auxk_loss` has the var(x) factor."""
    z_pre = F.relu((x - sae.b_dec) @ sae.W_enc + sae.b_enc)
    z = reference_codes(sae, x, K)
    e = x - (z @ sae.W_dec + sae.b_dec)
    masked = torch.where(dead, z_pre, -1.0)
    top = masked.topk(aux_k, dim=-1)
    z_aux = torch.zeros_like(z_pre).scatter(-1, top.indices, top.values.clamp_min(0))
    e_hat = z_aux @ sae.W_dec
    var = lambda t: (t - t.mean(0)).square().mean()  # noqa: E731
    return sae.aux_k_coefficient * F.mse_loss(e_hat, e) * var(x) / var(e)


@pytest.mark.usefixtures("fp32_only")
@pytest.mark.parametrize("sparse", [False, True])
def test_auxk(sparse: bool) -> None:
    sae, x = make(aux_k=8, sparse=sparse), data()
    sae.initialize_from_data(x)
    assert sae(x).aux_loss == 0
    assert sae(x, torch.zeros(D_SAE, dtype=torch.bool)).aux_loss == 0
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[::2] = True
    out = sae(x, dead)
    assert out.aux_loss > 0
    torch.testing.assert_close(out.aux_loss, reference_auxk(sae, x, dead, 8))
    # fewer dead latents than aux_k: only the dead ones reconstruct the residual
    few = torch.zeros(D_SAE, dtype=torch.bool)
    few[[3, 10, 40]] = True
    torch.testing.assert_close(sae(x, few).aux_loss, reference_auxk(sae, x, few, 8))
    out.aux_loss.backward()
    assert sae.W_dec.grad is not None
    live_rows = sae.W_dec.grad[~dead]
    assert live_rows.abs().sum() == 0 and sae.W_dec.grad[dead].abs().sum() > 0


@pytest.mark.usefixtures("fp32_only")
@pytest.mark.parametrize("sparse", [False, True])
def test_auxk_on_a_row_subset_is_the_loss_of_those_rows(sparse: bool) -> None:
    """aux_k_rows=m: the AuxK loss of every s-th row, s = ceil(batch / m), as if alone."""
    x = data(batch=50)
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[1::3] = True
    sae = make(aux_k=8, sparse=sparse, aux_k_rows=16)
    sae.initialize_from_data(x)
    rows = x[::4]  # ceil(50 / 16) = 4: rows 0, 4, ..., 48 (13 of them)
    torch.testing.assert_close(sae(x, dead).aux_loss, reference_auxk(sae, rows, dead, 8))
    assert not torch.allclose(sae(x, dead).aux_loss, reference_auxk(sae, x, dead, 8))
    sae.aux_k_rows = None
    torch.testing.assert_close(sae(x, dead).aux_loss, reference_auxk(sae, x, dead, 8))


@pytest.mark.parametrize(
    ("batch", "cap", "expected"),
    [(4096, 1024, 1024), (4097, 1024, 820), (1024, 1024, 1024), (100, None, 100), (7, 2, 2)],
)
def test_aux_rows_take_at_most_the_cap_spread_over_the_batch(
    batch: int, cap: int | None, expected: int
) -> None:
    picked = torch.arange(batch)[aux_rows(batch, cap)]
    assert len(picked) == expected and picked[0] == 0
    assert cap is None or len(picked) <= cap
    gaps = picked.diff().unique()
    assert len(gaps) <= 1  # evenly spaced


def test_aux_k_rows_must_be_positive() -> None:
    with pytest.raises(ValueError, match="aux_k_rows must be >= 1"):
        make(aux_k_rows=0)


@pytest.mark.usefixtures("fp32_only")
@pytest.mark.parametrize("n_dead", [3, 20])
def test_auxk_strategies_agree(n_dead: int) -> None:
    """The CPU dead-column pass and the GPU masked sparse top-k give the same ê and gradients."""
    x = data()
    dead = torch.zeros(D_SAE, dtype=torch.bool)
    dead[torch.randperm(D_SAE, generator=torch.Generator().manual_seed(2))[:n_dead]] = True
    results = []
    for on_dead_columns, sparse in [(True, True), (False, True), (False, False)]:
        sae = make(aux_k=8, sparse=sparse)
        sae.initialize_from_data(x)
        z_pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
        e_hat = sae.auxk_reconstruction(x, z_pre, dead, sparse, on_dead_columns)
        assert e_hat is not None
        e_hat.square().sum().backward()
        grads = [p.grad.clone() for p in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec)]
        results.append((e_hat.detach(), grads))
    for e_hat, grads in results[1:]:
        torch.testing.assert_close(e_hat, results[0][0])
        for g, g0 in zip(grads, results[0][1], strict=True):
            torch.testing.assert_close(g, g0, rtol=1e-4, atol=1e-4)


def test_k_above_d_sae_from_an_anneal_is_clamped() -> None:
    sae, x = make(), data()
    with torch.no_grad():
        sae.b_enc.fill_(100.0)
    sae.k = 4 * D_SAE  # what SparsityAnneal(start=4) gives at step 0 when k = d_sae
    assert (sae(x).z > 0).all() and (sae.encode(x) > 0).all()
