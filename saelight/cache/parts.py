"""Multi-process extraction: who extracts which clips, and the merge of the part manifests.

Clips are cut into blocks of `clips_per_shard`; block b belongs to rank b % world. A rank extracts
the clips of its blocks that no existing shard covers (so a rerun, with any number of processes,
resumes without redoing or losing a clip), committing each to its own part manifest. When every
rank is done, rank 0 merges: it checks that the shards tile [0, n_clips) exactly once, numbers the
rows, and writes `manifest.json` with `complete: true` in one atomic rename.
"""

from __future__ import annotations

import datetime
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from saelight.cache.format import (
    MANIFEST,
    PART_GLOB,
    CacheCorruptError,
    atomic_write_bytes,
    check_compatible,
    read_manifest,
    sha256_bytes,
    write_manifest,
)
from saelight.cache.writer import parquet_bytes
from saelight.io.atomic import remove_dead_temps

log = logging.getLogger(__name__)

# Ranks finish their clips at different times; extraction of a large set can take hours.
BARRIER_TIMEOUT = datetime.timedelta(days=7)

Interval = tuple[int, int]
AllOk = Callable[[bool], bool]


@contextmanager
def process_group() -> Iterator[tuple[int, int, AllOk]]:
    """(rank, world, all_ok) of the extracting processes.

    Uses the initialised torch.distributed group (Lightning DDP), else WORLD_SIZE/RANK/MASTER_ADDR/
    MASTER_PORT from the environment (torchrun; see configs/cluster for SLURM), else one process.
    `all_ok(ok)` is a barrier that also tells every rank whether all of them succeeded. It runs on a
    gloo group with a long timeout, so it works beside NCCL and waits for the slowest rank.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        group = dist.new_group(backend="gloo", timeout=BARRIER_TIMEOUT)
        yield dist.get_rank(), dist.get_world_size(), _all_ok(group)
    elif int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group("gloo", timeout=BARRIER_TIMEOUT)
        try:
            yield dist.get_rank(), dist.get_world_size(), _all_ok(None)
        finally:
            dist.destroy_process_group()
    else:
        yield 0, 1, lambda ok: ok


def _all_ok(group: Any) -> AllOk:
    def all_ok(ok: bool) -> bool:
        flag = torch.tensor([int(ok)])
        dist.all_reduce(flag, op=dist.ReduceOp.MIN, group=group)
        return bool(flag.item())

    return all_ok


def extract_then_merge(
    directory: Path, extract: Callable[[int, int], None], finish: Callable[[], None]
) -> None:
    """`extract(rank, world)` on every process, then `finish()` on rank 0 once all succeeded.

    A rank that fails releases the others from the barrier first, so they stop too (naming it)
    instead of waiting for it. A lone process first deletes the temp files that killed writers
    left (`.<name>.tmp<pid>`, pid dead); with several, a pid of another node cannot be checked.
    """
    with process_group() as (rank, world, all_ok):
        if world == 1:
            for folder in (directory, *directory.glob("*/")):
                remove_dead_temps(folder)
        _step(
            all_ok,
            lambda: extract(rank, world),
            f"cache {directory}: another extracting process failed (see its log); rerun "
            "`saelight cache` to resume",
        )
        _step(
            all_ok,
            finish if rank == 0 else lambda: None,
            f"cache {directory}: rank 0 failed to merge the part manifests (see its log)",
        )


def _step(all_ok: AllOk, run: Callable[[], None], others_failed: str) -> None:
    try:
        run()
    except BaseException:
        try:
            all_ok(False)
        except Exception:  # noqa: BLE001 (a dead peer must not mask this rank's error)
            log.debug("could not tell the other ranks about the failure", exc_info=True)
        raise
    if not all_ok(True):
        raise RuntimeError(others_failed)


def read_parts(directory: Path, recipe: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(file name, part manifest) of every part in the directory, checked against the recipe."""
    parts = []
    for path in sorted(directory.glob(PART_GLOB)):
        part = read_manifest(directory, path.name)
        if part is not None:
            check_compatible(part, recipe, path)
            parts.append((path.name, part))
    return parts


def covered(shard_lists: list[list[dict[str, Any]]]) -> list[Interval]:
    """Sorted, merged clip intervals covered by the given shards."""
    spans = sorted((s["clip_start"], s["clip_end"]) for shards in shard_lists for s in shards)
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and a <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], b)
        else:
            merged.append([a, b])
    return [(a, b) for a, b in merged]


def todo(
    n_clips: int, clips_per_shard: int, rank: int, world: int, done: list[Interval]
) -> list[Interval]:
    """The clip runs rank must extract: the parts of its blocks that `done` does not cover."""
    runs = []
    for block, lo in enumerate(range(0, n_clips, clips_per_shard)):
        if block % world != rank:
            continue
        hi = min(lo + clips_per_shard, n_clips)
        for a, b in done:
            if b <= lo or a >= hi:
                continue
            if a > lo:
                runs.append((lo, a))
            lo = max(lo, b)
        if lo < hi:
            runs.append((lo, hi))
    return runs


def merge(
    directory: Path, header: dict[str, Any], parts: list[tuple[str, dict[str, Any]]], n_clips: int
) -> dict[str, Any]:
    """Write the complete manifest from the header's shards plus every part's; delete the parts."""
    shards = [dict(s) for s in header["shards"]]
    skipped = list(header["skipped"])
    for _, part in parts:
        shards.extend(dict(s) for s in part["shards"])
        skipped.extend(part["skipped"])
    shards.sort(key=lambda s: s["clip_start"])
    expected = 0
    for s in shards:
        if s["clip_start"] != expected:
            what = "overlap" if s["clip_start"] < expected else "gap"
            raise CacheCorruptError(
                f"cache {directory}: shards {what} at clip {min(expected, s['clip_start'])} "
                f"(shard {s['index']} starts at clip {s['clip_start']}); move the directory aside "
                "and rebuild"
            )
        expected = s["clip_end"]
    if expected != n_clips:
        raise CacheCorruptError(
            f"cache {directory}: shards cover clips [0, {expected}) but the source has {n_clips}"
        )
    row = 0
    for s in shards:
        if s["rows"] and s["row_start"] != row:
            _renumber(directory, s, row)
        s["row_start"] = row
        row += s["rows"]
    skipped.sort(key=lambda e: e.get("clip_index", -1))
    manifest = {**header, "shards": shards, "skipped": skipped, "n_rows": row, "complete": True}
    write_manifest(directory, manifest, MANIFEST)
    for name, _ in parts:
        (directory / name).unlink(missing_ok=True)
    return manifest


def _renumber(directory: Path, shard: dict[str, Any], first_row: int) -> None:
    """Rewrite a shard's metadata table with global row numbers (and its checksum)."""
    rel = next(r for r in shard["files"] if r.startswith("meta/"))
    meta = pd.read_parquet(directory / rel)
    if len(meta) != shard["rows"]:
        raise CacheCorruptError(
            f"cache file {directory / rel} has {len(meta)} rows, not {shard['rows']}"
        )
    meta["row"] = np.arange(first_row, first_row + len(meta), dtype=np.int64)
    data = parquet_bytes(meta)
    atomic_write_bytes(directory / rel, data)
    shard["files"][rel] = sha256_bytes(data)
