"""Information-based disentanglement: MIG, SAP and modularity on discretised codes and factors.

- MIG, mutual information gap: Chen et al. 2018, "Isolating Sources of Disentanglement in VAEs".
- SAP, separated attribute predictability: Kumar et al. 2018, "Variational Inference of
  Disentangled Latent Concepts from Unlabeled Observations" (DIP-VAE).
- Modularity: Ridgeway & Mozer 2018, "Learning Deep Disentangled Embeddings With the F-Statistic
  Loss", in disentanglement_lib's form.

Discretisation (documented once here, used by all three):

- codes: ``num_bins`` equal-width bins per dimension over its [min, max] on all rows,
  ``bin = min(floor(num_bins (z - min) / (max - min)), num_bins - 1)`` (disentanglement_lib's
  ``_histogram_discretize``); a constant dimension is one bin. SAE codes keep their zeros together.
- continuous factors: ``num_bins`` equal-frequency (quantile) bins, edges at the ``b / num_bins``
  quantiles and ties kept together. eGeMAPS functionals are heavy-tailed, and equal-width bins
  would put almost every row in one bin and make ``H(v)`` tiny.
- discrete factors: one bin per label.

Mutual information is the plug-in estimate (in nats) from the joint histogram of all rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from saelight.io.defaults import EVAL_SEED
from saelight.metrics.disentanglement import (
    ArrayLike,
    FactorsLike,
    as_codes,
    as_factors,
    as_label_array,
    split_rows,
)


@dataclass
class InfoResult:
    """Result of :func:`information_scores`; factors are the continuous ones then the discrete ones.

    Attributes:
        mig: mean over factors of ``factor_mig``.
        sap: mean over factors of ``factor_sap``.
        modularity: mean over non-constant code dims of ``code_modularity``.
        factor_names: the ``F`` factors scored.
        discrete: ``(F,)`` whether each factor is discrete.
        skipped: factors left out because they are constant.
        mutual_info: ``(K, F)`` I(z_i; v_j) in nats.
        factor_entropy: ``(F,)`` H(v_j) in nats, of the discretised factor.
        factor_mig: ``(F,)`` per-factor gap.
        sap_scores: ``(K, F)`` single-code predictability (R² or held-out accuracy).
        factor_sap: ``(F,)`` per-factor gap in ``sap_scores``.
        code_modularity: ``(K,)`` per-code modularity (nan for constant codes).
    """

    mig: float
    sap: float
    modularity: float
    factor_names: list[str]
    discrete: np.ndarray
    skipped: list[str]
    mutual_info: np.ndarray
    factor_entropy: np.ndarray
    factor_mig: np.ndarray
    sap_scores: np.ndarray
    factor_sap: np.ndarray
    code_modularity: np.ndarray


def information_scores(
    codes: ArrayLike,
    factors: FactorsLike | None = None,
    labels: Mapping[str, ArrayLike] | None = None,
    *,
    factor_names: Sequence[str] | None = None,
    num_bins: int = 20,
    test_fraction: float = 0.2,
    seed: int = EVAL_SEED,
    groups: ArrayLike | None = None,
) -> InfoResult:
    r"""MIG, SAP and modularity in one pass (they share the discretisation and the MI matrix).

    With :math:`m_{ij} = I(z_i; v_j)` (``K`` code dims, ``F`` factors):

    .. math::
        \mathrm{MIG} = \frac{1}{F}\sum_j \frac{m_{i^{(1)}j} - m_{i^{(2)}j}}{H(v_j)}

    with :math:`i^{(1)}, i^{(2)}` the codes with the largest and second-largest MI with ``v_j``.

    .. math::
        \mathrm{SAP} = \frac{1}{F}\sum_j \left(S_{i^{(1)}j} - S_{i^{(2)}j}\right)

    with :math:`S_{ij}` how well code ``i`` alone predicts factor ``j`` and the codes ranked by
    ``S``. Continuous factor: :math:`S_{ij} = \mathrm{corr}(z_i, v_j)^2` on all rows (R² of a
    1-D linear fit, as Kumar et al.; one parameter, so nothing to hold out). Discrete factor:
    held-out accuracy of a 1-D histogram classifier predicting, for each bin of ``z_i``, the most
    frequent train label in that bin (the overall train majority for empty bins). This replaces
    disentanglement_lib's per-code LinearSVC (K × F fits) with one vectorised count.

    .. math::
        \mathrm{mod}_i = 1 - \frac{\sum_j m_{ij}^2 - \theta_i^2}{\theta_i^2 (F - 1)}, \quad
        \theta_i = \max_j m_{ij}

    averaged over the code dims that are not constant (0 where :math:`\theta_i = 0`, as
    disentanglement_lib; constant dims are left out, where disentanglement_lib counts them as 0 and
    so penalises a wide dictionary for its unused latents). ``nan`` with one factor.

    Args:
        codes: ``(rows, K)`` codes, ``K >= 2``.
        factors: ``(rows, F_c)`` continuous factors or a mapping name → ``(rows,)``.
        labels: mapping name → ``(rows,)`` discrete labels.
        factor_names: names for an array ``factors``.
        num_bins: bins for codes and continuous factors.
        test_fraction: share of rows held out for discrete SAP, see :func:`split_rows`.
        seed: seeds the row split.
        groups: ``(rows,)`` group ids kept on one side of the split.

    Returns:
        :class:`InfoResult`.
    """
    z = as_codes(codes)
    if z.shape[1] < 2:
        raise ValueError("MIG and SAP compare codes: need K >= 2 code dims")
    binned = _BinnedCodes(z, num_bins)
    vb, n_bins, raw, names, discrete, skipped = _factor_bins(
        z.shape[0], factors, labels, factor_names, num_bins
    )
    mi = np.stack([binned.mutual_info(vb[:, j], n_bins[j]) for j in range(len(names))], axis=1)
    h = np.array([_entropy(np.bincount(vb[:, j])) for j in range(len(names))])
    factor_mig = _top2_gap(mi) / h

    s = np.zeros_like(mi)
    if discrete.any():
        train, test = split_rows(z.shape[0], test_fraction, seed, groups)
        for j in np.flatnonzero(discrete):
            s[:, j] = binned.histogram_accuracy(vb[:, j], n_bins[j], train, test)
    if (~discrete).any():
        s[:, ~discrete] = _squared_corr(z, raw[:, ~discrete])
    factor_sap = _top2_gap(s)

    code_mod = _modularity(mi)
    code_mod[~binned.alive] = np.nan
    return InfoResult(
        mig=float(np.mean(factor_mig)),
        sap=float(np.mean(factor_sap)),
        modularity=float(np.nanmean(code_mod)) if binned.alive.any() else float("nan"),
        factor_names=names,
        discrete=discrete,
        skipped=skipped,
        mutual_info=mi,
        factor_entropy=h,
        factor_mig=factor_mig,
        sap_scores=s,
        factor_sap=factor_sap,
        code_modularity=code_mod,
    )


def mig(
    codes: ArrayLike,
    factors: FactorsLike | None = None,
    labels: Mapping[str, ArrayLike] | None = None,
    **kwargs,
) -> float:
    """Mutual information gap; see :func:`information_scores` for the formula and arguments."""
    return information_scores(codes, factors, labels, **kwargs).mig


def sap(
    codes: ArrayLike,
    factors: FactorsLike | None = None,
    labels: Mapping[str, ArrayLike] | None = None,
    **kwargs,
) -> float:
    """Separated attribute predictability; see :func:`information_scores`."""
    return information_scores(codes, factors, labels, **kwargs).sap


def modularity(
    codes: ArrayLike,
    factors: FactorsLike | None = None,
    labels: Mapping[str, ArrayLike] | None = None,
    **kwargs,
) -> float:
    """Modularity (Ridgeway & Mozer); see :func:`information_scores`."""
    return information_scores(codes, factors, labels, **kwargs).modularity


def quantile_bins(x: np.ndarray, num_bins: int) -> np.ndarray:
    """Equal-frequency bins with ties kept together, relabelled ``0 .. n_bins - 1``.

    A value ``u`` goes to bin ``floor(num_bins * F(u))``, ``F(u)`` the fraction of rows below ``u``
    plus half the rows equal to it (its mid-rank). Untied data gets ``num_bins`` bins of equal size;
    a value shared by many rows (a heavy tie, e.g. 0 for unvoiced pitch) gets a bin of its own
    instead of swallowing its neighbours. Any non-constant ``x`` gets at least two bins.

    Example:
        >>> quantile_bins(np.array([5.0, 1.0, 3.0, 3.0, 9.0, 7.0]), 3)
        array([1, 0, 1, 1, 2, 2])
    """
    uniq, inv, counts = np.unique(x, return_inverse=True, return_counts=True)
    mid = (np.cumsum(counts) - counts / 2) / x.size
    bins = np.minimum((mid * num_bins).astype(np.int64), num_bins - 1)
    return np.unique(bins, return_inverse=True)[1][inv]


class _BinnedCodes:
    """Equal-width binned codes, stored sparsely: entries outside bin 0 (for SAE codes, nonzeros).

    Joint histograms then cost O(entries outside bin 0) per factor; bin 0's counts follow from
    the factor's marginal counts.
    """

    def __init__(self, z: np.ndarray, num_bins: int) -> None:
        lo, span = z.min(0), np.ptp(z, axis=0)
        self.alive = span > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            scaled = np.where(self.alive, (z - lo) / span, 0.0)
        self.bins = np.minimum((scaled * num_bins).astype(np.int64), num_bins - 1)
        self.rows, self.cols = np.nonzero(self.bins)
        self.vals = self.bins[self.rows, self.cols]
        self.n, self.k = z.shape
        self.num_bins = num_bins

    def joint(self, v: np.ndarray, n_v: int, rows: np.ndarray | None = None) -> np.ndarray:
        """``(K, num_bins, n_v)`` counts of (code bin, factor bin) over ``rows`` (default all)."""
        keep = np.ones(self.n, dtype=bool) if rows is None else np.isin(np.arange(self.n), rows)
        sel = keep[self.rows]
        r, c, b = self.rows[sel], self.cols[sel], self.vals[sel]
        flat = np.bincount(
            (c * self.num_bins + b) * n_v + v[r], minlength=self.k * self.num_bins * n_v
        )
        joint = flat.reshape(self.k, self.num_bins, n_v)
        joint[:, 0, :] = np.bincount(v[keep], minlength=n_v) - joint[:, 1:, :].sum(1)
        return joint

    def mutual_info(self, v: np.ndarray, n_v: int) -> np.ndarray:
        """``(K,)`` plug-in I(z_i; v) in nats."""
        p = self.joint(v, n_v) / self.n
        pz, pv = p.sum(2, keepdims=True), p.sum(1, keepdims=True)
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p / (pz * pv)), 0.0)
        return np.maximum(terms.sum((1, 2)), 0.0)

    def histogram_accuracy(
        self, v: np.ndarray, n_v: int, train: np.ndarray, test: np.ndarray
    ) -> np.ndarray:
        """``(K,)`` test accuracy of predicting ``v`` by the majority train label in z_i's bin."""
        joint = self.joint(v, n_v, train)
        table = joint.argmax(2)
        table[joint.sum(2) == 0] = np.bincount(v[train], minlength=n_v).argmax()
        pred = table[np.arange(self.k), self.bins[test]]
        return (pred == v[test][:, None]).mean(0)


