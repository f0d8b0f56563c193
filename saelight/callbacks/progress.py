"""Training progress as plain lines, for runs whose output goes to a log file (no TTY).

Lightning's bars redraw one terminal line; redirected to a file they show nothing until the end.
`LogProgress` prints `epoch 3/25 · step 120/1125 (11 %) · 85 batches/s · 10 900 rows/s · ETA
12s · train/loss 0.049` every `interval_s` seconds and once per epoch. `saelight fit` uses it in
place of the bar when stderr is not a terminal.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar

from saelight.io.progress import format_seconds


class LogProgress(ProgressBar):
    """Periodic plain progress lines on stderr (rank 0 only).

    Args:
        interval_s: seconds between lines within an epoch.
    """

    def __init__(self, interval_s: float = 10.0) -> None:
        super().__init__()
        self.interval_s = interval_s
        self._enabled = True
        self._start = self._last = 0.0
        self._rows = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = self._last = time.perf_counter()
        self._rows = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, idx: int
    ) -> None:
        x = batch.get("x") if isinstance(batch, dict) else None
        self._rows += int(x.shape[0]) if x is not None else 0
        now = time.perf_counter()
        if now - self._last >= self.interval_s:
            self._last = now
            self._print(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._print(trainer)

    def _print(self, trainer: L.Trainer) -> None:
        if not self._enabled or not trainer.is_global_zero:
            return
        elapsed = max(time.perf_counter() - self._start, 1e-9)
        step, total = trainer.global_step, trainer.estimated_stepping_batches
        parts = [f"epoch {trainer.current_epoch + 1}/{trainer.max_epochs}"]
        if isinstance(total, int) and total > 0:
            parts.append(f"step {step}/{total} ({100 * step / total:.0f} %)")
            eta = (total - step) * elapsed / max(step, 1)
        else:
            parts.append(f"step {step}")
            eta = None
        parts.append(f"{step / elapsed:.1f} steps/s")
        if self._rows:
            parts.append(f"{self._rows / elapsed:,.0f} rows/s".replace(",", " "))
        if eta is not None:
            parts.append(f"ETA {format_seconds(eta)}")
        loss = trainer.callback_metrics.get("train/loss")
        if loss is not None:
            parts.append(f"train/loss {float(loss):.4g}")
        print(" · ".join(parts), file=sys.stderr, flush=True)
