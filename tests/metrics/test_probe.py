import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import f1_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from saelight.metrics.probe import class_separation, k_sparse_probe, linear_probe, logistic_probe

CLASSES = np.array(["belt", "breathy", "vibrato"])


def _splits(seed: int = 0, dim: int = 12, n: int = 60, signal: float = 3.0):
    """Three string classes, separable along features 2, 5 and 7 only."""
    rng = np.random.default_rng(seed)
    out = []
    for rows in (n, n // 2, n // 2):
        y = CLASSES[np.arange(rows) % 3]
        x = rng.standard_normal((rows, dim)).astype(np.float32)
        for c, j in enumerate((2, 5, 7)):
            x[y == CLASSES[c], j] += signal
        out += [x, y]
    return out


def test_linear_probe_learns_and_is_deterministic() -> None:
    splits = _splits()
    torch_rng, threads = torch.random.get_rng_state(), torch.get_num_threads()
    result = linear_probe(*splits, epochs=40, lr=1e-2, seed=3)
    assert torch.equal(torch.random.get_rng_state(), torch_rng)  # global RNG untouched
    assert torch.get_num_threads() == threads
    assert result.accuracy > 0.9 and result.val_accuracy > 0.9
    assert 1 <= result.best_epoch <= 40 and result.features is None
    np.testing.assert_array_equal(result.classes, CLASSES)
    assert result.confusion.shape == (3, 3) and result.confusion.sum() == 30
    assert result.accuracy == pytest.approx(np.trace(result.confusion) / 30)
    again = linear_probe(*splits, epochs=40, lr=1e-2, seed=3)
    np.testing.assert_array_equal(again.confusion, result.confusion)
    assert (again.best_epoch, again.macro_f1) == (result.best_epoch, result.macro_f1)


def test_linear_probe_scores_the_best_validation_epoch() -> None:
    """A rerun for best_epoch epochs retraces the same seeded trajectory and stops at the chosen
    weights, so it must report the same best epoch and the same test predictions."""
    splits = _splits(seed=1, signal=0.8)
    full = linear_probe(*splits, epochs=25, lr=3e-2, batch_size=8, seed=0)
    short = linear_probe(*splits, epochs=full.best_epoch, lr=3e-2, batch_size=8, seed=0)
    assert short.best_epoch == full.best_epoch
    np.testing.assert_array_equal(short.confusion, full.confusion)


def test_linear_probe_accepts_tensors_and_int_labels() -> None:
    x_tr, y_tr, x_va, y_va, x_te, y_te = _splits(seed=2)
    enc = {c: i for i, c in enumerate(CLASSES)}
    as_t = [
        torch.from_numpy(x_tr),
        torch.tensor([enc[c] for c in y_tr]),
        torch.from_numpy(x_va),
        torch.tensor([enc[c] for c in y_va]),
        torch.from_numpy(x_te),
        torch.tensor([enc[c] for c in y_te]),
    ]
    a = linear_probe(*as_t, epochs=5, seed=0)
    b = linear_probe(x_tr, y_tr, x_va, y_va, x_te, y_te, epochs=5, seed=0)
    np.testing.assert_array_equal(a.confusion, b.confusion)
    np.testing.assert_array_equal(a.classes, [0, 1, 2])


def test_logistic_probe_matches_sklearn_pipeline() -> None:
    x_tr, y_tr, x_va, y_va, x_te, y_te = _splits(seed=4, signal=1.0)
    result = logistic_probe(x_tr, y_tr, x_va, y_va, x_te, y_te, C=0.5)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=1000, random_state=42))
    pred = ref.fit(x_tr, y_tr).predict(x_te)
    assert result.accuracy == pytest.approx(np.mean(pred == y_te))
    assert result.macro_f1 == pytest.approx(f1_score(y_te, pred, average="macro"))
    np.testing.assert_array_equal(result.confusion, sk_confusion_matrix(y_te, pred, labels=CLASSES))
    np.testing.assert_array_equal(result.test_correct, pred == y_te)  # what intervals resample
    assert result.best_epoch is None


