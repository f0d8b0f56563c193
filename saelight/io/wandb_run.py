"""A W&B run of a command's own (`report`, `inspect`, `splice` … `--wandb`): the project name and
the offline default in one place, for commands that run after their fit's run has finished."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

WANDB_PROJECT = "saelight"
"""The W&B project of every run saelight starts (the fit's WandbLogger and the commands')."""


def new_wandb_run(job_type: str, folder: str | Path, config: dict[str, Any]) -> Any:
    """`wandb.init` under `folder` (created), offline unless WANDB_MODE says otherwise."""
    import wandb

    Path(folder).mkdir(parents=True, exist_ok=True)
    return wandb.init(
        project=WANDB_PROJECT,
        job_type=job_type,
        dir=str(folder),
        mode=os.environ.get("WANDB_MODE", "offline"),
        config=config,
    )
