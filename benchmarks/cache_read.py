"""Batch assembly from the memmapped cache (`CachedBatches`) vs a plain memcpy of the same bytes.

Writes a random-activation cache (files then sit in the page cache, as for any cache read more
than once), then times, alternating, `--repeats` times: one shuffled epoch of `CachedBatches`
(GB/s of batch bytes yielded), and `np.copyto` of the same bytes (each batch-sized block of an
in-memory array of the cache's size into a batch-sized array: this machine's memcpy bandwidth).
Target: CachedBatches >= 50% of memcpy. Writes cache_read.json.

    python benchmarks/cache_read.py [--rows 131072] [--dim 768] [--batch 4096]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from random_cache import write_random_cache
from steps import load_average

from saelight.data.batches import CachedBatches


def epoch_gbps(batches: CachedBatches, epoch: int) -> float:
    batches.epoch_fn = lambda: epoch
    t0, nbytes = time.perf_counter(), 0
    for batch in batches:
        nbytes += batch["x"].numel() * batch["x"].element_size()
    return nbytes / (time.perf_counter() - t0) / 1e9


def memcpy_gbps(n_rows: int, dim: int, batch: int) -> float:
    """np.copyto of the same bytes: every batch-sized block of a cache-sized array, in turn,
    into one batch-sized array (so the source is not cache-resident, as the shards are not)."""
    src = np.random.default_rng(0).standard_normal((n_rows, dim), dtype=np.float32)
    dst = np.empty((batch, dim), np.float32)
    t0 = time.perf_counter()
    for lo in range(0, n_rows - batch + 1, batch):
        np.copyto(dst, src[lo : lo + batch])
    return (n_rows // batch) * dst.nbytes / (time.perf_counter() - t0) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096 * 32)
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--buffer_rows", type=int, default=1 << 15)
    parser.add_argument("--storage_dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_before = load_average()
    rates: dict[str, list[float]] = {"CachedBatches": [], "np.copyto (memcpy)": []}
    with tempfile.TemporaryDirectory() as tmp:
        reader = write_random_cache(tmp, args.rows, args.dim, storage_dtype=args.storage_dtype)
        rows = reader.split_rows("train")
        batches = CachedBatches(reader, rows, args.batch, True, 0, args.buffer_rows, True)
        epoch_gbps(batches, 0)  # warm: page cache, first-touch of the memmaps
        for epoch in range(1, args.repeats + 1):
            rates["CachedBatches"].append(epoch_gbps(batches, epoch))
            rates["np.copyto (memcpy)"].append(memcpy_gbps(args.rows, args.dim, args.batch))
    summary = {name: statistics.median(r) for name, r in rates.items()}
    share = summary["CachedBatches"] / summary["np.copyto (memcpy)"]
    load = {"before": load_before, "after": load_average()}
    print(f"rows {args.rows}, dim {args.dim}, batch {args.batch}, buffer {args.buffer_rows}")
    print(f"storage {args.storage_dtype}, load {load}")
    print("| read | GB/s (median) |\n|---|---:|")
    for name, v in summary.items():
        print(f"| {name} | {v:.2f} |")
    print(f"CachedBatches / memcpy: {share:.0%}")
    out = {"config": vars(args), "load_average": load, "runs": rates, "summary": summary}
    out["share_of_memcpy"] = share
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
