"""`saelight splice --run DIR`: splice a frame-level run's exported SAEs into its backbone.

Reads the run's saved config (source, backbone, pooling) and its exports, decodes the held-out
clips through the cache's own loader (`ActivationCache._segments_or_error`: same resampling,
validation and crops as extraction), runs `splice_fidelity` once per spliced layer (every SAE of
that layer shares the clean and mean-ablation passes) and writes `<run>/splice/splice.json` and
`splice.png` (fidelity recovered vs sparsity, one line per later layer, a panel per spliced layer).
Forward passes per batch of clips: 2 clean + 1 mean + n_sae × (2 + 2 × label values), the last
term only with `k_ablate` > 0.
"""

from __future__ import annotations

import inspect
import json
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from saelight.audio.base import SPLITS, BadAudioError, Clip
from saelight.cache.build import ActivationCache
from saelight.evaluation.splice import splice_fidelity
from saelight.io.atomic import atomic_write_text
from saelight.io.errors import SaelightError
from saelight.io.layout import RunLayout
from saelight.report.splice_section import SPLICE_JSON, SPLICE_PNG, log_splice
from saelight.sae.base import CFG_FILE, SAE

log = logging.getLogger(__name__)

SPLIT = "test"
"""The held-out split `saelight splice` and `SAEEvaluation(splice=True)` run."""
K_ABLATE = 8
"""Latents ablated per label value, by both paths (so both write the same splice.json)."""


def check_frame_run(layout: RunLayout) -> list[tuple[Path, dict[str, Any]]]:
    """(export folder, cfg.json) of every export; SaelightError unless the run is frame-level.

    Runs before any backbone is loaded: it reads only config.yaml and the cfg.json files.
    """
    if not layout.config.is_file():
        raise SaelightError(f"{layout.config} does not exist", hint="pass a run directory")
    exports = [(p, json.loads((p / CFG_FILE).read_text())) for p in layout.exported_saes()]
    if not exports:
        raise SaelightError(f"{layout.saes} holds no exported SAE (saes/*/cfg.json)")
    config = yaml.safe_load(layout.config.read_text()) or {}
    cache = (config.get("data") or {}).get("cache") or {}
    cache = cache.get("init_args", cache)  # a saved config nests it under class_path/init_args
    default = inspect.signature(ActivationCache).parameters["pooling"].default
    pooling = cache.get("pooling", default)
    poolings = {pooling} | {cfg.get("pooling", pooling) for _, cfg in exports}
    if poolings != {"frame"}:
        raise SaelightError(
            f"{layout.root} is a clip-pooled run (data.cache.pooling: {pooling}): its SAEs read "
            "one mean-pooled row per clip, which cannot be spliced back frame by frame",
            hint="splice needs a frame-level run (data.cache.pooling: frame)",
        )
    return exports


def held_out(cache: Any, split: str, max_clips: int | None, seed: int) -> list[tuple[Clip, Any]]:
    """(clip, wave) of the split's clips (a seeded subset of `max_clips`), decoded as the cache
    decodes them; a clip that fails to decode is skipped with a warning."""
    clips = [(i, c) for i, c in enumerate(cache.source.clips()) if c.split == split]
    if not clips:
        raise SaelightError(f"the run's source has no '{split}' clips")
    if max_clips is not None and len(clips) > max_clips:
        keep = np.sort(np.random.default_rng(seed).choice(len(clips), max_clips, replace=False))
        clips = [clips[i] for i in keep]
    out = []
    for index, clip in clips:
        loaded = cache._segments_or_error(index, clip)
        if isinstance(loaded, BadAudioError):
            log.warning("skipping %s: %s", clip.clip_id, loaded)
            continue
        out.append((clip, loaded[0][1]))  # the test split is one whole-file segment per clip
    return out


