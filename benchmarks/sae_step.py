"""Training-step throughput of a TopK SAE: plain dense fp32 PyTorch vs saelight's paths.

One step = forward, mse (+ aux) loss, backward, Adam, unit-norm decoder handling (see steps.py).
Every configuration starts from the same weights; they take turns within each of `--runs` runs of
`--steps` steps (after `--warmup`), and the table gives the median samples/s and its ratio to the
plain loop. `--loss_steps` steps of plain fp32, saelight sparse bf16 and saelight dense bf16 on the
same batches check that the fast path trains the same SAE (relative loss difference at the last
step, and of the trained weights on a held-out batch in fp32). `--profile` adds where the saelight
sparse bf16 step spends its time (torch.profiler, self time per op). Writes sae_step.json.

    python benchmarks/sae_step.py [--profile] [--device cuda]
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
import torch.nn.functional as F
from steps import (
    PlainTopK,
    add_shape_args,
    load_average,
    measure,
    plain_step,
    saelight_step,
    synthetic_batches,
)

from saelight.sae import TopKSAE

BASELINE = "plain dense fp32 (baseline)"
TARGET = "saelight sparse bf16"


def make_sae(args: argparse.Namespace, data: list[torch.Tensor], sparse: bool) -> TopKSAE:
    torch.manual_seed(0)
    sae = TopKSAE(args.d_in, args.d_sae, k=args.k, sparse=sparse).to(args.device)
    sae.initialize_from_data(data[0])
    return sae


def throughput(args: argparse.Namespace, data: list[torch.Tensor]) -> dict:
    dead = torch.zeros(args.d_sae, dtype=torch.bool, device=args.device)
    dead[: args.d_sae // 10] = True  # AuxK on 10% of the latents, as mid-training
    steps = {
        BASELINE: plain_step(PlainTopK(make_sae(args, data, False)), data),
        "saelight dense bf16": saelight_step(make_sae(args, data, False), data),
        "saelight sparse fp32": saelight_step(make_sae(args, data, True), data, bf16=False),
        TARGET: saelight_step(make_sae(args, data, True), data),
        "saelight sparse bf16, for-loop Adam": saelight_step(
            make_sae(args, data, True), data, fused=False
        ),
        "saelight sparse bf16 + AuxK (10% dead)": saelight_step(
            make_sae(args, data, True), data, dead=dead
        ),
    }
    return measure(steps, args.batch, args.runs, args.steps, args.warmup, args.device)


def loss_check(args: argparse.Namespace, data: list[torch.Tensor], held: torch.Tensor) -> dict:
    """Relative loss difference to the plain fp32 loop after `args.loss_steps` steps (lr 3e-4)."""
    plain = PlainTopK(make_sae(args, data, False))
    models = {TARGET: make_sae(args, data, True)}
    models["saelight dense bf16"] = make_sae(args, data, False)
    runs = {BASELINE: plain_step(plain, data, lr=3e-4)}
    runs |= {name: saelight_step(m, data, lr=3e-4) for name, m in models.items()}
    last = {name: 0.0 for name in runs}
    for _ in range(args.loss_steps):
        for name, step in runs.items():
            last[name] = float(step())
    with torch.no_grad():
        held_loss = {BASELINE: float(F.mse_loss(plain(held), held))}
        held_loss |= {n: float(F.mse_loss(m(held).x_hat, held)) for n, m in models.items()}
    out = {}
    for name in models:
        out[name] = {
            "train_loss": last[name],
            "train_loss_rel_diff": abs(last[name] / last[BASELINE] - 1),
            "held_out_loss_rel_diff": abs(held_loss[name] / held_loss[BASELINE] - 1),
        }
    out[BASELINE] = {"train_loss": last[BASELINE], "held_out_loss": held_loss[BASELINE]}
    return out


def profile(args: argparse.Namespace, data: list[torch.Tensor], top: int = 15) -> list[dict]:
    """Self CPU (or CUDA) time per op of the saelight sparse bf16 step, largest first."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    step = saelight_step(make_sae(args, data, True), data)
    for _ in range(args.warmup):
        step()
    activities = [ProfilerActivity.CPU]
    if args.device == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch_profile(activities=activities) as prof:
        for _ in range(args.steps):
            step()
    events = prof.key_averages()
    cuda = args.device == "cuda"
    total = sum(e.self_device_time_total if cuda else e.self_cpu_time_total for e in events)
    rows = []
    for e in events:
        t = e.self_device_time_total if cuda else e.self_cpu_time_total
        rows.append({"op": e.key, "ms_per_step": t / 1e3 / args.steps, "share": t / total})
    return sorted(rows, key=lambda r: -r["ms_per_step"])[:top]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_args(parser)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--loss_steps", type=int, default=30)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    data = synthetic_batches(9, args.batch, args.d_in, args.device)
    held = data.pop()
    load_before = load_average()
    results = throughput(args, data)
    losses = loss_check(args, data, held) if args.loss_steps else {}
    prof = profile(args, data) if args.profile else []
    load = {"before": load_before, "after": load_average()}

    base = results[BASELINE]["median"]
    print(f"d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch}, load {load}")
    print("| step | samples/s (median) | best | vs baseline |\n|---|---:|---:|---:|")
    for name, r in results.items():
        print(f"| {name} | {r['median']:,.0f} | {r['best']:,.0f} | {r['median'] / base:.2f}x |")
    for name, r in losses.items():
        print(f"loss after {args.loss_steps} steps, {name}: {r}")
    if prof:
        print("| op (saelight sparse bf16 step) | ms/step | share |\n|---|---:|---:|")
        for r in prof:
            print(f"| {r['op']} | {r['ms_per_step']:.1f} | {r['share']:.0%} |")
    device = torch.cuda.get_device_name() if args.device == "cuda" else platform.processor()
    meta = {"device": device, "threads": torch.get_num_threads(), "torch": torch.__version__}
    out = {"config": {**meta, **vars(args)}, "load_average": load, "results": results}
    out |= {"ratio_vs_baseline": {n: r["median"] / base for n, r in results.items()}}
    out |= {"loss_check": losses, "profile": prof}
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
