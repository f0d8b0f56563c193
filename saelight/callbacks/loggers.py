"""Where callbacks find the run's W&B run and the datamodule they need, in one place."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from saelight.data.datamodule import ActivationDataModule

log = logging.getLogger(__name__)


def wandb_loggers(trainer: L.Trainer) -> list[WandbLogger]:
    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def wandb_run(trainer: L.Trainer) -> Any:
    """The W&B run of the first `WandbLogger` (None without one)."""
    loggers = wandb_loggers(trainer)
    return loggers[0].experiment if loggers else None


def activation_datamodule(trainer: L.Trainer, who: str) -> ActivationDataModule | None:
    """The trainer's `ActivationDataModule`, or None (with a warning naming `who`) without one."""
    dm = trainer.datamodule
    if isinstance(dm, ActivationDataModule):
        return dm
    log.warning("%s needs saelight's ActivationDataModule (data: in the config); skipped", who)
    return None
