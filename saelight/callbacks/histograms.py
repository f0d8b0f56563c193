"""Feature-density and L0 histograms of every SAE on the validation split, as W&B histograms."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch
from lightning.pytorch.loggers import WandbLogger

from saelight.metrics.sparsity import feature_density, l0_histogram, log10_density
from saelight.module import SAEModule


class FeatureHistograms(L.Callback):
    """Every N validation epochs, logs `<layer>/<name>/val/log10_feature_density` (one value per
    latent: log10 of the fraction of rows it fires on) and `<layer>/<name>/val/l0` (one value per
    row) as `wandb.Histogram`s. Only W&B loggers receive them (the CSV logger keeps the scalars).

    Args:
        every_n_val_epochs: cadence in validation epochs.
        max_rows: validation rows used (a seeded subsample of larger splits).
    """

    def __init__(self, every_n_val_epochs: int = 1, max_rows: int = 20_000) -> None:
        if every_n_val_epochs < 1:
            raise ValueError(
                f"FeatureHistograms.every_n_val_epochs must be >= 1, got {every_n_val_epochs}"
            )
        self.every, self.max_rows = every_n_val_epochs, max_rows

    def on_validation_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        loggers = [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]
        if trainer.sanity_checking or not loggers or not trainer.is_global_zero:
            return
        if (trainer.current_epoch + 1) % self.every:
            return
        import wandb

        reader = trainer.datamodule.reader
        rows = reader.split_rows("val")
        if len(rows) > self.max_rows:
            rows = np.sort(np.random.default_rng(0).choice(rows, self.max_rows, replace=False))
        x = torch.from_numpy(reader.read(rows)).to(pl_module.device)
        logs = {}
        with torch.no_grad():
            for e in pl_module.grid:
                z = pl_module.sae(e).encode(x[:, e.layer_pos])
                density = log10_density(feature_density(z)["density"]).cpu().numpy()
                per_row = np.repeat(np.arange(z.shape[1] + 1), l0_histogram(z).cpu().numpy())
                logs[f"{e.prefix}/val/log10_feature_density"] = wandb.Histogram(density)
                logs[f"{e.prefix}/val/l0"] = wandb.Histogram(per_row)
        for logger in loggers:
            logger.experiment.log({**logs, "trainer/global_step": trainer.global_step})
