"""Contract tests (`contract.CHECKS`) over every built-in architecture, plus base-class helpers."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

import saelight.sae
from saelight.sae import SAE
from saelight.sae.base import CFG_FILE, WEIGHTS_FILE, geometric_median

from .contract import CHECKS, D_IN, D_SAE, K, Make, data, train_a_little

ARCH_KWARGS: dict[str, dict[str, Any]] = {
    "topk": {"k": K},
    "batchtopk": {"k": K},
    "hierarchical_topk": {"ks": [2, K]},
    "relu": {},
    "jumprelu": {},
}
# The package's own classes: a test that registers a toy architecture must not change this list.
BUILTIN = {
    cls.architecture
    for cls in (getattr(saelight.sae, n) for n in saelight.sae.__all__)
    if isinstance(cls, type) and issubclass(cls, SAE) and cls is not SAE
}
ARCHS = sorted(BUILTIN)


def make(name: str, **kwargs: Any) -> SAE:
    torch.manual_seed(0)
    return SAE.registry[name](D_IN, D_SAE, **{**ARCH_KWARGS.get(name, {}), **kwargs})


def test_registry_covers_every_architecture() -> None:
    assert set(ARCHS) == set(ARCH_KWARGS) and BUILTIN <= set(SAE.registry)


def test_duplicate_architecture_name_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):

        class Again(SAE):  # noqa: F841
            architecture = "topk"


def test_a_class_without_a_name_is_refused_unless_abstract() -> None:
    with pytest.raises(TypeError, match="must declare"):

        class Nameless(SAE):  # noqa: F841
            pass

    class Shared(SAE, abstract=True):  # noqa: F841
        pass

    assert "Shared" not in {c.__name__ for c in SAE.registry.values()}


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", ARCHS)
def test_contract(name: str, check: Any, tmp_path: Path) -> None:
    factory: Make = partial(make, name)
    check(factory, tmp_path)


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
