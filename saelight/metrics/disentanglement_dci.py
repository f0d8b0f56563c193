"""Standard DCI: disentanglement, completeness, informativeness (Eastwood & Williams, ICLR 2018).

The importance matrix comes from Lasso regressors, the linear variant of the original paper and the
model the saelight paper uses, chosen over gradient-boosted trees because it is fast on 2048 code
dims (one sparse multi-target fit) and deterministic. Discrete factors (technique, singer, ...)
are regressed as one-hot indicators (a linear probability model) and predicted by argmax.
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
    fit_lasso,
    normalized_entropy,
    r2_columns,
    split_rows,
)


@dataclass
class DCIResult:
    """Result of :func:`dci`; factors are the continuous ones then the discrete ones.

    Attributes:
        disentanglement: importance-weighted mean over code dims of ``D_i``.
        completeness: importance-weighted mean over factors of ``C_j``.
        informativeness: mean over factors of ``I_j`` (R² or accuracy, held out).
        informativeness_continuous: mean held-out R² over continuous factors (nan if none).
        informativeness_discrete: mean held-out accuracy over discrete factors (nan if none).
        factor_names: the ``F`` factors scored.
        discrete: ``(F,)`` whether each factor is discrete.
        skipped: factors left out because they are constant on the train rows.
        importance: ``(K, F)`` importance matrix ``R``.
        code_disentanglement: ``(K,)`` ``D_i`` (nan for codes with no importance).
        factor_completeness: ``(F,)`` ``C_j``.
        factor_informativeness: ``(F,)`` ``I_j``.
    """

    disentanglement: float
    completeness: float
    informativeness: float
    informativeness_continuous: float
    informativeness_discrete: float
    factor_names: list[str]
    discrete: np.ndarray
    skipped: list[str]
    importance: np.ndarray
    code_disentanglement: np.ndarray
    factor_completeness: np.ndarray
    factor_informativeness: np.ndarray


def dci(
    codes: ArrayLike,
    factors: FactorsLike | None = None,
    labels: Mapping[str, ArrayLike] | None = None,
    *,
    factor_names: Sequence[str] | None = None,
    alpha: float = 0.1,
    test_fraction: float = 0.2,
    seed: int = EVAL_SEED,
    groups: ArrayLike | None = None,
    max_iter: int = 10_000,
) -> DCIResult:
    r"""DCI of codes against continuous ``factors`` and/or discrete ``labels``.

    Importance: for a continuous factor ``j``, :math:`R_{ij} = |w_{ij}|` of a ``Lasso(alpha)``
    from standardised codes to the standardised factor, fitted on the train rows (the regression of
    :func:`lasso_completeness`). For a discrete factor with classes ``c``, one such Lasso per
    standardised class indicator and :math:`R_{ij} = \operatorname{mean}_c |w_{ijc}|`. Then, with
    ``K`` code dims and ``F`` factors:

    .. math::
        D_i = 1 - H_F\!\left(\tfrac{R_{i\cdot}}{\sum_j R_{ij}}\right), \quad
        \rho_i = \tfrac{\sum_j R_{ij}}{\sum_{ij} R_{ij}}, \quad D = \sum_i \rho_i D_i

        C_j = 1 - H_K\!\left(\tfrac{R_{\cdot j}}{\sum_i R_{ij}}\right), \quad
        C = \sum_j \tfrac{\sum_i R_{ij}}{\sum_{ij} R_{ij}} C_j

    (:math:`H_b` the entropy in log base ``b``, ``K`` all code dims). The factor weights in ``C``
    follow disentanglement_lib; a factor the Lasso cannot predict has zero weight in both.
    Informativeness :math:`I_j` is scored on the held-out rows: R² for a continuous factor,
    accuracy of the argmax over the predicted indicators for a discrete one, and
    :math:`I = \operatorname{mean}_j I_j`:

    .. math:: I_j = 1 - \frac{\sum_{n \in test} (y_{nj} - \hat y_{nj})^2}
                             {\sum_{n \in test} (y_{nj} - \bar y_j)^2}

    (:math:`\bar y_j` the test rows' mean). It is not clipped: a held-out R² has no lower bound
    and is negative when the Lasso predicts worse than that mean (a factor whose test clips
    differ from the train clips, on a few hundred test rows), so one or two such factors can
    drive ``informativeness`` far below 0 (-34 was seen on Whisper codes). The report shows a
    negative value clipped at 0 beside the raw one (docs/metrics_disentanglement.md).

    Args:
        codes: ``(rows, K)`` codes.
        factors: ``(rows, F_c)`` continuous factors or a mapping name → ``(rows,)``.
        labels: mapping name → ``(rows,)`` discrete labels (any sortable type).
        factor_names: names for an array ``factors``.
        alpha: Lasso regularisation.
        test_fraction: share of rows held out for informativeness, see :func:`split_rows`.
        seed: seeds the row split.
        groups: ``(rows,)`` group ids kept on one side of the split.
        max_iter: coordinate-descent iterations per target.

    Returns:
        :class:`DCIResult`.
    """
    z = as_codes(codes)
    train, test = split_rows(z.shape[0], test_fraction, seed, groups)
    targets, owner, names, discrete, skipped, classes = _targets(
        z.shape[0], factors, labels, factor_names, train
    )
    fit = fit_lasso(z, targets, train, alpha=alpha, max_iter=max_iter)
    pred = fit.predict(z[test])
    n_factors = len(names)
    importance = np.zeros((z.shape[1], n_factors))
    informativeness = np.zeros(n_factors)
    for j in range(n_factors):
        cols = np.flatnonzero(owner == j)
        importance[:, j] = np.abs(fit.coef[cols]).mean(0)
        if discrete[j]:
            seen, code = classes[j]
            informativeness[j] = np.mean(seen[pred[:, cols].argmax(1)] == code[test])
        else:
            informativeness[j] = r2_columns(targets[test][:, cols], pred[:, cols])[0]

    total = importance.sum()
    code_d = 1.0 - normalized_entropy(importance, axis=1, base=n_factors)
    factor_c = 1.0 - normalized_entropy(importance, axis=0, base=z.shape[1])
    with np.errstate(divide="ignore", invalid="ignore"):
        rho, phi = importance.sum(1) / total, importance.sum(0) / total
    return DCIResult(
        disentanglement=float(np.nansum(rho * code_d)) if total > 0 else float("nan"),
        completeness=float(np.nansum(phi * factor_c)) if total > 0 else float("nan"),
        informativeness=float(np.mean(informativeness)),
        informativeness_continuous=_mean_or_nan(informativeness[~discrete]),
        informativeness_discrete=_mean_or_nan(informativeness[discrete]),
        factor_names=names,
        discrete=discrete,
        skipped=skipped,
        importance=importance,
        code_disentanglement=code_d,
        factor_completeness=factor_c,
        factor_informativeness=informativeness,
    )


def _targets(
    n: int,
    factors: FactorsLike | None,
    labels: Mapping[str, ArrayLike] | None,
    factor_names: Sequence[str] | None,
    train: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, list[str], list]:
    """Regression targets: continuous factors as is, discrete ones as class indicator columns.

    Returns ``(targets (n, T), owner (T,) factor index of each column, names, discrete (F,),
    skipped names, classes)``; for a discrete factor ``classes[j] = (seen, code)``: the label codes
    of its indicator columns, in order, and the ``(n,)`` label codes of all rows.
    """
    if factors is None and not labels:
        raise ValueError("give continuous factors, discrete labels, or both")
    cols, owner, names, discrete, skipped, classes = [], [], [], [], [], []
    if factors is not None:
        y, fnames = as_factors(factors, factor_names, n)
        for name, col in zip(fnames, y.T, strict=True):
            if np.ptp(col[train]) == 0:
                skipped.append(name)
                continue
            owner.append(len(names))
            cols.append(col)
            names.append(name)
            discrete.append(False)
            classes.append(None)
    for name, lab in (labels or {}).items():
        _, code = np.unique(as_label_array(lab, n, f"labels[{name!r}]"), return_inverse=True)
        seen = np.unique(code[train])
        if seen.size < 2:
            skipped.append(str(name))
            continue
        # Only classes present in train get an indicator (a constant column cannot be fitted);
        # test rows of other classes then count as misclassified.
        for c in seen:
            owner.append(len(names))
            cols.append((code == c).astype(np.float64))
        names.append(str(name))
        discrete.append(True)
        classes.append((seen, code))
    if not names:
        raise ValueError(f"every factor is constant on the train rows: {skipped}")
    return (
        np.stack(cols, axis=1),
        np.asarray(owner),
        names,
        np.asarray(discrete),
        skipped,
        classes,
    )


def _mean_or_nan(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else float("nan")
