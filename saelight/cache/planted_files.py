"""A planted cache on disk: its shards (through `ShardWriter`), recipe and ground truth.

The cache part is an ordinary cache (`cache/format.py`): shards and metadata tables listed with
their sha256 in `manifest.json`, which `CacheReader` checks on every open (`verify=True`). The
manifest's `planted` field holds the sha256 of `planted.json` and `planted.safetensors` too;
`read_truth` checks them before it returns the ground truth.

`planted.safetensors` holds:

- `directions` (n_features, d_in) float32, unit rows f_j;
- `frequencies` (n_features,) float64, each feature's firing probability (a child's given its
  parent); `partner` and `parent` (n_features,) int64, -1 where none;
- `activations` (rows, n_features) float32, the true coefficients a of every cache row, in row
  order (`row` of the metadata);
- `label_features` (label_features,) int64, the features that carry the `class` label;
- `noise.layer_<LL>` (rows, d_in) float32, the noise of each cached layer, so that a row of layer
  LL equals ``activations @ directions + noise.layer_LL`` (to float32 rounding).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from saelight.cache.build import ActivationCache
from saelight.cache.format import (
    MANIFEST,
    CacheMismatchError,
    CacheNotFoundError,
    atomic_write_bytes,
    check_listed_file,
    factor_column,
    label_column,
    new_header,
    read_manifest,
    sha256_bytes,
    write_manifest,
)
from saelight.cache.lock import LOCK_FILE, CacheLock
from saelight.cache.planted import (
    FRAME_RATE_HZ,
    LABEL,
    PLANTED_RECIPE,
    PLANTED_TENSORS,
    PlantedBackbone,
    PlantedRecipe,
    PlantedSource,
    check_same_recipe,
    clip_id,
    clip_splits,
    feature_name,
)
from saelight.cache.reader import CacheReader
from saelight.cache.writer import ShardWriter

PLANTED = "planted"
"""The manifest field {file name: sha256} of the planted files; its presence marks the cache."""
SHARD_ROWS = 1 << 16
"""Rows per shard (whole clips)."""


class PlantedArrays(NamedTuple):
    """What a recipe draws (`saelight.evaluation.planted_cache.draw_planted`)."""

    truth: dict[str, np.ndarray]
    """The tensors of `planted.safetensors` (module doc)."""
    rows: dict[int, np.ndarray]
    """{layer: (rows, d_in) float32}, the cached activations."""
    labels: np.ndarray | None
    """(clips,) the `class` label of each clip; None without label features."""


class PlantedTruth(NamedTuple):
    """The ground truth of a planted cache, as numpy arrays (module doc)."""

    recipe: PlantedRecipe
    directions: np.ndarray
    frequencies: np.ndarray
    partner: np.ndarray
    parent: np.ndarray
    activations: np.ndarray
    label_features: np.ndarray
    noise: dict[int, np.ndarray]


def is_planted(manifest: dict[str, Any]) -> bool:
    """Whether a manifest is a planted cache's (it lists the planted files)."""
    return isinstance(manifest.get(PLANTED), dict)


def planted_cache(directory: str | Path) -> ActivationCache:
    """The `ActivationCache` a config describes for the planted cache in `directory`."""
    directory = str(directory)
    source, backbone = PlantedSource(directory), PlantedBackbone(directory)
    recipe = source.recipe
    return ActivationCache(
        directory, source, backbone, pooling=recipe.pooling, storage_dtype=recipe.storage_dtype
    )


def read_truth(directory: str | Path, verify: bool = True) -> PlantedTruth:
    """The ground truth of the planted cache in `directory`, its files checked against the
    manifest's sha256 first (`verify`)."""
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is None or not is_planted(manifest):
        raise CacheNotFoundError(
            f"{directory} holds no planted cache",
            hint=f"write one with `saelight planted --out {directory}`",
        )
    rebuild = "delete the directory and run `saelight planted` again"
    for name, digest in manifest[PLANTED].items():
        check_listed_file(directory / name, digest, verify, "planted file", rebuild)
    from safetensors.numpy import load_file

    tensors = load_file(directory / PLANTED_TENSORS)
    recipe = PlantedRecipe.from_json(json.loads((directory / PLANTED_RECIPE).read_text()))
    noise = {layer: tensors[noise_key(layer)] for layer in recipe.layers}
    keys = ("directions", "frequencies", "partner", "parent", "activations", "label_features")
    return PlantedTruth(recipe, *(tensors[k] for k in keys), noise)


