"""At the end of `fit`, build the latent explorer of every grid SAE, as `saelight inspect`."""

from __future__ import annotations

import logging
from typing import Literal

import lightning as L

from saelight.callbacks.loggers import activation_datamodule, wandb_run
from saelight.explorer.explore import explore
from saelight.io.layout import RunLayout
from saelight.module import SAEModule

log = logging.getLogger(__name__)


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
    """

    def __init__(
        self,
        top_n: int = 10,
        split: str = "test",
        out: str | None = None,
        max_page_mb: float = 20.0,
        codec: Literal["flac", "opus"] = "flac",
    ) -> None:
        if top_n < 1:
            raise ValueError(f"LatentExplorer.top_n must be >= 1, got {top_n}")
        self.top_n, self.split, self.out = top_n, split, out
        self.max_page_mb, self.codec = max_page_mb, codec

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
        root = self.out or RunLayout.of_trainer(trainer).explorer
        run = wandb_run(trainer)
        for e in pl_module.grid:
            sae = pl_module.sae(e)
            info = {"architecture": sae.architecture, "pooling": dm.pooling, "name": e.name}
            explore(
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
            )
