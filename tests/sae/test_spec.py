"""SAE specs: the class behind a `model.saes` entry, and how each class takes a grid sparsity."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest
from jsonargparse import ArgumentParser

from saelight.grid import build_grid
from saelight.module import SAEModule
from saelight.sae import (
    SAE,
    BatchTopKSAE,
    HierarchicalTopKSAE,
    JumpReLUSAE,
    ReLUSAE,
    TopKSAE,
)
from saelight.sae.spec import build_at_sparsity, spec_class

D_IN = 16


def cli_specs(*specs: dict[str, Any], sparsities: str = "null") -> list[Any]:
    """`model.saes` as LightningCLI/jsonargparse builds it from YAML: one partial per entry."""
    parser = ArgumentParser(exit_on_error=False)
    parser.add_class_arguments(SAEModule, "model")
    cfg = parser.parse_args(
        ["--model.saes", json.dumps(list(specs)), "--model.sparsities", sparsities]
        + ["--model.d_in", str(D_IN)]
    )
    return parser.instantiate(cfg).model.saes.values()


def test_spec_class_sees_through_jsonargparse_and_functools_partials() -> None:
    assert spec_class(TopKSAE) is TopKSAE
    assert spec_class(partial(ReLUSAE, d_sae=8)) is ReLUSAE
    assert spec_class(partial(partial(JumpReLUSAE), d_sae=8)) is JumpReLUSAE
    assert spec_class(lambda d_in: TopKSAE(d_in, k=1)) is None
    assert spec_class(int) is None


def test_yaml_specs_map_a_grid_sparsity_to_k() -> None:
    spec = {"class_path": "saelight.sae.TopKSAE", "init_args": {"d_sae": 64, "k": 3}}
    modules = list(cli_specs(spec, sparsities="[0.75, 0.9]"))
    assert [m.identity() for m in modules] == [
        {"architecture": "topk", "d_sae": 64, "k": 16, "sparsity": 0.75},
        {"architecture": "topk", "d_sae": 64, "k": 6, "sparsity": 0.9},
    ]


@pytest.mark.parametrize(
    ("cls", "field"),
    [
        (ReLUSAE, "`l1_coefficient`"),
        (JumpReLUSAE, "`l0_coefficient`"),
        (HierarchicalTopKSAE, "`sparsities`"),
    ],
)
def test_a_spec_without_a_sparsity_knob_names_the_field_to_set(cls: type[SAE], field: str) -> None:
    make = partial(cls, d_sae=64, **({"ks": [2, 4]} if cls is HierarchicalTopKSAE else {}))
    with pytest.raises(ValueError, match=r"model\.sparsities") as err:
        build_grid([partial(TopKSAE, d_sae=64), make], [0.9], D_IN, [0])
    assert field in str(err.value) and cls.__name__ in str(err.value)
    modules, _ = build_grid([make], None, D_IN, [0])
    assert isinstance(next(iter(modules.values())), cls)


def test_a_yaml_relu_spec_next_to_sparsities_is_a_value_error_not_a_type_error() -> None:
    spec = {"class_path": "saelight.sae.ReLUSAE", "init_args": {"d_sae": 64}}
    with pytest.raises(ValueError, match="model.sparsities: null"):
        cli_specs(spec, sparsities="[0.9]")


def test_a_callable_hiding_its_class_is_refused_only_with_sparsities() -> None:
    make = lambda d_in, **kw: BatchTopKSAE(d_in, d_sae=64, **{"k": 2, **kw})  # noqa: E731
    with pytest.raises(ValueError, match="name its SAE class"):
        build_at_sparsity(make, D_IN, 0.9)
    assert build_at_sparsity(make, D_IN, None).identity()["k"] == 2


def test_grid_names_come_from_the_sae() -> None:
    specs = [partial(TopKSAE, d_sae=64, k=3), partial(HierarchicalTopKSAE, d_sae=64, ks=[1, 5])]
    _, entries = build_grid([*specs, partial(ReLUSAE, d_sae=64)], None, D_IN, [3])
    assert [e.name for e in entries] == ["topk_k3", "hierarchical_topk_k5", "relu"]
    _, entries = build_grid(specs[:1], [0.9, 0.95], D_IN, [3])
    assert [(e.key, e.sparsity) for e in entries] == [("L03_topk_s90", 0.9), ("L03_topk_s95", 0.95)]
