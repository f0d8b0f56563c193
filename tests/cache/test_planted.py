"""A planted cache (`saelight planted`) is a normal, verified cache whose rows are exactly the
planted sum Σ_j a_j f_j + noise of its stored ground truth, drawn deterministically per seed,
with its correlated, hierarchical and label structure intact."""

from __future__ import annotations

import copy
import dataclasses
import inspect
import json
from pathlib import Path

import numpy as np
import pytest

from saelight.cache.format import (
    CacheCorruptError,
    CacheMismatchError,
    factor_column,
    label_column,
    read_manifest,
)
from saelight.cache.planted import (
    LABEL,
    PLANTED_TENSORS,
    PlantedRecipe,
    clip_splits,
    split_counts,
)
from saelight.cache.planted_files import planted_cache, read_truth
from saelight.cache.reader import CacheReader
from saelight.evaluation.planted_cache import write_planted
from saelight.io.errors import ConfigError, SaelightError

SMALL = PlantedRecipe(
    d_in=8,
    n_features=16,
    n_correlated_pairs=2,
    n_hierarchical_pairs=2,
    noise_std=0.05,
    clips=40,
    frames_per_clip=6,
    layers=(0, 3),
    label_features=3,
    factor_features=4,
    seed=5,
)


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("planted") / "cache"
    write_planted(directory, SMALL)
    return directory


def test_opens_verified_and_every_row_is_the_planted_sum_plus_its_noise(small: Path) -> None:
    reader = CacheReader(small, verify=True)
    truth = read_truth(small)
    assert len(reader) == SMALL.clips * SMALL.frames_per_clip and reader.layers == [0, 3]
    x = reader.read(np.arange(len(reader)))
    clean = truth.activations.astype(np.float64) @ truth.directions.astype(np.float64)
    for pos, layer in enumerate(reader.layers):
        np.testing.assert_allclose(x[:, pos], clean + truth.noise[layer], atol=1e-5)
        assert truth.noise[layer].std() == pytest.approx(SMALL.noise_std, rel=0.15)
    assert not np.allclose(truth.noise[0], truth.noise[3])  # each layer its own noise
    np.testing.assert_allclose(np.linalg.norm(truth.directions, axis=1), 1.0, rtol=1e-6)


def test_metadata_splits_by_clip_with_label_and_factor_columns(small: Path) -> None:
    meta = CacheReader(small).metadata
    assert (meta.groupby("clip_id")["split"].nunique() == 1).all()
    clips = meta.groupby("clip_index")["split"].first()
    assert clips.value_counts().to_dict() == split_counts(SMALL)
    assert list(clips) == list(clip_splits(SMALL))
    assert list(meta["frame"][: SMALL.frames_per_clip]) == list(range(SMALL.frames_per_clip))
    truth = read_truth(small)
    for j in range(SMALL.factor_features):
        np.testing.assert_array_equal(meta[factor_column(f"f{j}")], truth.activations[:, j])
    values = {f"f{j}" for j in truth.label_features}
    assert set(meta[label_column(LABEL)]) == values and len(values) == SMALL.label_features


def test_hierarchy_correlation_and_labels_survive_into_the_cache(small: Path) -> None:
    truth = read_truth(small)
    on = truth.activations > 0
    children = np.flatnonzero(truth.parent >= 0)
    assert len(children) == SMALL.n_hierarchical_pairs
    assert not (on[:, children] & ~on[:, truth.parent[children]]).any()  # never without parent
    first = np.flatnonzero((truth.partner >= 0) & (truth.partner > np.arange(SMALL.n_features)))
    assert len(first) == SMALL.n_correlated_pairs
    for a in first:
        phi = np.corrcoef(on[:, a], on[:, truth.partner[a]])[0, 1]
        assert phi > 0.2, (a, phi)
    meta = CacheReader(small).metadata
    labels = meta[label_column(LABEL)].to_numpy()
    for j in truth.label_features:  # on in every frame of its clips, off everywhere else
        np.testing.assert_array_equal(on[:, j], labels == f"f{j}")
        assert truth.frequencies[j] == pytest.approx(1 / SMALL.label_features)
        assert truth.partner[j] == -1 and truth.parent[j] == -1 and j not in truth.parent


