"""A name for every live latent: the descriptor range (or label value) that predicts its firing.

Rows are split by clip into a fit half and a held-out half (`held_out_rows`): rows of one clip
never straddle, so a latent that memorises clips is not rewarded. For each continuous descriptor
x the fit rows' values are cut into at most `bins` quantile bins (or one bin per value when x
takes few values); every contiguous range of bins [a, c] is a candidate name "x in [lo, hi)",
every value v of a label a candidate "label = v". A candidate is scored by the AUROC of the
latent's activation z as a detector of the candidate's indicator g (rows where x is NaN, e.g.
f0 of an unvoiced frame, are outside every range)::

    AUROC = (R_in − n_in (n_in + 1) / 2) / (n_in · n_out)

with R_in the sum of the tie-averaged ranks of z over the rows where g holds (Mann–Whitney U,
ties counted ½; equals `sklearn.metrics.roc_auc_score(g, z)`). The name is the candidate with the
best fit AUROC (ranges holding at least `min_rows` rows on each side; on a tie the label, then
the descriptor listed first); its reported score is its
AUROC on the held-out rows, beside the held-out Spearman ρ(z, x) of its descriptor (NaN rows
left out; equals `scipy.stats.spearmanr`). The tuning curve is the mean z per bin over all rows.

A latent is "positional" when the frame index f (`frame` of frame-pooled rows) explains its
activation on held-out rows: with μ_f the fit rows' mean z at frame f (the fit mean where f is
unseen),

    positional = 1 − Σ_ho (z − μ_f)² / Σ_ho (z − z̄_ho)²

which, computed on the fit rows themselves, is eta² = SS_between / SS_total (`eta_squared`); on
held-out rows it is at most 1 and negative when the fit half's frame means predict worse than
the held-out mean.
Everything is computed from the sparse codes in O(nnz log nnz + d · bins²) per descriptor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata


@dataclass
class _Ranks:
    """The tie-averaged ranks of every column of a row subset of the codes (d = d_sae).

    Zeros share rank (n0 + 1) / 2; non-zeros rank n0 + 1 ... n within their column."""

    n: int
    n0: np.ndarray  # (d,) zeros per column
    rows: np.ndarray  # (nnz,) row index (in the subset) of each non-zero
    cols: np.ndarray  # (nnz,) its column
    rank: np.ndarray  # (nnz,) its rank in its column


def _ranks(codes: sp.csc_matrix) -> _Ranks:
    codes = codes.tocsc()
    codes.sort_indices()
    d, n = codes.shape[1], codes.shape[0]
    cols = np.repeat(np.arange(d), np.diff(codes.indptr))
    order = np.lexsort((codes.data, cols))
    c, v = cols[order], codes.data[order]
    starts = np.flatnonzero(np.r_[True, (c[1:] != c[:-1]) | (v[1:] != v[:-1])])
    ends = np.r_[starts[1:], len(c)] - 1
    position = np.arange(len(c)) - codes.indptr[c]  # 0-based place among the column's non-zeros
    run = np.cumsum(np.isin(np.arange(len(c)), starts)) - 1
    n0 = n - np.diff(codes.indptr)
    sorted_rank = n0[c] + 1 + (position[starts] + position[ends])[run] / 2
    rank = np.empty(len(c))
    rank[order] = sorted_rank
    return _Ranks(n, n0, codes.indices.copy(), cols, rank)


def _binned_rank_sums(r: _Ranks, bins: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """((d, k) rank sums of each column over the rows of each bin, (k,) rows per bin)."""
    d = len(r.n0)
    counts = np.bincount(bins, minlength=k)[:k].astype(np.float64)
    key = r.cols * k + bins[r.rows]
    nz = np.bincount(key, minlength=d * k).reshape(d, k)
    nz_sum = np.bincount(key, weights=r.rank, minlength=d * k).reshape(d, k)
    zero_rank = (r.n0 + 1) / 2
    return (counts[None] - nz) * zero_rank[:, None] + nz_sum, counts


def _auroc(rank_in: np.ndarray, n_in: np.ndarray, n: int) -> np.ndarray:
    n_out = n - n_in
    with np.errstate(divide="ignore", invalid="ignore"):
        return (rank_in - n_in * (n_in + 1) / 2) / (n_in * n_out)


def spearman(codes: sp.spmatrix, x: np.ndarray) -> np.ndarray:
    """(d,) Spearman ρ between each column of `codes` (n, d) and `x` (n,), over the rows where x
    is finite (NaN for a constant column)."""
    keep = np.isfinite(x)
    r = _ranks(sp.csc_matrix(codes)[np.flatnonzero(keep)])
    rx = rankdata(x[keep])
    n, d = r.n, len(r.n0)
    mean = (n + 1) / 2
    zero = (r.n0 + 1) / 2
    nz_rx = np.bincount(r.cols, weights=rx[r.rows], minlength=d)
    nz_cross = np.bincount(r.cols, weights=r.rank * rx[r.rows], minlength=d)
    cross = zero * (rx.sum() - nz_rx) + nz_cross
    sq = r.n0 * zero**2 + np.bincount(r.cols, weights=r.rank**2, minlength=d)
    cov = cross / n - mean**2
    var_z, var_x = sq / n - mean**2, (rx**2).mean() - mean**2
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = cov / np.sqrt(var_z * var_x)
    return np.where(var_z > 1e-12 * mean**2, rho, np.nan)


def eta_squared(z: np.ndarray, groups: np.ndarray) -> float:
    """Fraction of the variance of `z` explained by `groups`: SS_between / SS_total.

    Example:
        >>> eta_squared(np.array([1.0, 1.0, 3.0, 3.0]), np.array([0, 0, 1, 1]))
        1.0
    """
    _, g = np.unique(groups, return_inverse=True)
    means = np.bincount(g, weights=z) / np.bincount(g)
    total = ((z - z.mean()) ** 2).sum()
    return float(((means[g] - z.mean()) ** 2).sum() / total) if total > 0 else float("nan")


def positional_scores(codes: sp.spmatrix, frames: np.ndarray, held_out: np.ndarray) -> np.ndarray:
    """(d,) held-out fraction of activation variance explained by the frame index (module doc);
    NaN without frame rows (clip pooling: frame -1) or for a latent constant on held-out rows."""
    codes = sp.csr_matrix(codes)
    d = codes.shape[1]
    framed = frames >= 0
    fit, ho = np.flatnonzero(framed & ~held_out), np.flatnonzero(framed & held_out)
    if not len(fit) or not len(ho):
        return np.full(d, np.nan)
    k = int(frames.max()) + 1
    a = sp.csc_matrix(codes[fit])
    count_fit = np.bincount(frames[fit], minlength=k).astype(np.float64)
    sums = _column_bin_sums(a, frames[fit], k)
    fit_mean = np.asarray(a.sum(0)).ravel() / len(fit)
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(count_fit[None] > 0, sums / count_fit[None], fit_mean[:, None])
    b = sp.csc_matrix(codes[ho])
    f_ho = frames[ho]
    count_ho = np.bincount(f_ho, minlength=k).astype(np.float64)
    sq = np.asarray(b.multiply(b).sum(0)).ravel()
    cross = (_column_bin_sums(b, f_ho, k) * mu).sum(1)
    sse = sq - 2 * cross + (mu**2 * count_ho[None]).sum(1)
    sst = sq - np.asarray(b.sum(0)).ravel() ** 2 / len(ho)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sst > 1e-12, 1 - sse / sst, np.nan)


def _column_bin_sums(a: sp.csc_matrix, bins: np.ndarray, k: int) -> np.ndarray:
    """(d, k) sum of each column's values over the rows of each bin."""
    cols = np.repeat(np.arange(a.shape[1]), np.diff(a.indptr))
    key = cols * k + bins[a.indices]
    return np.bincount(key, weights=a.data, minlength=a.shape[1] * k).reshape(a.shape[1], k)


