"""Extraction overhead: `ActivationCache.build` (what `saelight cache` runs) vs the backbone's own
forward passes inside it.

A small random `UntrainedBackbone` encodes synthetic singing clips. The audio is synthesised once
up front and served from memory (`Preloaded`), so the measured time is the pipeline's: batching,
feature extraction, the forward passes, hidden-state copies, pooling, finiteness checks, shard
and metadata writes. The backbone's `forward` is wrapped with a timer, so the forward time is
that of the very same calls. Target: build time <= 1.10 x forward time. Each of `--repeats`
builds writes a fresh cache. Writes extraction.json.

    python benchmarks/extraction.py [--clips 400] [--hidden 256] [--num_layers 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from steps import load_average

from saelight.audio import SyntheticSinging
from saelight.audio.base import AudioSource, Clip
from saelight.backbones.untrained import UntrainedBackbone
from saelight.cache.build import ActivationCache


class Preloaded(AudioSource):
    """Another source's clips, synthesised once and kept in memory."""

    def __init__(self, source: AudioSource, sample_rate: int) -> None:
        self.source, self._clips = source, source.clips()
        self._waves = {c.clip_id: source.load(c, sample_rate) for c in self._clips}

    def clips(self) -> list[Clip]:
        return list(self._clips)

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        return self._waves[clip.clip_id]

    def fingerprint(self) -> dict[str, Any]:
        return {"preloaded": self.source.fingerprint()}


def timed_forward(net: torch.nn.Module) -> list[float]:
    """Wrap `net.forward` so every call adds its wall time to the returned list."""
    spent: list[float] = []
    forward = net.forward

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return forward(*args, **kwargs)
        finally:
            spent.append(time.perf_counter() - t0)

    net.forward = wrapper  # type: ignore[method-assign]
    return spent


def build_once(args: argparse.Namespace, backbone: UntrainedBackbone, source: Preloaded) -> dict:
    spent = timed_forward(backbone.net)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ActivationCache(tmp, source, backbone, batch_size=args.batch_size)
        t0 = time.perf_counter()
        reader = cache.build(progress=False)
        total = time.perf_counter() - t0
        rows = len(reader)
    del backbone.net.forward  # back to the class method
    forward = sum(spent)
    return {"build_s": total, "forward_s": forward, "overhead": total / forward - 1, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="hubert")
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--singers", type=int, default=8)
    parser.add_argument("--duration_s", type=float, default=2.0)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as models:
        backbone = UntrainedBackbone(
            args.arch, args.num_layers, args.hidden, save_dir=models, layers="all"
        )
        synth = SyntheticSinging(
            clips_per_combo=1, duration_s=args.duration_s, n_singers=args.singers
        )
        source = Preloaded(synth, backbone.sample_rate)
        backbone.extract([source.load(c, 0) for c in source.clips()[:2]])  # warm-up
        runs = [build_once(args, backbone, source) for _ in range(args.repeats)]
    summary = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    load = {"before": load_before, "after": load_average()}
    print(
        f"{args.arch} {args.num_layers} layers x {args.hidden}, {summary['rows']:.0f} clips of ",
        end="",
    )
    print(f"{args.duration_s} s, batch {args.batch_size}, all layers cached, load {load}")
    print("| build (s) | backbone forward (s) | overhead |\n|---:|---:|---:|")
    print(f"| {summary['build_s']:.2f} | {summary['forward_s']:.2f} | {summary['overhead']:.1%} |")
    out = {"config": vars(args), "load_average": load, "runs": runs, "summary": summary}
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
