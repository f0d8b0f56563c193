"""Splice throughput next to plain extraction: clips/s and seconds per hour of audio.

A HuBERT `UntrainedBackbone` (4 layers x 256 by default, the size of benchmarks/extraction.py),
synthetic singing cut to 3-5 s (seeded, synthesised once, in memory), a TopK SAE (d_sae 2048,
k 32) spliced in at layer 2. Timed, interleaved over `--repeats` rounds (median and best round:
the cores are shared):

* ``extract``: `Backbone.extract` of every clip (the forward passes `saelight cache` runs);
* ``splice``: `splice_fidelity` without labels: 2 clean passes + mean + SAE + SAE+error = 5
  forward passes per batch, plus the SAE and the statistics;
* ``splice+ablate``: with the technique label, k = 8: 20 more passes (10 values x top/random),
  the explorer ranking and the probes.

Writes splice.json beside this file, with the CPU's model name.

    python benchmarks/splice.py [--clips 24] [--repeats 3] [--hidden 256] [--num_layers 4]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from extraction import cpu
from steps import load_average

from saelight.audio import SyntheticSinging
from saelight.backbones import UntrainedBackbone
from saelight.evaluation.splice import splice_fidelity
from saelight.sae import TopKSAE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--layer", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    source = SyntheticSinging(duration_s=5.0)
    clips = source.clips()[:: max(1, len(source.clips()) // args.clips)][: args.clips]
    lengths = np.random.default_rng(0).uniform(3.0, 5.0, size=len(clips))
    waves = [source.load(c, 16000)[: int(s * 16000)] for c, s in zip(clips, lengths, strict=True)]
    technique = [c.labels["technique"] for c in clips]
    audio_s = sum(len(w) for w in waves) / 16000
    with tempfile.TemporaryDirectory() as root:
        backbone = UntrainedBackbone("hubert", args.num_layers, args.hidden, save_dir=root)
        sae = TopKSAE(args.hidden, 2048, k=32).eval()
        jobs = {
            "extract": lambda: backbone.extract(waves),
            "splice": lambda: splice_fidelity(backbone, sae, args.layer, waves),
            "splice+ablate": lambda: splice_fidelity(
                backbone, sae, args.layer, waves, {"technique": technique}, k_ablate=8
            ),
        }
        before = load_average()
        times: dict[str, list[float]] = {name: [] for name in jobs}
        for _ in range(args.repeats):
            for name, job in jobs.items():
                t0 = time.perf_counter()
                job()
                times[name].append(time.perf_counter() - t0)
    rows = {}
    for name, spent in times.items():
        best, median = min(spent), statistics.median(spent)
        rows[name] = {
            "median_s": median,
            "best_s": best,
            "clips_per_s_median": len(waves) / median,
            "clips_per_s_best": len(waves) / best,
            "seconds_per_audio_hour_best": best / audio_s * 3600,
        }
    payload = {
        "cpu": cpu(),
        "config": {**vars(args), "audio_seconds": audio_s, "d_sae": 2048, "k": 32},
        "load_average": {"before": before, "after": load_average()},
        "jobs": rows,
    }
    Path(__file__).with_name("splice.json").write_text(json.dumps(payload, indent=2) + "\n")
    print(f"{len(waves)} clips, {audio_s:.0f} s of audio, {payload['cpu']['model_name']}")
    print("| job | clips/s (best) | clips/s (median) | s per hour of audio (best) |")
    print("|---|---:|---:|---:|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['clips_per_s_best']:.2f} | {r['clips_per_s_median']:.2f} | "
            f"{r['seconds_per_audio_hour_best']:.0f} |"
        )


if __name__ == "__main__":
    main()
