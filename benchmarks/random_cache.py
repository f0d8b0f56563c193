"""A complete activation cache of random rows, written file by file in the saelight cache format
(npy shards, parquet row metadata, manifest), for the data-path benchmarks. No backbone."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd

from saelight.cache.format import (
    FORMAT_VERSION,
    atomic_write_bytes,
    layer_dir,
    npy_bytes,
    sha256_bytes,
    shard_name,
    to_storage,
    write_manifest,
)
from saelight.cache.reader import CacheReader


def write_random_cache(
    directory: str | Path,
    n_rows: int,
    dim: int,
    layers: tuple[int, ...] = (6,),
    rows_per_shard: int = 16384,
    storage_dtype: str = "float32",
    seed: int = 0,
) -> CacheReader:
    """`n_rows` N(0, 1) rows of width `dim` per layer, all in the train split."""
    directory = Path(directory)
    rng = np.random.default_rng(seed)
    shards = []
    for index, start in enumerate(range(0, n_rows, rows_per_shard)):
        n = min(rows_per_shard, n_rows - start)
        files = {}
        for layer in layers:
            rows = rng.standard_normal((n, dim), dtype=np.float32)
            files[f"{layer_dir(layer)}/{shard_name(index, '.npy')}"] = npy_bytes(
                to_storage(rows, storage_dtype)
            )
        meta = pd.DataFrame(
            {"row": np.arange(start, start + n), "clip_id": [f"c{i}" for i in range(n)]}
        )
        meta["split"] = "train"
        buffer = io.BytesIO()
        meta.to_parquet(buffer, index=False)
        files[f"meta/{shard_name(index, '.parquet')}"] = buffer.getvalue()
        for rel, data in files.items():
            atomic_write_bytes(directory / rel, data)
        shard = {"index": index, "clip_start": start, "clip_end": start + n, "rows": n}
        shard |= {"row_start": start, "files": {r: sha256_bytes(d) for r, d in files.items()}}
        shards.append(shard)
    manifest = {
        "format_version": FORMAT_VERSION,
        "backbone": {"model": "random"},
        "source": {"class": "random", "seed": seed},
        "extraction": {"pooling": "clip", "storage_dtype": storage_dtype, "sample_rate": 16000},
        "layers": list(layers),
        "dim": dim,
        "complete": True,
        "n_rows": n_rows,
        "shards": shards,
        "skipped": [],
    }
    write_manifest(directory, manifest)
    return CacheReader(directory)
