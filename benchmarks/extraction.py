"""Extraction throughput per backbone family: clips/s of `ActivationCache.build` (what `saelight
cache` runs), and its overhead over the backbone's own forward passes inside it.

One small random model per input family, all 4 layers x 256 wide so that the families differ only
in what their inputs cost: a HuBERT `UntrainedBackbone` (raw waveform, 50 Hz), an AST with the real
fbank geometry (128 mel bins, 1024 frames = 10.24 s, 1214 tokens) and a Whisper encoder with the
real one (80 mel bins, 30 s = 1500 positions), run as shipped and with ``whisper_window_s=1.0``.
The clips are synthetic singing cut to 3-5 s (uniform, seeded), synthesised once up front and
served from memory (`Preloaded`), so the time is the pipeline's: batching, feature extraction, the
forward passes, hidden-state copies, pooling, finiteness checks, shard and metadata writes. Each
backbone's `forward` is wrapped with a timer, so the forward time is that of the very same calls.
Families are interleaved within each of `--repeats` rounds, and the table gives the median and the
best round: the cores are shared, and another job's burst can slow one round several-fold, so the
best round is the closer estimate of an idle machine. Each build writes a fresh cache. Writes
extraction.json, with the CPU's model name and vector/matrix flags.

    python benchmarks/extraction.py [--clips 24] [--repeats 5] [--hidden 256] [--num_layers 4]
    python benchmarks/extraction.py --clips 400 --min_s 2 --max_s 2   # equal 2 s clips
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from steps import load_average
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    ASTModel,
    WhisperConfig,
    WhisperFeatureExtractor,
    WhisperModel,
)

from saelight.audio import SyntheticSinging
from saelight.audio.base import AudioSource, Clip
from saelight.backbones import Backbone, HFBackbone, UntrainedBackbone
from saelight.cache.build import ActivationCache

CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_tile", "amx_bf16", "amx_int8")


class Preloaded(AudioSource):
    """`n` clips spread over another source (every split), cut to seeded lengths, in memory."""

    def __init__(self, source: AudioSource, sample_rate: int, n: int, seconds: tuple) -> None:
        every = source.clips()
        self.source, self._clips = source, every[:: max(1, len(every) // n)][:n]
        lengths = np.random.default_rng(0).uniform(*seconds, size=len(self._clips))
        self._waves = {
            c.clip_id: source.load(c, sample_rate)[: int(s * sample_rate)]
            for c, s in zip(self._clips, lengths, strict=True)
        }

    def clips(self) -> list[Clip]:
        return list(self._clips)

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        return self._waves[clip.clip_id]

    def fingerprint(self) -> dict[str, Any]:
        return {"preloaded": self.source.fingerprint(), "n": len(self._clips)}


def cpu() -> dict[str, Any]:
    """`lscpu` model name, which of `CPU_FLAGS` it has, and torch's thread count."""
    lines = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    fields = dict(line.split(":", 1) for line in lines.splitlines() if ":" in line)
    flags = set(fields.get("Flags", "").split())
    return {
        "model_name": fields.get("Model name", "").strip(),
        "cores": int(fields.get("CPU(s)", "0").strip() or 0),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }


def save(model: torch.nn.Module, extractor: Any, path: Path) -> str:
    model.save_pretrained(path)
    extractor.save_pretrained(path)
    return str(path)


def backbones(args: argparse.Namespace, root: Path) -> dict[str, Backbone]:
    """{family label: backbone}: random models of one size, each of its family's real geometry."""
    size = {"hidden_size": args.hidden, "num_hidden_layers": args.num_layers}
    heads, ffn = args.hidden // 32, 4 * args.hidden  # 32-dim heads, as UntrainedBackbone
    torch.manual_seed(0)
    ast = ASTModel(ASTConfig(**size, num_attention_heads=heads, intermediate_size=ffn))
    ast_dir = save(ast, ASTFeatureExtractor(), root / "ast")
    whisper = WhisperModel(
        WhisperConfig(
            d_model=args.hidden,
            encoder_layers=args.num_layers,
            encoder_attention_heads=heads,
            encoder_ffn_dim=ffn,
            decoder_layers=1,
            decoder_attention_heads=heads,
            decoder_ffn_dim=ffn,
            vocab_size=64,
            max_target_positions=16,
            pad_token_id=0,
            bos_token_id=1,
            eos_token_id=2,
            decoder_start_token_id=1,
        )
    )
    whisper_dir = save(whisper, WhisperFeatureExtractor(), root / "whisper")
    return {
        "waveform (HuBERT)": UntrainedBackbone(
            "hubert", args.num_layers, args.hidden, save_dir=str(root / "untrained")
        ),
        "AST (10.24 s fbank)": HFBackbone(ast_dir),
        "Whisper (30 s window)": HFBackbone(whisper_dir),
        "Whisper (whisper_window_s=1.0)": HFBackbone(whisper_dir, whisper_window_s=1.0),
    }


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


def build_once(args: argparse.Namespace, backbone: Any, source: Preloaded) -> dict:
    spent = timed_forward(backbone.net)
    with tempfile.TemporaryDirectory() as tmp:
        cache = ActivationCache(tmp, source, backbone, batch_size=args.batch_size)
        t0 = time.perf_counter()
        reader = cache.build(progress=False)
        total = time.perf_counter() - t0
        rows = len(reader)
    del backbone.net.forward  # back to the class method
    forward = sum(spent)
    return {
        "build_s": total,
        "forward_s": forward,
        "overhead": total / forward - 1,
        "clips_per_s": rows / total,
        "forward_calls": len(spent),
        "rows": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=24)
    parser.add_argument("--min_s", type=float, default=3.0)
    parser.add_argument("--max_s", type=float, default=5.0)
    parser.add_argument("--num_layers", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    load_before = load_average()
    with tempfile.TemporaryDirectory() as models:
        families = backbones(args, Path(models))
        singers = max(4, -(-args.clips // 50))  # 50 clips per singer; 4 to fill every split
        synth = SyntheticSinging(clips_per_combo=1, duration_s=args.max_s, n_singers=singers)
        source = Preloaded(synth, 16000, args.clips, (args.min_s, args.max_s))
        warm = [source.load(c, 0) for c in source.clips()[:2]]
        for backbone in families.values():
            backbone.extract(warm)
        runs: dict[str, list[dict]] = {name: [] for name in families}
        for _ in range(args.repeats):
            for name, backbone in families.items():
                runs[name].append(build_once(args, backbone, source))
    load = {"before": load_before, "after": load_average()}
    summary = {
        name: {
            **{k: statistics.median(r[k] for r in rs) for k in rs[0]},
            "best_clips_per_s": max(r["clips_per_s"] for r in rs),
        }
        for name, rs in runs.items()
    }
    machine = cpu()
    print(
        f"{machine['model_name']} ({', '.join(machine['flags'])}), {machine['torch_threads']} "
        f"threads; {args.clips} clips of {args.min_s}-{args.max_s} s, {args.num_layers} layers x "
        f"{args.hidden}, batch {args.batch_size}, all layers cached, load {load}"
    )
    print("| family | clips/s median (best) | build (s) | forward (s) | overhead |")
    print("|---|---:|---:|---:|---:|")
    for name, s in summary.items():
        print(
            f"| {name} | {s['clips_per_s']:.1f} ({s['best_clips_per_s']:.1f}) | "
            f"{s['build_s']:.2f} | {s['forward_s']:.2f} | {s['overhead']:.1%} |"
        )
    out = {"cpu": machine, "config": vars(args), "load_average": load, "families": summary}
    out["runs"] = runs
    Path(__file__).with_suffix(".json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
