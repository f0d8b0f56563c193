"""At the end of `fit`, build the latent explorer of every grid SAE, as `saelight inspect`."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any, Literal

import lightning as L

from saelight.callbacks.generation import run_generation
from saelight.callbacks.loggers import activation_datamodule, wandb_run
from saelight.evaluation.seeds import seed_columns
from saelight.explorer.explore import explore
from saelight.explorer.options import ExplorerOptions
from saelight.io.atomic import remove_dead_temps, replace_folder, staging_folder
from saelight.io.generation import GENERATION
from saelight.io.layout import RunLayout
from saelight.module import SAEModule

log = logging.getLogger(__name__)


def explore_atomically(sae: Any, reader: Any, layer: int, out: Path, **kwargs: Any) -> Path:
    """`explore` into a staging folder beside `out`, then swapped in whole: a kill mid-write
    leaves the previous explorer (never a truncated index.html, nor pages of two SAEs), and the
    next run deletes the dead writer's staging folder."""
    out = Path(out)
    remove_dead_temps(out.parent)
    staged = staging_folder(out)
    try:
        explore(sae, reader, layer, staged, **kwargs)
        replace_folder(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return out


class LatentExplorer(L.Callback):
    """Writes `<out>/<key>/` (index.html, latents.json/.parquet, labels.json) per SAE; the page
    is one file holding the top rows' audio and spectrograms, capped at `max_page_mb`.

    Runs on global rank 0 only, on the SAEs as they are when training ends (the exported
    best-by-validation weights in `saes/` are what `saelight inspect --run` reads). With a
    `WandbLogger` attached, each SAE's table is also logged to W&B.

    Args:
        top_n: top activating rows kept per latent.
        split: split whose rows are inspected.
        out: output folder (default: `<trainer.default_root_dir>/explorer`).
        max_page_mb: cap on each index.html in MB; past it the lower-ranked latents' rows lose
            their audio, then their spectrograms.
        codec: audio codec of the embedded snippets: "flac" (lossless) or "opus" (smaller).
        descriptors: first compute the acoustic descriptors of every cache row (Praat and
            librosa, once per cache, stored in `<cache>/descriptors/`; needs the `descriptors`
            extra), so latents are named by f0, formants, onsets... besides labels and factors.
    """

    def __init__(
        self,
        top_n: int = ExplorerOptions.top_n,
        split: str = ExplorerOptions.split,
        out: str | None = None,
        max_page_mb: float = ExplorerOptions.max_page_mb,
        codec: Literal["flac", "opus"] = ExplorerOptions.codec,
        descriptors: bool = False,
    ) -> None:
        if top_n < 1:
            raise ValueError(f"LatentExplorer.top_n must be >= 1, got {top_n}")
        self.top_n, self.split, self.out = top_n, split, out
        self.max_page_mb, self.codec, self.descriptors = max_page_mb, codec, descriptors

    def on_fit_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        if not trainer.is_global_zero:
            return
        dm = activation_datamodule(trainer, "LatentExplorer")
        if dm is None:
            return
        reader = dm.open_reader()
        if not len(reader.split_rows(self.split)):
            log.warning("LatentExplorer: split %r has no rows; skipped", self.split)
            return
        if self.descriptors:
            from saelight.cache.descriptors import compute_descriptors

            backbone = dm.cache.backbone
            compute_descriptors(
                reader, dm.cache.source, backbone.sample_rate, backbone.frame_rate_hz
            )
        root = Path(self.out or RunLayout.of_trainer(trainer).explorer)
        run = wandb_run(trainer)
        generation = run_generation(trainer)
        seeds = seed_columns(pl_module.grid, {e.key: pl_module.sae(e) for e in pl_module.grid})
        for e in pl_module.grid:
            sae = pl_module.sae(e)
            info = {"architecture": sae.architecture, "pooling": dm.pooling, "name": e.name}
            if generation:
                info[GENERATION] = generation
            explore_atomically(
                sae,
                reader,
                e.layer,
                root / e.key,
                source=dm.cache.source,
                split=self.split,
                top_n=self.top_n,
                title=e.key,
                info=info,
                wandb_run=run,
                max_page_mb=self.max_page_mb,
                codec=self.codec,
                row_stats=getattr(dm, "row_stats", None),
                latent_columns=seeds.get(e.key),
            )
