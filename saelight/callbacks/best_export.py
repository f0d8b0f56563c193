"""Keeps each SAE's best weights (by validation MSE) as an interoperable export, like the paper's
"best checkpoint by validation MSE", but per SAE of the grid."""

from __future__ import annotations

import json
import math
from typing import Any

import lightning as L

from saelight.callbacks.generation import run_generation
from saelight.callbacks.loggers import activation_datamodule
from saelight.io.atomic import atomic_write_text
from saelight.io.generation import GENERATION
from saelight.io.layout import BEST_FILE, RunLayout
from saelight.module import SAEModule

__all__ = ["BEST_FILE", "BestSAEExport"]


class BestSAEExport(L.Callback):
    """After every validation epoch, re-export each SAE whose `val/<monitor>` improved.

    Writes `<dir>/saes/<key>/{cfg.json,sae_weights.safetensors}` and `<dir>/saes/best.json`
    (per SAE: layer, name, epoch, step and every validation metric at its best epoch), each
    stamped with the fit's `generation` (`saelight.io.generation`).

    Args:
        dirpath: run directory (default: trainer.default_root_dir).
        monitor: validation metric that selects the best epoch (lower is better).
    """

    def __init__(self, dirpath: str | None = None, monitor: str = "mse") -> None:
        self.dirpath, self.monitor = dirpath, monitor
        self.best: dict[str, dict[str, Any]] = {}

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.best = dict(state_dict.get("best", {}))

    def on_validation_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        if trainer.sanity_checking:
            return
        out = RunLayout.of_trainer(trainer, self.dirpath).saes
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if "/val/" in k}
        dm = activation_datamodule(trainer, "BestSAEExport")
        backbone = dm.backbone_identity() if dm is not None else {}
        pooling = dm.pooling if dm is not None else "unknown"
        generation = run_generation(trainer)
        stamp = {GENERATION: generation} if generation else {}
        changed = False
        for e in pl_module.grid:
            value = metrics.get(f"{e.prefix}/val/{self.monitor}")
            if value is None or not math.isfinite(value):
                continue
            previous = self.best.get(e.key, {}).get(self.monitor, math.inf)
            if value < previous:
                changed = True
                self.best[e.key] = {
                    "layer": e.layer,
                    "name": e.name,
                    "epoch": trainer.current_epoch,
                    "step": trainer.global_step,
                    **{
                        k.rsplit("/", 1)[-1]: v
                        for k, v in metrics.items()
                        if k.startswith(f"{e.prefix}/val/")
                    },
                }
                if trainer.is_global_zero:
                    pl_module.sae(e).save_pretrained(
                        out / e.key,
                        backbone=backbone,
                        layer=e.layer,
                        name=e.name,
                        grid_sparsity=e.sparsity,
                        pooling=pooling,
                        **stamp,
                    )
        if changed and trainer.is_global_zero:
            best = {key: {**entry, **stamp} for key, entry in self.best.items()}
            atomic_write_text(out / BEST_FILE, json.dumps(best, indent=1))
