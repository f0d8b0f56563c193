"""The training step users get, as shipped: saelight's defaults and the shipped configs, vs peers.

Two parts, each interleaved in one run on the CPU at hand (`measure` in steps.py):

- **shape**: one TopK SAE at d_in 768, d_sae 6144, k 32, batch 4096 (the issue's shape): the
  plain dense fp32 loop, saelight's library defaults in fp32 (the precision no shipped config
  changes), the dense path (`sparse=False`), saelight under bf16-mixed, and the peers
  (EleutherAI sparsify `SparseCoder`, SAELens `TopKTrainingSAE`) in fp32 and bf16 autocast.
- **grids**: the whole step of `configs/quickstart.yaml` and `configs/paper/hubert.yaml` (every
  layer × sparsity SAE of `model.saes`/`model.sparsities`, their batch size and width, fp32, one
  summed loss and one Adam as `SAEModule` runs them) vs the same grid of plain dense fp32 SAEs
  and of each peer.

`ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2 MKL_ENABLE_INSTRUCTIONS=AVX2` makes oneDNN,
ATen and MKL use AVX2 kernels only (an AVX2-only CPU's code paths on this silicon; bf16 matmuls
are then emulated, as on AMD EPYC Rome/Milan), recorded in the JSON. `--no_bf16` leaves out the
bf16 rows (on CPUs without native bf16 one bf16 matmul of the shape
takes ~40-90 s). The peers are optional: run with the peers' virtual environment
(benchmarks/peers/README.md) to include them. Writes as_shipped.json (or `--out`).

    python benchmarks/as_shipped.py [--no_bf16] [--out FILE]
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from grid_steps import grid_of, peer_grid_step, plain_grid_step, saelight_grid_step  # noqa: E402
from steps import (  # noqa: E402
    PlainTopK,
    load_average,
    measure,
    plain_step,
    saelight_step,
    synthetic_batches,
)

from saelight.io.config_bases import load_with_bases  # noqa: E402
from saelight.sae import TopKSAE  # noqa: E402
from saelight.sae.kernels.int8_shortlist import cpu_has_fast_int8  # noqa: E402
from saelight.sae.kernels.native_bf16 import cpu_flags, cpu_has_native_bf16  # noqa: E402

PLAIN = "plain dense fp32 loop"
SHIPPED = "saelight as shipped (library defaults, fp32)"
CONFIGS = ("configs/quickstart.yaml", "configs/paper/hubert.yaml")
ISA_LIMITS = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS")
"""Environment variables that make an AMX CPU run as AVX2-only (its emulation, see README)."""
BASE_WIDTH = 768
"""Hidden size of every pretrained (base-size) backbone the paper configs name."""


def peers() -> list[str]:
    found = []
    for name in ("sparsify", "sae_lens"):
        try:
            importlib.import_module(name)
            found.append(name)
        except ImportError:
            pass
    return found


def shape_steps(args: argparse.Namespace, data: list[torch.Tensor]) -> dict:
    def sae(**kw) -> TopKSAE:
        torch.manual_seed(0)
        s = TopKSAE(768, 6144, k=32, **kw)
        s.initialize_from_data(data[0])
        return s

    steps = {PLAIN: plain_step(PlainTopK(sae(sparse=False)), data)}
    steps[SHIPPED] = saelight_step(sae(), data, bf16=False)
    dead = torch.zeros(6144, dtype=torch.bool)
    dead[:614] = True  # AuxK on 10 % of the latents, as mid-training
    steps[SHIPPED + " + AuxK (10 % dead)"] = saelight_step(sae(), data, bf16=False, dead=dead)
    steps["saelight dense path (sparse=False), fp32"] = saelight_step(
        sae(sparse=False), data, bf16=False
    )
    if args.bf16:
        steps["saelight bf16-mixed"] = saelight_step(sae(), data, bf16=True)
    for peer in args.peers:
        for bf16 in (False, True) if args.bf16 else (False,):
            tag = "bf16 autocast" if bf16 else "fp32"
            spec = [dict(k=32)]
            steps[f"{peer} {tag}"] = peer_grid_step(peer, spec, 768, 6144, data, bf16)
    return steps


def backbone_width(spec: dict) -> int:
    """d_in of a config's backbone: its `hidden_size`, else UntrainedBackbone's default for an
    untrained one (read from its signature), else `BASE_WIDTH`."""
    given = spec.get("init_args", {}).get("hidden_size")
    if given or "Untrained" not in spec["class_path"]:
        return int(given or BASE_WIDTH)
    from saelight.backbones.untrained import UntrainedBackbone

    return int(inspect.signature(UntrainedBackbone).parameters["hidden_size"].default)


def config_grid(path: str) -> tuple[list[dict], int, int, int]:
    """(per-SAE init args, d_in, d_sae, batch) of a shipped config's grid."""
    cfg = load_with_bases(HERE.parent / path)
    data, model = cfg["data"], cfg["model"]
    layers = data["cache"]["backbone"].get("init_args", {}).get("layers", [3, 12])
    d_in = backbone_width(data["cache"]["backbone"])
    specs = grid_of(model["saes"], model.get("sparsities"), len(layers), d_in)
    return specs, d_in, specs[0]["d_sae"], int(data.get("batch_size", 256))


