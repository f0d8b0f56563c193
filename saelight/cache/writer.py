"""Commits shards to a cache directory atomically, recording each in its process's part manifest."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from saelight.cache.format import (
    atomic_write_bytes,
    layer_dir,
    npy_bytes,
    sha256_bytes,
    shard_name,
    to_storage,
    write_manifest,
)


class ShardWriter:
    """Collects the rows of a run of clips, then commits them as one shard: files first, part last.

    A shard is visible only once the part manifest lists it, so a crash between two commits leaves
    at most some orphan files that the next attempt at the same clips overwrites. Rows are numbered
    within the part (`row_start` counts this part's rows); the merge renumbers them globally.

    Args:
        directory: the cache directory.
        part: the part manifest dict (mutated and rewritten on every commit).
        name: the part manifest's file name, e.g. "manifest.rank0.json".
    """

    def __init__(self, directory: str | Path, part: dict[str, Any], name: str) -> None:
        self.directory, self.part, self.name = Path(directory), part, name
        self.clip_start = 0
        self._rows: dict[int, list[np.ndarray]] = {layer: [] for layer in part["layers"]}
        self._meta: list[dict[str, Any]] = []
        self._skipped: list[dict[str, Any]] = []

    def begin(self, clip_start: int) -> None:
        """Start a shard at clip `clip_start` (nothing may be queued)."""
        if self._meta or self._skipped:
            raise RuntimeError("ShardWriter.begin() with uncommitted rows")
        self.clip_start = clip_start

    def add(self, activations: dict[int, np.ndarray], meta: list[dict[str, Any]]) -> None:
        """Queue rows: {layer: (n, dim) float32} plus one metadata dict per row."""
        for layer, rows in activations.items():
            self._rows[layer].append(rows)
        self._meta.extend(meta)

    def skip(self, clip_index: int, clip_id: str, path: str | None, reason: str) -> None:
        self._skipped.append(
            {"clip_index": clip_index, "clip_id": clip_id, "path": path or "", "reason": reason}
        )

    def commit(self, clip_end: int) -> None:
        """Write the queued rows as the shard covering clips [clip_start, clip_end)."""
        if clip_end <= self.clip_start:
            return
        try:
            files = self._write_files()
        except OSError as err:
            raise OSError(
                err.errno,
                f"cannot write shard of clips [{self.clip_start}, {clip_end}) to cache "
                f"{self.directory}: {err.strerror or err}. Shards committed before are kept: free "
                "space or fix permissions, then rerun `saelight cache` to resume",
            ) from err
        part, n = self.part, len(self._meta)
        part["shards"].append(
            {
                "index": self.clip_start,
                "clip_start": self.clip_start,
                "clip_end": clip_end,
                "rows": n,
                "row_start": part["n_rows"],
                "files": files,
            }
        )
        part["n_rows"] += n
        part["skipped"].extend(self._skipped)
        write_manifest(self.directory, part, self.name)
        self._rows = {layer: [] for layer in self._rows}
        self._meta, self._skipped = [], []
        self.clip_start = clip_end

    def _write_files(self) -> dict[str, str]:
        """{relative path: sha256} of the shard's activation files and metadata table."""
        files: dict[str, str] = {}
        index, first_row, n = self.clip_start, self.part["n_rows"], len(self._meta)
        dtype, dim = self.part["extraction"]["storage_dtype"], self.part["dim"]
        for layer, parts in self._rows.items():
            rows = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
            data = npy_bytes(to_storage(rows, dtype))
            rel = f"{layer_dir(layer)}/{shard_name(index, '.npy')}"
            atomic_write_bytes(self.directory / rel, data)
            files[rel] = sha256_bytes(data)
        meta = pd.DataFrame(self._meta)
        if n:
            meta.insert(0, "row", np.arange(first_row, first_row + n, dtype=np.int64))
        rel = f"meta/{shard_name(index, '.parquet')}"
        data = parquet_bytes(meta)
        atomic_write_bytes(self.directory / rel, data)
        files[rel] = sha256_bytes(data)
        return files


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()
