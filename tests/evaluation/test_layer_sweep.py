"""The layer sweep on a tiny real cache (synthetic singing -> untrained 2-layer HuBERT)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from saelight.audio import SyntheticSinging
from saelight.backbones import UntrainedBackbone
from saelight.cache import TEST_HEAD
from saelight.cache.build import ActivationCache
from saelight.evaluation.layer_sweep import layer_sweep, probe_test_split, split_rows

SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def sweep(cache: str, label: str = "technique", probe: str = "logistic", layers=None):
    return layer_sweep(cache, label, probe, layers, 20_000, 42)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    tmp = tmp_path_factory.mktemp("sweep")
    source = SyntheticSinging(
        clips_per_combo=1,
        duration_s=0.5,
        techniques=("belt", "breathy", "vibrato"),
        vowels=("a", "i"),
        n_singers=4,
        n_val_singers=1,
        n_test_singers=1,
    )
    backbone = UntrainedBackbone(num_layers=2, hidden_size=32, save_dir=str(tmp / "models"))
    ActivationCache(str(tmp / "cache"), source=source, backbone=backbone).build(progress=False)
    return str(tmp / "cache")


def test_one_accuracy_per_cached_layer(cache_dir: str) -> None:
    results = sweep(cache_dir, label="technique")
    assert [r["layer"] for r in results] == [0, 1, 2]
    for r in results:
        assert 0.0 <= r["accuracy"] <= 1.0 and 0.0 <= r["val_accuracy"] <= 1.0
        assert r["n_train"] == 12 and r["n_test"] == 6


def test_command_writes_json_and_png(cache_dir: str, tmp_path) -> None:
    args = ["--cache", cache_dir, "--label", "vowel", "--layers", "[1, 2]", "--out", str(tmp_path)]
    done = subprocess.run([SAELIGHT, "layer-sweep", *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    payload = json.loads((tmp_path / "layer_sweep_vowel.json").read_text())
    assert [r["layer"] for r in payload["layers"]] == [1, 2]
    assert payload["label"] == "vowel" and payload["probe"] == "logistic"
    assert (tmp_path / "layer_sweep_vowel.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| L1 |" in done.stdout and "best layer" in done.stdout


def test_paper_probe_and_bad_inputs(cache_dir: str) -> None:
    (r,) = sweep(cache_dir, probe="paper", layers=[2])
    assert 0.0 <= r["accuracy"] <= 1.0 and 1 <= r["best_epoch"] <= 120
    with pytest.raises(ValueError, match="label 'nope'"):
        sweep(cache_dir, label="nope")
    with pytest.raises(ValueError, match=r"layers \[7\]"):
        sweep(cache_dir, layers=[7])


def test_a_paper_cache_is_probed_on_its_test_heads(tmp_path: Path) -> None:
    source = SyntheticSinging(
        clips_per_combo=1, duration_s=0.5, techniques=("belt", "vibrato"), vowels=("a", "i"),
        n_singers=4, n_val_singers=1, n_test_singers=1,
    )  # fmt: skip
    backbone = UntrainedBackbone(num_layers=1, hidden_size=32, save_dir=str(tmp_path / "models"))
    directory = str(tmp_path / "cache")
    cache = ActivationCache(directory, source, backbone, crop_seconds=0.25, protocol="paper")
    reader = cache.build(progress=False)
    head = reader.split_rows(TEST_HEAD)
    assert len(head) == 4 and probe_test_split(reader) == TEST_HEAD
    np.testing.assert_array_equal(split_rows(reader, None, 0)["test"], head)
    assert [r["n_test"] for r in sweep(directory, label="vowel")] == [4, 4]
    plain = ActivationCache(str(tmp_path / "plain"), source, backbone, crop_seconds=0.25)
    assert probe_test_split(plain.build(progress=False)) == "test"
