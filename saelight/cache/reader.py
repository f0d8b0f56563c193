"""Reads a complete activation cache: memory-mapped shards plus the row metadata table."""

from __future__ import annotations

import mmap
import warnings
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from saelight.cache.format import (
    CacheCorruptError,
    CacheNotFoundError,
    check_listed_file,
    from_storage,
    label_names,
    layer_dir,
    read_manifest,
    shard_name,
)


class CacheReader:
    """Random and contiguous access to cached rows, as float32.

    Args:
        directory: a cache directory whose manifest says complete.
        verify: check every file's sha256 against the manifest on open.
    """

    def __init__(self, directory: str | Path, verify: bool = False) -> None:
        self.directory = Path(directory)
        manifest = read_manifest(self.directory)
        if manifest is None:
            raise CacheNotFoundError(
                f"{self.directory} holds no activation cache (no manifest.json)",
                hint="build it with `saelight cache --config ...`",
            )
        if not manifest.get("complete"):
            raise CacheCorruptError(
                f"cache {self.directory} is incomplete: run `saelight cache` to finish it"
            )
        self.manifest: dict[str, Any] = manifest
        self._memmaps: dict[tuple[int, int], np.ndarray] = {}
        self._columns: dict[str, Any] = {}  # name -> pyarrow ChunkedArray
        self.layers: list[int] = list(manifest["layers"])
        self.dim: int = int(manifest["dim"])
        self.storage_dtype: str = manifest["extraction"]["storage_dtype"]
        self.shards: list[dict[str, Any]] = [s for s in manifest["shards"] if s["rows"] > 0]
        self.row_starts = np.array([s["row_start"] for s in self.shards] + [manifest["n_rows"]])
        itemsize = np.dtype("float32" if self.storage_dtype == "float32" else "uint16").itemsize
        size = int(manifest["n_rows"]) * len(self.layers) * self.dim * itemsize
        self.release_pages = size > RELEASE_PAGES_ABOVE
        for shard in manifest["shards"]:
            for rel, digest in shard["files"].items():
                rebuild = "delete the cache directory and rebuild it"
                check_listed_file(self.directory / rel, digest, verify, "cache file", rebuild)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled for DataLoader workers without the open memmaps (they would be copied)."""
        return {**self.__dict__, "_memmaps": {}}

    def __len__(self) -> int:
        return int(self.manifest["n_rows"])

    @cached_property
    def metadata(self) -> pd.DataFrame:
        """One row per activation row, in row order (row, clip_id, split, label_*, factor_*...)."""
        frames = [
            pd.read_parquet(self.directory / "meta" / shard_name(s["index"], ".parquet"))
            for s in self.shards
        ]
        meta = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame({"row": []})
        if len(meta) != len(self) or not np.array_equal(
            meta["row"].to_numpy(), np.arange(len(self))
        ):
            raise CacheCorruptError(
                f"cache {self.directory}: metadata rows do not match the manifest"
            )
        return meta

    def _arrow_column(self, name: str) -> Any:
        """One metadata column as a pyarrow ChunkedArray (None if absent), read alone."""
        if name not in self._columns:
            import pyarrow as pa
            import pyarrow.parquet as pq

            meta = self.directory / "meta"
            files = [meta / shard_name(s["index"], ".parquet") for s in self.shards]
            if not files or name not in pq.read_schema(files[0]).names:
                return None
            chunks = [pq.read_table(f, columns=[name]).column(0) for f in files]
            column = pa.chunked_array([c for part in chunks for c in part.chunks], chunks[0].type)
            if len(column) != len(self):
                raise CacheCorruptError(
                    f"cache {self.directory}: metadata rows do not match the manifest"
                )
            self._columns[name] = column
        return self._columns[name]

    def column(self, name: str) -> np.ndarray | None:
        """A numeric metadata column in row order (None if the cache has no such column), read
        alone from the parquet files unless the full table is loaded already: the training path
        needs only `split` and `frame`, and the whole table (strings per row, ~70 B/row) would
        stay resident through every epoch of a 2M-row cache."""
        if "metadata" in self.__dict__:
            meta = self.metadata
            return meta[name].to_numpy() if name in meta else None
        column = self._arrow_column(name)
        return None if column is None else column.to_numpy()

    def label_names(self) -> list[str]:
        return label_names(self.metadata.columns)

    def split_rows(self, split: str) -> np.ndarray:
        """Row indices of a split, sorted. Compared as a column: `to_numpy()` of a string column
        builds one Python object per row (~120 MB of peak RSS at 2M rows)."""
        if "metadata" in self.__dict__:
            return np.flatnonzero((self.metadata["split"] == split).to_numpy(dtype=bool))
        import pyarrow.compute as pc

        column = self._arrow_column("split")
        if column is None:
            raise CacheCorruptError(f"cache {self.directory}: metadata has no split column")
        return np.flatnonzero(pc.equal(column, split).to_numpy())

    def shard_array(self, shard: int, layer: int) -> np.ndarray:
        key = (shard, layer)
        if key not in self._memmaps:
            self._memmaps[key] = self._open_shard(shard, layer)
        return self._memmaps[key]

    def _open_shard(self, shard: int, layer: int) -> np.ndarray:
        """The raw (rows, dim) memmap of one shard and layer, in the storage dtype."""
        path = self.directory / layer_dir(layer) / shard_name(self.shards[shard]["index"], ".npy")
        try:
            return np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise CacheCorruptError(
                f"cache file {path} is truncated or not a .npy file: {err}"
            ) from err

    def read(self, rows: np.ndarray, layers: list[int] | None = None) -> np.ndarray:
        """Rows (any order) as a float32 array (len(rows), n_layers, dim).

        The result is a transposed view of a (n_layers, len(rows), dim) buffer, so each layer's
        rows (`out[:, i]`, what an SAE reads) are contiguous, and float32 rows of a single shard are
        gathered straight into it: one copy, no sort, no scatter.
        """
        layers = self.layers if layers is None else layers
        rows = np.asarray(rows, dtype=np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= len(self)):
            raise IndexError(f"rows outside 0..{len(self) - 1} of cache {self.directory}")
        buffer = np.empty((len(layers), len(rows), self.dim), dtype=np.float32)
        shard_of = np.searchsorted(self.row_starts, rows, side="right") - 1
        shards = np.unique(shard_of)
        for shard in shards:
            whole = len(shards) == 1
            sel = slice(None) if whole else np.flatnonzero(shard_of == shard)
            local = rows[sel] - self.row_starts[shard]
            for li, layer in enumerate(layers):
                block = self.shard_array(int(shard), layer)
                if self.storage_dtype == "float32":
                    _gather_rows(block, local, buffer[li], None if whole else sel)
                else:
                    gathered = np.take(block, local, axis=0, mode="clip")
                    buffer[li][sel] = from_storage(gathered, self.storage_dtype)
                if self.release_pages:
                    _release(block)
        return buffer.transpose(1, 0, 2)


RELEASE_PAGES_ABOVE = 1 << 30
"""Caches larger than this (bytes of activations) drop each shard's pages after a read
(`_release`): peak RSS of one epoch 794 MB at 2M rows x 384 fp32 (2.9 GB) where it was 3,654 MB,
for 22-42 % fewer rows/s in a read-only loop (benchmarks/cache_rss.py). Smaller caches keep their
pages mapped: they fit a job's memory request, and reads stay at full speed."""


def _release(block: np.ndarray) -> None:
    """Drops the pages of a shard's memmap from this process (`MADV_DONTNEED`): the rows are
    copied out, and pages left mapped count as resident memory (RSS) until the kernel needs them,
    so an epoch over a cache larger than RAM would look to a scheduler like that much memory.
    The file stays mapped and in the page cache: the next read maps the pages again, cheaply."""
    handle = getattr(block, "_mmap", None)
    if handle is not None and hasattr(mmap, "MADV_DONTNEED"):
        handle.madvise(mmap.MADV_DONTNEED)


def _gather_rows(block: np.ndarray, local: np.ndarray, out: np.ndarray, at: Any) -> None:
    """out[at] = block[local] (out entirely when `at` is None), with torch's multi-threaded
    index_select / index_copy_: 4-5x numpy's fancy indexing on a memmap."""
    with warnings.catch_warnings():  # a read-only memmap; nothing writes through the view
        warnings.simplefilter("ignore", UserWarning)
        source = torch.from_numpy(block)
    index, target = torch.from_numpy(local), torch.from_numpy(out)
    if at is None:
        torch.index_select(source, 0, index, out=target)
    else:
        target.index_copy_(0, torch.from_numpy(at), source.index_select(0, index))
