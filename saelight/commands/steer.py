"""`saelight steer`: edit chosen SAE latents inside the backbone over an α sweep and show what the
model outputs (transcripts, classes or the last hidden state), beside two random controls.

Reads a finished run (its config, cache, backbone and exports) or one SAE folder plus a model,
runs `evaluation.steering.steer_sweep` and writes `steer.json`, `steer.png` and the
self-contained `steer.html` (`report.steer_page`), printing the sweep table.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from saelight.io.defaults import EVAL_SEED, K_ABLATE, SCORE_OUTPUT_HEAD, SPLICE_SPLIT
from saelight.io.errors import SaelightError


def steer(
    latents: str,
    run: str | None = None,
    sae: str | None = None,
    model: str | None = None,
    audio: list[str] | None = None,
    mode: Literal["ablate", "clamp", "add"] = "ablate",
    alphas: tuple[float, ...] = (0.0, 0.5, 1.0),
    value: float | None = None,
    k: int = K_ABLATE,
    split: str = SPLICE_SPLIT,
    max_clips: int = 4,
    out: str | None = None,
    seed: int = EVAL_SEED,
    output_head: bool = SCORE_OUTPUT_HEAD,
    probe_label: str | None = None,
    wandb: bool = False,
) -> None:
    """Steer an SAE's latents inside the backbone and show the model's output over an α sweep.

    At layer L each valid frame x becomes x + decode(z′) − decode(z), z = encode(x), with the
    chosen latents moved by α: `ablate` z_j → (1 − α) z_j, `clamp` z_j → z_j + α (value − z_j),
    `add` z_j → z_j + α (adds α · W_dec[j]). The SAE's error term is kept, so α = 0 is the
    clean run bit for bit. Per α it reads the model's output against the clean run: greedy
    transcripts with their diff, CER and WER (Whisper, CTC), the top five classes (classifiers),
    KL(clean ‖ steered), or the change of the last hidden state for an encoder without a head;
    and the same for two controls at the same α: an equal-norm random direction and
    frequency-matched random latents. Writes steer.json, steer.png (dose-response) and
    steer.html (audio, spectrogram, curve and transcript diffs in one file).

    Args:
        latents: latent ids ("12" or "12,40") or "label=value" (needs --run): the k latents
            that best detect that value on the run's cached training rows (splice's ranking).
        run: a frame-level run directory; its backbone, test clips and exports are used.
        sae: an export name in the run's saes/ (e.g. L03_topk_s90; optional when the run has
            one), or an SAE folder (then --model names the backbone).
        model: hub id or local directory of the backbone, for an SAE folder without --run.
        audio: audio files to steer, e.g. [a.wav,b.flac] (default: the run's split clips).
        mode: ablate, clamp or add (see above).
        alphas: the doses α, e.g. [0,0.5,1]; 0 reproduces the clean run.
        value: clamp target (default: each latent's largest activation on the clips).
        k: latents taken for label=value.
        split: the run's split whose clips are steered (without --audio).
        max_clips: steer a seeded subset of this many of the split's clips.
        out: output folder (default: <run>/steer, or ./steer without a run).
        seed: seed of the clip subset, the random direction and the control latents.
        output_head: read the checkpoint's output head when it has one (`--no_output_head`:
            the last hidden state's change).
        probe_label: without an output head, the label whose clip probe on the last hidden
            state (fitted on the run's cached training clips) is read under steering: its
            top-5 classes, KL and agreement per α (default: the label of `label=value`, else
            the run's first label with two or more values).
        wandb: also log the `steer/sweep` and `steer/outputs` tables and the `steer/curve`
            image to a new W&B run (job_type steer, under the output folder; WANDB_MODE,
            default offline).
    """
    from saelight.evaluation.steer_latents import parse_latents
    from saelight.evaluation.steering import Plan, steer_sweep
    from saelight.report.steer_page import STEER_DIR, sweep_rows, write_steer
    from saelight.report.tables import Table

    spec = parse_latents(latents)
    if run is None and sae is None:
        raise SaelightError("give --run RUN_DIR, or --sae SAE_DIR with --model")
    source = _Source(run, sae, model, seed)
    plan = Plan(latents=[], mode=mode, alphas=list(alphas), value=value, seed=seed)
    if isinstance(spec, tuple):
        plan.latents, plan.control = source.detectors(spec, k)
    else:
        plan.latents = spec
    clips, waves = source.clips(audio, split, max_clips)
    backbone = source.backbone
    head = backbone.output_head() if output_head else None
    probe = None
    if head is None or source.layer == backbone.num_layers:
        probe = source.probe(probe_label or (spec[0] if isinstance(spec, tuple) else None))
    result = steer_sweep(backbone, head, source.sae, source.layer, waves, plan, probe=probe)
    payload = {
        "run": run,
        "sae": source.name,
        "backbone": backbone.identity().get("model"),
        "layer": source.layer,
        "mode": mode,
        "alphas": list(alphas),
        "value": value,
        "selection": None if isinstance(spec, list) else "=".join(spec),
        "seed": seed,
        "clips": clips,
        **result,
    }
    folder = Path(out) if out else (Path(run) if run else Path()) / STEER_DIR
    page = write_steer(folder, payload, backbone.prepare_waves(waves), backbone.sample_rate)
    columns, rows = sweep_rows(payload)
    title = f"{source.name}: {mode} latents {plan.latents} vs controls"
    print(Table("steer", title, columns, [[_cell(v) for v in r] for r in rows]).markdown())
    probed = f" + clip probe of {payload['probe']!r}" if payload.get("probe") else ""
    print(f"output read: {payload['architecture'] or payload['note']}{probed}")
    print(f"{len(clips)} clips, {len(alphas)} doses; wrote {page}")
    if wandb:
        _log_to_new_run(folder, payload)


def _cell(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class _Source:
    """The SAE, its layer, the backbone and the clips: from a run, or an SAE folder + model."""

    def __init__(self, run: str | None, sae: str | None, model: str | None, seed: int) -> None:
        from saelight.sae.base import SAE
        from saelight.sae.export_files import CFG_FILE

        self.run, self.seed, self.cache = run, seed, None
        if run is not None:
            from saelight.commands.saved_run import load_cache
            from saelight.evaluation.splice_run import check_frame_run
            from saelight.io.layout import RunLayout

            layout = RunLayout.of(run)
            exports = {p.name: p for p, _ in check_frame_run(layout)}
            folder = self._pick(exports, sae)
            self.cache = load_cache(layout.config)
        else:
            folder = Path(str(sae))
            if model is None:
                raise SaelightError("--sae SAE_DIR without --run needs --model (the backbone)")
        if not (folder / CFG_FILE).is_file():
            raise SaelightError(f"sae={sae!r}: {folder} holds no {CFG_FILE} (not an SAE export)")
        cfg = json.loads((folder / CFG_FILE).read_text())
        if "layer" not in cfg:
            raise SaelightError(f"{folder / CFG_FILE} names no layer: not a saelight export")
        self.name, self.layer = folder.name, int(cfg["layer"])
        self.sae = SAE.from_pretrained(folder)
        if self.cache is not None:
            self.backbone = self.cache.backbone
        else:
            from saelight.backbones.hf import HFBackbone

            self.backbone = HFBackbone(str(model), layers=[self.layer])

    @staticmethod
    def _pick(exports: dict[str, Path], sae: str | None) -> Path:
        """The export named `sae`, a folder path, or the run's only export."""
        if sae is None:
            if len(exports) != 1:
                raise SaelightError(f"the run has {len(exports)} SAEs: pick one with --sae "
                                    f"(one of {sorted(exports)})")  # fmt: skip
            return next(iter(exports.values()))
        if sae in exports:
            return exports[sae]
        if Path(sae).is_dir():
            return Path(sae)
        raise SaelightError(f"sae={sae!r} is not one of the run's SAEs {sorted(exports)}")

    def detectors(self, spec: tuple[str, str], k: int) -> tuple[list[int], list[int]]:
        """The k best detectors of label=value on the run's cached training rows, and their
        frequency-matched random control."""
        from saelight.evaluation.steer_latents import cached_detectors

        if self.cache is None:
            raise SaelightError(f"latents={'='.join(spec)}: label=value needs --run (its cache)")
        return cached_detectors(self.cache.open(), self.sae, self.layer, *spec, k, self.seed)

    def probe(self, label: str | None) -> Any:
        """The clip probe of `label` (or of the first label with 2+ values) on the cache's last
        layer, or None without a run, without that layer cached or without such a label."""
        from saelight.evaluation.steer_probe import fit_clip_probe

        if self.cache is None:
            return None
        reader = self.cache.open()
        names = reader.label_names()
        if label is not None and label not in names:
            raise SaelightError(f"probe_label={label!r} is not a label of the cache ({names})")
        n_layers = self.backbone.num_layers
        for name in [label] if label is not None else names:
            probe = fit_clip_probe(reader, n_layers, name, self.seed)
            if probe is not None:
                return probe
        return None

    def clips(
        self, audio: list[str] | None, split: str, max_clips: int
    ) -> tuple[list[dict[str, Any]], list[Any]]:
        """([{clip_id, labels}], waves at the backbone's rate): the files, or the split's clips."""
        if audio:
            from saelight.audio.decode import load_audio

            rate = self.backbone.sample_rate
            waves = [load_audio(path, rate, where=f"audio: {path}") for path in audio]
            return [{"clip_id": Path(p).name, "labels": {}} for p in audio], waves
        if self.cache is None:
            raise SaelightError("without --run, name the clips to steer with --audio [a.wav,...]")
        from saelight.audio.base import SPLITS
        from saelight.evaluation.splice_run import held_out

        if split not in SPLITS:
            raise SaelightError(f"split {split!r} is not one of {list(SPLITS)}")
        items = held_out(self.cache, split, max_clips, self.seed)
        return [{"clip_id": c.clip_id, "labels": dict(c.labels)} for c, _ in items], [
            w for _, w in items
        ]


def _log_to_new_run(folder: Path, payload: dict[str, Any]) -> None:
    """A W&B run of its own (a steer runs after its fit, whose run has finished)."""
    from saelight.io.wandb_run import new_wandb_run
    from saelight.report.steer_page import log_steer

    config = {k: v for k, v in payload.items() if k not in ("sweep", "clean", "clips")}
    run = new_wandb_run("steer", folder, config)
    try:
        log_steer(run, payload, folder)
    finally:
        run.finish()
