"""Peak resident memory of a TopK SAE training step vs what training must hold anyway.

Each configuration runs in a fresh process: it first runs a tiny step of the same kind (so the
libraries and kernels are loaded), reads the resident set size R0, builds one batch, the SAE and
its Adam, runs 2 steps (Adam state allocated), resets the kernel's peak counter (VmHWM, via
/proc/self/clear_refs), runs `--steps` more and reads the peak. Reported: peak - R0 against
batch + parameters + Adam state (the "needed" bytes); the target is <= 1.5x. Each runs with
glibc's default malloc and with MALLOC_TRIM_THRESHOLD_=0 (RSS then follows the live tensors; the
default keeps freed heap pages, and fragmentation, in the RSS). Linux only. Writes
step_memory.json.

    python benchmarks/step_memory.py
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path

CONFIGS = ("plain dense fp32", "saelight sparse bf16", "saelight dense bf16")
NAMES = ("d_in", "d_sae", "k", "batch", "steps")
# glibc keeps freed heap memory mapped; with a trim threshold of 0 (which also fixes the mmap
# threshold at 128 kB) every large tensor is returned on free, so RSS follows the live tensors.
ALLOCATORS = {"glibc default": {}, "MALLOC_TRIM_THRESHOLD_=0": {"MALLOC_TRIM_THRESHOLD_": "0"}}


def _status_kib(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", text).group(1))  # type: ignore[union-attr]


def child(config: str, d_in: int, d_sae: int, k: int, batch: int, steps: int) -> dict:
    import torch
    from steps import PlainTopK, plain_step, saelight_step, synthetic_batches

    from saelight.sae import TopKSAE

    def build(d_in: int, d_sae: int, k: int, batch: int):
        data = synthetic_batches(1, batch, d_in)
        torch.manual_seed(0)
        sae = TopKSAE(d_in, d_sae, k=k, sparse="sparse" in config)
        sae.initialize_from_data(data[0])
        if config.startswith("plain"):
            model = PlainTopK(sae)
            del sae
            return model, data, plain_step(model, data)
        return sae, data, saelight_step(sae, data, bf16="bf16" in config)

    _, _, warm = build(16, 64, 4, 32)
    for _ in range(3):
        warm()
    r0 = _status_kib("VmRSS")
    model, data, step = build(d_in, d_sae, k, batch)
    for _ in range(2):
        step()
    Path("/proc/self/clear_refs").write_text("5")
    for _ in range(steps):
        step()
    peak = _status_kib("VmHWM")
    opt_state = 2 * sum(p.numel() * p.element_size() for p in model.parameters())  # Adam m, v
    params = sum(p.numel() * p.element_size() for p in model.parameters())
    needed = data[0].numel() * data[0].element_size() + params + opt_state
    used = (peak - r0) * 1024
    return {
        "peak_rss_above_r0_MB": used / 2**20,
        "needed_MB": needed / 2**20,
        "batch_MB": data[0].numel() * data[0].element_size() / 2**20,
        "params_MB": params / 2**20,
        "adam_state_MB": opt_state / 2**20,
        "ratio": used / needed,
    }


def main() -> None:
    from steps import add_shape_args

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_args(parser)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--child", choices=CONFIGS)
    args = parser.parse_args()
    shape = (args.d_in, args.d_sae, args.k, args.batch, args.steps)
    if args.child:
        print(json.dumps(child(args.child, *shape)))
        return
    results: dict[str, dict] = {}
    for allocator, env in ALLOCATORS.items():
        for config in CONFIGS:
            cmd = [sys.executable, __file__, "--child", config]
            cmd += [f"--{n}={v}" for n, v in zip(NAMES, shape, strict=True)]
            run = subprocess.run(
                cmd, check=True, capture_output=True, text=True, env={**os.environ, **env}
            )
            results[f"{config}, {allocator}"] = json.loads(run.stdout.strip().splitlines()[-1])
    print(f"d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch}")
    print("| step, allocator | peak RSS - R0 (MB) | batch+params+Adam (MB) | ratio |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['peak_rss_above_r0_MB']:.0f} | {r['needed_MB']:.0f} "
            f"| {r['ratio']:.2f}x |"
        )
    out = {"config": vars(args), "results": results}
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
