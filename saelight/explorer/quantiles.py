"""Examples of each latent drawn across its whole activation range, not only its top rows.

The top rows show what a latent does at its strongest; most of its firings are weaker, and a
latent can mean something else there. So each latent's firing rows (code > 0) are split into
`BANDS` equal-count bands by activation rank (band b holds the rows of rank r, ascending by code
then stream position, with floor(BANDS · r / fires) = b), and `PER_BAND` rows are drawn from
each band at random (seeded: the same codes give the same rows), leaving out the latent's top
rows, which the page shows already. Vectorised over every latent: O(nnz log nnz).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

BANDS = 4
"""Activation-quantile bands per latent (4: quartiles of its firing rows)."""
PER_BAND = 2
"""Rows drawn per band."""
SEED = 0
"""Seed of the draw."""


@dataclass
class QuantileSamples:
    """The drawn rows, slot by slot (S = bands · per_band slots, d = d_sae).

    Slots are breadth first, the order the page's media budget takes them in: each band's first
    row, highest band first, then each band's second row, and so on.

    Attributes:
        positions: (S, d) stream positions of the drawn rows (0 in an empty slot).
        values: (S, d) their codes (0 in an empty slot: a band with fewer rows).
        bands: (S, d) band of each slot, 0 = the weakest quarter (with `BANDS` = 4).
        n_bands: bands per latent.
    """

    positions: np.ndarray
    values: np.ndarray
    bands: np.ndarray
    n_bands: int

    def of(self, j: int) -> list[tuple[int, float, int]]:
        """[(stream position, code, band)] of latent j, highest band first, then by code."""
        full = self.values[:, j] > 0
        got = zip(self.positions[full, j], self.values[full, j], self.bands[full, j], strict=True)
        return sorted(((int(p), float(v), int(b)) for p, v, b in got), key=lambda s: (-s[2], -s[1]))


def quantile_samples(
    codes: sp.csc_matrix,
    top_positions: np.ndarray,
    top_values: np.ndarray,
    bands: int = BANDS,
    per_band: int = PER_BAND,
    seed: int = SEED,
) -> QuantileSamples:
    """Draw `per_band` rows of each activation band of each latent (module docstring).

    Args:
        codes: (n, d) CSC codes of the split (`CodeSummary.codes`).
        top_positions: (N, d) stream positions of each latent's top rows: never drawn.
        top_values: (N, d) their codes (0: no top row in that slot).
        bands: bands per latent.
        per_band: rows drawn per band.
        seed: seed of the draw.
    """
    if bands < 1 or per_band < 1:
        raise ValueError(f"bands and per_band must be >= 1, got {bands} and {per_band}")
    codes = sp.csc_matrix(codes)
    n, d = codes.shape
    counts = np.diff(codes.indptr)
    cols = np.repeat(np.arange(d), counts)
    rows, vals = codes.indices.astype(np.int64), codes.data.astype(np.float64)
    fired = vals > 0
    cols, rows, vals = cols[fired], rows[fired], vals[fired]
    fires = np.bincount(cols, minlength=d)
    order = np.lexsort((rows, vals, cols))  # by latent, then code, then position
    cols, rows, vals = cols[order], rows[order], vals[order]
    rank = np.arange(len(cols)) - np.searchsorted(cols, cols)
    band = rank * bands // np.maximum(fires[cols], 1)
    top = top_positions[top_values > 0].astype(np.int64)
    top_cols = np.broadcast_to(np.arange(d), top_positions.shape)[top_values > 0]
    free = ~np.isin(cols * max(n, 1) + rows, top_cols * max(n, 1) + top)
    cols, rows, vals, band = cols[free], rows[free], vals[free], band[free]
    key = np.random.default_rng(seed).random(len(cols))
    order = np.lexsort((key, band, cols))
    cols, rows, vals, band = cols[order], rows[order], vals[order], band[order]
    group = cols * bands + band
    within = np.arange(len(group)) - np.searchsorted(group, group)
    take = within < per_band
    slot = within[take] * bands + (bands - 1 - band[take])  # breadth first, highest band first
    shape = (bands * per_band, d)
    positions, values = np.zeros(shape, np.int64), np.zeros(shape)
    out_bands = np.tile((bands - 1 - np.arange(bands))[:, None], (per_band, d))
    positions[slot, cols[take]] = rows[take]
    values[slot, cols[take]] = vals[take]
    return QuantileSamples(positions, values, out_bands, bands)
