"""Selectivity of every latent at once, from the sparse codes: AUROC per label value, precision,
recall and F1 of "fires", the ranking score built from them, and Pearson / Spearman correlation
with continuous factors.

All functions take Z, a (n, d) `scipy.sparse.csc_matrix` of non-negative codes whose stored
entries are the non-zero ones, and never densify it. The n - nnz_j implicit zeros of column j are
tied, so their average rank is (n0_j + 1) / 2 with n0_j = n - nnz_j; only the stored entries are
sorted. A latent that never fires costs nothing and gets AUROC exactly 0.5.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.stats import rankdata


def _columns(Z: sp.csc_matrix) -> np.ndarray:
    """(nnz,) column index of every stored entry."""
    return np.repeat(np.arange(Z.shape[1]), np.diff(Z.indptr))


def column_ranks(Z: sp.csc_matrix) -> np.ndarray:
    """(nnz,) rank of each stored entry within its column, ties averaged (scipy `rankdata`).

    Ranks are 1-based over all n rows of the column, the implicit zeros taking ranks 1..n0_j.

    Example:
        >>> Z = sp.csc_matrix(np.array([[0.0, 2.0], [3.0, 2.0], [1.0, 0.0]]))
        >>> column_ranks(Z).tolist()
        [3.0, 2.0, 2.5, 2.5]
    """
    n = Z.shape[0]
    cols = _columns(Z)
    order = np.lexsort((Z.data, cols))
    v, c = Z.data[order], cols[order]
    within = np.arange(len(v)) - Z.indptr[c]
    new = np.ones(len(v), dtype=bool)
    new[1:] = (v[1:] != v[:-1]) | (c[1:] != c[:-1])
    group = np.cumsum(new) - 1
    size = np.bincount(group)
    first = within[new]
    average = first[group] + (size[group] - 1) / 2.0 + 1.0
    n0 = n - np.diff(Z.indptr)
    ranks = np.empty(len(v))
    ranks[order] = average + n0[c]
    return ranks


def label_auroc(
    Z: sp.csc_matrix, y: np.ndarray, n_classes: int, ranks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """AUROC of each latent's code as a detector of each class, and rows where both hold.

    AUROC_jc = (Σ_{i: y_i = c} R_ij - P_c (P_c + 1) / 2) / (P_c (n - P_c)) (Mann-Whitney U / (P·N),
    equal to sklearn's `roc_auc_score(y == c, Z[:, j])`), with R_ij the rank of Z_ij in column j
    and P_c the rows of class c. NaN where class c is absent or is every row.

    Args:
        Z: (n, d) CSC codes.
        y: (n,) class index of every row, in 0..n_classes-1.
        n_classes: number of classes.
        ranks: `column_ranks(Z)`, when already computed.

    Returns:
        auroc (d, n_classes) and fires_in (d, n_classes) = rows of class c on which latent j
        fires, so the precision of "latent j fires" for class c is fires_in / fires.
    """
    n, d = Z.shape
    ranks = column_ranks(Z) if ranks is None else ranks
    key = _columns(Z) * n_classes + y[Z.indices]
    rank_sum = np.bincount(key, weights=ranks, minlength=d * n_classes).reshape(d, n_classes)
    fires_in = np.bincount(key, minlength=d * n_classes).reshape(d, n_classes)
    positives = np.bincount(y, minlength=n_classes).astype(np.float64)
    zero_rank = (n - np.diff(Z.indptr) + 1) / 2.0
    rank_sum += (positives[None, :] - fires_in) * zero_rank[:, None]
    denominator = positives * (n - positives)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = (rank_sum - positives * (positives + 1) / 2.0) / denominator
    auroc[:, denominator == 0] = np.nan
    return auroc, fires_in


def detector_f1(
    fires_in: np.ndarray, fires: np.ndarray, positives: np.ndarray, n_rows: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 of "latent j fires" (code > 0) as a detector of "label = c".

    With TP_jc = fires_in (rows of class c where j fires), F_j = fires, P_c = positives and n rows:

        precision = TP / F,  recall = TP / P,
        F1 = 2·precision·recall / (precision + recall) = 2·TP / (F + P)
           = 2·precision·frequency / (frequency + prevalence),  frequency = F/n, prevalence = P/n.

    F1 is the latents' ranking score (`detector_order`; Chanin et al. 2024, arXiv:2409.14507, score
    latents as first-letter classifiers the same way). AUROC is not: the codes of the rows where a
    latent is silent are tied at 0, so a latent that fires on every positive and on half of the
    negatives gets AUROC ~1. F1 is at most 2·prevalence / (frequency + prevalence) and so cannot
    reward firing on half the rows. A latent that never fires gets F1 0 and precision NaN; F1,
    precision and recall are NaN where class c is absent or is every row (as AUROC is).

    Args:
        fires_in: (d, K) TP counts (`label_auroc`'s second output).
        fires: (d,) rows on which each latent fires.
        positives: (K,) rows of each class.
        n_rows: rows in all.

    Returns:
        precision, recall, f1, each (d, K).

    Example:
        The README's counter-example on n = 10000 rows, 572 of them "spoken": latent A fires on
        5200 rows including every spoken one (AUROC 1.0), latent B on 938 rows including every
        spoken one (4 negatives outrank every positive, so AUROC 0.99958):

        >>> tp, fires, spoken = np.array([[572], [572]]), np.array([5200, 938]), np.array([572])
        >>> p, r, f1 = detector_f1(tp, fires, spoken, n_rows=10000)
        >>> p.round(4).ravel().tolist(), f1.round(4).ravel().tolist()
        ([0.11, 0.6098], [0.1982, 0.7576])
    """
    fires_in = np.asarray(fires_in, dtype=np.float64)
    fires = np.asarray(fires, dtype=np.float64)[:, None]
    positives = np.asarray(positives, dtype=np.float64)[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = fires_in / fires
        recall = fires_in / positives
        f1 = 2.0 * fires_in / (fires + positives)
    undefined = (positives == 0) | (positives == n_rows)
    for a in (precision, recall, f1):
        a[np.broadcast_to(undefined, a.shape)] = np.nan
    return precision, recall, f1


def detector_order(f1: np.ndarray, auroc: np.ndarray, axis: int = -1) -> np.ndarray:
    """Indices that sort `f1` descending along `axis`, ties broken by `auroc` descending, then by
    position; NaN sorts last. The one ranking of "which latents encode X" and of each latent's
    best label values.

    Example:
        >>> f1, auroc = np.array([0.198, 0.758, np.nan, 0.758]), np.array([1.0, 0.9996, 1.0, 0.9])
        >>> detector_order(f1, auroc).tolist()
        [1, 3, 0, 2]
    """
    f = np.where(np.isnan(f1), -np.inf, f1)
    a = np.where(np.isnan(auroc), -np.inf, auroc)
    return np.lexsort((-a, -f), axis=axis)


def factor_correlations(
    Z: sp.csc_matrix, factors: np.ndarray, ranks: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Pearson and Spearman correlation of every latent with every factor.

    Pearson r_jm = Σ_i z_ij f̃_im / sqrt(n Var(z_j) · Σ_i f̃_im²), f̃ = f - mean(f) (Σ f̃ = 0, so
    the mean of z drops out and only stored entries enter Zᵀf̃). Spearman is Pearson on ranks
    (ties averaged), where the zeros of column j all carry rank (n0_j + 1) / 2. Rows where a factor
    is NaN are left out for that factor only. NaN where a latent or factor is constant.

    Args:
        Z: (n, d) CSC codes.
        factors: (n, m) factor values.
        ranks: `column_ranks(Z)`, when already computed.

    Returns:
        pearson (d, m) and spearman (d, m).
    """
    factors = np.asarray(factors, dtype=np.float64).reshape(Z.shape[0], -1)
    d, m = Z.shape[1], factors.shape[1]
    pearson, spearman = np.full((d, m), np.nan), np.full((d, m), np.nan)
    finite = np.isfinite(factors)
    whole = finite.all(0)
    if whole.any():
        ranks = column_ranks(Z) if ranks is None else ranks
        pearson[:, whole], spearman[:, whole] = _correlate(Z, factors[:, whole], ranks)
    for j in np.flatnonzero(~whole):
        keep = finite[:, j]
        if keep.sum() > 2:
            sub = Z[keep].tocsc()
            sub.eliminate_zeros()
            pearson[:, [j]], spearman[:, [j]] = _correlate(sub, factors[keep][:, [j]], None)
    return pearson, spearman


def _correlate(
    Z: sp.csc_matrix, factors: np.ndarray, ranks: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    n = Z.shape[0]
    ranks = column_ranks(Z) if ranks is None else ranks
    Z = Z.astype(np.float64)
    f = factors - factors.mean(0)
    sum_z = np.asarray(Z.sum(0), dtype=np.float64).ravel()
    sum_z2 = np.asarray(Z.multiply(Z).sum(0), dtype=np.float64).ravel()
    var_z = sum_z2 - sum_z**2 / n
    pearson = _ratio(Z.T @ f, var_z, sum_z2, (f**2).sum(0), (factors**2).sum(0))

    g = rankdata(factors, axis=0)
    g -= g.mean(0)
    n0 = n - np.diff(Z.indptr)
    zero_rank = (n0 + 1) / 2.0
    R = sp.csc_matrix((ranks, Z.indices, Z.indptr), shape=Z.shape)
    hits = sp.csc_matrix((np.ones_like(ranks), Z.indices, Z.indptr), shape=Z.shape)
    # Σ_i R_ij g_i: stored ranks times g, plus the zeros' rank times Σ_{zeros} g = -Σ_{stored} g.
    cross = R.T @ g - zero_rank[:, None] * (hits.T @ g)
    sum_r2 = np.bincount(_columns(Z), weights=ranks**2, minlength=Z.shape[1]) + n0 * zero_rank**2
    var_r = sum_r2 - n * ((n + 1) / 2.0) ** 2
    ss_g = (g**2).sum(0)
    return pearson, _ratio(cross, var_r, sum_r2, ss_g, ss_g + 1.0)


def _ratio(
    cross: np.ndarray, ss_a: np.ndarray, ref_a: np.ndarray, ss_b: np.ndarray, ref_b: np.ndarray
) -> np.ndarray:
    """cross / sqrt(ss_a ⊗ ss_b); NaN where a sum of squares is ~0 relative to its raw moment
    (a latent that never fires or always gives the same code, a constant factor)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.asarray(cross) / np.sqrt(np.outer(ss_a, ss_b))
    out[ss_a <= 1e-10 * ref_a] = np.nan
    out[:, ss_b <= 1e-10 * ref_b] = np.nan
    return np.clip(out, -1.0, 1.0)
