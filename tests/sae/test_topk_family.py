"""TopKFamilySAE: the configured sparsity is what an SAE reports and exports, not 1 - k/d_sae."""

from __future__ import annotations

import json

import pytest
import torch

from saelight.sae import SAE, BatchTopKSAE, HierarchicalTopKSAE, TopKSAE
from saelight.sae.base import CFG_FILE

D_IN = 8


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE])
def test_target_sparsity_is_the_configured_one(cls: type[SAE]) -> None:
    sae = cls(D_IN, 2048, sparsity=0.95)
    assert sae.k == 102 and sae.target_sparsity == 0.95
    assert sae.identity() == {
        "architecture": cls.architecture,
        "d_sae": 2048,
        "k": 102,
        "sparsity": 0.95,
    }
    assert cls(D_IN, 2048, k=102).target_sparsity == 1 - 102 / 2048


@pytest.mark.parametrize("sparsity", [0.75, 0.9, 0.99])
def test_quickstart_sparsities_are_recorded_as_configured(sparsity: float) -> None:
    """configs/quickstart.yaml: d_sae 512; 0.75 gives k = 128 exactly, so 1 - k/d_sae agrees."""
    sae = TopKSAE(D_IN, 512, sparsity=sparsity)
    assert sae.identity()["sparsity"] == sparsity
    if sparsity == 0.75:
        assert sae.target_sparsity == 1 - sae.k / 512


def test_a_k_moved_away_from_the_configured_one_reports_its_own_sparsity() -> None:
    sae = TopKSAE(D_IN, 64, sparsity=0.9)
    sae.sparsity_knob = 8.6  # a schedule's value, rounded like k
    assert sae.k == 9 and sae.target_sparsity == 1 - 9 / 64
    assert "sparsity" not in sae.init_kwargs() and sae.init_kwargs()["k"] == 9
    sae.k = 4 * 64  # an anneal starting above d_sae
    assert sae.identity()["k"] == 64 and sae.init_kwargs()["k"] == 64
    sae.k = 6
    assert sae.target_sparsity == 0.9 and sae.init_kwargs()["sparsity"] == 0.9


@pytest.mark.parametrize("cls", [TopKSAE, BatchTopKSAE])
def test_export_keeps_the_configured_sparsity_and_writes_k(cls: type[SAE], tmp_path) -> None:
    cls(D_IN, 2048, sparsity=0.95).save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    assert cfg["sparsity"] == 0.95 and cfg["k"] == 102
    loaded = SAE.from_pretrained(tmp_path)
    assert loaded.identity()["sparsity"] == 0.95 and loaded.identity()["k"] == 102


def test_an_export_without_the_saelight_name_still_loads(tmp_path) -> None:
    """Exports written before the SAELens fields: `architecture` is saelight's name, k only."""
    torch.manual_seed(0)
    sae = TopKSAE(D_IN, 64, k=5)
    sae.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    old = {"architecture": "topk", "d_in": D_IN, "d_sae": 64, "k": 5}
    fields = ("decoder_bias", "b_dec_init", "normalize_input", "weights_sha256")
    old |= {n: cfg[n] for n in fields}  # the checksum: an export without one is refused
    (tmp_path / CFG_FILE).write_text(json.dumps(old))
    loaded = SAE.from_pretrained(tmp_path)
    x = torch.randn(4, D_IN)
    torch.testing.assert_close(loaded.encode(x), sae.encode(x))


def test_hierarchical_rungs_report_their_configured_sparsities(tmp_path) -> None:
    sae = HierarchicalTopKSAE(D_IN, 512, sparsities=[0.99, 0.9, 0.75])
    assert sae.ks == [5, 51, 128] and sae.target_sparsity == 0.75
    rungs = sae.eval_variants()
    assert list(rungs) == ["@k5", "@k51", "@k128"]
    assert [r.identity()["sparsity"] for r in rungs.values()] == [0.99, 0.9, 0.75]
    assert [r.identity()["k"] for r in rungs.values()] == [5, 51, 128] and sae.k == 128
    sae.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    assert cfg["sparsities"] == [0.99, 0.9, 0.75] and "ks" not in cfg and cfg["k"] == 128
    loaded = SAE.from_pretrained(tmp_path)
    assert isinstance(loaded, HierarchicalTopKSAE)
    assert [r.target_sparsity for r in loaded.eval_variants().values()] == [0.99, 0.9, 0.75]
    assert HierarchicalTopKSAE(D_IN, 64, ks=[4, 8]).target_sparsity == 1 - 8 / 64
