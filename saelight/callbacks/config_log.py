"""The run's resolved config and its SAE grid in W&B, so runs filter and group by them.

LightningCLI saves the resolved config as `config.yaml`; W&B would otherwise see an empty run
config. `LoggedConfig` logs that same config (nested: `model.sparsities`, `data.cache.backbone…`)
and, per SAE, its identity under `grid.<key>` (layer, architecture, k, sparsity, d_sae) plus a
`grid` table, so a sweep's runs compare in the W&B UI.

`config.yaml` is written when training starts (after the data loaders are built and the sanity
check has run, under the run directory's lock), not at setup as Lightning does: a fit that fails
its start-up checks leaves a finished run's `config.yaml` as it was. `validate` and `test` never
write it (the run's config is its fit's). It is written atomically, its first line a comment
naming the fit's generation (`saelight.io.generation`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.cli import SaveConfigCallback

from saelight.callbacks.generation import run_generation
from saelight.callbacks.loggers import wandb_loggers
from saelight.evaluation.layer import sae_identity
from saelight.io.atomic import atomic_write_text
from saelight.io.errors import SaelightError
from saelight.io.generation import config_header


def grid_identities(pl_module: L.LightningModule) -> dict[str, dict[str, Any]]:
    """{SAE key: {layer, name, architecture, k, sparsity, d_sae}} of an `SAEModule`'s grid."""
    grid = getattr(pl_module, "grid", None) or []
    return {
        e.key: {"layer": e.layer, "name": e.name, **sae_identity(pl_module.sae(e))} for e in grid
    }


class LoggedConfig(SaveConfigCallback):
    """`SaveConfigCallback` that also writes the config and the SAE grid into every W&B run."""

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit" and not self.already_saved and trainer.is_global_zero:
            self.save_config(trainer, pl_module, stage)  # W&B only: config.yaml stays the fit's
            self.already_saved = True

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """Lightning's `setup` for "fit", but config.yaml is written atomically and opens with
        the fit's generation (a YAML comment: the file still re-runs as a config)."""
        if self.already_saved:
            return
        log_dir = trainer.log_dir  # broadcast from rank 0
        if trainer.is_global_zero and self.save_to_log_dir and log_dir is not None:
            path = Path(log_dir) / self.config_filename
            if not self.overwrite and path.exists():
                raise SaelightError(
                    f"{path} exists: LoggedConfig(overwrite=False) keeps a previous run's config"
                )
            text = self.parser.dump(self.config, skip_none=False)
            atomic_write_text(path, config_header(run_generation(trainer)) + text)
        if trainer.is_global_zero:
            self.save_config(trainer, pl_module, "fit")
            self.already_saved = True
        self.already_saved = trainer.strategy.broadcast(self.already_saved)

    def save_config(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        loggers = wandb_loggers(trainer)
        if not loggers:
            return
        import wandb

        config = yaml.safe_load(self.parser.dump(self.config, skip_none=False)) or {}
        grid = grid_identities(pl_module)
        columns = ["key", "layer", "name", "architecture", "k", "sparsity", "d_sae"]
        rows = [[key, *(ident.get(c) for c in columns[1:])] for key, ident in grid.items()]
        for logger in loggers:
            run = logger.experiment
            run.config.update({**config, "grid": grid}, allow_val_change=True)
            run.log({"grid": wandb.Table(columns=columns, data=rows)}, commit=False)
