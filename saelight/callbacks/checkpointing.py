"""Checkpoints that follow the work: `last.ckpt` on a time interval, written atomically.

Lightning's `ModelCheckpoint(save_last=True, save_top_k=0)` writes `last.ckpt` only when training
ends, and its own writer is atomic only where `$TMPDIR` and the run directory share a file system
(it saves into `$TMPDIR`, then `shutil.move`s: a copy, not a rename, onto a cluster's shared disk).
`RunCheckpoint` also saves every `every_minutes` of training and always saves the final state;
`AtomicCheckpointIO` writes every checkpoint of the trainer (these, the preemption save, SLURM's
`hpc_ckpt`) to a temp file beside the target, fsyncs it and renames it into place.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import lightning as L
import torch
from fsspec.implementations.local import LocalFileSystem
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.fabric.utilities.cloud_io import get_filesystem
from lightning.pytorch.callbacks import ModelCheckpoint

from saelight.io.atomic import atomic_write
from saelight.io.errors import ConfigError

EVERY_MINUTES = 10.0
"""The default interval: a kill loses at most ~10 minutes of training, while writing even a
large grid's checkpoint (GBs, seconds) costs well under 1 % of the run (benchmarks/README.md)."""


class AtomicCheckpointIO(TorchCheckpointIO):
    """`TorchCheckpointIO` whose local saves go to `.<name>.tmp<pid>` beside the target, are
    fsynced and renamed into place: a kill or a full disk never leaves half a checkpoint where
    the last good one was. Remote paths (s3://, …) keep Lightning's writer."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: Any, storage_options: Any | None = None
    ) -> None:
        if storage_options is not None or not isinstance(get_filesystem(path), LocalFileSystem):
            super().save_checkpoint(checkpoint, path, storage_options)
            return
        atomic_write(path, lambda f: torch.save(checkpoint, f))
        _fsync_dir(Path(path).parent)


def _fsync_dir(directory: Path) -> None:
    """Make the rename itself durable (a crash right after it keeps the new file)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory; the rename is still atomic
    finally:
        os.close(fd)


def use_atomic_checkpoints(trainer: L.Trainer) -> None:
    """Give `trainer` the atomic writer, unless its strategy brought a writer of its own."""
    if type(trainer.strategy.checkpoint_io) is TorchCheckpointIO:
        trainer.strategy.checkpoint_io = AtomicCheckpointIO()


class RunCheckpoint(ModelCheckpoint):
    """`last.ckpt` every `every_minutes` of training (at a batch end) and when training ends.

    A run killed at any point resumes with `--ckpt_path last` from a checkpoint at most one
    interval old, and continues bit-identical (CPU, fixed seeds; tests/test_resume.py).

    Args:
        dirpath: folder of `last.ckpt` (the standard callbacks use `<run>/checkpoints`).
        every_minutes: minutes of training between saves; 0 saves after every batch, None only
            when training ends (Lightning's `save_last` alone).
    """

    def __init__(self, dirpath: str | None = None, every_minutes: float | None = EVERY_MINUTES):
        if every_minutes is not None and not every_minutes >= 0:
            raise ConfigError(f"RunCheckpoint.every_minutes must be >= 0, got {every_minutes}")
        interval = None if every_minutes is None else timedelta(minutes=every_minutes)
        super().__init__(
            dirpath=dirpath, save_last=True, save_top_k=0, train_time_interval=interval
        )
        self.every_minutes = every_minutes

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Lightning saves here only if nothing was saved before: after an interval save, the
        # final steps and the last validation (best exports' scores) would be lost.
        if trainer.fast_dev_run:
            return
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
