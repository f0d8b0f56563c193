"""Appends shards to a cache directory atomically and records each in the manifest."""

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
    """Collects rows for the clips of one shard, then commits them: files first, manifest last.

    A shard is visible only once the manifest lists it, so a crash between two commits leaves at most
    some orphan files that the next commit overwrites.

    Args:
        directory: the cache directory.
        manifest: the manifest dict (mutated and rewritten on every commit).
    """

    def __init__(self, directory: str | Path, manifest: dict[str, Any]) -> None:
        self.directory = Path(directory)
        self.manifest = manifest
        self._rows: dict[int, list[np.ndarray]] = {layer: [] for layer in manifest["layers"]}
        self._meta: list[dict[str, Any]] = []
        self._skipped: list[dict[str, str]] = []

    @property
    def next_clip(self) -> int:
        shards = self.manifest["shards"]
        return shards[-1]["clip_end"] if shards else 0

    @property
    def pending_rows(self) -> int:
        return len(self._meta)

    def add(self, activations: dict[int, np.ndarray], meta: list[dict[str, Any]]) -> None:
        """Queue rows: {layer: (n, dim) float32} plus one metadata dict per row."""
        for layer, rows in activations.items():
            self._rows[layer].append(rows)
        self._meta.extend(meta)

    def skip(self, clip_id: str, path: str | None, reason: str) -> None:
        self._skipped.append({"clip_id": clip_id, "path": path or "", "reason": reason})

    def commit(self, clip_end: int) -> None:
        """Write the queued rows as one shard covering clips [next_clip, clip_end)."""
        shards = self.manifest["shards"]
        index = len(shards)
        first_row = self.manifest["n_rows"]
        n = len(self._meta)
        files: dict[str, str] = {}
        dtype = self.manifest["extraction"]["storage_dtype"]
        dim = self.manifest["dim"]
        for layer, parts in self._rows.items():
            rows = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
            data = npy_bytes(to_storage(rows, dtype))
            rel = f"{layer_dir(layer)}/{shard_name(index, '.npy')}"
            atomic_write_bytes(self.directory / rel, data)
            files[rel] = sha256_bytes(data)
        meta = pd.DataFrame(self._meta)
        if n:
            meta.insert(0, "row", np.arange(first_row, first_row + n, dtype=np.int64))
        buffer = io.BytesIO()
        meta.to_parquet(buffer, index=False)
        data = buffer.getvalue()
        rel = f"meta/{shard_name(index, '.parquet')}"
        atomic_write_bytes(self.directory / rel, data)
        files[rel] = sha256_bytes(data)
        shards.append(
            {
                "index": index,
                "clip_start": self.next_clip,
                "clip_end": clip_end,
                "rows": n,
                "row_start": first_row,
                "files": files,
            }
        )
        self.manifest["n_rows"] = first_row + n
        self.manifest["skipped"].extend(self._skipped)
        write_manifest(self.directory, self.manifest)
        self._rows = {layer: [] for layer in self._rows}
        self._meta, self._skipped = [], []
