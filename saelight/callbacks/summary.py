"""A model summary that says what the grid is, instead of Lightning's FLOPs table.

Lightning's summary counts FLOPs from an `example_input_array`; `SAEModule` has none (its step
trains a whole grid), so the table ends in "Total FLOPs: 0", a number the user can do nothing
about. `GridSummary` prints the parameter counts and one line per SAE of the grid.
"""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelSummary
from lightning.pytorch.utilities import rank_zero_info


class GridSummary(ModelSummary):
    """At fit start: parameter counts, then `L02_topk_s90: topk, d_sae 512, k 51` per SAE."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from saelight.callbacks.config_log import grid_identities

        trainable = sum(p.numel() for p in pl_module.parameters() if p.requires_grad)
        total = sum(p.numel() for p in pl_module.parameters())
        lines = [f"SAE grid: {trainable:,} trainable parameters of {total:,}".replace(",", " ")]
        for key, ident in grid_identities(pl_module).items():
            lines.append(f"  {key}: " + ", ".join(_describe(ident)))
        rank_zero_info("\n".join(lines))


def _describe(ident: dict[str, Any]) -> list[str]:
    parts = [str(ident.get("architecture"))]
    for field in ("d_sae", "k", "sparsity"):
        if ident.get(field) is not None:
            parts.append(f"{field} {ident[field]}")
    return parts