def held_out_rows(groups: np.ndarray, seed: int = 0) -> np.ndarray:
    """(n,) bool: the rows of a seeded half of the groups (clips); alternate rows when there is
    only one group."""
    _, g = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    if g.max(initial=0) == 0:
        return np.arange(len(g)) % 2 == 1
    half = np.random.default_rng(seed).permutation(g.max() + 1) % 2 == 1
    return half[g]


def bin_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """Edges of at most `bins` quantile bins of the finite `x`; one bin per value (cut at the
    midpoints) when x takes at most `bins` values. Fewer than 2 edges: x is constant.

    Example:
        >>> bin_edges(np.array([0.0, 1.0, 1.0, np.nan]), 8).tolist()
        [0.0, 0.5, 1.0]
    """
    x = x[np.isfinite(x)]
    values = np.unique(x)
    if len(values) < 2:
        return values
    if len(values) <= bins:
        return np.r_[values[0], (values[1:] + values[:-1]) / 2, values[-1]]
    return np.unique(np.quantile(x, np.linspace(0, 1, bins + 1)))


def bin_index(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin of each value (0 .. len(edges) − 2; values past the ends go to the end bins), and
    len(edges) − 1 for NaN."""
    out = np.searchsorted(edges[1:-1], x, side="right")
    return np.where(np.isfinite(x), out, len(edges) - 1)


@dataclass
class LatentNames:
    """The name of every latent (d = d_sae); None / NaN for a dead or unnamed latent.

    Attributes:
        source: (d,) the descriptor or label of the name.
        kind: (d,) "range" (a descriptor range) or "label" (a label value).
        lo: (d,) range start (None: open below); for a label, the value.
        hi: (d,) range end (None: open above).
        fit_auroc: (d,) AUROC of the name on the fit rows (what chose it).
        auroc: (d,) its AUROC on the held-out rows: the score.
        spearman: (d,) held-out Spearman ρ of the activation with the named descriptor.
        tuning: (d,) {"edges": bin edges, "mean": mean activation per bin} of the descriptor.
        positional: (d,) held-out variance fraction explained by the frame index.
    """

    source: list[str | None]
    kind: list[str | None]
    lo: list[float | str | None]
    hi: list[float | None]
    fit_auroc: np.ndarray
    auroc: np.ndarray
    spearman: np.ndarray
    tuning: list[dict[str, list[float]] | None]
    positional: np.ndarray


def name_latents(
    codes: sp.spmatrix,
    descriptors: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    groups: np.ndarray,
    frames: np.ndarray,
    bins: int = 8,
    min_rows: int = 5,
    seed: int = 0,
) -> LatentNames:
    """Name every latent of `codes` (n, d) by its best descriptor range or label value.

    Args:
        codes: non-negative SAE codes of n rows.
        descriptors: {name: (n,) continuous values, NaN where undefined}.
        labels: {name: (n,) values}.
        groups: (n,) clip of each row (the fit / held-out split keeps clips whole).
        frames: (n,) frame index of each row (-1: not a frame row).
        bins: quantile bins per descriptor.
        min_rows: fewest fit rows inside and outside a candidate range or value.
        seed: seed of the clip split.
    """
    codes = sp.csc_matrix(codes, dtype=np.float64)
    d = codes.shape[1]
    held = held_out_rows(groups, seed)
    fit, ho = np.flatnonzero(~held), np.flatnonzero(held)
    r_fit, r_ho = _ranks(codes[fit]), _ranks(codes[ho])
    best = _Best(d)
    binned: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, y in labels.items():
        values, v = np.unique(np.asarray(y).astype(str), return_inverse=True)
        if len(values) >= 2:
            singles = [(c, c) for c in range(len(values))]
            best.offer(name, "label", singles, r_fit, r_ho, v[fit], v[ho], len(values), min_rows)
            binned[name] = (values, v)
    for name, x in descriptors.items():
        x = np.asarray(x, dtype=np.float64)
        edges = bin_edges(x[fit], bins)
        if len(edges) < 2:
            continue
        b = bin_index(x, edges)
        binned[name] = (edges, b)
        nb = len(edges) - 1
        ranges = [(a, c) for a in range(nb) for c in range(a, nb)]
        best.offer(name, "range", ranges, r_fit, r_ho, b[fit], b[ho], nb + 1, min_rows)
    fires = np.diff(codes.indptr) > 0
    return best.names(codes, binned, descriptors, ho, fires, frames, held)


class _Best:
    """The best candidate of each latent so far, by fit AUROC (the first wins a tie)."""

    def __init__(self, d: int) -> None:
        self.fit = np.full(d, -np.inf)
        self.ho = np.full(d, np.nan)
        self.choice: list[tuple[str, str, int, int] | None] = [None] * d

    def offer(
        self,
        name: str,
        kind: str,
        spans: list[tuple[int, int]],
        r_fit: _Ranks,
        r_ho: _Ranks,
        b_fit: np.ndarray,
        b_ho: np.ndarray,
        k: int,
        min_rows: int,
    ) -> None:
        """Score the bin spans [a, c] of one descriptor (or the values of one label)."""
        a, c = np.array(spans).T
        scores = []
        for r, b in ((r_fit, b_fit), (r_ho, b_ho)):
            sums, counts = _binned_rank_sums(r, b, k)
            cum = np.concatenate([np.zeros((len(sums), 1)), np.cumsum(sums, 1)], 1)
            cum_n = np.r_[0.0, np.cumsum(counts)]
            n_in = cum_n[c + 1] - cum_n[a]
            auroc = _auroc(cum[:, c + 1] - cum[:, a], n_in[None], r.n)
            scores.append((auroc, n_in))
        (fit, n_fit), (ho, _) = scores
        ok = (n_fit >= min_rows) & (r_fit.n - n_fit >= min_rows)
        fit = np.where(ok[None] & np.isfinite(fit), fit, -np.inf)
        pick = fit.argmax(1)
        top = fit[np.arange(len(fit)), pick]
        for j in np.flatnonzero(top > self.fit):
            self.fit[j], self.ho[j] = top[j], ho[j, pick[j]]
            self.choice[j] = (name, kind, int(a[pick[j]]), int(c[pick[j]]))

    def names(
        self,
        codes: sp.csc_matrix,
        binned: dict[str, tuple[np.ndarray, np.ndarray]],
        descriptors: dict[str, np.ndarray],
        ho: np.ndarray,
        fires: np.ndarray,
        frames: np.ndarray,
        held: np.ndarray,
    ) -> LatentNames:
        d = len(self.fit)
        out = LatentNames(
            [None] * d, [None] * d, [None] * d, [None] * d,
            np.full(d, np.nan), np.full(d, np.nan), np.full(d, np.nan), [None] * d,
            positional_scores(codes, np.asarray(frames, dtype=np.int64), held),
        )  # fmt: skip
        used = {ch[0] for j, ch in enumerate(self.choice) if ch is not None and fires[j]}
        rho = {m: spearman(codes[ho], np.asarray(descriptors[m], float)[ho]) for m in used
               if m in descriptors}  # fmt: skip
        curves = {m: _tuning(codes, *binned[m]) for m in used}
        for j, choice in enumerate(self.choice):
            if choice is None or not fires[j]:
                continue
            name, kind, a, c = choice
            edges = binned[name][0]
            out.source[j], out.kind[j] = name, kind
            out.fit_auroc[j], out.auroc[j] = self.fit[j], self.ho[j]
            if kind == "label":
                out.lo[j] = str(edges[a])
            else:
                nb = len(edges) - 1
                out.lo[j] = None if a == 0 else float(edges[a])
                out.hi[j] = None if c == nb - 1 else float(edges[c + 1])
                out.spearman[j] = rho[name][j] if name in rho else np.nan
            edge_list = [str(e) for e in edges] if kind == "label" else edges.tolist()
            out.tuning[j] = {"edges": edge_list, "mean": curves[name][j].tolist()}
        return out


def _tuning(codes: sp.csc_matrix, edges: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(d, bins) mean activation of each latent over the rows of each bin (NaN rows left out)."""
    k = len(edges) - 1 if np.issubdtype(np.asarray(edges).dtype, np.number) else len(edges)
    counts = np.bincount(b, minlength=k + 1)[:k].astype(np.float64)
    sums = _column_bin_sums(codes, b, k + 1)[:, :k]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(counts[None] > 0, sums / counts[None], np.nan)
