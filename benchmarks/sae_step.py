"""Training-step throughput of a TopK SAE: plain dense fp32 PyTorch vs saelight's sparse bf16 path.

One step = forward, mse + aux loss, backward, Adam step, decoder renorm. Each configuration runs
`--warmup` steps, then `--runs` timed runs of `--steps` steps; the table gives the median samples/s.
`--sweep` also times saelight dense vs sparse (bf16) over k/d_sae, to place the auto threshold
`SPARSE_AUTO_MAX_DENSITY`. Results go to sae_step.json next to this file.

    python benchmarks/sae_step.py [--sweep] [--device cuda]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from saelight.sae import TopKSAE


class PlainTopK(nn.Module):
    """The baseline: the obvious dense PyTorch TopK SAE (Gao et al.), fp32, no custom kernels."""

    def __init__(self, d_in: int, d_sae: int, k: int) -> None:
        super().__init__()
        self.encoder, self.decoder, self.k = nn.Linear(d_in, d_sae), nn.Linear(d_sae, d_in), k

    def forward(self, x: Tensor) -> Tensor:
        z_pre = F.relu(self.encoder(x))
        vals, idx = z_pre.topk(self.k, dim=-1)
        return self.decoder(torch.zeros_like(z_pre).scatter(-1, idx, vals))


def make_step(
    model: nn.Module, x: Tensor, bf16: bool, dead: Tensor | None = None
) -> Callable[[], None]:
    """One optimiser step on the fixed batch x (`dead`: the AuxK dead-latent mask)."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = (
        torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            out = model(x) if dead is None else model(x, dead)
        if isinstance(out, Tensor):
            loss = F.mse_loss(out, x)
        else:
            loss = F.mse_loss(out.x_hat, x) + out.aux_loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if isinstance(model, TopKSAE):
            model.remove_parallel_decoder_grad()
        opt.step()
        if isinstance(model, TopKSAE):
            model.normalize_decoder()

    return step


def measure(steps: dict[str, Callable[[], None]], args: argparse.Namespace) -> dict[str, dict]:
    """samples/s of each step function: median and best of `args.runs` runs of `args.steps` steps.

    The configurations take turns within each run, so load from other processes on a shared
    machine hits them alike.
    """
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    for step in steps.values():
        for _ in range(args.warmup):
            step()
    rates: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(args.runs):
        for name, step in steps.items():
            sync()
            t0 = time.perf_counter()
            for _ in range(args.steps):
                step()
            sync()
            rates[name].append(args.batch * args.steps / (time.perf_counter() - t0))
    return {n: {"median": statistics.median(r), "best": max(r)} for n, r in rates.items()}


def run(args: argparse.Namespace) -> dict:
    torch.manual_seed(0)
    dev = torch.device(args.device)
    x = torch.randn(args.batch, args.d_in, device=dev)
    dead = torch.zeros(args.d_sae, dtype=torch.bool, device=dev)
    dead[: args.d_sae // 10] = True  # AuxK active on 10% of the latents, as mid-training

    def sae(k: int, sparse: bool) -> TopKSAE:
        model = TopKSAE(args.d_in, args.d_sae, k=k, sparse=sparse).to(dev)
        model.initialize_from_data(x)
        return model

    steps = {
        "plain dense fp32 (baseline)": make_step(
            PlainTopK(args.d_in, args.d_sae, args.k).to(dev), x, False
        ),
        "saelight dense fp32": make_step(sae(args.k, False), x, False),
        "saelight dense bf16": make_step(sae(args.k, False), x, True),
        "saelight sparse fp32": make_step(sae(args.k, True), x, False),
        "saelight sparse bf16": make_step(sae(args.k, True), x, True),
        "saelight sparse bf16 + AuxK": make_step(sae(args.k, True), x, True, dead),
    }
    results = measure(steps, args)
    sweep = {}
    for k in args.sweep_ks if args.sweep else []:
        steps = {mode: make_step(sae(k, mode == "sparse"), x, True) for mode in ("dense", "sparse")}
        sweep[k] = measure(steps, args)
    return {"results": results, "sweep_bf16": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d_in", type=int, default=768)
    parser.add_argument("--d_sae", type=int, default=6144)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--sweep_ks", type=int, nargs="+", default=[64, 256, 512, 768, 1024])
    args = parser.parse_args()
    out = run(args)
    base = out["results"]["plain dense fp32 (baseline)"]["median"]
    print(f"| d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch} ", end="")
    print("| samples/s (median) | best | vs baseline |\n|---|---:|---:|---:|")
    for name, r in out["results"].items():
        print(f"| {name} | {r['median']:,.0f} | {r['best']:,.0f} | {r['median'] / base:.2f}x |")
    for k, modes in out["sweep_bf16"].items():
        d, s = modes["dense"]["median"], modes["sparse"]["median"]
        print(
            f"k={k} (k/d_sae={k / args.d_sae:.3f}) bf16 samples/s: dense {d:,.0f}, sparse {s:,.0f}"
        )
    device = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    meta = {
        "device": device or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        **vars(args),
    }
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps({"config": meta, **out}, indent=2) + "\n")


if __name__ == "__main__":
    main()
