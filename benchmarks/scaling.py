"""Step time of saelight's dense vs sparse TopK path over dictionary size and k, and which one the
auto switch (`sparse=None`, `SPARSE_AUTO_MAX_DENSITY`) picks.

A bf16-autocast training step as in sae_step.py (fused Adam, unit-norm decoder), for every
d_sae in `--d_saes` and k in `--ks`; dense and sparse take turns within each of `--runs` runs.
Kept short: batch 1024 (not 4096) and 2 steps per run by default. Writes scaling.json.

    python benchmarks/scaling.py [--batch 1024] [--d_saes 4096 8192 16384 32768]
    python benchmarks/scaling.py --batch 4096 --d_saes 6144 --ks 32 48 64 96 128 \
        --out scaling_b4096.json
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from steps import load_average, measure, saelight_step, synthetic_batches

from saelight.sae import TopKSAE
from saelight.sae.kernels.sparse_ops import SPARSE_AUTO_MAX_DENSITY, use_sparse


def cell(args: argparse.Namespace, data: list[torch.Tensor], d_sae: int, k: int) -> dict:
    steps = {}
    for mode in ("dense", "sparse"):
        torch.manual_seed(0)
        sae = TopKSAE(args.d_in, d_sae, k=k, sparse=mode == "sparse").to(args.device)
        sae.initialize_from_data(data[0])
        steps[mode] = saelight_step(sae, data)
    r = measure(steps, args.batch, args.runs, args.steps, args.warmup, args.device)
    ms = {mode: 1e3 * args.batch / r[mode]["median"] for mode in steps}
    faster = min(ms, key=ms.__getitem__)
    auto = "sparse" if use_sparse(None, k, d_sae) else "dense"
    return {"ms_per_step": ms, "faster": faster, "auto": auto, "auto_ok": auto == faster}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d_in", type=int, default=768)
    parser.add_argument("--d_saes", type=int, nargs="+", default=[4096, 8192, 16384, 32768])
    parser.add_argument("--ks", type=int, nargs="+", default=[16, 32, 64, 128, 256])
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--out", default="scaling.json", help="file name, next to this script")
    args = parser.parse_args()
    data = synthetic_batches(2, args.batch, args.d_in, args.device)
    load_before = load_average()
    table = {f"{d_sae}/{k}": cell(args, data, d_sae, k) for d_sae in args.d_saes for k in args.ks}
    load = {"before": load_before, "after": load_average()}
    print(f"bf16 step ms (dense / sparse), batch {args.batch}, d_in {args.d_in}, load {load}")
    print(f"auto: sparse when k/d_sae <= {SPARSE_AUTO_MAX_DENSITY:.4f}; * = auto picked the slower")
    print("| d_sae \\ k | " + " | ".join(str(k) for k in args.ks) + " |")
    print("|---|" + "---:|" * len(args.ks))
    for d_sae in args.d_saes:
        cells = []
        for k in args.ks:
            c = table[f"{d_sae}/{k}"]
            d, s = c["ms_per_step"]["dense"], c["ms_per_step"]["sparse"]
            cells.append(f"{d:.0f} / {s:.0f}" + ("" if c["auto_ok"] else " *"))
        print(f"| {d_sae} | " + " | ".join(cells) + " |")
    device = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    meta = {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__}
    out = {"config": {**meta, **vars(args)}, "load_average": load, "cells": table}
    out["auto_max_density"] = SPARSE_AUTO_MAX_DENSITY
    Path(__file__).with_name(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
