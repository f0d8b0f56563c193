"""The paper's disentanglement protocol: Lasso from codes to acoustic factors, R² and completeness.

Mariotte et al. 2025 (arXiv:2509.24793, code github theomariotte/sae_audio_ssl) fit, per factor
(88 eGeMAPS functionals per file), one ``Lasso(alpha=0.1)`` from standardised codes to the
standardised factor, take the importances ``R_ij = |coef_ij|`` and report R² and completeness
(Eastwood & Williams 2018) averaged over the 10 factors with the highest R².

This module also holds what the other disentanglement metrics share: input coercion, train/test row
splits, the multi-target Lasso fit and normalised entropies. The standard DCI lives in
``disentanglement_dci.py``; MIG, SAP and modularity in ``disentanglement_info.py``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import Lasso

from saelight.io.defaults import EVAL_SEED

ArrayLike = np.ndarray | torch.Tensor | Sequence
FactorsLike = np.ndarray | torch.Tensor | Mapping[str, ArrayLike]

#: Below this fraction of nonzero codes the Lasso runs on a scipy sparse matrix: same solution
#: (sklearn centres sparse input implicitly), ~7x faster on TopK codes.
_SPARSE_BELOW = 0.3


@dataclass
class LassoCompleteness:
    """Result of :func:`lasso_completeness` (factors ordered as given, skipped ones removed).

    Attributes:
        factor_names: the ``F`` factors scored.
        skipped: factors left out because they are constant on the fit rows.
        r2: ``(F,)`` R² of each factor's Lasso, on held-out rows unless ``held_out`` is False.
        completeness: ``(F,)`` the paper's completeness, entropy normalised by ``log K``.
        completeness_k_fair: ``(F,)`` the same normalised by ``log K_alive``.
        entropy: ``(F,)`` ``H_j`` in nats, not normalised: ``completeness = 1 - entropy / log K``
            and ``exp(entropy)`` is the factor's :func:`effective_dimensions`.
        importance: ``(K, F)`` ``|coef|`` of each factor's Lasso on standardised codes.
        n_codes: ``K``, all code dimensions.
        n_alive: ``K_alive``, code dimensions that vary on the fit rows.
        top: indices (into ``factor_names``) of the ``top`` factors by R², best first.
        held_out: whether R² was scored on rows the Lasso did not see.
        summary: ``{r2,completeness,completeness_k_fair,entropy}_{mean,std}`` over ``top`` and
            ``effective_dims``; ``nan`` when a top factor's Lasso kept no code (see
            :func:`lasso_completeness`).
    """

    factor_names: list[str]
    skipped: list[str]
    r2: np.ndarray
    completeness: np.ndarray
    completeness_k_fair: np.ndarray
    entropy: np.ndarray
    importance: np.ndarray
    n_codes: int
    n_alive: int
    top: np.ndarray
    held_out: bool
    summary: dict[str, float] = field(default_factory=dict)


def lasso_completeness(
    codes: ArrayLike,
    factors: FactorsLike,
    *,
    factor_names: Sequence[str] | None = None,
    alpha: float = 0.1,
    top: int = 10,
    held_out: bool = True,
    test_fraction: float = 0.2,
    seed: int = EVAL_SEED,
    groups: ArrayLike | None = None,
    max_iter: int = 10_000,
) -> LassoCompleteness:
    r"""The paper's Lasso R² and completeness, plus a held-out and a K-fair variant.

    For each factor ``j`` a ``Lasso(alpha)`` maps the standardised codes to the standardised factor
    (means and stds from the fit rows; constant code columns are left at zero and get no weight).
    With importances :math:`R_{ij} = |w_{ij}|` over the ``K`` code dimensions ``i``:

    .. math:: p_{ij} = \frac{R_{ij}}{\sum_{i'} R_{i'j}}, \qquad
              C_j = 1 + \frac{\sum_i p_{ij} \log p_{ij}}{\log K}

    (``0 log 0 = 0``). ``completeness_k_fair`` divides by :math:`\log K_{alive}` instead, with
    ``K_alive`` the code dimensions that vary on the fit rows: the paper's ``K`` is 2048 for an SAE
    and 768 for the dense layer, which alone lifts the SAE's completeness by ~0.05. A factor whose
    Lasso keeps no code has undefined completeness (``nan``; the original's ``eps`` makes it 1).
    With ``K_alive = 1`` the K-fair completeness is 1. R² is sklearn's,
    :math:`1 - SS_{res}/SS_{tot}` on the scored rows. ``summary`` holds mean and std (``ddof=0``)
    of R², completeness and K-fair completeness over the ``top`` factors by R².

    The mean is a plain mean, not ``nanmean``: when one of the ``top`` factors has no coefficient
    (its completeness and entropy are ``nan``; it can be among the top when fewer than ``top``
    factors are predictable at all, as on a collapsed SAE), the completeness, K-fair
    completeness and entropy means and stds, and ``effective_dims``, are ``nan``. Such a row
    means "not computable on these top factors": averaging over the others would compare SAE and
    dense rows over different factor sets. The report shows "–" and claim 3 counts it as not
    computable (``saelight.report.claims_disentangle``); the per-factor arrays keep the rest.

    ``held_out=False`` is the paper's exact protocol: fit and score R² on all rows. The original
    normalises ``p`` and the log with ``eps=1e-6`` and fits in the codes' dtype (float32); this
    code uses no eps and float64, which moves completeness by < 1e-3.

    Args:
        codes: ``(rows, K)`` codes (SAE latents or dense activations).
        factors: ``(rows, F)`` continuous factors, or a mapping name → ``(rows,)``.
        factor_names: names for an array ``factors`` (default ``factor_0`` …).
        alpha: Lasso regularisation (the paper's 0.1).
        top: number of best-R² factors summarised (the paper's 10).
        held_out: fit on a train split and score R² on the rest (False: the paper's in-sample).
        test_fraction: share of rows held out, see :func:`split_rows`.
        seed: seeds the row split.
        groups: ``(rows,)`` group ids kept on one side of the split (e.g. singer).
        max_iter: coordinate-descent iterations per factor (the original's 10 000).

    Returns:
        :class:`LassoCompleteness`.
    """
    z = as_codes(codes)
    y, names = as_factors(factors, factor_names, z.shape[0])
    if held_out:
        fit_idx, score_idx = split_rows(z.shape[0], test_fraction, seed, groups)
    else:
        fit_idx = score_idx = np.arange(z.shape[0])
    keep = np.ptp(y[fit_idx], axis=0) > 0
    skipped = [n for n, k in zip(names, keep, strict=True) if not k]
    y, names = y[:, keep], [n for n, k in zip(names, keep, strict=True) if k]
    if not names:
        raise ValueError(f"every factor is constant on the fit rows: {skipped}")

    fit = fit_lasso(z, y, fit_idx, alpha=alpha, max_iter=max_iter)
    r2 = r2_columns(y[score_idx], fit.predict(z[score_idx]))
    importance = np.abs(fit.coef).T
    n_codes, n_alive = z.shape[1], int(fit.alive.sum())
    completeness = 1.0 - normalized_entropy(importance, axis=0, base=n_codes)
    completeness_k_fair = 1.0 - normalized_entropy(importance, axis=0, base=n_alive)
    entropy = importance_entropy(importance, axis=0)

    order = np.argsort(-np.nan_to_num(r2, nan=-np.inf), kind="stable")[:top]
    summary = {}
    for key, values in (
        ("r2", r2),
        ("completeness", completeness),
        ("completeness_k_fair", completeness_k_fair),
        ("entropy", entropy),
    ):
        summary[f"{key}_mean"] = float(np.mean(values[order]))
        summary[f"{key}_std"] = float(np.std(values[order]))
    summary["effective_dims"] = float(np.exp(summary["entropy_mean"]))
    return LassoCompleteness(
        factor_names=names,
        skipped=skipped,
        r2=r2,
        completeness=completeness,
        completeness_k_fair=completeness_k_fair,
        entropy=entropy,
        importance=importance,
        n_codes=n_codes,
        n_alive=n_alive,
        top=order,
        held_out=held_out,
        summary=summary,
    )


@dataclass
class LassoFit:
    """Multi-target Lasso on standardised codes, as fitted by :func:`fit_lasso`.

    Attributes:
        coef: ``(targets, K)`` coefficients on standardised codes (zero for constant columns).
        alive: ``(K,)`` mask of code columns that vary on the fit rows.
        mean: ``(K,)`` code means on the fit rows.
        scale: ``(K,)`` code stds on the fit rows (1 for constant columns).
        y_mean: ``(targets,)`` target means on the fit rows.
        y_scale: ``(targets,)`` target stds on the fit rows.
        intercept: ``(targets,)`` intercepts in standardised target units.
    """

    coef: np.ndarray
    alive: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    intercept: np.ndarray

    def predict(self, z: np.ndarray, standardized: bool = False) -> np.ndarray:
        """Predict targets for codes ``z: (rows, K)``; in target units unless ``standardized``."""
        out = ((z - self.mean) / self.scale) @ self.coef.T + self.intercept
        return out if standardized else out * self.y_scale + self.y_mean


def fit_lasso(
    z: np.ndarray, y: np.ndarray, fit_idx: np.ndarray, *, alpha: float, max_iter: int = 10_000
) -> LassoFit:
    """One ``Lasso(alpha)`` per target column from standardised codes to the standardised target.

    Standardisation uses the ``fit_idx`` rows (std with ``ddof=0``, like ``StandardScaler``).
    Code columns constant on those rows are dropped before fitting (their coefficient is exactly
    zero either way) and sparse codes are passed as a scipy sparse matrix; sklearn then centres
    implicitly, so the solution is that of the dense, centred problem. A 2-D ``y`` fits each
    column independently with identical semantics to separate fits.

    Args:
        z: ``(rows, K)`` float64 codes.
        y: ``(rows, T)`` float64 targets, each non-constant on ``fit_idx``.
        fit_idx: rows used for the fit.
        alpha: Lasso regularisation.
        max_iter: coordinate-descent iterations per target.
    """
    zf, yf = z[fit_idx], y[fit_idx]
    alive = np.ptp(zf, axis=0) > 0
    mean, scale = zf.mean(0), zf.std(0)
    mean[~alive], scale[~alive] = 0.0, 1.0
    y_mean, y_scale = yf.mean(0), yf.std(0)
    ys = (yf - y_mean) / y_scale
    coef = np.zeros((y.shape[1], z.shape[1]))
    intercept = np.zeros(y.shape[1])
    if alive.any():
        x = zf[:, alive] / scale[alive]
        sparse = np.count_nonzero(x) < _SPARSE_BELOW * x.size
        model = Lasso(alpha=alpha, max_iter=max_iter)
        model.fit(sp.csc_matrix(x) if sparse else x - mean[alive] / scale[alive], ys)
        coef[:, alive] = model.coef_.reshape(y.shape[1], -1)
        # The sparse fit's intercept absorbs the uncentred column means.
        intercept = np.atleast_1d(model.intercept_) + (
            coef[:, alive] @ (mean[alive] / scale[alive]) if sparse else 0.0
        )
    return LassoFit(coef, alive, mean, scale, y_mean, y_scale, intercept)


def normalized_entropy(p: np.ndarray, axis: int, base: float) -> np.ndarray:
    r"""Entropy of the weights ``p`` normalised along ``axis``, in log base ``base``.

    .. math:: H_b(q) = -\sum_k q_k \log_b q_k, \qquad q_k = p_k / \sum_{k'} p_{k'}

    with ``0 log 0 = 0``; all-zero slices give ``nan``; ``base <= 1`` gives 0 (one outcome).

    Example:
        >>> normalized_entropy(np.array([[1.0, 1.0], [0.0, 2.0]]), axis=1, base=2)
        array([1., 0.])
    """
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        q = p / p.sum(axis=axis, keepdims=True)
        plogp = np.where(q > 0, q * np.log(q), 0.0)
        plogp = np.where(np.isnan(q), np.nan, plogp)
    h = 0.0 - plogp.sum(axis=axis)  # 0.0 - x, not -x: no -0.0
    return h / np.log(base) if base > 1 else np.where(np.isnan(h), np.nan, 0.0)


def importance_entropy(importance: np.ndarray, axis: int = 0) -> np.ndarray:
    r"""Entropy in nats of each factor's importances, :math:`H_j = -\sum_i p_{ij} \log p_{ij}`.

    :math:`p_{ij} = R_{ij} / \sum_{i'} R_{i'j}` along ``axis`` (the code dimensions), ``0 log 0 =
    0``, ``nan`` for a factor with no importance. Code dimensions with zero importance add nothing,
    so padding a code with dead or unused dimensions leaves ``H_j`` unchanged.

    Example:
        >>> importance_entropy(np.array([[1.0], [1.0], [0.0]])) / np.log(2)
        array([1.])
    """
    return normalized_entropy(importance, axis=axis, base=np.e)


def effective_dimensions(importance: np.ndarray, axis: int = 0) -> np.ndarray:
    r"""How many code dimensions carry each factor: :math:`D_j = \exp(H_j)` (perplexity).

    With :func:`importance_entropy` ``H_j``: a factor spread evenly over ``m`` dimensions has
    ``D_j = m`` whatever the code width ``K``, unlike completeness ``1 - H_j / log K``
    (Eastwood & Williams 2018), which changes with ``K`` for the same ``m``. ``1 <= D_j <= K``.

    Example:
        >>> effective_dimensions(np.array([[2.0, 1.0], [2.0, 0.0], [0.0, 0.0]]))
        array([2., 1.])
    """
    return np.exp(importance_entropy(importance, axis=axis))


def r2_columns(y: np.ndarray, y_hat: np.ndarray) -> np.ndarray:
    r"""Per column :math:`R^2 = 1 - \sum (y - \hat y)^2 / \sum (y - \bar y)^2`, nan for constant y.

    Example:
        >>> r2_columns(np.array([[1.0], [2.0], [3.0]]), np.array([[1.0], [2.0], [2.0]]))
        array([0.5])
    """
    ss_tot = ((y - y.mean(0)) ** 2).sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ss_tot > 0, 1.0 - ((y - y_hat) ** 2).sum(0) / ss_tot, np.nan)


def split_rows(
    n: int, test_fraction: float = 0.2, seed: int = EVAL_SEED, groups: ArrayLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic train/test row split: ``(train_idx, test_idx)``, both sorted.

    Without ``groups`` a seeded permutation puts ``round(test_fraction * n)`` rows (at least one)
    in test. With ``groups`` whole groups go to test, in seeded random order, until it holds at
    least ``test_fraction`` of the rows, so no group straddles the split.

    Example:
        >>> split_rows(5, 0.4, seed=0)
        (array([0, 1, 3]), array([2, 4]))
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    rng = np.random.default_rng(seed)
    if groups is None:
        n_test = max(1, round(test_fraction * n))
        is_test = np.zeros(n, dtype=bool)
        is_test[rng.permutation(n)[:n_test]] = True
    else:
        uniq, inv = np.unique(as_label_array(groups, n, "groups"), return_inverse=True)
        order = rng.permutation(uniq.size)
        sizes = np.bincount(inv, minlength=uniq.size)[order]
        n_groups = int(np.searchsorted(np.cumsum(sizes), test_fraction * n)) + 1
        is_test = np.isin(inv, order[:n_groups])
    train_idx, test_idx = np.flatnonzero(~is_test), np.flatnonzero(is_test)
    if train_idx.size == 0 or test_idx.size == 0:
        raise ValueError(f"the split of {n} rows left an empty train or test side")
    return train_idx, test_idx


def as_codes(codes: ArrayLike) -> np.ndarray:
    """Codes as a finite float64 ``(rows, K)`` array."""
    if isinstance(codes, torch.Tensor):
        codes = codes.detach().cpu().double().numpy()
    z = np.asarray(codes, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] < 2 or z.shape[1] < 1:
        raise ValueError(f"codes must be (rows >= 2, K >= 1), got shape {z.shape}")
    if not np.isfinite(z).all():
        raise ValueError("codes contain nan or inf")
    return z


def as_factors(
    factors: FactorsLike, names: Sequence[str] | None, n: int
) -> tuple[np.ndarray, list[str]]:
    """Continuous factors as a finite float64 ``(n, F)`` array and their names."""
    if isinstance(factors, Mapping):
        if names is not None:
            raise ValueError("give factor names either as mapping keys or as factor_names")
        names = [str(k) for k in factors]
        cols = [np.asarray(_numpy(v), dtype=np.float64).reshape(-1) for v in factors.values()]
        y = np.stack(cols, axis=1) if cols else np.zeros((n, 0))
    else:
        y = np.asarray(_numpy(factors), dtype=np.float64)
        y = y[:, None] if y.ndim == 1 else y
        names = list(names) if names is not None else [f"factor_{j}" for j in range(y.shape[1])]
    if y.ndim != 2 or y.shape[0] != n:
        raise ValueError(f"factors must be ({n} rows, F), got shape {y.shape}")
    if len(names) != y.shape[1]:
        raise ValueError(f"{len(names)} factor names for {y.shape[1]} factors")
    if not np.isfinite(y).all():
        bad = [nm for nm, ok in zip(names, np.isfinite(y).all(0), strict=True) if not ok]
        raise ValueError(f"factors contain nan or inf: {bad}")
    return y, names


def as_label_array(labels: ArrayLike, n: int, name: str) -> np.ndarray:
    """A ``(n,)`` array of discrete labels (any sortable type)."""
    y = np.asarray(_numpy(labels))
    if y.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},), got {y.shape}")
    return y


def _numpy(x: ArrayLike) -> np.ndarray | Sequence:
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x
