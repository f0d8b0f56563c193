"""Feature-density and L0 histograms of every SAE on the validation split, as W&B histograms."""

from __future__ import annotations

import lightning as L
import numpy as np

from saelight.callbacks.loggers import wandb_loggers
from saelight.metrics.sparsity import log10_density
from saelight.module import SAEModule


class FeatureHistograms(L.Callback):
    """Every N validation epochs, logs `wandb.Histogram`s of `<layer>/<name>/val/
    log10_feature_density` (one value per latent: log10 of the fraction of validation rows it
    fires on) and `<layer>/<name>/val/l0_histogram` (one value per row; the scalar mean stays
    `…/val/l0`). The distributions come from the module's validation metrics
    (`SAEModule.val_distributions`), so nothing is read or encoded again. Only W&B loggers
    receive them (the CSV logger keeps the scalars).

    Args:
        every_n_val_epochs: cadence in validation epochs.
    """

    def __init__(self, every_n_val_epochs: int = 1) -> None:
        if every_n_val_epochs < 1:
            raise ValueError(
                f"FeatureHistograms.every_n_val_epochs must be >= 1, got {every_n_val_epochs}"
            )
        self.every = every_n_val_epochs

    def on_validation_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        loggers = wandb_loggers(trainer)
        if trainer.sanity_checking or not loggers or not trainer.is_global_zero:
            return
        if (trainer.current_epoch + 1) % self.every:
            return
        import wandb

        logs = {}
        for e in pl_module.grid:
            if e.key not in pl_module.val_distributions:
                continue
            density, l0_counts = pl_module.val_distributions[e.key]
            per_row = np.repeat(np.arange(len(l0_counts)), l0_counts.cpu().numpy())
            logs[f"{e.prefix}/val/log10_feature_density"] = wandb.Histogram(
                log10_density(density).cpu().numpy()
            )
            logs[f"{e.prefix}/val/l0_histogram"] = wandb.Histogram(per_row)
        for logger in loggers:
            logger.experiment.log({**logs, "trainer/global_step": trainer.global_step})
