"""`saelight inspect`: the latent explorer of a run's exported SAEs (or of one SAE folder).

    saelight inspect --run RUN_DIR [--split test] [--top 10] [--out DIR] [--wandb]
                     [--max_page_mb 20] [--codec flac|opus] [--no_audio] [--descriptors]
    saelight inspect --sae SAE_DIR --config CONFIG.yaml [...]

`--run` reads `RUN_DIR/config.yaml` (the resolved config `saelight fit` saved) and every exported
SAE in `RUN_DIR/saes/<key>/`, and writes `<out>/<key>/` for each (default out: `RUN_DIR/explorer`).
`--sae` inspects one export; its folder defaults to `<run>/explorer/<key>/` when the export sits
in a run's `saes/`, else `SAE_DIR/explorer/`. The config supplies the activation cache and its
audio source; the cache must already exist. `--descriptors` first runs the acoustic descriptor
pass on that cache (once; stored in `<cache>/descriptors/`), so a run fitted without it gets its
latents named by f0, formants, onsets... too.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Literal

from saelight.commands.saved_run import open_cache
from saelight.explorer.options import ExplorerOptions
from saelight.io.errors import SaelightError
from saelight.io.layout import RunLayout

log = logging.getLogger(__name__)


def _targets(
    run: Path | None, sae: Path | None, config: Path | None, out: Path | None
) -> tuple[Path, list[tuple[Path, Path]]]:
    """(config, [(SAE folder, output folder)]) of `--run` or `--sae`."""
    from saelight.sae.export_files import CFG_FILE

    if (run is None) == (sae is None):
        raise SaelightError("give exactly one of --run RUN_DIR or --sae SAE_DIR")
    if run is not None:
        layout = RunLayout.of(run)
        saes = layout.exported_saes()
        if not saes:
            raise SaelightError(
                f"no exported SAEs in {layout.saes}", hint="run `saelight fit` on that run first"
            )
        root = out or layout.explorer
        return config or layout.config, [(s, root / s.name) for s in saes]
    assert sae is not None
    if config is None:
        raise SaelightError("--sae needs --config (the run's config.yaml)")
    if not (sae / CFG_FILE).exists():
        raise SaelightError(f"{sae} holds no {CFG_FILE}: not an exported SAE")
    resolved = sae.resolve()
    default = (
        RunLayout.of(resolved.parent.parent).explorer / resolved.name
        if resolved.parent.name == RunLayout.of(".").saes.name
        else resolved / "explorer"
    )
    return config, [(sae, out or default)]


def inspect(
    run: Path | None = None,
    sae: Path | None = None,
    config: Path | None = None,
    split: str = ExplorerOptions.split,
    top: int = ExplorerOptions.top_n,
    out: Path | None = None,
    frame_window: float = 1.0,
    audio: bool = True,
    batch_size: int = 1024,
    device: str = "auto",
    wandb: bool = False,
    max_page_mb: float = ExplorerOptions.max_page_mb,
    codec: Literal["flac", "opus"] = ExplorerOptions.codec,
    descriptors: bool = False,
) -> None:
    """Latent explorer of a run's exported SAEs (or of one SAE folder): what each latent detects.

    Streams the split's rows of the cache (opened with the sha256 check `fit` does) through each
    SAE and writes, per SAE, `index.html` (one file: data, audio and spectrograms embedded; no
    server), `latents.json`, `latents.parquet` and `labels.json`, all four swapped in at once.

    Args:
        run: run directory of `saelight fit` (its config.yaml and saes/).
        sae: one exported SAE folder (cfg.json + sae_weights.safetensors), with --config.
        config: the run's config YAML (default with --run: RUN_DIR/config.yaml).
        split: split whose rows are inspected.
        top: top-activating rows kept per latent.
        out: output folder (default: RUN_DIR/explorer, or beside the SAE).
        frame_window: seconds of audio played around a frame row (frame pooling).
        audio: embed the top rows' audio and spectrograms (`--no_audio`: statistics only).
        batch_size: rows per encode batch.
        device: torch device of the SAE; "auto" = cuda when available, else cpu.
        wandb: also log the tables to a new W&B run (project saelight).
        max_page_mb: cap on each index.html in MB; past it the lower-ranked latents' rows lose
            their audio, then their spectrograms (a note on the page and a log line say so).
        codec: audio codec of the embedded snippets: "flac" (lossless) or "opus" (smaller).
        descriptors: first compute the acoustic descriptors of every cache row if the cache lacks
            them (Praat and librosa, as `LatentExplorer(descriptors=True)` does during fit;
            needs the `descriptors` extra), so latents are named by f0, formants, onsets...
    """
    import torch

    from saelight.callbacks.explorer import explore_atomically
    from saelight.io.generation import GENERATION
    from saelight.io.wandb_run import new_wandb_run
    from saelight.sae.base import SAE
    from saelight.sae.export_files import CFG_FILE

    if max_page_mb <= 0:
        raise SaelightError(f"--max_page_mb must be > 0, got {max_page_mb}")
    if top < 1:
        raise SaelightError(f"--top must be >= 1, got {top}")
    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise SaelightError(f"--out {out} is a file, expected a folder")
    config, targets = _targets(
        *(Path(p) if p is not None else None for p in (run, sae, config, out))
    )
    device = device if device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
    cache, reader = open_cache(config)
    if descriptors:
        from saelight.cache.descriptors import compute_descriptors

        backbone = cache.backbone
        compute_descriptors(reader, cache.source, backbone.sample_rate, backbone.frame_rate_hz)
    row_stats = None  # the run's position means / outlier rule, applied as in training
    if run is not None and RunLayout.of(run).row_stats.exists():
        from saelight.data.row_stats import RowStats

        row_stats = RowStats.load(RunLayout.of(run).row_stats)
    wandb_run = None
    if wandb:
        config_log = {"config": str(config), "split": split, "top": top}
        wandb_run = new_wandb_run("inspect", targets[0][1].parent, config_log)
    try:
        for sae_dir, folder in targets:
            cfg: dict[str, Any] = json.loads((sae_dir / CFG_FILE).read_text())
            layer = int(cfg.get("layer", reader.layers[0]))
            pooling = cfg.get("pooling")
            if pooling not in (None, "unknown", cache.pooling):
                log.warning(
                    "%s was trained on %s-pooled rows but the cache is %s-pooled",
                    sae_dir,
                    pooling,
                    cache.pooling,
                )
            sae = SAE.from_pretrained(sae_dir, device=device).eval()
            info = {
                # cfg's `architecture` is the SAELens name ("standard" for a ReLU SAE).
                "architecture": sae.architecture,
                "pooling": cache.pooling,
                "sae_dir": str(sae_dir),
                "name": cfg.get("name"),
            }
            if cfg.get(GENERATION):
                info[GENERATION] = cfg[GENERATION]
            effects = None
            if run is not None:
                from saelight.explorer.output_effects import output_effect_columns

                splice_json = RunLayout.of(run).splice / "splice.json"
                effects = output_effect_columns(splice_json, sae_dir.name, layer, sae.d_sae)
            explore_atomically(
                sae,
                reader,
                layer,
                folder,
                source=cache.source,
                split=split,
                top_n=top,
                title=sae_dir.name,
                info=info,
                audio=audio,
                frame_window_s=frame_window,
                batch_size=batch_size,
                wandb_run=wandb_run,
                max_page_mb=max_page_mb,
                codec=codec,
                row_stats=row_stats,
                latent_columns=effects,
            )
            print(f"explorer {sae_dir.name}: {folder / 'index.html'}")
    finally:
        if wandb_run is not None:
            wandb_run.finish()
