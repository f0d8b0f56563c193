"""Classification scores of the probes: confusion matrix, accuracy, macro-F1 (defined once here)."""

from __future__ import annotations

import numpy as np
import torch

ArrayLike = np.ndarray | torch.Tensor | list


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``M[t, p]`` of rows with true class ``t`` predicted as ``p`` (integer labels).

    Example:
        >>> confusion_matrix(np.array([0, 0, 1]), np.array([0, 1, 1]), 2)
        array([[1, 1],
               [0, 1]])
    """
    y_true, y_pred = np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true and y_pred differ in shape: {y_true.shape} vs {y_pred.shape}")
    flat = np.bincount(y_true * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Fraction of rows predicted correctly, :math:`\frac{1}{N}\sum_n [\hat y_n = y_n]`.

    Example:
        >>> accuracy([0, 1, 2, 2], [0, 2, 2, 2])
        0.75
    """
    y_true, y_pred = as_labels(y_true), as_labels(y_pred)
    if y_true.shape != y_pred.shape or y_true.size == 0:
        raise ValueError(
            f"need two non-empty label arrays of one shape, got {y_true.shape} and {y_pred.shape}"
        )
    return float(np.mean(y_true == y_pred))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    r"""Unweighted mean over classes of the per-class F1.

    .. math:: F1_c = \frac{2\,TP_c}{2\,TP_c + FP_c + FN_c}, \qquad
              \text{macro-F1} = \frac{1}{|\mathcal C|}\sum_{c \in \mathcal C} F1_c

    with :math:`\mathcal C` the classes present in ``y_true`` or ``y_pred``, so it equals
    ``sklearn.metrics.f1_score(y_true, y_pred, average="macro")``.

    Example:
        >>> macro_f1([0, 0, 1, 1], [0, 1, 1, 1])  # F1_0 = 2/3, F1_1 = 4/5
        0.7333333333333334
    """
    y_true, y_pred = as_labels(y_true), as_labels(y_pred)
    accuracy(y_true, y_pred)  # same shape / non-empty checks
    classes, codes = np.unique(np.concatenate([y_true, y_pred]), return_inverse=True)
    m = confusion_matrix(codes[: y_true.size], codes[y_true.size :], classes.size)
    tp = np.diag(m).astype(np.float64)
    return float(np.mean(2 * tp / (m.sum(0) + m.sum(1))))


def as_labels(y: ArrayLike) -> np.ndarray:
    """Labels as a 1-D numpy array (from a list, array or tensor)."""
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"labels must be 1-D (rows,), got shape {y.shape}")
    return y
