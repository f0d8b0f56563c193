"""The acoustic descriptors of every cache row, computed once and stored beside the cache.

Layout (inside the cache directory; opt-in, the cache itself never needs it)::

    descriptors/recipe.json               the analysis settings, rate and frame rate used
    descriptors/shard_<SSSSS>.parquet     one row per activation row of that cache shard:
                                          row + one column per `audio.descriptors.DESCRIPTORS`

A frame row (`frame` >= 0) takes the descriptors at its frame's centre, (start_s + end_s) / 2,
the time grid the cache places frames on (`cache.rows.row_metadata`). A clip-pooled row or crop
takes the mean over the backbone frames its span holds (`audio.descriptors.row_means`). Each shard
file is written atomically when its clips are done, so an interrupted pass resumes at the first
missing shard; a recipe that differs (other settings) recomputes every shard.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saelight.audio.base import AudioSource, BadAudioError
from saelight.audio.descriptors import (
    DESCRIPTORS,
    DescriptorOptions,
    descriptor_tracks,
    row_means,
)
from saelight.cache.format import atomic_write_bytes, shard_name
from saelight.cache.reader import CacheReader
from saelight.io.atomic import atomic_write_text

log = logging.getLogger(__name__)

DESCRIPTOR_DIR = "descriptors"
RECIPE = "recipe.json"
RECIPE_VERSION = 1


def descriptor_recipe(
    sample_rate: int, frame_rate_hz: float, options: DescriptorOptions
) -> dict[str, Any]:
    """What the stored descriptors depend on; stored as `descriptors/recipe.json`."""
    return {
        "version": RECIPE_VERSION,
        "sample_rate": int(sample_rate),
        "frame_rate_hz": float(frame_rate_hz),
        "options": asdict(options),
        "columns": list(DESCRIPTORS),
    }


def row_times(start_s: float, end_s: float, frame: int, frame_rate_hz: float) -> np.ndarray:
    """The times (s) a row's descriptors are read at: its centre for a frame row, the centres of
    the backbone frames inside [start_s, end_s) otherwise (at least one).

    Example:
        >>> row_times(0.0, 0.1, -1, 50.0).tolist(), row_times(0.02, 0.04, 1, 50.0).tolist()
        ([0.01, 0.03, 0.05, 0.07, 0.09], [0.03])
    """
    if frame >= 0:
        return np.array([(start_s + end_s) / 2])
    n = max(1, int(round((end_s - start_s) * frame_rate_hz)))
    return start_s + (np.arange(n) + 0.5) / frame_rate_hz


def clip_descriptors(
    wave: np.ndarray,
    sample_rate: int,
    rows: pd.DataFrame,
    frame_rate_hz: float,
    options: DescriptorOptions,
) -> pd.DataFrame:
    """The descriptor columns of one clip's metadata `rows` (start_s, end_s, frame), in order."""
    spans = [
        row_times(float(s), float(e), int(f), frame_rate_hz)
        for s, e, f in zip(rows["start_s"], rows["end_s"], rows["frame"], strict=True)
    ]
    tracks = descriptor_tracks(wave, sample_rate, np.concatenate(spans), options)
    bounds = np.cumsum([0, *map(len, spans)])
    per_row = [
        {k: float(v[a]) for k, v in tracks.items()}
        if frame >= 0
        else row_means({k: v[a:b] for k, v in tracks.items()})
        for a, b, frame in zip(bounds[:-1], bounds[1:], rows["frame"], strict=True)
    ]
    return pd.DataFrame(per_row, columns=list(DESCRIPTORS), index=rows.index)


def compute_descriptors(
    reader: CacheReader,
    source: AudioSource,
    sample_rate: int,
    frame_rate_hz: float,
    options: DescriptorOptions | None = None,
) -> pd.DataFrame:
    """Descriptors of every row of the cache (`row` + `DESCRIPTORS` columns), computing the shards
    not yet on disk; see the module docstring.

    Args:
        reader: the complete cache.
        source: its audio source (clip `clip_index` of the metadata is `source.clips()[i]`).
        sample_rate: the rate the audio is analysed at (the backbone's, as the rows saw it).
        frame_rate_hz: the backbone's frames per second (the cache's time grid).
        options: analysis settings (None: `DescriptorOptions()`).
    """
    options = options or DescriptorOptions()
    folder = reader.directory / DESCRIPTOR_DIR
    recipe = descriptor_recipe(sample_rate, frame_rate_hz, options)
    if _stored_recipe(folder) != recipe:
        for stale in folder.glob("shard_*.parquet"):
            stale.unlink()
        atomic_write_text(folder / RECIPE, json.dumps(recipe, indent=1))
    clips = source.clips()
    meta = reader.metadata
    t0, done_s = time.perf_counter(), 0.0
    for shard in reader.shards:
        path = folder / shard_name(shard["index"], ".parquet")
        if path.exists():
            continue
        rows = meta.iloc[shard["row_start"] : shard["row_start"] + shard["rows"]]
        parts = []
        for index, clip_rows in rows.groupby("clip_index", sort=False):
            clip = clips[int(index)]
            try:
                wave = source.load(clip, sample_rate)
            except BadAudioError as err:
                log.warning("descriptors of %s left empty: %s", clip.path or clip.clip_id, err)
                parts.append(pd.DataFrame(np.nan, index=clip_rows.index, columns=[*DESCRIPTORS]))
                continue
            done_s += len(wave) / sample_rate
            parts.append(clip_descriptors(wave, sample_rate, clip_rows, frame_rate_hz, options))
        table = pd.concat(parts).loc[rows.index]
        table.insert(0, "row", rows["row"].to_numpy())
        atomic_write_bytes(path, _parquet(table))
    if done_s:
        wall = time.perf_counter() - t0
        log.info("descriptors of %.0f s of audio in %.1f s -> %s", done_s, wall, folder)
    stored = read_descriptors(reader.directory)
    assert stored is not None
    return stored


def read_descriptors(directory: str | Path) -> pd.DataFrame | None:
    """The stored descriptors of a cache, one row per activation row in row order, or None when
    the pass has not run (or has not finished) on it."""
    directory = Path(directory)
    folder = directory / DESCRIPTOR_DIR
    if _stored_recipe(folder) is None:
        return None
    reader = CacheReader(directory)
    paths = [folder / shard_name(s["index"], ".parquet") for s in reader.shards]
    if not all(p.exists() for p in paths):
        return None
    table = pd.concat([pd.read_parquet(p) for p in paths], ignore_index=True)
    if not np.array_equal(table["row"].to_numpy(), np.arange(len(reader))):
        return None
    return table


def _stored_recipe(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / RECIPE).read_text())
    except (OSError, json.JSONDecodeError):
        return None


def _parquet(table: pd.DataFrame) -> bytes:
    import io

    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    return buffer.getvalue()
