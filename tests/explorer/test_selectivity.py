"""Sparse AUROC and correlations against sklearn / scipy on dense arrays."""

import numpy as np
import scipy.sparse as sp
from scipy.stats import pearsonr, rankdata, spearmanr
from sklearn.metrics import roc_auc_score

from saelight.explorer.selectivity import column_ranks, factor_correlations, label_auroc


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