def test_k_sparse_probe_picks_the_informative_features() -> None:
    result = k_sparse_probe(*_splits(seed=5), k=3)
    assert sorted(result.features.tolist()) == [2, 5, 7]
    assert result.accuracy > 0.9


def test_class_separation_matches_a_loop() -> None:
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((40, 5)), rng.integers(0, 3, 40)
    x[:, 4] = 1.0  # constant feature: no separation
    expected = np.zeros(5)
    for c in range(3):
        a, b = x[y == c], x[y != c]
        pooled = np.sqrt((len(a) * a.var(0) + len(b) * b.var(0)) / len(x))
        with np.errstate(invalid="ignore"):
            expected = np.maximum(expected, np.nan_to_num(np.abs(a.mean(0) - b.mean(0)) / pooled))
    np.testing.assert_allclose(class_separation(x, y), expected)
    assert class_separation(x, y)[4] == 0.0


def test_bad_inputs_name_the_split() -> None:
    x_tr, y_tr, x_va, y_va, x_te, y_te = _splits(seed=7)
    y_te = y_te.astype("<U16")
    y_te[0] = "vocal_fry"
    with pytest.raises(ValueError, match="test split has labels absent from train.*vocal_fry"):
        logistic_probe(x_tr, y_tr, x_va, y_va, x_te, y_te)
    with pytest.raises(ValueError, match="val split has no rows"):
        linear_probe(x_tr, y_tr, x_va[:0], y_va[:0], x_te, y_te)
    with pytest.raises(ValueError, match="x_train has 60 rows but y_train has 59"):
        linear_probe(x_tr, y_tr[:-1], x_va, y_va, x_te, y_te)
    with pytest.raises(ValueError, match="one feature dimension"):
        logistic_probe(x_tr, y_tr, x_va[:, :3], y_va, x_te, y_te)
    with pytest.raises(ValueError, match="k must be in"):
        k_sparse_probe(x_tr, y_tr, x_va, y_va, x_tr, y_tr, k=13)


def test_degenerate_inputs() -> None:
    x_tr, y_tr, x_va, y_va, x_te, y_te = _splits(seed=8)
    with pytest.raises(ValueError, match="train split has one class"):
        linear_probe(x_tr, np.full(60, "belt"), x_va, y_va, x_te, y_te)
    x_bad = x_te.copy()
    x_bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="x_test contains nan"):
        logistic_probe(x_tr, y_tr, x_va, y_va, x_bad, y_te)


def test_best_epoch_rule_ties_go_to_the_later_epoch() -> None:
    """With lr = 0 the weights never move, so every epoch ties on validation loss: the original
    code's `<=` keeps the last one."""
    result = linear_probe(*_splits(seed=9), epochs=7, lr=0.0, seed=0)
    assert result.best_epoch == 7


def test_best_epoch_rule_picks_the_epoch_with_the_lowest_validation_loss() -> None:
    """Validation labels inverted: the more the probe learns the train mapping the higher its
    validation loss, so the first epoch is kept, and its test scores are those of a 1-epoch
    run, not those of the last epoch."""
    x_tr, y_tr, x_va, y_va, x_te, y_te = _splits(seed=10)
    flipped = np.roll(CLASSES, 1)[np.searchsorted(CLASSES, y_va)]
    full = linear_probe(x_tr, y_tr, x_va, flipped, x_te, y_te, epochs=30, lr=1e-2, seed=0)
    one = linear_probe(x_tr, y_tr, x_va, flipped, x_te, y_te, epochs=1, lr=1e-2, seed=0)
    last = linear_probe(x_tr, y_tr, x_va, y_va, x_te, y_te, epochs=30, lr=1e-2, seed=0)
    assert full.best_epoch == 1
    np.testing.assert_array_equal(full.confusion, one.confusion)
    assert last.best_epoch > 1 and last.accuracy > full.accuracy
