"""TopK SAE training-step throughput of EleutherAI sparsify and SAELens next to saelight's.

Run in a separate virtual environment holding the peers (see README.md here); saelight itself is
imported from this checkout (`saelight.sae` needs only torch and safetensors). Every step takes
turns with the plain dense fp32 loop of ../steps.py within each run, so each row's ratio to it is
measured under the same load, and ratios between rows divide out the yardstick. Steps:

- sparsify `SparseCoder` (eager embedding_bag decoder, sparse index_add encoder backward):
  fvu + auxk loss, gradient projection, Adam, decoder renorm, as its Trainer does.
- SAELens `TopKTrainingSAE`: `training_forward_pass` loss (mse summed over dims), Adam; its
  default `rescale_acts_by_decoder_norm` needs no renorm. Default dense activations.
- saelight `TopKSAE` sparse bf16, as ../sae_step.py.

Each peer runs in fp32 (its default on CPU) and under CPU bf16 autocast. Writes
step_peers.json next to this file.

    /tmp/peers/bin/python benchmarks/peers/step_peers.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from importlib.metadata import version
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent.parent), str(HERE.parent)]

from steps import (  # noqa: E402
    PlainTopK,
    Step,
    add_shape_args,
    load_average,
    measure,
    plain_step,
    saelight_step,
    synthetic_batches,
)

from saelight.sae import TopKSAE  # noqa: E402


def autocast(bf16: bool) -> contextlib.AbstractContextManager:
    return torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()


def sparsify_step(args: argparse.Namespace, data: list[torch.Tensor], bf16: bool) -> Step:
    from sparsify import SparseCoder, SparseCoderConfig

    torch.manual_seed(0)
    sae = SparseCoder(args.d_in, SparseCoderConfig(num_latents=args.d_sae, k=args.k))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    i = [0]

    def step() -> torch.Tensor:
        x = data[i[0] % len(data)]
        i[0] += 1
        with autocast(bf16):
            out = sae(x, dead_mask=None)
            loss = out.fvu + out.auxk_loss
        loss.backward()
        sae.remove_gradient_parallel_to_decoder_directions()
        opt.step()
        opt.zero_grad()
        sae.set_decoder_norm_to_unit_norm()
        return loss.detach()

    return step


def saelens_step(args: argparse.Namespace, data: list[torch.Tensor], bf16: bool) -> Step:
    from sae_lens import TopKTrainingSAE, TopKTrainingSAEConfig
    from sae_lens.saes.sae import TrainStepInput

    torch.manual_seed(0)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=args.d_in, d_sae=args.d_sae, k=args.k))
    opt = torch.optim.Adam(sae.parameters(), lr=1e-4)
    i = [0]

    def step() -> torch.Tensor:
        x = data[i[0] % len(data)]
        i[0] += 1
        inputs = TrainStepInput(x, {}, None, i[0], False)
        with autocast(bf16):
            loss = sae.training_forward_pass(inputs).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.detach()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_args(parser)
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    data = synthetic_batches(4, args.batch, args.d_in)
    torch.manual_seed(0)
    sae = TopKSAE(args.d_in, args.d_sae, k=args.k, sparse=True)
    sae.initialize_from_data(data[0])
    steps = {"plain dense fp32 (baseline)": plain_step(PlainTopK(sae), data)}
    steps["saelight sparse bf16"] = saelight_step(sae, data)
    for bf16 in (False, True):
        tag = "bf16 autocast" if bf16 else "fp32"
        steps[f"sparsify SparseCoder {tag}"] = sparsify_step(args, data, bf16)
        steps[f"SAELens TopKTrainingSAE {tag}"] = saelens_step(args, data, bf16)
    load_before = load_average()
    results = measure(steps, args.batch, args.runs, args.steps, args.warmup)
    load = {"before": load_before, "after": load_average()}
    base = results["plain dense fp32 (baseline)"]["median"]
    ours = results["saelight sparse bf16"]["median"]
    print(f"d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch}, load {load}")
    print("| step | samples/s (median) | vs plain fp32 | saelight sparse bf16 is |")
    print("|---|---:|---:|---:|")
    for name, r in results.items():
        m = r["median"]
        print(f"| {name} | {m:,.0f} | {m / base:.2f}x | {ours / m:.2f}x faster |")
    versions = {name: version(name) for name in ("eai-sparsify", "sae-lens", "torch")}
    out = {"config": vars(args), "versions": versions, "load_average": load, "results": results}
    out["ratio_vs_baseline"] = {n: r["median"] / base for n, r in results.items()}
    HERE.joinpath("step_peers.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
