import numpy as np
import pytest
from sklearn.metrics import confusion_matrix as sk_confusion_matrix
from sklearn.metrics import f1_score

from saelight.metrics.classification import accuracy, confusion_matrix, macro_f1


def test_accuracy_and_macro_f1_by_hand() -> None:
    y_true, y_pred = [0, 0, 1, 1, 2], [0, 1, 1, 1, 1]
    assert accuracy(y_true, y_pred) == pytest.approx(3 / 5)
    # F1: class 0 = 2/3, class 1 = 2*2/(4+2+0) = 2/3, class 2 = 0.
    assert macro_f1(y_true, y_pred) == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
    np.testing.assert_array_equal(
        confusion_matrix(np.array(y_true), np.array(y_pred), 3), [[1, 1, 0], [0, 2, 0], [0, 1, 0]]
    )


def test_scores_match_sklearn() -> None:
    rng = np.random.default_rng(0)
    y_true, y_pred = rng.integers(0, 5, 200), rng.integers(0, 6, 200)  # class 5 only predicted
    assert accuracy(y_true, y_pred) == pytest.approx(np.mean(y_true == y_pred))
    assert macro_f1(y_true, y_pred) == pytest.approx(f1_score(y_true, y_pred, average="macro"))
    np.testing.assert_array_equal(
        confusion_matrix(y_true, y_pred, 6), sk_confusion_matrix(y_true, y_pred, labels=range(6))
    )
    assert macro_f1(list("aabb"), list("abbb")) == pytest.approx(
        f1_score(list("aabb"), list("abbb"), average="macro")
    )
