"""Cost of the acoustic descriptor pass (`saelight.cache.descriptors`) per hour of audio.

Synthetic singing cut to 3-5 s (seeded, synthesised once, in memory) at 16 kHz, analysed as the
pass analyses a frame-pooled cache at HuBERT's 50 frames/s: every descriptor of
`saelight.audio.descriptors` at each frame's centre (Praat: pitch, intensity, HNR, formants;
librosa: centroid, roll-off, flatness, onset strength), after one warm-up clip (numba compiles
librosa's kernels on first use). Timed over `--repeats` rounds (median and best round: the cores
are shared), single process. Writes descriptors.json beside this file, with the CPU's model name.

    python benchmarks/descriptors.py [--clips 24] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
from extraction import cpu
from steps import load_average

from saelight.audio import SyntheticSinging
from saelight.audio.descriptors import descriptor_tracks

SR, FRAME_RATE = 16000, 50.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    source = SyntheticSinging(duration_s=5.0)
    clips = source.clips()[:: max(1, len(source.clips()) // args.clips)][: args.clips]
    lengths = np.random.default_rng(0).uniform(3.0, 5.0, size=len(clips))
    waves = [source.load(c, SR)[: int(s * SR)] for c, s in zip(clips, lengths, strict=True)]
    audio_s = sum(len(w) for w in waves) / SR
    centres = [(np.arange(int(len(w) / SR * FRAME_RATE)) + 0.5) / FRAME_RATE for w in waves]
    descriptor_tracks(waves[0], SR, centres[0])  # warm-up: numba compiles librosa's kernels
    rounds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        for wave, times in zip(waves, centres, strict=True):
            descriptor_tracks(wave, SR, times)
        rounds.append(time.perf_counter() - t0)
    result = {
        "cpu": cpu(),
        "load_average": load_average(),
        "clips": len(waves),
        "audio_seconds": audio_s,
        "frames": int(sum(len(c) for c in centres)),
        "seconds_median": statistics.median(rounds),
        "seconds_best": min(rounds),
        "seconds_per_audio_hour_median": statistics.median(rounds) / audio_s * 3600,
        "seconds_per_audio_hour_best": min(rounds) / audio_s * 3600,
    }
    print(json.dumps(result, indent=1))
    (Path(__file__).parent / "descriptors.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
