"""The `gt_*` columns: an SAE whose dictionary is the planted one scores MCC 1 on a planted
cache's test rows, a random one far less; other caches get no such column; the report's table
shows them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from saelight.cache.planted import PlantedRecipe
from saelight.cache.planted_files import read_truth
from saelight.cache.reader import CacheReader
from saelight.evaluation.held_out import HeldOutSplits
from saelight.evaluation.planted_cache import write_planted
from saelight.evaluation.planted_scores import add_planted_scores, decoder_directions
from saelight.evaluation.results import GROUND_TRUTH, ground_truth_key
from saelight.report.planted_section import planted_table
from saelight.sae import TopKSAE

RECIPE = PlantedRecipe(d_in=16, n_features=24, noise_std=0.0, clips=60, frames_per_clip=10)
KEYS = [ground_truth_key(s) for s in GROUND_TRUTH]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("planted") / "cache"
    write_planted(directory, RECIPE)
    return directory


def oracle_sae(directions: np.ndarray, k: int) -> TopKSAE:
    """A TopK SAE whose decoder rows are the planted directions (encoder their transpose)."""
    n, d = directions.shape
    sae = TopKSAE(d, n, k=k, b_dec_init="zeros")
    with torch.no_grad():
        sae.W_dec.copy_(torch.from_numpy(directions))
        sae.W_enc.copy_(torch.from_numpy(directions).T)
        sae.b_enc.zero_()
        sae.b_dec.zero_()
    return sae.eval()


def test_the_planted_dictionary_scores_mcc_one_and_a_random_sae_does_not(planted: Path) -> None:
    reader = CacheReader(planted)
    truth = read_truth(planted)
    test = HeldOutSplits(reader, ["test"], 10_000, 0, drop_nonfinite=False).layer(0)["test"]
    saes = {"oracle": oracle_sae(truth.directions, k=8), "random": TopKSAE(16, 24, k=8).eval()}
    rows = [{"layer": 0, "name": "dense", "kind": "dense"}]
    rows += [{"layer": 0, "name": name, "kind": "sae"} for name in saes]
    add_planted_scores(rows, saes, test, reader)
    dense, oracle, random = rows
    assert not any(k in dense for k in KEYS)
    assert set(KEYS) <= set(oracle) and set(KEYS) <= set(random)
    assert oracle["gt_mcc"] == pytest.approx(1.0) and oracle["gt_uniqueness"] == 1.0
    assert oracle["gt_coverage"] == 1.0 and oracle["gt_recall"] > 0.8
    assert random["gt_mcc"] < 0.6 and random["gt_coverage"] < 0.2
    torch.testing.assert_close(
        decoder_directions(saes["oracle"]).float(), torch.from_numpy(truth.directions)
    )


def test_a_cache_that_is_not_planted_gets_no_ground_truth(planted: Path, tmp_path: Path) -> None:
    reader = CacheReader(planted)
    reader.manifest = {k: v for k, v in reader.manifest.items() if k != "planted"}
    test = HeldOutSplits(reader, ["test"], 10_000, 0, drop_nonfinite=False).layer(0)["test"]
    rows = [{"layer": 0, "name": "topk", "kind": "sae"}]
    add_planted_scores(rows, {"topk": TopKSAE(16, 24, k=4)}, test, reader)
    assert rows == [{"layer": 0, "name": "topk", "kind": "sae"}]


def test_the_report_table_lists_the_saes_with_ground_truth() -> None:
    rows = [
        {"layer": 0, "name": "dense", "kind": "dense"},
        {"layer": 0, "name": "topk_s90", "kind": "sae", "sparsity": 0.9, "gt_mcc": 0.91},
        {"layer": 0, "name": "topk_s95", "kind": "sae", "sparsity": 0.95},
    ]
    assert planted_table(rows[::2]) is None
    table = planted_table(rows)
    assert table is not None and table.columns == ["layer", "SAE", *GROUND_TRUTH]
    assert table.cells == [["L0", "topk_s90", "0.910", *["–"] * 6]]  # rows without: left out
    assert "Hungarian" in table.markdown()
