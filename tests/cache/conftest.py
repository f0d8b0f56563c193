"""Caches written straight through `ShardWriter` + `merge` (no audio, no backbone).

Test modules here are imported by path (pytest's importlib mode), so helpers come as fixtures.
"""

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from saelight.cache import CacheReader
from saelight.cache.format import FORMAT_VERSION, part_name
from saelight.cache.parts import merge
from saelight.cache.writer import ShardWriter

WriteCache = Callable[..., CacheReader]


def header(n_clips: int, dtype: str = "float32") -> dict[str, Any]:
    return {
        "format_version": FORMAT_VERSION,
        "backbone": {"model": "fake"},
        "source": {"n": n_clips},
        "extraction": {"storage_dtype": dtype},
        "layers": [0, 5],
        "dim": 3,
        "complete": False,
        "n_rows": 0,
        "shards": [],
        "skipped": [],
    }


def rows_of(clip: int) -> np.ndarray:
    """Clip c has c % 3 rows; row values encode (clip, row-in-clip, column)."""
    n = clip % 3
    return 100 * clip + 10 * np.arange(n)[:, None] + np.arange(3)[None, :].astype(np.float32)


def write_part(directory: Path, rank: int, runs: list[tuple[int, int]], n_clips: int) -> dict:
    head = header(n_clips)
    writer = ShardWriter(directory, {**head, "shards": [], "skipped": []}, part_name(rank))
    for lo, hi in runs:
        writer.begin(lo)
        for clip in range(lo, hi):
            x = rows_of(clip).astype(np.float32)
            writer.add({0: x, 5: -x}, [{"clip_index": clip, "split": "train"}] * len(x))
        writer.commit(hi)
    return writer.part


@pytest.fixture
def kit() -> SimpleNamespace:
    """header(n_clips), rows_of(clip) and write_part(directory, rank, runs, n_clips)."""
    return SimpleNamespace(header=header, rows_of=rows_of, write_part=write_part)


@pytest.fixture
def write_cache(tmp_path: Path) -> WriteCache:
    """write_cache(n_clips, clips_per_shard) -> reader of a complete cache written by 1 process."""

    def write(n_clips: int = 10, per_shard: int = 4) -> CacheReader:
        runs = [(lo, min(lo + per_shard, n_clips)) for lo in range(0, n_clips, per_shard)]
        part = write_part(tmp_path, 0, runs, n_clips)
        merge(tmp_path, header(n_clips), [(part_name(0), part)], n_clips)
        return CacheReader(tmp_path, verify=True)

    return write
