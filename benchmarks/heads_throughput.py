"""Clips/s of extraction, splice with the output head, and steer, per head family.

One random model per family with its head, all 4 layers x 256 wide (the size of extraction.py and
splice.py), saved with its feature extractor and loaded as users load a checkpoint:
`WhisperForConditionalGeneration` (80 mel bins, the real 30 s window, a 2-layer decoder with a
1,000-token vocabulary), `Wav2Vec2ForCTC` (raw waveform, 32-token vocabulary) and
`ASTForAudioClassification` (the real 10.24 s fbank, 527 classes as AudioSet). The clips are
synthetic singing cut to 3-5 s (seeded, in memory); a TopK SAE (d_sae 2048, k 32) sits at
layer 2. Timed, interleaved over `--repeats` rounds (best and median: the cores are shared):

* ``extract``: `Backbone.extract` (the encoder passes `saelight cache` runs);
* ``splice output``: `output_fidelity` with no latent sets: clean, mean and SAE (+ error) head
  passes, greedy transcripts for Whisper;
* ``splice output + effects``: with one label's top-8/random-8 sets per value (2 values) and the
  default 16 single-latent ablations (`--effect_latents`);
* ``steer``: `steer_sweep` ablating 8 latents at α ∈ {0, 0.5, 1} with both controls.

Writes heads_throughput.json beside this file, with the CPU's model name.

    python benchmarks/heads_throughput.py [--clips 8] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from extraction import cpu, save
from steps import load_average
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTForAudioClassification,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForCTC,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperForConditionalGeneration,
)

from saelight.audio import SyntheticSinging
from saelight.backbones import HFBackbone
from saelight.evaluation.output_splice import output_fidelity
from saelight.evaluation.steering import Plan, steer_sweep
from saelight.sae import TopKSAE

LAYER, HIDDEN, LAYERS = 2, 256, 4


def models(root: Path) -> dict[str, str]:
    """{family: checkpoint folder} of the three random head models."""
    size = {"hidden_size": HIDDEN, "num_hidden_layers": LAYERS}
    heads, ffn = HIDDEN // 32, 4 * HIDDEN
    torch.manual_seed(0)
    ast = ASTForAudioClassification(
        ASTConfig(**size, num_attention_heads=heads, intermediate_size=ffn, num_labels=527)
    )
    ctc = Wav2Vec2ForCTC(
        Wav2Vec2Config(**size, num_attention_heads=heads, intermediate_size=ffn, vocab_size=32)
    )
    whisper = WhisperForConditionalGeneration(
        WhisperConfig(
            d_model=HIDDEN, encoder_layers=LAYERS, encoder_attention_heads=heads,
            encoder_ffn_dim=ffn, decoder_layers=2, decoder_attention_heads=heads,
            decoder_ffn_dim=ffn, vocab_size=1000, max_target_positions=64, pad_token_id=0,
            bos_token_id=1, eos_token_id=2, decoder_start_token_id=1,
        )
    )  # fmt: skip
    return {
        "Whisper (seq2seq)": save(whisper, WhisperFeatureExtractor(), root / "whisper"),
        "wav2vec 2.0 CTC": save(ctc, Wav2Vec2FeatureExtractor(), root / "ctc"),
        "AST classifier": save(ast, ASTFeatureExtractor(), root / "ast"),
    }


def jobs(backbone: HFBackbone, waves: list[np.ndarray], labels: list[str]) -> dict[str, Callable]:
    """{job: a call running it once} for one family."""
    head = backbone.output_head()
    sae = TopKSAE(HIDDEN, 2048, k=32).eval()
    rng = np.random.default_rng(0)
    sets = {
        "sae": [
            {"label": "technique", "value": v, "kind": kind, "latents": list(rng.choice(2048, 8))}
            for v in sorted(set(labels)) for kind in ("top", "random")
        ]
    }  # fmt: skip
    plan = Plan(latents=list(range(8)), mode="ablate", alphas=[0.0, 0.5, 1.0], value=None, seed=0)
    return {
        "extract": lambda: backbone.extract(backbone.prepare_waves(waves)),
        "splice output": lambda: output_fidelity(
            backbone, head, {"sae": sae}, LAYER, backbone.prepare_waves(waves)
        ),
        "splice output + effects": lambda: output_fidelity(
            backbone, head, {"sae": sae}, LAYER, backbone.prepare_waves(waves), sets=sets
        ),
        "steer": lambda: steer_sweep(backbone, head, sae, LAYER, waves, plan),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    source = SyntheticSinging(duration_s=5.0)
    every = source.clips()
    clips = [every[i] for i in np.linspace(0, len(every) - 1, args.clips).astype(int)]
    lengths = np.random.default_rng(0).uniform(3.0, 5.0, size=len(clips))
    waves = [source.load(c, 16000)[: int(s * 16000)] for c, s in zip(clips, lengths, strict=True)]
    labels = ["breathy" if i % 2 else "vibrato" for i in range(len(clips))]
    audio_s = sum(len(w) for w in waves) / 16000
    before = load_average()
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as root:
        work = {
            family: jobs(HFBackbone(path, layers=[LAYER]), waves, labels)
            for family, path in models(Path(root)).items()
        }
        for _ in range(args.repeats):
            for family, calls in work.items():
                for job, call in calls.items():
                    t0 = time.perf_counter()
                    call()
                    times.setdefault((family, job), []).append(time.perf_counter() - t0)
    rows: list[dict[str, Any]] = []
    for (family, job), spent in times.items():
        best, median = min(spent), statistics.median(spent)
        rows.append(
            {
                "family": family,
                "job": job,
                "best_s": best,
                "median_s": median,
                "clips_per_s_best": len(waves) / best,
                "clips_per_s_median": len(waves) / median,
                "seconds_per_audio_hour_best": best / audio_s * 3600,
            }
        )
    payload = {
        "cpu": cpu(),
        "config": {**vars(args), "audio_seconds": audio_s, "layer": LAYER, "hidden": HIDDEN},
        "load_average": {"before": before, "after": load_average()},
        "rows": rows,
    }
    Path(__file__).with_name("heads_throughput.json").write_text(json.dumps(payload, indent=1))
    print(f"{len(waves)} clips, {audio_s:.0f} s of audio, {payload['cpu']['model_name']}")
    print("| family | job | clips/s (best) | clips/s (median) | s per hour of audio (best) |")
    print("|---|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['family']} | {r['job']} | {r['clips_per_s_best']:.2f} | "
            f"{r['clips_per_s_median']:.2f} | {r['seconds_per_audio_hour_best']:.0f} |"
        )


if __name__ == "__main__":
    main()
