"""The splice computation of a run's SAEs on its held-out clips, shared by `saelight splice` and
`SAEEvaluation(splice=True)` so both write the same splice.json.

Decodes the held-out clips through the cache's own loader (`ActivationCache.segments_or_error`:
same resampling, validation and crops as extraction) and runs `splice_fidelity` once per spliced
layer (every SAE of that layer shares the clean and mean-ablation passes). Forward passes per
batch of clips: 2 clean + 1 mean + n_sae × (2 + 2 × label values), the last term only with
`k_ablate` > 0; with an output head, as many head passes again plus `effect_latents` per SAE.
"""

from __future__ import annotations

import inspect
import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from saelight.audio.base import SPLITS, BadAudioError, Clip
from saelight.cache.build import ActivationCache
from saelight.evaluation.splice import splice_fidelity
from saelight.io.defaults import EFFECT_LATENTS, K_ABLATE, SCORE_OUTPUT_HEAD, SPLICE_SPLIT
from saelight.io.errors import SaelightError
from saelight.io.layout import RunLayout
from saelight.io.progress import progress
from saelight.sae.base import SAE
from saelight.sae.export_files import CFG_FILE

log = logging.getLogger(__name__)


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
    data = (config.get("data") or {}).get("init_args", config.get("data") or {})
    if data.get("centre_positions"):
        raise SaelightError(
            f"{layout.root} was trained with data.centre_positions: its SAEs read x minus each "
            "frame position's mean, which splice does not add back yet",
            hint="splice a run trained without data.centre_positions",
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
        loaded = cache.segments_or_error(index, clip)
        if isinstance(loaded, BadAudioError):
            log.warning("skipping %s: %s", clip.clip_id, loaded)
            continue
        out.append((clip, loaded[0][1]))  # the test split is one whole-file segment per clip
    return out


def splice_run(
    cache: Any,
    saes: dict[int, dict[str, tuple[SAE, float | None]]],
    split: str,
    max_clips: int | None,
    labels: list[str] | None,
    k_ablate: int,
    seed: int,
    output_head: bool = SCORE_OUTPUT_HEAD,
    effect_latents: int = EFFECT_LATENTS,
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
    head = cache.backbone.output_head() if output_head else None
    passes = 2 + (head is not None)  # clean, spliced variants, and the head's own pass
    bar = progress(len(saes) * passes * len(waves), "splice clips", "clip")
    for layer in sorted(saes):
        models = {name: sae for name, (sae, _) in saes[layer].items()}
        result = splice_fidelity(
            cache.backbone, models, layer, waves, clip_labels,
            k_ablate=k_ablate, seed=seed, progress=bar,
        )  # fmt: skip
        keys = ("label", "value", "kind", "latents")
        sets = {
            name: [{k: s[k] for k in keys} for s in row["ablation"]]
            for name, row in result["saes"].items()
        }
        result["output"] = _output(
            cache.backbone, head, models, layer, waves, output_head, sets, effect_latents, seed
        )
        if head is not None:
            bar.update(len(waves))
        for name, (sae, sparsity) in saes[layer].items():
            row = result["saes"][name]
            row.update(sae.identity())
            if row["sparsity"] is None:  # a knob-set SAE (k given) still has its grid's sparsity
                row["sparsity"] = sparsity
        results.append(result)
    bar.close()
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
        "output_head": head.architecture if head is not None else None,
        "effect_latents": effect_latents if head is not None else 0,
        "layers": results,
    }


def _output(
    backbone: Any,
    head: Any,
    saes: dict[str, Any],
    layer: int,
    waves: list[Any],
    wanted: bool,
    sets: dict[str, list[dict[str, Any]]],
    effect_latents: int,
    seed: int,
) -> dict[str, Any]:
    """The output-head scores of one spliced layer (and its latents' ablation effects), or why
    there are none."""
    if not wanted:
        return {"skipped": "output scoring off (--output_head false)"}
    if head is None:
        return {"skipped": "no output head"}
    if layer >= backbone.num_layers:
        return {"skipped": f"L{layer} is the last hidden state: no encoder layer reads it"}
    from saelight.evaluation.output_splice import output_fidelity

    log.info("splice: scoring %s's output with the L%d SAEs in place", head.architecture, layer)
    return output_fidelity(
        backbone, head, saes, layer, backbone.prepare_waves(waves),
        sets=sets, effect_latents=effect_latents, seed=seed,
    )  # fmt: skip


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


def splice_grid(
    datamodule: Any,
    saes: dict[int, dict[str, tuple[SAE, float | None]]],
    layout: RunLayout,
    max_clips: int | None,
    labels: list[str] | None,
    seed: int,
) -> dict[str, Any] | None:
    """`SAEEvaluation(splice=True)`: splice the grid's SAEs at fit end with `saelight splice`'s
    defaults (so both paths write the same splice.json) and write `<run>/splice/`; the payload,
    or None (with a log line) for a run splice cannot take."""
    from saelight.report.splice_figure import backbone_title, write_splice

    if datamodule.pooling != "frame":
        log.info(
            "SAEEvaluation(splice=True): skipped, a clip-pooled run (data.cache.pooling: %s) "
            "cannot be spliced back frame by frame",
            datamodule.pooling,
        )
        return None
    if getattr(datamodule, "centre_positions", False):
        log.warning(
            "SAEEvaluation(splice=True): skipped, splice does not add the position means of "
            "data.centre_positions back yet"
        )
        return None
    cache = datamodule.cache
    payload = splice_run(cache, saes, SPLICE_SPLIT, max_clips, labels, K_ABLATE, seed)
    payload = {"run": str(layout.root.resolve()), **payload}
    write_splice(layout.splice, payload, backbone_title(cache))
    log.info("SAEEvaluation: spliced %d clip(s), wrote %s", payload["n_clips"], layout.splice)
    return payload
