"""Sparse AUROC, the F1 ranking score and correlations against sklearn / scipy on dense arrays,
and the README's counter-example computed by hand."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.metrics import f1_score, precision_score, recall_score, roc_auc_score

from saelight.explorer.selectivity import (
    column_ranks,
    detector_f1,
    detector_order,
    factor_correlations,
    label_auroc,
)


def _codes(n: int = 120, d: int = 10, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    z = np.maximum(rng.normal(size=(n, d)) - 0.6, 0.0).round(1)  # rounding makes ties
    z[:, 2] = 0.0  # never fires
    z[:, 3] = 1.5  # always fires with one value
    return z


def test_column_ranks_match_rankdata() -> None:
    z = _codes()
    Z = sp.csc_matrix(z)
    ranks = sp.csc_matrix((column_ranks(Z), Z.indices, Z.indptr), shape=Z.shape).toarray()
    expected = np.where(z > 0, rankdata(z, axis=0), 0.0)
    np.testing.assert_allclose(ranks, expected)


def test_label_auroc_matches_sklearn() -> None:
    z = _codes()
    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, len(z))
    y[y == 2] = 3  # class 2 absent: NaN column
    auroc, fires_in = label_auroc(sp.csc_matrix(z), y, 4)
    for c in (0, 1, 3):
        expected = [roc_auc_score(y == c, z[:, j]) for j in range(z.shape[1])]
        np.testing.assert_allclose(auroc[:, c], expected, atol=1e-12)
    assert np.isnan(auroc[:, 2]).all()
    assert auroc[2, 0] == 0.5
    np.testing.assert_array_equal(
        fires_in, [[((z[:, j] > 0) & (y == c)).sum() for c in range(4)] for j in range(z.shape[1])]
    )


def test_correlations_match_scipy() -> None:
    z = _codes()
    rng = np.random.default_rng(2)
    f = np.stack(
        [
            3 * z[:, 0] + 0.1 * rng.normal(size=len(z)),
            rng.normal(size=len(z)),
            np.full(len(z), 3.0),
        ],
        1,
    )
    f[[4, 9], 1] = np.nan
    pearson, spearman = factor_correlations(sp.csc_matrix(z.astype(np.float32)), f)
    z32 = z.astype(np.float32).astype(np.float64)
    for m in (0, 1):
        keep = np.isfinite(f[:, m])
        for j in range(z.shape[1]):
            if j in (2, 3):  # constant codes
                assert np.isnan(pearson[j, m]) and np.isnan(spearman[j, m])
                continue
            assert abs(pearson[j, m] - pearsonr(z32[keep, j], f[keep, m])[0]) < 1e-9
            assert abs(spearman[j, m] - spearmanr(z32[keep, j], f[keep, m])[0]) < 1e-9
    assert np.isnan(pearson[:, 2]).all() and np.isnan(spearman[:, 2]).all()
    assert spearman[0, 0] > 0.5


def test_detector_f1_matches_sklearn() -> None:
    z = _codes()
    y = np.random.default_rng(3).integers(0, 3, len(z))
    _, fires_in = label_auroc(sp.csc_matrix(z), y, 3)
    precision, recall, f1 = detector_f1(fires_in, (z > 0).sum(0), np.bincount(y), len(z))
    for j in (0, 1, 4):
        for c in range(3):
            fired, truth = z[:, j] > 0, y == c
            assert precision[j, c] == pytest.approx(precision_score(truth, fired))
            assert recall[j, c] == pytest.approx(recall_score(truth, fired))
            assert f1[j, c] == pytest.approx(f1_score(truth, fired))
    assert np.isnan(precision[2]).all() and (f1[2] == 0).all()  # never fires
    assert f1[3] == pytest.approx(2 * np.bincount(y) / (len(z) + np.bincount(y)))  # always fires


def test_undefined_classes_are_nan() -> None:
    precision, recall, f1 = detector_f1(np.array([[2, 0]]), np.array([2]), np.array([2, 0]), 2)
    assert np.isnan(f1).all() and np.isnan(precision).all() and np.isnan(recall).all()


def test_readme_counter_example_ranks_the_precise_latent_first() -> None:
    """10000 rows, 572 "spoken". Latent A fires on 5200 rows, spoken ones highest: AUROC 1.0,
    precision 572/5200 = 0.11, frequency 0.52. Latent B fires on 938 rows: every spoken one (code
    1) and 366 others, 4 of them at code 2 above every spoken row: AUROC 1 - 4/9428 = 0.99958,
    precision 572/938 = 0.6098. F1 = 2 TP / (fires + positives): A 1144/5772 = 0.1982,
    B 1144/1510 = 0.7576, so B ranks first although its AUROC is lower."""
    n, spoken = 10000, 572
    y = np.zeros(n, np.int64)
    y[:spoken] = 1
    z = np.zeros((n, 2), np.float32)
    z[:spoken, 0], z[spoken:5200, 0] = 2.0, 1.0
    z[:spoken, 1], z[spoken : spoken + 4, 1], z[spoken + 4 : 938, 1] = 1.0, 2.0, 0.5
    auroc, fires_in = label_auroc(sp.csc_matrix(z), y, 2)
    precision, recall, f1 = detector_f1(fires_in, (z > 0).sum(0), np.bincount(y), n)
    assert auroc[:, 1].tolist() == pytest.approx([1.0, 1 - 4 / 9428])
    assert auroc[1, 1] == pytest.approx(roc_auc_score(y, z[:, 1]))
    assert precision[:, 1].tolist() == pytest.approx([0.11, 572 / 938])
    assert (z > 0).mean(0).tolist() == pytest.approx([0.52, 0.0938])
    assert f1[:, 1].tolist() == pytest.approx([1144 / 5772, 1144 / 1510])
    assert detector_order(f1[:, 1], auroc[:, 1]).tolist() == [1, 0]
    assert np.argsort(-auroc[:, 1]).tolist() == [0, 1]  # what ranking by AUROC did


def test_detector_order_breaks_ties_by_auroc_then_position() -> None:
    f1 = np.array([[0.5, 0.5, np.nan, 0.5, 0.9]])
    auroc = np.array([[0.6, 0.7, 0.99, 0.7, 0.1]])
    assert detector_order(f1, auroc).tolist() == [[4, 1, 3, 0, 2]]