def test_same_seed_same_bytes_other_seed_other_rows(tmp_path: Path, small: Path) -> None:
    write_planted(tmp_path / "again", SMALL)
    files = [read_manifest(d) for d in (small, tmp_path / "again")]
    assert files[0]["planted"] == files[1]["planted"]
    assert [s["files"] for s in files[0]["shards"]] == [s["files"] for s in files[1]["shards"]]
    write_planted(tmp_path / "other", dataclasses.replace(SMALL, seed=6))
    other = read_truth(tmp_path / "other")
    assert not np.array_equal(other.directions, read_truth(small).directions)


def test_clip_pooling_keeps_one_mean_row_per_clip(tmp_path: Path) -> None:
    recipe = dataclasses.replace(SMALL, pooling="clip", layers=(1,))
    reader, reused = write_planted(tmp_path / "clip", recipe)
    truth = read_truth(tmp_path / "clip")
    assert not reused and len(reader) == recipe.clips
    assert (reader.metadata["frame"] == -1).all()
    clean = truth.activations.astype(np.float64) @ truth.directions.astype(np.float64)
    x = reader.read(np.arange(len(reader)))[:, 0]
    np.testing.assert_allclose(x, clean + truth.noise[1], atol=1e-5)
    frames = dataclasses.replace(recipe, pooling="frame")
    write_planted(tmp_path / "frames", frames)
    per_frame = read_truth(tmp_path / "frames").activations.reshape(recipe.clips, -1, 16)
    np.testing.assert_allclose(truth.activations, per_frame.mean(1), rtol=1e-5, atol=1e-7)


def test_rewrite_is_verified_reuse_and_other_recipes_are_refused(tmp_path: Path) -> None:
    directory = tmp_path / "cache"
    assert write_planted(directory, SMALL)[1] is False
    assert write_planted(directory, SMALL)[1] is True
    with pytest.raises(CacheMismatchError, match="clips=40, not 41"):
        write_planted(directory, dataclasses.replace(SMALL, clips=41))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(CacheMismatchError, match="not empty"):
        write_planted(tmp_path / "busy", SMALL)
    path = directory / PLANTED_TENSORS
    path.write_bytes(path.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(CacheCorruptError, match="sha256"):
        read_truth(directory)
    with pytest.raises(CacheCorruptError, match="sha256"):
        write_planted(directory, SMALL)


def test_a_config_reads_it_through_planted_source_and_backbone(small: Path) -> None:
    cache = planted_cache(small)
    reader = cache.build()  # complete: opened, nothing extracted
    assert cache.dim == SMALL.d_in and cache.layers == [0, 3] and cache.pooling == "frame"
    assert reader.manifest["source"] == {"class": "PlantedSource", **SMALL.to_json()}
    clips = cache.source.clips()
    assert [c.clip_id for c in clips] == list(reader.metadata.groupby("clip_id").size().index)
    wave = cache.source.load(clips[0], 16_000)
    assert wave.dtype == np.float32 and len(wave) == SMALL.frames_per_clip * 320
    assert 0 < np.abs(wave).max() <= 0.5 + 1e-6
    with pytest.raises(SaelightError, match="no backbone to run"):
        cache.backbone.extract([wave])
    with pytest.raises(SaelightError, match="no `prepare_waves`"):  # what splice calls first
        cache.backbone.prepare_waves([wave])
    assert not hasattr(cache.backbone, "output_head")
    copy.deepcopy(cache)
    (small / "planted.json").write_text(json.dumps({**SMALL.to_json(), "clips": 41}))
    try:
        with pytest.raises(CacheMismatchError, match="source.clips"):
            planted_cache(small).build()
    finally:
        (small / "planted.json").write_text(json.dumps(SMALL.to_json(), indent=1) + "\n")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("n_features", 0),
        ("d_in", 0),
        ("frequency_low", 0.0),
        ("frequency_high", 1.5),
        ("correlation", 1.0),
        ("noise_std", -0.1),
        ("label_features", 1),
        ("test_fraction", 0.0),
        ("pooling", "mean"),
        ("storage_dtype", "int8"),
    ],
)
def test_a_bad_recipe_field_is_named(field: str, value: object) -> None:
    with pytest.raises(ConfigError, match=f"planted recipe: {field} must be"):
        PlantedRecipe(**{field: value})


def test_the_verb_defaults_are_the_recipe_defaults() -> None:
    from saelight.commands.planted import planted

    params = inspect.signature(planted).parameters
    for f in dataclasses.fields(PlantedRecipe):
        default = params[f.name].default
        assert (PlantedRecipe.layers if default is None else default) == f.default, f.name
    assert set(params) == {f.name for f in dataclasses.fields(PlantedRecipe)} | {"out"}
