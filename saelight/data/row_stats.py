"""What a cache's training rows look like before an SAE sees them: outlier norms and positions.

Real encoders hold "massive activations" at a few fixed frame positions (Whisper-base layer 5:
rows 20x the median norm at frames 62-63) and positional features that an SAE spends latents on.
`measure` reads the train split once and gives, per layer, the median row norm, how many rows
exceed `multiple` x that median (and at which frames), and, for a frame cache, the mean row of
every frame position. `RowStats` then applies the two data options the same way wherever rows
meet an SAE (training, evaluation, explorer): `centre_positions` subtracts the frame's mean,
`max_norm_multiple` leaves out rows above that multiple of the median norm.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.numpy import load_file, save

from saelight.cache.reader import CacheReader
from saelight.io.atomic import atomic_write_bytes

log = logging.getLogger(__name__)

READ_ROWS = 65_536
"""Rows read at once by the stats pass (n_layers · dim · 4 bytes each)."""


@dataclass
class RowStats:
    """Per-layer statistics of a cache's train rows and the data options that use them.

    Attributes:
        layers: the cache's layers, in row order (`x[:, i]` is layer `layers[i]`).
        median_norm: (n_layers,) median ‖x‖ of the train rows (after centring when it is on).
        position_mean: (n_positions, n_layers, dim) mean train row per frame index, or None
            (clip pooling, or centring off).
        max_norm_multiple: rows above this multiple of their layer's median norm are left out
            (None: all rows kept).
        report: one line per layer with outliers (see `outlier_lines`).
    """

    layers: list[int]
    median_norm: np.ndarray
    position_mean: np.ndarray | None = None
    max_norm_multiple: float | None = None
    report: list[str] | None = None

    def centre(self, x: np.ndarray, frames: np.ndarray) -> np.ndarray:
        """x: (n, n_layers, dim) -> x − position_mean[frame] (x itself when centring is off).

        A frame index beyond the train rows' longest clip takes the last position's mean."""
        if self.position_mean is None:
            return x
        at = np.clip(frames, 0, len(self.position_mean) - 1)
        return x - self.position_mean[at]

    def keep(self, x: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor | None:
        """(n, n_layers) True where a (centred) row is kept, or None when nothing is left out."""
        if self.max_norm_multiple is None:
            return None
        limit = self.max_norm_multiple * self.median_norm
        if isinstance(x, torch.Tensor):
            return x.float().norm(dim=-1) <= torch.as_tensor(limit, device=x.device)
        return np.linalg.norm(x, axis=-1) <= limit

    def layer_rows(
        self, x: np.ndarray, frames: np.ndarray | None, layer_pos: int
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Rows x: (n, dim) of layer `layer_pos` -> (kept: (n,) bool, offset: (n, dim) or None),
        what training applies to them: the evaluation and explorer call this on held-out rows."""
        offset = None
        if self.position_mean is not None and frames is not None:
            offset = self.position_mean[np.clip(frames, 0, len(self.position_mean) - 1), layer_pos]
        kept = np.ones(len(x), dtype=bool)
        if self.max_norm_multiple is not None:
            centred = x if offset is None else x - offset
            limit = self.max_norm_multiple * self.median_norm[layer_pos]
            kept = np.linalg.norm(centred, axis=-1) <= limit
        return kept, offset

    def save(self, path: Path) -> None:
        """Writes the statistics (safetensors, atomically): standalone commands apply them too."""
        tensors = {"median_norm": self.median_norm.astype(np.float32)}
        if self.position_mean is not None:
            tensors["position_mean"] = self.position_mean.astype(np.float32)
        meta = {"layers": ",".join(map(str, self.layers))}
        if self.max_norm_multiple is not None:
            meta["max_norm_multiple"] = repr(self.max_norm_multiple)
        atomic_write_bytes(path, save(tensors, metadata=meta))

    @classmethod
    def load(cls, path: Path) -> RowStats:
        from safetensors import safe_open

        with safe_open(str(path), framework="np") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        multiple = meta.get("max_norm_multiple")
        return cls(
            layers=[int(v) for v in meta["layers"].split(",")],
            median_norm=tensors["median_norm"],
            position_mean=tensors.get("position_mean"),
            max_norm_multiple=float(multiple) if multiple is not None else None,
        )


