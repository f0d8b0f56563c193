"""The rows of a batch each SAE trains and is scored on: finite, centred, outliers left out.

The datamodule marks a batch (`offset`: the position means to centre by; `keep`: the rows below
`data.max_norm_multiple`, per layer); this is the one place the module applies those marks and
its own non-finite policy, so that training, validation and test see the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor


@dataclass
class BatchRows:
    """A batch after the non-finite policy: x (n, n_layers, dim) as the SAEs see it (centred when
    `offset` is set), `keep` (n, n_layers) or None, `offset` (n, n_layers, dim) or None."""

    x: Tensor
    keep: Tensor | None = None
    offset: Tensor | None = None
    nonfinite: int = 0

    def layer(self, layer_pos: int) -> tuple[Tensor, Tensor | None]:
        """(SAE input rows of one layer, their offsets or None), outliers left out."""
        x = self.x[:, layer_pos]
        offset = None if self.offset is None else self.offset[:, layer_pos]
        if self.keep is not None:
            kept = self.keep[:, layer_pos]
            x = x[kept]
            offset = None if offset is None else offset[kept]
        return x, offset


def batch_rows(batch: dict[str, Tensor], drop_nonfinite: bool) -> BatchRows:
    """The batch's rows, centred by its `offset`; non-finite rows dropped when `drop_nonfinite`
    (else a ValueError), counted in `nonfinite`.

    One sum first (no (batch, dim) mask): any NaN/Inf makes it non-finite, and so may an overflow,
    which the exact per-row test then clears. One scalar read-back per batch.
    """
    x, keep, offset = batch["x"], batch.get("keep"), batch.get("offset")
    if offset is not None:
        x = x - offset
    rows = BatchRows(x, keep, offset)
    if bool(torch.isfinite(x.sum())):
        return rows
    finite = torch.isfinite(x).flatten(1).all(1)
    if bool(finite.all()):
        return rows
    if not drop_nonfinite:
        raise ValueError(
            f"{int((~finite).sum())} cached rows hold NaN/Inf activations; set "
            "model.nonfinite: skip to drop them"
        )
    return BatchRows(
        x[finite],
        None if keep is None else keep[finite],
        None if offset is None else offset[finite],
        nonfinite=int((~finite).sum()),
    )
