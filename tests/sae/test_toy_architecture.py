"""A new architecture is one class in one file: this toy registers itself, passes the contract,
maps `model.sparsities` to its own knob and trains through the grid, touching nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.evaluation.layer import sae_identity
from saelight.module import SAEModule
from saelight.sae import SAE
from saelight.sae.schedules import SparsityAnneal

from .contract import CHECKS, D_IN, D_SAE, Make


class ToyKeepSAE(SAE):
    """z = TopK_k(ReLU(z_pre)) with k = round(keep · d_sae): a knob that is a fraction."""

    architecture = "toy_keep"
    sparsity_attr = "keep"

    def __init__(self, d_in: int, d_sae: int = 64, keep: float = 0.25, **kwargs: Any) -> None:
        """Builds the toy.

        Args:
            d_in: width of the activations.
            d_sae: number of latents.
            keep: fraction of latents each sample keeps.
            **kwargs: the common switches of `SAE`.
        """
        super().__init__(d_in, d_sae, **kwargs)
        self.keep = keep

    @classmethod
    def sparsity_init_args(cls, sparsity: float) -> dict[str, Any]:
        return {"keep": 1 - sparsity}

    @property
    def target_sparsity(self) -> float:
        return 1 - self.keep

    def activate(self, z_pre: Tensor) -> Tensor:
        k = max(1, round(self.keep * self.d_sae))
        vals, idx = z_pre.topk(k, dim=-1)
        return torch.zeros_like(z_pre).scatter(-1, idx, F.relu(vals))


@pytest.fixture(autouse=True, scope="module")
def _unregister_the_toy() -> Iterator[None]:
    """The registry is global: later tests see only the package's own architectures."""
    yield
    SAE.registry.pop(ToyKeepSAE.architecture, None)


def make(**kwargs: Any) -> SAE:
    torch.manual_seed(0)
    return ToyKeepSAE(D_IN, D_SAE, **kwargs)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_contract(check: Any, tmp_path: Path) -> None:
    factory: Make = make
    check(factory, tmp_path)


def test_it_is_registered_and_reloads_by_name(tmp_path: Path) -> None:
    assert SAE.registry["toy_keep"] is ToyKeepSAE
    make(keep=0.5).save_pretrained(tmp_path, layer=1)
    loaded = SAE.from_pretrained(tmp_path)
    assert isinstance(loaded, ToyKeepSAE) and loaded.keep == 0.5


def batches(n: int, seed: int) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(32, 2, D_IN, generator=g) * 2 + 1} for _ in range(n)]


def test_it_trains_through_the_grid_at_each_sparsity() -> None:
    torch.manual_seed(0)
    module = SAEModule(
        saes=[partial(ToyKeepSAE, d_sae=D_SAE)],
        sparsities=[0.75, 0.875],
        d_in=D_IN,
        layers=[3, 5],
        sparsity_schedule=SparsityAnneal(start=2.0, steps=2),
    )
    assert [e.name for e in module.grid] == ["toy_keep_s75", "toy_keep_s87.5"] * 2
    before = {k: v.detach().clone() for k, v in module.state_dict().items() if "W_dec" in k}
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=1,
    )
    loader = torch.utils.data.DataLoader(batches(4, 1), batch_size=None)
    val = torch.utils.data.DataLoader(batches(1, 2), batch_size=None)
    trainer.fit(module, loader, val)
    assert all(not torch.equal(v, module.state_dict()[k]) for k, v in before.items())
    metrics = trainer.callback_metrics
    for e in module.grid:
        sae = module.sae(e)
        assert sae.keep == 1 - e.sparsity  # the anneal reached its target
        assert float(metrics[f"{e.prefix}/val/l0"]) == round(sae.keep * D_SAE)
        assert sae_identity(sae)["sparsity"] == e.sparsity
