"""Probes: how much class information a representation (dense activations or SAE codes) holds.

Three probes share one input contract and return a :class:`ProbeResult`:

- :func:`linear_probe`: the paper's protocol (one ``nn.Linear``, cross-entropy, Adam, best epoch by
  validation loss, test scores at that epoch).
- :func:`logistic_probe`: scikit-learn ``StandardScaler`` + ``LogisticRegression``, a fast
  deterministic alternative for frequent evaluation.
- :func:`k_sparse_probe`: the same logistic probe on only the ``k`` features that separate the
  classes best on the training split.

Inputs are numpy arrays or torch tensors, ``x: (rows, dim)`` and ``y: (rows,)``. Labels may be any
sortable values (ints, strings); they are encoded as indices into the sorted classes of the *train*
split. A val/test label unseen in train raises ``ValueError`` (the probe cannot predict it), as does
an empty split; both name the split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from saelight.io.defaults import EVAL_SEED
from saelight.metrics.classification import (
    ArrayLike,
    accuracy,
    as_labels,
    confusion_matrix,
    macro_f1,
)


@dataclass
class ProbeResult:
    """Test-split scores of a probe.

    Attributes:
        accuracy: test accuracy, see :func:`accuracy`.
        macro_f1: test macro-F1, see :func:`macro_f1`.
        confusion: ``(n_classes, n_classes)`` test counts, row = true class, column = predicted.
        classes: the original labels, in the order of ``confusion``'s rows (sorted train classes).
        val_accuracy: accuracy on the validation split with the same weights.
        best_epoch: 1-based epoch whose weights were scored (:func:`linear_probe`), else ``None``.
        features: indices of the features used, best first (:func:`k_sparse_probe`), else ``None``.
        test_correct: ``(test rows,)`` bool, whether each test row was predicted right: what a
            paired bootstrap over test clips resamples (``accuracy == test_correct.mean()``).
    """

    accuracy: float
    macro_f1: float
    confusion: np.ndarray
    classes: np.ndarray
    val_accuracy: float
    best_epoch: int | None = None
    features: np.ndarray | None = None
    test_correct: np.ndarray | None = None


def linear_probe(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_val: ArrayLike,
    y_val: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    *,
    epochs: int = 120,
    batch_size: int = 32,
    lr: float = 1e-3,
    seed: int = EVAL_SEED,
    standardize: bool = False,
    device: str | torch.device = "cpu",
    num_threads: int | None = 1,
) -> ProbeResult:
    """The paper's probe: one ``nn.Linear(dim, n_classes)`` trained with cross-entropy and Adam.

    Each epoch shuffles the train rows and takes minibatches of ``batch_size``. After each epoch the
    validation loss is the mean over consecutive, unshuffled ``batch_size`` chunks of the chunk's
    mean cross-entropy (the paper's ``DataLoader(shuffle=False)`` loop); the weights of the epoch
    with the lowest validation loss are kept, a later epoch winning ties (``<=``, as the original
    code does), and scored on the test split. Initialisation is ``nn.Linear``'s (U(±1/√dim)) drawn,
    like the shuffles, from a generator seeded with ``seed``, so the result is deterministic for a
    device and does not touch the global RNG.

    Args:
        x_train: ``(rows, dim)`` features; likewise ``x_val`` and ``x_test``.
        y_train: ``(rows,)`` labels; likewise ``y_val`` and ``y_test``.
        x_val: validation features.
        y_val: validation labels.
        x_test: test features.
        y_test: test labels.
        epochs: passes over the train split.
        batch_size: rows per Adam step (and per validation chunk).
        lr: Adam learning rate.
        seed: seeds the initialisation and the shuffles.
        standardize: z-score the features with train statistics first (off in the paper).
        device: where to train.
        num_threads: torch CPU threads while training, restored afterwards (``None``: leave as
            is). The ops are tiny (32 × dim); one thread avoids OpenMP wake-ups that made each
            step ~10x slower with two.

    Returns:
        :class:`ProbeResult` with ``best_epoch`` set.
    """
    if epochs < 1 or batch_size < 1:
        raise ValueError(f"epochs and batch_size must be >= 1, got {epochs} and {batch_size}")
    classes, splits = _prepare(x_train, y_train, x_val, y_val, x_test, y_test)
    if standardize:
        splits = _standardize(splits)
    threads = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _train_linear(classes, splits, epochs, batch_size, lr, seed, device)
    finally:
        torch.set_num_threads(threads)


def _train_linear(
    classes: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: str | torch.device,
) -> ProbeResult:
    (xt, yt), (xv, yv), (xs, ys) = (
        (torch.as_tensor(x, device=device), torch.as_tensor(y, device=device)) for x, y in splits
    )
    g = torch.Generator(device="cpu").manual_seed(seed)
    probe = torch.nn.Linear(xt.shape[1], classes.size, device="meta").to_empty(device=device)
    bound = 1.0 / math.sqrt(xt.shape[1])
    with torch.no_grad():
        for p in probe.parameters():
            p.copy_(torch.empty(p.shape).uniform_(-bound, bound, generator=g))
    # fused: one kernel per step instead of torch.optim's per-tensor Python loop (~2x faster here).
    opt = torch.optim.Adam(probe.parameters(), lr=lr, fused=True)

    best_loss, best_epoch, best_state = math.inf, 0, None
    for epoch in range(1, epochs + 1):
        perm = torch.randperm(xt.shape[0], generator=g).to(device)
        # One gather per epoch, then minibatches are views.
        for xb, yb in zip(xt[perm].split(batch_size), yt[perm].split(batch_size), strict=True):
            loss = torch.nn.functional.cross_entropy(probe(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        with torch.no_grad():
            ce = torch.nn.functional.cross_entropy(probe(xv), yv, reduction="none")
            val_loss = torch.stack([c.mean() for c in ce.split(batch_size)]).mean().item()
        if val_loss <= best_loss:
            best_loss, best_epoch = val_loss, epoch
            best_state = {k: v.detach().clone() for k, v in probe.state_dict().items()}
    if best_state is None:
        raise ValueError("the validation loss was never finite; check the features for huge values")
    probe.load_state_dict(best_state)
    with torch.no_grad():
        pred_val = probe(xv).argmax(1).cpu().numpy()
        pred_test = probe(xs).argmax(1).cpu().numpy()
    return _result(classes, ys.cpu().numpy(), pred_test, yv.cpu().numpy(), pred_val, best_epoch)


def logistic_probe(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_val: ArrayLike,
    y_val: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    *,
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int = EVAL_SEED,
) -> ProbeResult:
    """``StandardScaler`` + multinomial L2 ``LogisticRegression`` (lbfgs), fitted on train.

    A convex fit, so it has no epochs to choose: the validation split is only scored
    (``val_accuracy``). The scaler uses train statistics; constant columns are left at zero.

    Args:
        x_train: ``(rows, dim)`` features; likewise ``x_val`` and ``x_test``.
        y_train: ``(rows,)`` labels; likewise ``y_val`` and ``y_test``.
        x_val: validation features.
        y_val: validation labels.
        x_test: test features.
        y_test: test labels.
        C: inverse L2 regularisation strength.
        max_iter: lbfgs iterations.
        seed: ``random_state`` of the classifier.

    Returns:
        :class:`ProbeResult` (``best_epoch`` is ``None``).
    """
    classes, splits = _prepare(x_train, y_train, x_val, y_val, x_test, y_test)
    return _fit_logistic(classes, splits, C=C, max_iter=max_iter, seed=seed)


def k_sparse_probe(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_val: ArrayLike,
    y_val: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
    *,
    k: int = 8,
    C: float = 1.0,
    max_iter: int = 1000,
    seed: int = EVAL_SEED,
) -> ProbeResult:
    """:func:`logistic_probe` on the ``k`` features with the best :func:`class_separation` on train.

    Features are ranked on the train split only (ties broken by the lower index), so the choice
    does not peek at val or test.

    Args:
        x_train: ``(rows, dim)`` features; likewise ``x_val`` and ``x_test``.
        y_train: ``(rows,)`` labels; likewise ``y_val`` and ``y_test``.
        x_val: validation features.
        y_val: validation labels.
        x_test: test features.
        y_test: test labels.
        k: number of features kept, ``1 <= k <= dim``.
        C: inverse L2 regularisation strength of the logistic probe.
        max_iter: lbfgs iterations.
        seed: ``random_state`` of the classifier.

    Returns:
        :class:`ProbeResult` with ``features`` = the chosen indices, best first.
    """
    classes, splits = _prepare(x_train, y_train, x_val, y_val, x_test, y_test)
    dim = splits[0][0].shape[1]
    if not 1 <= k <= dim:
        raise ValueError(f"k must be in [1, {dim}] (the feature dimension), got {k}")
    score = _class_separation(splits[0][0], splits[0][1], classes.size)
    features = np.argsort(-score, kind="stable")[:k]
    result = _fit_logistic(
        classes, [(x[:, features], y) for x, y in splits], C=C, max_iter=max_iter, seed=seed
    )
    result.features = features
    return result


def class_separation(x: ArrayLike, y: ArrayLike) -> np.ndarray:
    r"""Per-feature score of how well one feature alone separates one class from the rest.

    .. math:: s_j = \max_c \frac{|\mu_{cj} - \mu_{\bar c j}|}
                    {\sqrt{(n_c \sigma^2_{cj} + n_{\bar c} \sigma^2_{\bar c j}) / N}}

    :math:`\mu_{cj}, \sigma^2_{cj}` are the mean and (population) variance of feature ``j`` over the
    :math:`n_c` rows of class ``c``, and :math:`\bar c` the :math:`n_{\bar c} = N - n_c` other rows:
    a standardised class-vs-rest mean difference (Cohen's d with a pooled std). A feature constant
    within both groups scores ``inf`` if the means differ and 0 if not.

    Args:
        x: ``(rows, dim)`` features.
        y: ``(rows,)`` labels, at least two classes.

    Returns:
        ``(dim,)`` float64 scores.

    Example:
        >>> x = np.array([[0.0, 0.0], [2.0, 2.0], [4.0, 2.0], [6.0, 2.0]])
        >>> class_separation(x, [0, 0, 1, 1])  # |1 - 5| / 1 and |1 - 2| / sqrt(1/2)
        array([4.        , 1.41421356])
    """
    classes, codes = np.unique(as_labels(y), return_inverse=True)
    x = _as_matrix(x, "x")
    if classes.size < 2 or codes.size != x.shape[0]:
        raise ValueError("class_separation needs one label per row and at least two classes")
    return _class_separation(x, codes, classes.size)


def _class_separation(x: np.ndarray, y: np.ndarray, n_classes: int) -> np.ndarray:
    x = x.astype(np.float64)
    onehot = np.eye(n_classes)[y]
    n = x.shape[0]
    n_c = onehot.sum(0)[:, None]
    s1, s2 = onehot.T @ x, onehot.T @ (x * x)
    t1, t2 = x.sum(0), (x * x).sum(0)
    n_r = n - n_c
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_c, mean_r = s1 / n_c, (t1 - s1) / n_r
        pooled = np.maximum(s2 - n_c * mean_c**2, 0) + np.maximum(t2 - s2 - n_r * mean_r**2, 0)
        diff = np.abs(mean_c - mean_r)
        score = diff / np.sqrt(pooled / n)
    # 0/0 (no difference, no spread) is no separation; d/0 with d > 0 stays inf.
    score[diff == 0] = 0.0
    return score.max(0)


def _fit_logistic(
    classes: np.ndarray,
    splits: list[tuple[np.ndarray, np.ndarray]],
    C: float,
    max_iter: int,
    seed: int,
) -> ProbeResult:
    (xt, yt), (xv, yv), (xs, ys) = splits
    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=C, max_iter=max_iter, random_state=seed)
    )
    model.fit(xt, yt)
    return _result(classes, ys, model.predict(xs), yv, model.predict(xv), None)


def _result(
    classes: np.ndarray,
    y_test: np.ndarray,
    pred_test: np.ndarray,
    y_val: np.ndarray,
    pred_val: np.ndarray,
    best_epoch: int | None,
) -> ProbeResult:
    return ProbeResult(
        accuracy=accuracy(y_test, pred_test),
        macro_f1=macro_f1(y_test, pred_test),
        confusion=confusion_matrix(y_test, pred_test, classes.size),
        classes=classes,
        val_accuracy=accuracy(y_val, pred_val),
        best_epoch=best_epoch,
        test_correct=np.asarray(y_test) == np.asarray(pred_test),
    )


def _as_matrix(x: ArrayLike, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D (rows, dim), got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains nan or inf")
    return x


def _prepare(
    x_train: ArrayLike,
    y_train: ArrayLike,
    x_val: ArrayLike,
    y_val: ArrayLike,
    x_test: ArrayLike,
    y_test: ArrayLike,
) -> tuple[np.ndarray, list[tuple[np.ndarray, np.ndarray]]]:
    """Validate the three splits and encode labels as indices into the sorted train classes."""
    splits = []
    for name, x, y in (
        ("train", x_train, y_train),
        ("val", x_val, y_val),
        ("test", x_test, y_test),
    ):
        x, y = _as_matrix(x, f"x_{name}"), as_labels(y)
        if x.shape[0] == 0:
            raise ValueError(f"the {name} split has no rows")
        if x.shape[0] != y.shape[0]:
            raise ValueError(f"x_{name} has {x.shape[0]} rows but y_{name} has {y.shape[0]}")
        splits.append((name, x, y))
    dims = {x.shape[1] for _, x, _ in splits}
    if len(dims) != 1:
        raise ValueError(f"train/val/test must have one feature dimension, got {sorted(dims)}")
    classes = np.unique(splits[0][2])
    if classes.size < 2:
        raise ValueError(f"the train split has one class ({classes[0]!r}); need at least two")
    encoded = []
    for name, x, y in splits:
        unseen = ~np.isin(y, classes)
        if unseen.any():
            raise ValueError(
                f"the {name} split has labels absent from train: "
                f"{sorted(set(np.unique(y[unseen]).tolist()))}"
            )
        encoded.append((x, np.searchsorted(classes, y).astype(np.int64)))
    return classes, encoded


def _standardize(
    splits: list[tuple[np.ndarray, np.ndarray]],
) -> list[tuple[np.ndarray, np.ndarray]]:
    scaler = StandardScaler().fit(splits[0][0])
    return [(scaler.transform(x).astype(np.float32), y) for x, y in splits]
