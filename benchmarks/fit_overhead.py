"""Framework overhead: `Trainer.fit` of an `SAEModule` vs the same step in a hand-written loop.

Both read the same random-activation cache (written here in the saelight format) through the
same `CachedBatches` + `ResumableLoader`, train the same TopK SAE (`--precision`, default the
shipped 32-true; fused Adam,
unit-norm decoder, dead-latent counter) and are timed over the same steps after a warm-up; they
alternate for `--repeats` rounds. `--buffer_rows` (default 8 batches, not the datamodule's 2^20)
makes the loader read from the memmapped shards every 8 steps inside the timed window. Reported:
samples/s of each, their ratio (target >= 0.95), and the time spent waiting for the next batch
as a share of the step time (hand loop: inside `next()`; Lightning: from one batch's end to the
next batch's start, which also holds the loop's own work).
Writes fit_overhead.json.

    python benchmarks/fit_overhead.py [--rows 98304] [--batch 4096]
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import tempfile
import time
from pathlib import Path

import lightning as L
import torch
import torch.nn.functional as F
from random_cache import write_random_cache
from steps import add_shape_args, load_average

from saelight.data.batches import CachedBatches, ResumableLoader
from saelight.module import SAEModule, prefer_fused
from saelight.sae import TopKSAE
from saelight.sae.dead_latents import dead_window


def loader(reader, args: argparse.Namespace) -> ResumableLoader:
    rows = reader.split_rows("train")
    batches = CachedBatches(reader, rows, args.batch, True, 0, args.buffer_rows, True)
    return ResumableLoader(batches)


def module(args: argparse.Namespace, layers: list[int]) -> SAEModule:
    torch.manual_seed(0)
    sae = functools.partial(TopKSAE, d_sae=args.d_sae, k=args.k)
    return SAEModule([sae], d_in=args.d_in, layers=layers)


class Clock(L.Callback):
    """Wall time from the start of batch `warmup` to the end of the last; batch-gap time."""

    def __init__(self, warmup: int) -> None:
        self.warmup, self.t0, self.t1, self.rows, self.wait, self.last_end = (
            warmup,
            0.0,
            0.0,
            0,
            0.0,
            None,
        )

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        now = time.perf_counter()
        if batch_idx == self.warmup:
            self.t0 = now
        elif batch_idx > self.warmup and self.last_end is not None:
            self.wait += now - self.last_end

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        self.last_end = self.t1 = time.perf_counter()
        if batch_idx >= self.warmup:
            self.rows += batch["x"].shape[0]


def lightning_run(reader, args: argparse.Namespace) -> dict[str, float]:
    clock = Clock(args.warmup)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        precision=args.precision,
        max_epochs=1,
        logger=False,
        enable_progress_bar=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        limit_val_batches=0,
        callbacks=[clock],
    )
    trainer.fit(module(args, reader.layers), train_dataloaders=loader(reader, args))
    elapsed = clock.t1 - clock.t0
    return {"samples_per_s": clock.rows / elapsed, "data_wait_share": clock.wait / elapsed}


def hand_run(reader, args: argparse.Namespace) -> dict[str, float]:
    """The same work as SAEModule.training_step + its hooks, written out as a plain loop."""
    model = module(args, reader.layers)
    sae = model.sae(model.grid[0])
    opt = prefer_fused(torch.optim.Adam(sae.parameters()))
    since_fired = torch.zeros(args.d_sae, dtype=torch.long)
    rows, wait, t0 = 0, 0.0, 0.0
    batches = iter(loader(reader, args))
    for i in range(len(reader.split_rows("train")) // args.batch):
        t = time.perf_counter()
        x = next(batches)["x"][:, 0]
        if i == 0:
            sae.initialize_from_data(x)
        if i == args.warmup:
            t0 = t
        elif i > args.warmup:
            wait += time.perf_counter() - t
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled="bf16" in args.precision):
            out = sae(x, since_fired >= dead_window(sae, None))
            loss = F.mse_loss(out.x_hat.float(), x) + out.aux_loss
        since_fired.add_(x.shape[0]).masked_fill_(out.codes.fired(), 0)
        del out
        loss.backward()
        sae.remove_parallel_decoder_grad()
        opt.step()
        sae.normalize_decoder()
        if i >= args.warmup:
            rows += x.shape[0]
    elapsed = time.perf_counter() - t0
    return {"samples_per_s": rows / elapsed, "data_wait_share": wait / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_shape_args(parser)
    parser.add_argument("--rows", type=int, default=4096 * 24)
    parser.add_argument("--buffer_rows", type=int, default=1 << 15)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="32-true", choices=["32-true", "bf16-mixed"])
    args = parser.parse_args()
    torch.set_float32_matmul_precision("highest")
    load_before = load_average()
    runs: dict[str, list[dict[str, float]]] = {"lightning": [], "hand loop": []}
    with tempfile.TemporaryDirectory() as tmp:
        reader = write_random_cache(tmp, args.rows, args.d_in)
        for _ in range(args.repeats):
            runs["hand loop"].append(hand_run(reader, args))
            runs["lightning"].append(lightning_run(reader, args))
    summary = {
        name: {key: statistics.median(r[key] for r in rs) for key in rs[0]}
        for name, rs in runs.items()
    }
    ratios = [
        lt["samples_per_s"] / h["samples_per_s"] for lt, h in zip(*runs.values(), strict=True)
    ]
    load = {"before": load_before, "after": load_average()}
    print(f"d_in {args.d_in}, d_sae {args.d_sae}, k {args.k}, batch {args.batch}, load {load}")
    print("| loop | samples/s (median) | data wait / step time |\n|---|---:|---:|")
    for name, s in summary.items():
        print(f"| {name} | {s['samples_per_s']:,.0f} | {s['data_wait_share']:.1%} |")
    print(f"Trainer.fit / hand loop: median {statistics.median(ratios):.3f}, runs {ratios}")
    out = {"config": vars(args), "load_average": load, "runs": runs, "summary": summary}
    out["ratio_lightning_over_hand"] = {"median": statistics.median(ratios), "runs": ratios}
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
