"""Peak resident memory of one training epoch over the cache, small vs large cache.

Schedulers that count RSS see the pages of memmapped shards a process has touched; a reader
that keeps them mapped shows the whole cache as resident by the end of an epoch. This writes two
random-activation caches (default 250k and 2M rows of width 384, float32: 0.4 and 3.1 GB), then,
for each, in a fresh process, runs one shuffled epoch of `CachedBatches` (the training data path)
and reads the process's peak RSS (`VmHWM`) and its file-backed and anonymous parts at the end, with
the reader's `MADV_DONTNEED` after each read ("release") and without it ("keep", the reader
before issue 28). Writes cache_rss.json.

    python benchmarks/cache_rss.py [--rows 250000 2000000] [--dim 384] [--batch 4096]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).parent


def status_mb() -> dict[str, float]:
    """VmHWM (peak RSS), VmRSS, RssAnon and RssFile of this process, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) / 1024
    return out


def one_epoch(directory: str, batch: int, mode: str) -> dict[str, float]:
    """Child process: one shuffled epoch, then the memory counters."""
    import saelight.cache.reader as reader_module
    from saelight.cache.reader import CacheReader
    from saelight.data.batches import CachedBatches

    # The shipped reader releases pages only above `RELEASE_PAGES_ABOVE` (1 GiB): both modes are
    # forced here so that each row size is measured both ways.
    reader_module.RELEASE_PAGES_ABOVE = 1 << 62 if mode == "keep" else 0
    reader = CacheReader(directory)
    rows = reader.split_rows("train")
    # The datamodule's default buffer (1M rows): shuffled within, shards visited in random order.
    batches = CachedBatches(reader, rows, batch, True, 0, buffer_rows=1 << 20, drop_last=True)
    start, n = time.perf_counter(), 0
    for item in batches:
        n += len(item["x"])
    seconds = time.perf_counter() - start
    return {**status_mb(), "rows": n, "rows_per_s": n / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[250_000, 2_000_000])
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(one_epoch(args.child[0], args.batch, args.child[1])))
        return
    sys.path.insert(0, str(HERE))
    from random_cache import write_random_cache

    results = []
    for n_rows in args.rows:
        with tempfile.TemporaryDirectory(dir=HERE) as tmp:
            write_random_cache(tmp, n_rows, args.dim)
            for mode in ("keep", "release"):
                cmd = [sys.executable, __file__, "--batch", str(args.batch), "--child", tmp, mode]
                done = subprocess.run(cmd, capture_output=True, text=True, check=True)
                row = {"n_rows": n_rows, "dim": args.dim, "mode": mode}
                row |= json.loads(done.stdout.strip().splitlines()[-1])
                print(json.dumps(row))
                results.append(row)
    (HERE / "cache_rss.json").write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
