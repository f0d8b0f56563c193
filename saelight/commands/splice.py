"""`saelight splice --run DIR`: splice a frame-level run's exported SAEs into its backbone.

Reads the run's saved config (source, backbone, pooling) and its exports, runs
`evaluation.splice_run.splice_run` (the computation `SAEEvaluation(splice=True)` runs too) and
writes `<run>/splice/splice.json` and `splice.png`, printing the table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from saelight.commands.saved_run import load_cache
from saelight.io.defaults import (
    EFFECT_LATENTS,
    EVAL_SEED,
    K_ABLATE,
    SCORE_OUTPUT_HEAD,
    SPLICE_SPLIT,
)
from saelight.io.errors import SaelightError
from saelight.io.layout import RunLayout


def splice(
    run: str,
    out: str | None = None,
    split: str = SPLICE_SPLIT,
    max_clips: int | None = None,
    labels: list[str] | None = None,
    k_ablate: int = K_ABLATE,
    seed: int = EVAL_SEED,
    output_head: bool = SCORE_OUTPUT_HEAD,
    effect_latents: int = EFFECT_LATENTS,
    wandb: bool = False,
) -> None:
    """Splice a frame-level run's SAEs into the backbone: downstream fidelity, probes, ablations.

    For each exported SAE of layer L, runs the backbone on held-out clips with hidden_states[L]
    replaced by the SAE's reconstruction and reports, per later layer, FVU and cosine against the
    clean run and fidelity recovered = (d_mean − d_sae) / d_mean (1 = lossless, 0 = as bad as
    mean-ablation); the accuracy drop of clean-trained probes; and the drop after ablating the
    k latents that best detect each label value (vs k frequency-matched random latents).
    When the backbone checkpoint has an output head (Whisper's decoder, a CTC layer, a
    classifier), also scores what the model outputs with each SAE in place: output KL, CE
    recovered (1 = nothing lost, 0 = mean-ablation), agreement with the clean prediction and
    WER/CER of the greedy transcripts. Writes `<run>/splice/splice.json` and `splice.png` and
    prints the fidelity, ablation and output tables.

    Args:
        run: a frame-level run directory (`trainer.default_root_dir` of `saelight fit`).
        out: output folder (default: `<run>/splice`).
        split: the held-out split whose clips are run.
        max_clips: run a seeded subset of this many clips (default: all of the split).
        labels: labels to probe and ablate (default: every label with two or more values).
        k_ablate: latents ablated per label value; 0 skips the ablations.
        seed: seed of the clip subset, the probe folds and the control latents.
        output_head: score the checkpoint's output head when it has one (`--no_output_head`:
            later-layer fidelity only; the head model is loaded beside the encoder).
        effect_latents: with an output head, this many of each SAE's best label detectors are
            also ablated one at a time and their output effect (ΔCE, KL, top-1 drop) scored;
            0 skips them. The run's explorer cards show these effects.
        wandb: also log the `splice/fidelity` and `splice/ablation` tables and the
            `splice/figure` image to a new W&B run (job_type splice, under the output folder;
            WANDB_MODE, default offline).
    """
    from saelight.audio.base import SPLITS
    from saelight.evaluation.splice_run import check_frame_run, splice_run
    from saelight.report.splice_figure import backbone_title, write_splice
    from saelight.report.splice_section import output_line, splice_tables
    from saelight.sae.base import SAE

    if split not in SPLITS:
        raise SaelightError(f"split {split!r} is not one of {list(SPLITS)}")
    layout = RunLayout.of(run)
    exports = check_frame_run(layout)
    cache = load_cache(layout.config)
    saes: dict[int, dict[str, tuple[Any, float | None]]] = {}
    for path, cfg in exports:
        layer = saes.setdefault(int(cfg["layer"]), {})
        layer[path.name] = (SAE.from_pretrained(path), cfg.get("grid_sparsity"))
    spliced = splice_run(
        cache, saes, split, max_clips, labels, k_ablate, seed,
        output_head=output_head, effect_latents=effect_latents,
    )  # fmt: skip
    payload = {"run": str(run), **spliced}
    folder = Path(out) if out else layout.splice
    write_splice(folder, payload, backbone_title(cache))
    for table in splice_tables(payload):
        print(table.markdown(), end="\n\n")
    print(output_line(payload))
    print(
        f"{payload['n_clips']} clips ({payload['audio_seconds']:.0f} s of audio) in "
        f"{payload['wall_seconds']:.1f} s; wrote {folder}"
    )
    if wandb:
        _log_to_new_run(folder, payload)


def _log_to_new_run(folder: Path, payload: dict[str, Any]) -> None:
    """A W&B run of its own (a splice runs after its fit, whose run has finished)."""
    from saelight.io.wandb_run import new_wandb_run
    from saelight.report.splice_section import SPLICE_PNG, log_splice

    run = new_wandb_run("splice", folder, {k: v for k, v in payload.items() if k != "layers"})
    try:
        log_splice(run, payload, folder / SPLICE_PNG)
    finally:
        run.finish()