def _factor_bins(
    n: int,
    factors: FactorsLike | None,
    labels: Mapping[str, ArrayLike] | None,
    factor_names: Sequence[str] | None,
    num_bins: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], np.ndarray, list[str]]:
    """Discretised factors ``(n, F)``, bins per factor, raw values, names, discrete, skipped."""
    if factors is None and not labels:
        raise ValueError("give continuous factors, discrete labels, or both")
    if num_bins < 2:
        raise ValueError(f"num_bins must be >= 2, got {num_bins}")
    cols, n_bins, raw, names, discrete, skipped = [], [], [], [], [], []
    if factors is not None:
        y, fnames = as_factors(factors, factor_names, n)
        for name, col in zip(fnames, y.T, strict=True):
            if np.ptp(col) == 0:
                skipped.append(name)
                continue
            b = quantile_bins(col, num_bins)
            cols.append(b)
            n_bins.append(int(b.max()) + 1)
            raw.append(col)
            names.append(name)
            discrete.append(False)
    for name, lab in (labels or {}).items():
        _, code = np.unique(as_label_array(lab, n, f"labels[{name!r}]"), return_inverse=True)
        if code.max() == 0:
            skipped.append(str(name))
            continue
        cols.append(code)
        n_bins.append(int(code.max()) + 1)
        raw.append(code.astype(np.float64))
        names.append(str(name))
        discrete.append(True)
    if not names:
        raise ValueError(f"every factor is constant: {skipped}")
    return (
        np.stack(cols, 1),
        np.asarray(n_bins),
        np.stack(raw, 1),
        names,
        np.asarray(discrete),
        skipped,
    )


def _entropy(counts: np.ndarray) -> float:
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def _top2_gap(scores: np.ndarray) -> np.ndarray:
    """``(F,)`` largest minus second-largest entry of each column of ``scores: (K, F)``."""
    top2 = -np.partition(-scores, 1, axis=0)[:2]
    return top2[0] - top2[1]


def _squared_corr(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``(K, F)`` squared Pearson correlation; 0 for a constant code."""
    zc, yc = z - z.mean(0), y - y.mean(0)
    zn, yn = np.sqrt((zc**2).sum(0)), np.sqrt((yc**2).sum(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (zc.T @ yc) / np.outer(zn, yn)
    return np.nan_to_num(r**2, nan=0.0, posinf=0.0)


def _modularity(mi: np.ndarray) -> np.ndarray:
    """``(K,)`` per-code modularity of ``mi: (K, F)``; 0 where a code has no MI at all."""
    sq = mi**2
    theta2 = sq.max(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        out = 1.0 - (sq.sum(1) - theta2) / (theta2 * (mi.shape[1] - 1))
    out[theta2 == 0] = 0.0
    return out if mi.shape[1] > 1 else np.full(mi.shape[0], np.nan)
