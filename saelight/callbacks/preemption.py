"""SIGTERM / SIGUSR1 during training: save `last.ckpt` at the end of the batch, exit non-zero.

A scheduler sends SIGTERM (or the `--signal` of the job) on pre-emption or time-out. Lightning
only notes SIGTERM and stops with exit status 0 and no checkpoint: a job script reads that as
success. `Preemption` (added to every `saelight fit` by the CLI) sets a flag in the handler and,
at the next batch end (the point where `ModelCheckpoint` saves its step checkpoints, so the
resume is exact), saves `last.ckpt` through the run's checkpoint callback and raises `Preempted`:
the console script exits with 128 + the signal number (143 for SIGTERM). Under SLURM with
Lightning's auto-requeue, Lightning keeps SIGUSR1 (`hpc_ckpt` + `scontrol requeue`); a SIGTERM
there is still saved and exits 143.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

import lightning as L
import torch
import torch.distributed as dist
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.plugins.environments import SLURMEnvironment

from saelight.io.layout import RunLayout

log = logging.getLogger("saelight")

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


class Preempted(SystemExit):
    """Training stopped on a signal after saving its checkpoint (exit status 128 + signal)."""

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.signum = signum


def slurm_requeues(trainer: L.Trainer) -> bool:
    """Whether Lightning handles SIGUSR1 itself (SLURM with `auto_requeue`)."""
    env = trainer._accelerator_connector.cluster_environment
    return isinstance(env, SLURMEnvironment) and env.auto_requeue


def save_last(trainer: L.Trainer) -> str:
    """Save `last.ckpt` through the first checkpoint callback with `save_last` (its name, its
    folder, its `last_model_path` state), else as `<run>/checkpoints/last.ckpt`."""
    for callback in trainer.checkpoint_callbacks:
        if isinstance(callback, ModelCheckpoint) and callback.save_last and callback.dirpath:
            callback._save_last_checkpoint(trainer, callback._monitor_candidates(trainer))
            return callback.last_model_path
    path = str(RunLayout.of_trainer(trainer).checkpoints / "last.ckpt")
    trainer.save_checkpoint(path)
    return path


class Preemption(L.Callback):
    """Turns SIGTERM and SIGUSR1 during training into a saved `last.ckpt` and exit 128 + signal."""

    def __init__(self) -> None:
        self.received = 0
        self._previous: dict[int, Any] = {}
        self._launcher: Any = None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received:
            return
        self.received = signum
        # Processes that Lightning's launcher started (DDP without torchrun) get the signal too.
        kill = getattr(self._launcher, "kill", None)
        if callable(kill):
            kill(signum)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.received = 0
        if slurm_requeues(trainer) or threading.current_thread() is not threading.main_thread():
            return  # Lightning's handlers stay; `trainer.received_sigterm` is still read below
        self._launcher = trainer.strategy.launcher
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any
    ) -> None:
        signum = self.received or (int(signal.SIGTERM) if trainer.received_sigterm else 0)
        if trainer.world_size > 1 and dist.is_available() and dist.is_initialized():
            # Every rank stops at the same batch (the signal may reach only some of them).
            flag = torch.tensor([signum], device=trainer.strategy.root_device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            signum = int(flag.item())
        if not signum:
            return
        path = save_last(trainer)
        if trainer.is_global_zero:
            log.warning(
                "%s received: saved %s at step %d; resume with --ckpt_path last",
                signal.Signals(signum).name,
                path,
                trainer.global_step,
            )
        raise Preempted(signum)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, error: Any) -> None:
        self._restore()

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        self._restore()

    def _restore(self) -> None:
        for signum, handler in self._previous.items():
            if handler is not None:
                signal.signal(signum, handler)
        self._previous = {}