def position_means(reader: CacheReader, rows: np.ndarray, frames: np.ndarray) -> np.ndarray:
    """(n_positions, n_layers, dim) mean row per frame index over `rows` (float64 sums)."""
    n_pos = int(frames.max()) + 1
    sums = np.zeros((n_pos, len(reader.layers), reader.dim))
    counts = np.bincount(frames, minlength=n_pos).astype(np.float64)
    for start in range(0, len(rows), READ_ROWS):
        x = reader.read(rows[start : start + READ_ROWS])
        np.add.at(sums, frames[start : start + READ_ROWS], x)
    return (sums / np.maximum(counts, 1)[:, None, None]).astype(np.float32)


def outlier_lines(
    layers: list[int], ratio: np.ndarray, frames: np.ndarray | None, multiple: float
) -> list[str]:
    """One line per layer that has train rows above `multiple` x its median norm.

    ratio: (n, n_layers) each row's norm / its layer's median; frames: (n,) or None (clips).
    E.g. "layer 5: 212 of 50 000 train rows above 10x the median norm (frames 62-63), largest
    20.6x"."""
    lines = []
    for i, layer in enumerate(layers):
        above = ratio[:, i] > multiple
        if not above.any():
            continue
        where = ""
        if frames is not None:
            at = np.unique(frames[above])
            shown = ", ".join(map(str, at[:6])) + (", ..." if len(at) > 6 else "")
            where = f" (frame{'s' if len(at) > 1 else ''} {shown})"
        lines.append(
            f"layer {layer}: {int(above.sum()):,} of {len(ratio):,} train rows above "
            f"{multiple:g}x the median norm{where}, largest {float(ratio[:, i].max()):.1f}x"
        )
    return lines


def measure(
    reader: CacheReader,
    rows: np.ndarray,
    report_multiple: float,
    max_norm_multiple: float | None = None,
    centre_positions: bool = False,
) -> RowStats:
    """The train rows' statistics (one read of `rows`; two with `centre_positions`).

    Args:
        reader: the cache.
        rows: its train rows.
        report_multiple: rows above this multiple of the median norm are counted in the report
            (`max_norm_multiple` when that is set).
        max_norm_multiple: see `RowStats`.
        centre_positions: subtract each frame position's mean (frame caches only).
    """
    frame_column = reader.column("frame")
    frames = frame_column[rows] if frame_column is not None else None
    if frames is not None and (frames < 0).all():
        frames = None  # clip pooling: one row per crop, no positions
    stats = RowStats(layers=list(reader.layers), median_norm=np.ones(len(reader.layers)))
    if centre_positions:
        if frames is None:
            raise ValueError(
                "data.centre_positions needs a frame-level cache (cache.pooling: frame); "
                f"cache {reader.directory} holds one row per clip"
            )
        stats.position_mean = position_means(reader, rows, frames)
    norms = np.empty((len(rows), len(reader.layers)), dtype=np.float32)
    for start in range(0, len(rows), READ_ROWS):
        part = rows[start : start + READ_ROWS]
        x = reader.read(part)
        if frames is not None:
            x = stats.centre(x, frames[start : start + READ_ROWS])
        norms[start : start + len(part)] = np.linalg.norm(x, axis=-1)
    stats.median_norm = np.maximum(np.median(norms, axis=0), np.finfo(np.float32).tiny)
    stats.max_norm_multiple = max_norm_multiple
    multiple = max_norm_multiple if max_norm_multiple is not None else report_multiple
    stats.report = outlier_lines(stats.layers, norms / stats.median_norm, frames, multiple)
    return stats
