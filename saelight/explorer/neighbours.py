"""Each latent's nearest other latents, for the feature page: by decoder direction and by firing.

* `decoder_neighbours`: the cosine between rows of `W_dec` (d_sae, d_in), the direction each
  latent writes into the activation space. Two latents with cosine near 1 write the same thing.
* `coactivation_neighbours`: the Jaccard index of the sets of rows on which two latents fire,
  J(i, j) = |A_i ∩ A_j| / |A_i ∪ A_j| = both / (fires_i + fires_j - both), in [0, 1]: 1 when they
  fire on exactly the same rows, 0 when never together. Unlike a raw count it does not rank a
  latent that fires everywhere first for everyone. A latent that never fires has no
  co-activation neighbours and is no one's.

Both go over the latents in blocks of `BLOCK`, so memory is O(BLOCK · d_sae), never
d_sae × d_sae at once (at 16384 latents a block is 32 MB of float32); the co-firing counts come
from a sparse product of the firing indicators, block by block. Ties go to the lower latent id.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

NEIGHBOURS = 5
"""Nearest latents listed per latent and measure."""
BLOCK = 512
"""Latents whose neighbours are found at once."""


@dataclass
class Neighbours:
    """Each latent's nearest other latents by one measure (k = neighbours asked for).

    Attributes:
        ids: (d, k) neighbour ids, best first; -1 where a latent has fewer than k.
        scores: (d, k) their cosine or Jaccard index; NaN where `ids` is -1.
    """

    ids: np.ndarray
    scores: np.ndarray

    def of(self, j: int) -> list[tuple[int, float]]:
        """[(neighbour id, score)] of latent j, best first."""
        keep = self.ids[j] >= 0
        return list(zip(self.ids[j, keep].tolist(), self.scores[j, keep].tolist(), strict=True))


def _best(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(rows, k) column ids of the k largest finite entries of each row of `values` (no NaN;
    -inf = not a candidate), ties to the lower id, and those entries; -1 / NaN where a row has
    fewer."""
    n_rows, d = values.shape
    if min(k, d) == 0:
        return _best_sparse(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), n_rows, k)
    # candidates: every entry tied with the k-th largest, so that the lower ids win ties; taken
    # from the top 2k + 1 (torch.topk: np.partition crawls on rows of mostly -inf), and from the
    # whole row only where the ties may run past those
    top = torch.from_numpy(values).topk(min(2 * k + 1, d), dim=1)
    vals, idx = top.values.numpy(), top.indices.numpy()
    kth = vals[:, min(k, d) - 1, None]
    spill = (vals.shape[1] < d) & (vals[:, -1] >= kth[:, 0]) & (kth[:, 0] > -np.inf)
    r, c = np.nonzero((vals >= kth) & (vals > -np.inf) & ~spill[:, None])
    rows, cols, found = [r], [idx[r, c]], [vals[r, c]]
    if spill.any():
        many = np.flatnonzero(spill)
        r, c = np.nonzero(values[many] >= kth[many])
        rows, cols, found = [*rows, many[r]], [*cols, c], [*found, values[many[r], c]]
    rows, cols, found = (np.concatenate(x) for x in (rows, cols, found))
    return _best_sparse(rows, cols, found.astype(np.float64), n_rows, k)


def decoder_neighbours(w_dec: np.ndarray, k: int = NEIGHBOURS, block: int = BLOCK) -> Neighbours:
    """The k latents whose decoder rows have the largest cosine with each latent's row.

    Args:
        w_dec: (d_sae, d_in) decoder (`SAE.W_dec`); a zero row has cosine 0 with every row.
        k: neighbours per latent.
        block: latents per block (memory O(block · d_sae)).
    """
    w = np.asarray(w_dec, dtype=np.float32)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    unit = np.divide(w, norms, out=np.zeros_like(w), where=norms > 0)
    d = len(unit)
    ids, scores = np.full((d, k), -1, np.int64), np.full((d, k), np.nan)
    for a in range(0, d, block):
        b = min(a + block, d)
        cos = unit[a:b] @ unit.T
        cos[np.arange(b - a), np.arange(a, b)] = -np.inf  # not its own neighbour
        ids[a:b], scores[a:b] = _best(cos, k)
    return Neighbours(ids, np.clip(scores, -1.0, 1.0))  # rounding can pass 1 by an ulp


def coactivation_neighbours(
    codes: sp.spmatrix, k: int = NEIGHBOURS, block: int = BLOCK
) -> Neighbours:
    """The k latents with the largest Jaccard index of firing rows with each latent (module
    docstring); a latent never firing with it is not listed.

    Args:
        codes: (n, d) codes (`CodeSummary.codes`); a latent fires on a row where its code > 0.
        k: neighbours per latent.
        block: latents per block (memory O(block · d_sae)).
    """
    fired = sp.csc_matrix(codes, copy=True)
    fired.data = (fired.data > 0).astype(np.float32)
    fired.eliminate_zeros()
    fires = np.asarray(fired.sum(0), dtype=np.float32).ravel()
    d = fired.shape[1]
    ids, scores = np.full((d, k), -1, np.int64), np.full((d, k), np.nan)
    live = np.flatnonzero(fires > 0)  # a dead latent is no one's neighbour and has none
    fired, fires = fired[:, live], fires[live]
    rows_of = fired.T.tocsr()
    for a in range(0, len(live), block):
        b = min(a + block, len(live))
        both = (rows_of[a:b] @ fired).toarray()  # (b - a, live): rows on which both fire
        union = fires[a:b, None] + fires[None, :] - both
        jaccard = np.divide(both, union, out=np.full_like(both, -np.inf), where=both > 0)
        jaccard[np.arange(b - a), np.arange(a, b)] = -np.inf  # not its own neighbour
        found, scores[live[a:b]] = _best(jaccard, k)
        ids[live[a:b]] = np.where(found >= 0, live[np.maximum(found, 0)], -1)
    return Neighbours(ids, scores)


def _best_sparse(
    rows: np.ndarray, cols: np.ndarray, values: np.ndarray, n_rows: int, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """`_best` over the entries (rows, cols, values) of a sparse (n_rows, ·) matrix: only stored
    entries are candidates."""
    ids, scores = np.full((n_rows, k), -1, np.int64), np.full((n_rows, k), np.nan)
    order = np.lexsort((cols, -values, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    rank = np.arange(len(rows)) - np.searchsorted(rows, rows)
    take = rank < k
    ids[rows[take], rank[take]] = cols[take]
    scores[rows[take], rank[take]] = values[take]
    return ids, scores
