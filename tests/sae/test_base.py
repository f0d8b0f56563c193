"""Contract tests every architecture in `SAE.registry` must pass (shapes, export, invariants)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from saelight.sae import SAE, SAEOutput
from saelight.sae.base import CFG_FILE, WEIGHTS_FILE, geometric_median

D_IN, D_SAE, K, BATCH = 16, 64, 4, 32
ARCH_KWARGS: dict[str, dict[str, Any]] = {
    "topk": {"k": K},
    "batchtopk": {"k": K},
    "hierarchical_topk": {"ks": [2, K]},
    "relu": {},
    "jumprelu": {},
}
ARCHS = sorted(SAE.registry)


def make(name: str, **kwargs: Any) -> SAE:
    torch.manual_seed(0)
    return SAE.registry[name](D_IN, D_SAE, **{**ARCH_KWARGS.get(name, {}), **kwargs})


def data(seed: int = 1, batch: int = BATCH) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(batch, D_IN, generator=g) * 3 + 2


def train_a_little(sae: SAE, x: torch.Tensor, steps: int = 3) -> None:
    """Moves every parameter and buffer (b_dec, thresholds, EMA) away from its initial value."""
    sae.initialize_from_data(x)
    opt = torch.optim.Adam(sae.parameters(), lr=1e-2)
    for _ in range(steps):
        out = sae(x, torch.ones(D_SAE, dtype=torch.bool))
        (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
        opt.step()
        opt.zero_grad()
        sae.normalize_decoder()


def test_registry_covers_every_architecture() -> None:
    assert set(ARCHS) == set(ARCH_KWARGS)


def test_duplicate_architecture_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        class Again(SAE):  # noqa: F841
            architecture = "topk"


@pytest.mark.parametrize("name", ARCHS)
def test_shapes_and_types(name: str) -> None:
    sae, x = make(name), data()
    out = sae(x)
    assert isinstance(out, SAEOutput)
    assert out.x_hat.shape == (BATCH, D_IN) and out.z.shape == (BATCH, D_SAE)
    assert out.aux_loss.shape == () and (out.z >= 0).all()
    assert sae.encode(x).shape == (BATCH, D_SAE)
    assert sae.decode(sae.encode(x)).shape == (BATCH, D_IN)
    assert sae.W_enc.shape == (D_IN, D_SAE) and sae.W_dec.shape == (D_SAE, D_IN)
    assert sae.b_enc.shape == (D_SAE,) and sae.b_dec.shape == (D_IN,)
    assert isinstance(getattr(sae, sae.sparsity_attr), int | float)


@pytest.mark.parametrize("name", ARCHS)
def test_gradients_reach_the_encoder(name: str) -> None:
    sae, x = make(name), data()
    sae.initialize_from_data(x)
    out = sae(x)
    (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
    assert sae.W_enc.grad is not None and sae.W_enc.grad.abs().sum() > 0
    assert sae.b_dec.grad is not None and sae.b_dec.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ARCHS)
@pytest.mark.parametrize("normalize_input", [False, True])
def test_save_load_round_trip_gives_identical_codes(
    name: str, normalize_input: bool, tmp_path
) -> None:
    sae, x = make(name, normalize_input=normalize_input), data()
    train_a_little(sae, x)
    if normalize_input:
        assert not torch.allclose(sae.input_scale, torch.ones(()))
    sae.eval()
    sae.save_pretrained(tmp_path, backbone="tiny-hubert", layer=3)
    loaded = SAE.from_pretrained(tmp_path).eval()
    assert type(loaded) is type(sae)
    torch.testing.assert_close(loaded.encode(x), sae.encode(x), rtol=1e-5, atol=1e-5)
    z = sae.encode(x)
    torch.testing.assert_close(loaded.decode(z), sae.decode(z), rtol=1e-5, atol=1e-5)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    assert cfg["architecture"] == name and cfg["backbone"] == "tiny-hubert" and cfg["layer"] == 3
    assert cfg["d_in"] == D_IN and cfg["d_sae"] == D_SAE
    weights = load_file(str(tmp_path / WEIGHTS_FILE))
    assert {"W_enc", "b_enc", "W_dec", "b_dec"} <= set(weights) and "input_scale" not in weights
    assert not list(tmp_path.glob(".*tmp"))


def test_folded_export_works_on_raw_activations(tmp_path) -> None:
    """SAELens-style use of the exported tensors, without saelight: raw x in, raw x_hat out."""
    sae, x = make("relu", normalize_input=True), data()
    train_a_little(sae, x)
    sae.save_pretrained(tmp_path)
    w = load_file(str(tmp_path / WEIGHTS_FILE))
    z = F.relu((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"])
    torch.testing.assert_close(z, sae.encode(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(z @ w["W_dec"] + w["b_dec"], sae.decode(z), rtol=1e-5, atol=1e-5)


def test_from_pretrained_ignores_unknown_keys_and_checks_the_class(tmp_path) -> None:
    sae = make("topk")
    sae.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    (tmp_path / CFG_FILE).write_text(json.dumps({**cfg, "some_future_field": [1, 2]}))
    assert SAE.registry["topk"].from_pretrained(tmp_path).k == K
    with pytest.raises(ValueError, match="not a 'relu'"):
        SAE.registry["relu"].from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="clash"):
        sae.save_pretrained(tmp_path, d_in=3)


@pytest.mark.parametrize("name", ARCHS)
def test_init_kwargs_rebuild_the_same_model(name: str) -> None:
    sae = make(name, decoder_bias=False, b_dec_init="zeros")
    kwargs = json.loads(json.dumps(sae.init_kwargs()))
    assert kwargs["decoder_bias"] is False
    torch.manual_seed(0)
    again = type(sae)(**kwargs)
    for (n, a), (_, b) in zip(sae.state_dict().items(), again.state_dict().items(), strict=True):
        torch.testing.assert_close(a, b, msg=n)


@pytest.mark.parametrize("name", ARCHS)
def test_seeded_init_is_deterministic_and_seed_dependent(name: str) -> None:
    a, b = make(name), make(name)
    torch.testing.assert_close(a.W_dec, b.W_dec)
    torch.testing.assert_close(a.W_enc, a.W_dec.T)  # encoder_init_from_decoder
    torch.manual_seed(5)
    c = type(a)(D_IN, D_SAE, **ARCH_KWARGS[name])
    assert not torch.allclose(a.W_dec, c.W_dec)


@pytest.mark.parametrize("name", ARCHS)
def test_decoder_norm_invariants(name: str) -> None:
    sae, x = make(name), data()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    with torch.no_grad():
        sae.W_dec.mul_(torch.rand(D_SAE, 1) + 0.5)
    out = sae(x)
    (F.mse_loss(out.x_hat, x) + out.aux_loss).backward()
    sae.normalize_decoder()
    sae.remove_parallel_decoder_grad()
    torch.testing.assert_close(sae.W_dec.norm(dim=1), torch.ones(D_SAE))
    assert sae.W_dec.grad is not None
    parallel = (sae.W_dec.grad * sae.W_dec).sum(dim=1)
    torch.testing.assert_close(parallel, torch.zeros(D_SAE), atol=1e-6, rtol=0)


def test_switches_off_leave_the_decoder_alone() -> None:
    sae = make("topk", unit_norm_decoder=False, encoder_init_from_decoder=False)
    before = sae.W_dec.detach().clone()
    assert not torch.allclose(before.norm(dim=1), torch.ones(D_SAE))
    assert not torch.allclose(sae.W_enc, sae.W_dec.T)
    sae.W_dec.grad = torch.ones_like(sae.W_dec)
    sae.normalize_decoder()
    sae.remove_parallel_decoder_grad()
    torch.testing.assert_close(sae.W_dec.detach(), before)
    torch.testing.assert_close(sae.W_dec.grad, torch.ones_like(before))


def test_initialize_from_data() -> None:
    x = data(batch=257)
    sae = make("relu", normalize_input=True, b_dec_init="mean")
    sae.initialize_from_data(x)
    x_n = x * sae.input_scale
    torch.testing.assert_close(x_n.square().sum(1).mean(), torch.tensor(float(D_IN)))
    torch.testing.assert_close(sae.b_dec.detach(), x_n.mean(0))
    sae = make("relu", b_dec_init="geometric_median")
    sae.initialize_from_data(x)
    torch.testing.assert_close(sae.b_dec.detach(), geometric_median(x))
    sae = make("relu", decoder_bias=False)
    sae.initialize_from_data(x)
    assert "b_dec" not in dict(sae.named_parameters()) and not sae.b_dec.any()


def test_geometric_median_against_a_direct_minimisation() -> None:
    x = torch.cat(
        [torch.randn(50, 3, generator=torch.Generator().manual_seed(0)), torch.full((5, 3), 100.0)]
    )
    median = geometric_median(x.double())

    def cost(y: torch.Tensor) -> torch.Tensor:
        return (x.double() - y).norm(dim=1).sum()

    for step in torch.eye(3, dtype=torch.double) * 1e-3:
        assert cost(median) <= min(cost(median + step), cost(median - step))
    assert median.norm() < 5  # robust to the 5 outliers, unlike the mean


@pytest.mark.parametrize("name", ARCHS)
def test_bf16_autocast_trains_fp32_weights(name: str) -> None:
    sae, x = make(name), data()
    sae.initialize_from_data(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = sae(x, torch.ones(D_SAE, dtype=torch.bool))
    loss = F.mse_loss(out.x_hat.float(), x) + out.aux_loss
    loss.backward()
    assert torch.isfinite(loss)
    for n, p in sae.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32, n
    assert sae.W_enc.grad.abs().sum() > 0


@pytest.mark.parametrize("name", ARCHS)
def test_construction_on_the_meta_device(name: str) -> None:
    with torch.device("meta"):
        sae = make(name)
    assert sae.W_enc.is_meta and sae.input_scale.is_meta
