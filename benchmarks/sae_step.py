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


def make_step(model: nn.Module, x: Tensor, bf16: bool) -> Callable[[], None]:
    """One optimiser step on the fixed batch x."""
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    autocast = (
        torch.autocast(x.device.type, dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
    )

    def step() -> None:
        with autocast:
            out = model(x)
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


def samples_per_s(step: Callable[[], None], batch: int, args: argparse.Namespace) -> float:
    """Median over `args.runs` runs of `args.steps` steps, after `args.warmup` steps."""
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    for _ in range(args.warmup):
        step()
    rates = []
    for _ in range(args.runs):
        sync()
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync()
        rates.append(batch * args.steps / (time.perf_counter() - t0))
    return statistics.median(rates)


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

    def with_dead(model: TopKSAE) -> nn.Module:
        model.forward = (lambda f: lambda inp: f(inp, dead))(model.forward)  # type: ignore
        return model

    rows = {
        "plain dense fp32 (baseline)": (PlainTopK(args.d_in, args.d_sae, args.k).to(dev), False),
        "saelight dense fp32": (sae(args.k, False), False),
        "saelight dense bf16": (sae(args.k, False), True),
        "saelight sparse fp32": (sae(args.k, True), False),
        "saelight sparse bf16": (sae(args.k, True), True),
        "saelight sparse bf16 + AuxK": (with_dead(sae(args.k, True)), True),
    }
    results = {
        name: samples_per_s(make_step(m, x, bf16), args.batch, args)
        for name, (m, bf16) in rows.items()
    }
    sweep = {}
    if args.sweep:
        for k in args.sweep_ks:
            sweep[k] = {
                mode: samples_per_s(make_step(sae(k, mode == "sparse"), x, True), args.batch, args)
                for mode in ("dense", "sparse")
            }
    return {"results": results, "sweep_bf16": sweep}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--d_in", type=int, default=768)
    parser.add_argument("--d_sae", type=int, default=6144)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--batch", type=int, default=4096)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--sweep", action="store_true")
    parser.add_argument("--sweep_ks", type=int, nargs="+", default=[64, 256, 512, 768, 1024])
    args = parser.parse_args()
    out = run(args)
    base = out["results"]["plain dense fp32 (baseline)"]
    print(
        f"| d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch} | samples/s "
        f"| vs baseline |\n|---|---:|---:|"
    )
    for name, rate in out["results"].items():
        print(f"| {name} | {rate:,.0f} | {rate / base:.2f}x |")
    for k, modes in out["sweep_bf16"].items():
        print(
            f"k={k} (k/d_sae={k / args.d_sae:.3f}) bf16: dense {modes['dense']:,.0f}, "
            f"sparse {modes['sparse']:,.0f} samples/s"
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