def noise_key(layer: int) -> str:
    return f"noise.layer_{layer:02d}"


def write_planted_cache(
    directory: str | Path, recipe: PlantedRecipe, draw: Callable[[], PlantedArrays]
) -> tuple[CacheReader, bool]:
    """Write the planted cache of `recipe` into `directory`; (its reader, whether it was there).

    A complete planted cache of the same recipe is reused after every file passes its sha256;
    one of another recipe is refused naming the field that differs, as is a directory holding
    anything else. An interrupted write is redone from the start (`draw` is deterministic).
    """
    directory = Path(directory)
    manifest = read_manifest(directory)
    if manifest is not None:
        if not isinstance(manifest.get("source"), dict) or (
            manifest["source"].get("class") != PlantedSource.__name__
        ):
            raise CacheMismatchError(
                f"{directory} holds an activation cache of another source, not a planted one",
                hint="point --out at a new directory",
            )
        if manifest.get("complete"):
            check_same_recipe(manifest["source"], recipe, directory)
            read_truth(directory, verify=True)
            return CacheReader(directory, verify=True), True
    elif directory.is_dir() and {p.name for p in directory.iterdir()} - {LOCK_FILE, PLANTED_RECIPE}:
        raise CacheMismatchError(
            f"{directory} is not empty and holds no cache manifest",
            hint="point --out at a new or empty directory",
        )
    with CacheLock(directory, rank=0, on_locked="error"):
        return _write(directory, recipe, draw()), False


def _write(directory: Path, recipe: PlantedRecipe, arrays: PlantedArrays) -> CacheReader:
    recipe_bytes = (json.dumps(recipe.to_json(), indent=1) + "\n").encode()
    atomic_write_bytes(directory / PLANTED_RECIPE, recipe_bytes)
    cache = planted_cache(directory)
    header = new_header(cache.recipe())
    write_manifest(directory, header)
    writer = ShardWriter(directory, header, MANIFEST)
    meta = planted_metadata(recipe, arrays)
    per_clip = recipe.rows_per_clip
    clips_per_shard = max(1, SHARD_ROWS // per_clip)
    for start in range(0, recipe.clips, clips_per_shard):
        end = min(start + clips_per_shard, recipe.clips)
        lo, hi = start * per_clip, end * per_clip
        writer.begin(start)
        writer.add({layer: rows[lo:hi] for layer, rows in arrays.rows.items()}, meta[lo:hi])
        writer.commit(end)
    from safetensors.numpy import save

    tensors = save({k: np.ascontiguousarray(v) for k, v in arrays.truth.items()})
    atomic_write_bytes(directory / PLANTED_TENSORS, tensors)
    header[PLANTED] = {
        PLANTED_RECIPE: sha256_bytes(recipe_bytes),
        PLANTED_TENSORS: sha256_bytes(tensors),
    }
    header["complete"] = True
    write_manifest(directory, header)
    return cache.open(verify=True)


def planted_metadata(recipe: PlantedRecipe, arrays: PlantedArrays) -> list[dict[str, Any]]:
    """One metadata row per cache row (the columns `cache.rows.row_metadata` writes)."""
    splits = clip_splits(recipe)
    factors = arrays.truth["activations"][:, : recipe.factor_features].astype(np.float64)
    names = [factor_column(feature_name(j)) for j in range(recipe.factor_features)]
    frame_s, per_clip = 1.0 / FRAME_RATE_HZ, recipe.rows_per_clip
    meta = []
    for row in range(recipe.n_rows):
        clip, frame = divmod(row, per_clip)
        if per_clip > 1:  # a frame
            start, end = frame * frame_s, (frame + 1) * frame_s
        else:  # a whole clip
            start, end = 0.0, recipe.frames_per_clip * frame_s
        entry: dict[str, Any] = {
            "clip_index": clip,
            "clip_id": clip_id(clip),
            "path": "",
            "split": str(splits[clip]),
            "crop": 0,
            "start_s": start,
            "end_s": end,
        }
        if arrays.labels is not None:
            entry[label_column(LABEL)] = str(arrays.labels[clip])
        entry.update(zip(names, factors[row].tolist(), strict=True))
        entry["frame"] = frame if per_clip > 1 else -1
        meta.append(entry)
    return meta