def grid_steps(args: argparse.Namespace, path: str) -> tuple[dict, dict]:
    specs, d_in, d_sae, batch = config_grid(path)
    data = synthetic_batches(8, batch, d_in, seed=1)
    steps = {PLAIN: plain_grid_step(specs, d_in, data)}
    steps[SHIPPED.replace("library defaults", "the config")] = saelight_grid_step(specs, d_in, data)
    for peer in args.peers:
        steps[f"{peer} fp32"] = peer_grid_step(peer, specs, d_in, d_sae, data, False)
    info = {"config": path, "saes": len(specs), "d_in": d_in, "d_sae": d_sae, "batch": batch}
    info["k"] = [s["k"] for s in specs]
    return steps, info


def table(title: str, results: dict, batch_rows: int) -> list[str]:
    base = results[PLAIN]["median"]
    lines = [f"\n{title}", "| step | samples/s | vs plain fp32 loop |", "|---|---:|---:|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['median']:,.0f} | {r['median'] / base:.2f}x |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no_bf16", dest="bf16", action="store_false")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--grid_steps", type=int, default=30)
    parser.add_argument("--out", default=str(HERE / "as_shipped.json"))
    args = parser.parse_args()
    args.peers = peers()
    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"})
    meta = {
        "cpu": platform.processor() or platform.machine(),
        "flags": flags,
        "bf16_shortlist": cpu_has_native_bf16(),
        "int8_shortlist": not cpu_has_native_bf16() and cpu_has_fast_int8(),
        "threads": torch.get_num_threads(),
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "isa_limits": {k: os.environ[k] for k in ISA_LIMITS if k in os.environ},
        "torch": torch.__version__,
        "peers": args.peers,
    }
    print(meta)
    load_before = load_average()
    data = synthetic_batches(4, 4096, 768)
    out: dict = {"meta": meta, "shape": {}, "grids": {}}
    shape = measure(shape_steps(args, data), 4096, args.runs, args.steps, 1)
    out["shape"] = shape
    lines = table("d_in 768, d_sae 6144, k 32, batch 4096", shape, 4096)
    for path in CONFIGS:
        steps, info = grid_steps(args, path)
        result = measure(steps, info["batch"], args.runs, args.grid_steps, 3)
        out["grids"][path] = {"info": info, "results": result}
        lines += table(f"{path}: {info}", result, info["batch"])
    out["load_average"] = {"before": load_before, "after": load_average()}
    lines.append(f"load {out['load_average']}")
    print("\n".join(lines))
    Path(args.out).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