def splice_figure(results: list[dict[str, Any]], title: str) -> Figure:
    """Fidelity recovered (per later layer) vs sparsity, one panel per spliced layer."""
    fig = Figure(figsize=(5 * len(results), 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(results), squeeze=False)[0])
    for ax, result in zip(axes, results, strict=True):
        rows = sorted(result["saes"].values(), key=lambda r: r.get("sparsity") or 0.0)
        x = [100 * (r.get("sparsity") or 0.0) for r in rows]
        for later in rows[0]["per_layer"] if rows else []:
            y = [r["per_layer"][later]["fidelity"] for r in rows]
            ax.plot(x, y, marker="o", label=f"L{later}")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.axhline(0.0, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("fidelity recovered (1 = lossless, 0 = mean-ablation)")
        ax.set_title(f"{title}: SAE spliced at L{result['layer']}")
        ax.grid(alpha=0.3)
        ax.legend(title="later layer")
    return fig


def format_table(results: list[dict[str, Any]]) -> str:
    """Markdown: per SAE, FVU at L, fidelity recovered, final-layer FVU/cos, mean probe drop."""
    lines = [
        "| SAE | layer | sparsity | FVU@L | fidelity | final FVU | final cos | probe drop |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        final = str(result["num_layers"])
        for name, r in result["saes"].items():
            drops = [v["drop"] for v in r["probe"].values()]
            drop = f"{100 * float(np.mean(drops)):.1f} pt" if drops else "-"
            lines.append(
                f"| {name} | L{result['layer']} | {r.get('sparsity')} | "
                f"{r['reconstruction']['fvu']:.3f} | {r['fidelity_recovered']:.3f} | "
                f"{r['per_layer'][final]['fvu']:.3f} | {r['per_layer'][final]['cosine']:.3f} | "
                f"{drop} |"
            )
    return "\n".join(lines)


def splice_run(
    cache: Any,
    saes: dict[int, dict[str, tuple[SAE, float | None]]],
    split: str,
    max_clips: int | None,
    labels: list[str] | None,
    k_ablate: int,
    seed: int,
) -> dict[str, Any]:
    """The splice.json payload (all but "run") of `saes` ({layer: {name: (SAE, grid sparsity)}})
    on the cache's held-out clips: the one core of `saelight splice` and
    `SAEEvaluation(splice=True)`, so both write the same file. Arguments as `splice_command`'s."""
    if split not in SPLITS:
        raise SaelightError(f"split {split!r} is not one of {list(SPLITS)}")
    t0 = time.perf_counter()
    items = held_out(cache, split, max_clips, seed)
    clip_labels = _labels([c for c, _ in items], labels)
    waves = [w for _, w in items]
    results = []
    for layer in sorted(saes):
        models = {name: sae for name, (sae, _) in saes[layer].items()}
        result = splice_fidelity(
            cache.backbone, models, layer, waves, clip_labels, k_ablate=k_ablate, seed=seed
        )
        for name, (sae, sparsity) in saes[layer].items():
            row = result["saes"][name]
            row.update(sae.identity())
            if row["sparsity"] is None:  # a knob-set SAE (k given) still has its grid's sparsity
                row["sparsity"] = sparsity
        results.append(result)
    wall = time.perf_counter() - t0
    audio_s = sum(len(w) for w in waves) / cache.backbone.sample_rate
    return {
        "split": split,
        "n_clips": len(waves),
        "audio_seconds": audio_s,
        "wall_seconds": wall,
        "seconds_per_audio_hour": wall / audio_s * 3600 if audio_s else None,
        "labels": sorted(clip_labels),
        "k_ablate": k_ablate,
        "seed": seed,
        "layers": results,
    }


def write_splice(folder: Path, payload: dict[str, Any], title: str) -> None:
    """`folder/splice.json` (atomic) and `folder/splice.png` (see `splice_figure`)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / SPLICE_JSON, json.dumps(payload, indent=1, default=float))
    splice_figure(payload["layers"], title).savefig(folder / SPLICE_PNG, dpi=120)


def backbone_title(cache: Any) -> str:
    """The figure title: the backbone's model name (its last path component)."""
    return Path(str(cache.backbone.identity().get("model", ""))).name


def splice_command(
    run: str,
    out: str | None = None,
    split: str = SPLIT,
    max_clips: int | None = None,
    labels: list[str] | None = None,
    k_ablate: int = K_ABLATE,
    seed: int = 42,
    wandb: bool = False,
) -> None:
    """Splice a frame-level run's SAEs into the backbone: downstream fidelity, probes, ablations.

    For each exported SAE of layer L, runs the backbone on held-out clips with hidden_states[L]
    replaced by the SAE's reconstruction and reports, per later layer, FVU and cosine against the
    clean run and fidelity recovered = (d_mean − d_sae) / d_mean (1 = lossless, 0 = as bad as
    mean-ablation); the accuracy drop of clean-trained probes; and the drop after ablating the
    k latents that best detect each label value (vs k frequency-matched random latents).
    Writes `<run>/splice/splice.json` and `splice.png` and prints a table.

    Args:
        run: a frame-level run directory (`trainer.default_root_dir` of `saelight fit`).
        out: output folder (default: `<run>/splice`).
        split: the held-out split whose clips are run.
        max_clips: run a seeded subset of this many clips (default: all of the split).
        labels: labels to probe and ablate (default: every label with two or more values).
        k_ablate: latents ablated per label value; 0 skips the ablations.
        seed: seed of the clip subset, the probe folds and the control latents.
        wandb: also log the `splice/fidelity` and `splice/ablation` tables and the
            `splice/figure` image to a new W&B run (job_type splice, under the output folder;
            WANDB_MODE, default offline).
    """
    if split not in SPLITS:
        raise SaelightError(f"split {split!r} is not one of {list(SPLITS)}")
    layout = RunLayout.of(run)
    exports = check_frame_run(layout)
    from saelight.explorer.command import load_cache

    cache = load_cache(layout.config)
    saes: dict[int, dict[str, tuple[SAE, float | None]]] = {}
    for path, cfg in exports:
        layer = saes.setdefault(int(cfg["layer"]), {})
        layer[path.name] = (SAE.from_pretrained(path), cfg.get("grid_sparsity"))
    payload = {"run": str(run), **splice_run(cache, saes, split, max_clips, labels, k_ablate, seed)}
    folder = Path(out) if out else layout.splice
    write_splice(folder, payload, backbone_title(cache))
    print(format_table(payload["layers"]))
    print(
        f"{payload['n_clips']} clips ({payload['audio_seconds']:.0f} s of audio) in "
        f"{payload['wall_seconds']:.1f} s; wrote {folder}"
    )
    if wandb:
        _log_to_new_run(folder, payload)


def _log_to_new_run(folder: Path, payload: dict[str, Any]) -> None:
    """A W&B run of its own (a splice runs after its fit, whose run has finished)."""
    import wandb as wandb_sdk

    config = {k: v for k, v in payload.items() if k != "layers"}
    run = wandb_sdk.init(
        project="saelight",
        job_type="splice",
        dir=str(folder),
        mode=os.environ.get("WANDB_MODE", "offline"),
        config=config,
    )
    try:
        log_splice(run, payload, folder / SPLICE_PNG)
    finally:
        run.finish()


def _labels(clips: list[Clip], wanted: list[str] | None) -> dict[str, list[str]]:
    """{label: value per clip} of the labels asked for (default: those with 2+ values)."""
    names = sorted({k for c in clips for k in c.labels})
    if wanted is not None:
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise SaelightError(f"labels {missing} are not in the source (it has {names})")
        names = list(wanted)
    values = {n: [str(c.labels.get(n, "")) for c in clips] for n in names}
    return {n: v for n, v in values.items() if wanted is not None or len(set(v)) > 1}
