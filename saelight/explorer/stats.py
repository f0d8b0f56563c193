"""Streaming per-latent statistics of SAE codes: running sums, top-N rows and the sparse codes.

`LatentStats.update` takes one batch of dense codes z: (batch, d_sae) at a time and keeps only

* running sums per latent (firing count, sum of activations, maximum),
* the top-N activations per latent and their stream positions, merged batch by batch with
  `torch.topk` over the concatenation [current top-N; batch] along the row axis,
* the non-zero codes in coordinate form, turned into a `scipy.sparse.csc_matrix` by `finish`.

So memory is O(nnz + N·d_sae), never O(rows·d_sae): with a TopK SAE nnz = k·rows. A latent
"fires" on a row when its code is > 0 (SAE codes are non-negative).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor


@dataclass
class CodeSummary:
    """Everything `LatentStats` gathered, as numpy arrays (d = d_sae, N = top_n).

    Attributes:
        n_rows: rows streamed.
        fires: (d,) rows on which each latent fired (code > 0).
        total: (d,) sum of each latent's codes.
        max: (d,) largest code of each latent (0 if it never fired).
        top_values: (N', d) top activations per latent, descending (N' = min(N, n_rows)); entries
            after a latent's last firing row are 0.
        top_positions: (N', d) stream positions (0..n_rows-1) of `top_values`.
        codes: (n_rows, d) CSC matrix of the non-zero codes.
    """

    n_rows: int
    fires: np.ndarray
    total: np.ndarray
    max: np.ndarray
    top_values: np.ndarray
    top_positions: np.ndarray
    codes: sp.csc_matrix

    @property
    def d_sae(self) -> int:
        return int(self.fires.shape[0])

    @property
    def frequency(self) -> np.ndarray:
        """(d,) fraction of rows on which each latent fires."""
        return self.fires / max(self.n_rows, 1)

    @property
    def mean_when_firing(self) -> np.ndarray:
        """(d,) mean code over the rows where the latent fires (0 for a latent that never fires)."""
        return np.divide(
            self.total, self.fires, out=np.zeros_like(self.total), where=self.fires > 0
        )

    def histogram(self, bins: int = 16) -> np.ndarray:
        """(d, bins) counts of each latent's non-zero codes in `bins` equal bins over (0, max_j]."""
        codes, d = self.codes, self.d_sae
        cols = np.repeat(np.arange(d), np.diff(codes.indptr))
        scale = np.divide(bins, self.max, out=np.zeros_like(self.max), where=self.max > 0)
        which = np.minimum((codes.data * scale[cols]).astype(np.int64), bins - 1)
        return np.bincount(cols * bins + which, minlength=d * bins).reshape(d, bins)


class LatentStats:
    """Accumulates `CodeSummary` over batches of codes.

    Args:
        d_sae: number of latents.
        top_n: activations kept per latent.

    Example:
        >>> stats = LatentStats(d_sae=3, top_n=2)
        >>> stats.update(torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, 1.0]]))
        >>> stats.update(torch.tensor([[1.0, 0.0, 5.0]]))
        >>> s = stats.finish()
        >>> s.fires.tolist(), s.top_positions[:, 2].tolist()
        ([2, 1, 3], [2, 0])
    """

    def __init__(self, d_sae: int, top_n: int = 10) -> None:
        if d_sae < 1 or top_n < 1:
            raise ValueError(f"d_sae and top_n must be >= 1, got {d_sae} and {top_n}")
        self.d_sae, self.top_n = d_sae, top_n
        self.n_rows = 0
        self.fires = torch.zeros(d_sae, dtype=torch.int64)
        self.total = torch.zeros(d_sae, dtype=torch.float64)
        self.max = torch.zeros(d_sae, dtype=torch.float32)
        self.top_values = torch.zeros(0, d_sae)
        self.top_positions = torch.zeros(0, d_sae, dtype=torch.int64)
        self._parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    @torch.no_grad()
    def update(self, z: Tensor) -> None:
        """Add the codes z: (batch, d_sae) of the next `batch` rows of the stream."""
        if z.ndim != 2 or z.shape[1] != self.d_sae:
            raise ValueError(f"codes must be (batch, {self.d_sae}), got {tuple(z.shape)}")
        z = z.detach().float().cpu().clamp_min(0.0)
        fired = z > 0
        self.fires += fired.sum(0)
        self.total += z.sum(0, dtype=torch.float64)
        if len(z):
            self.max = torch.maximum(self.max, z.amax(0))
        positions = torch.arange(self.n_rows, self.n_rows + len(z))
        values = torch.cat([self.top_values, z])
        where = torch.cat([self.top_positions, positions[:, None].expand(-1, self.d_sae)])
        top, idx = values.topk(min(self.top_n, len(values)), dim=0)
        self.top_values, self.top_positions = top, where.gather(0, idx)
        rows, cols = fired.nonzero(as_tuple=True)
        self._parts.append(((rows + self.n_rows).numpy(), cols.numpy(), z[rows, cols].numpy()))
        self.n_rows += len(z)

    def finish(self) -> CodeSummary:
        """The statistics so far; the sparse code matrix is assembled here."""
        if self._parts:
            rows, cols, vals = (np.concatenate(part) for part in zip(*self._parts, strict=True))
        else:
            rows, cols, vals = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        codes = sp.csc_matrix(
            (vals.astype(np.float32), (rows, cols)), shape=(self.n_rows, self.d_sae)
        )
        codes.sum_duplicates()
        codes.eliminate_zeros()
        return CodeSummary(
            n_rows=self.n_rows,
            fires=self.fires.numpy().copy(),
            total=self.total.numpy().copy(),
            max=self.max.double().numpy(),
            top_values=self.top_values.numpy().copy(),
            top_positions=self.top_positions.numpy().copy(),
            codes=codes,
        )
