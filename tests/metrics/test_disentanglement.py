import math

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.linear_model import Lasso
from sklearn.metrics import mutual_info_score
from sklearn.preprocessing import StandardScaler

from saelight.metrics import disentanglement as dis
from saelight.metrics.disentanglement import (
    effective_dimensions,
    fit_lasso,
    importance_entropy,
    lasso_completeness,
    normalized_entropy,
    split_rows,
)
from saelight.metrics.disentanglement_dci import dci
from saelight.metrics.disentanglement_info import (
    _BinnedCodes,
    information_scores,
    mig,
    quantile_bins,
)


def _hadamard_codes() -> tuple[np.ndarray, np.ndarray]:
    """Orthogonal ±1 codes c0, c1, c2, a constant c3, and the factor c0 + c1."""
    c0 = np.array([1, 1, 1, 1, -1, -1, -1, -1], dtype=float)
    c1 = np.array([1, 1, -1, -1, 1, 1, -1, -1], dtype=float)
    c2 = np.array([1, -1, 1, -1, 1, -1, 1, -1], dtype=float)
    codes = np.stack([c0, c1, c2, np.full(8, 5.0)], axis=1)
    return codes, (c0 + c1)[:, None]


def test_completeness_by_hand() -> None:
    """Standardised, orthogonal codes: Lasso weights are soft-thresholded correlations,
    corr(c0, y) = corr(c1, y) = 1/√2 and corr(c2, y) = 0, so w = (1/√2 - 0.1) on c0 and c1 only.
    p = (1/2, 1/2, 0, 0): C = 1 - log 2 / log 4 = 0.5, and 1 - log 2 / log 3 over the 3 live dims.
    The fit leaves a residual of 0.1·√2·y, so R² = 1 - 0.02."""
    codes, factor = _hadamard_codes()
    out = lasso_completeness(codes, factor, factor_names=["f0"], held_out=False)
    np.testing.assert_allclose(
        out.importance[:, 0], [1 / math.sqrt(2) - 0.1] * 2 + [0, 0], atol=1e-8
    )
    np.testing.assert_allclose(out.r2, [0.98], atol=1e-8)
    np.testing.assert_allclose(out.completeness, [0.5], atol=1e-8)
    np.testing.assert_allclose(out.completeness_k_fair, [1 - math.log(2) / math.log(3)], atol=1e-8)
    assert (out.n_codes, out.n_alive) == (4, 3)
    assert out.summary["r2_mean"] == pytest.approx(0.98) and out.summary["r2_std"] == 0.0
    np.testing.assert_allclose(out.entropy, [math.log(2)], atol=1e-8)
    assert out.summary["effective_dims"] == pytest.approx(2.0)


def test_effective_dims_do_not_depend_on_the_code_width() -> None:
    """One factor carried by the same 10 dims of a 768-d and a 2048-d code (the other dims never
    fire, like dead latents): same importances on those dims, so the same entropy and effective
    dims, while the paper's completeness 1 - H / log K differs by the log K ratio alone."""
    rng = np.random.default_rng(0)
    factor = rng.standard_normal(200)
    carriers = factor[:, None] * rng.uniform(0.5, 1.5, 10) + 0.3 * rng.standard_normal((200, 10))
    out = {}
    for width in (768, 2048):
        codes = np.zeros((200, width))
        codes[:, 100:110] = carriers
        out[width] = lasso_completeness(codes, factor, held_out=False)
    a, b = out[768], out[2048]
    np.testing.assert_allclose(a.importance[100:110], b.importance[100:110], atol=1e-12)
    np.testing.assert_allclose(a.entropy, b.entropy, atol=1e-12)
    assert a.summary["effective_dims"] == pytest.approx(b.summary["effective_dims"], abs=1e-9)
    assert 1 < a.summary["effective_dims"] <= 10
    h = a.entropy[0]
    assert a.completeness[0] == pytest.approx(1 - h / math.log(768))
    assert b.completeness[0] == pytest.approx(1 - h / math.log(2048))
    assert b.completeness[0] > a.completeness[0] + 0.01  # the width alone lifts the paper's C


def test_effective_dimensions_by_hand() -> None:
    even = np.zeros((2048, 1))
    even[:10] = 0.3
    assert effective_dimensions(even)[0] == pytest.approx(10.0)
    assert effective_dimensions(even[:768])[0] == pytest.approx(10.0)
    # p = (1/2, 1/4, 1/4): H = 1.5 log 2, D = 2^1.5.
    np.testing.assert_allclose(effective_dimensions(np.array([[2.0], [1.0], [1.0]])), [2**1.5])
    np.testing.assert_allclose(
        importance_entropy(np.array([[2.0], [1.0], [1.0]])), [1.5 * math.log(2)]
    )
    assert np.isnan(effective_dimensions(np.zeros((4, 1)))[0])


def test_normalized_entropy_by_hand() -> None:
    p = np.array([[1.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    np.testing.assert_allclose(normalized_entropy(p, axis=1, base=4), [0.5, np.nan, 1.0])


def _original_protocol(codes: np.ndarray, factors: np.ndarray, eps: float = 1e-6):
    """The authors' notebook (sae_audio_ssl disentanglement_eval.ipynb, fit_lasso and
    completeness_score): in-sample fit and R², eps in the normalisation."""
    x = StandardScaler().fit_transform(codes)
    y = StandardScaler().fit_transform(factors)
    weights, r2 = np.zeros((x.shape[1], y.shape[1])), []
    for j in range(y.shape[1]):
        model = clone(Lasso(alpha=0.1, max_iter=10000)).fit(x, y[:, j])
        r2.append(model.score(x, y[:, j]))
        weights[:, j] = np.abs(model.coef_)
    p = weights / (weights.sum(0, keepdims=True) + eps)
    completeness = 1 - (-np.sum(p * np.log(p + eps) / np.log(x.shape[1]), axis=0))
    top = np.flipud(np.argsort(r2))[:10]
    return np.array(r2), completeness, weights, top


def _sae_like(seed: int = 0, n: int = 150, k_dims: int = 40, n_factors: int = 12):
    rng = np.random.default_rng(seed)
    latent = rng.standard_normal((n, 6))
    codes = np.maximum(latent @ rng.standard_normal((6, k_dims)) - 1.0, 0.0)
    codes[:, :3] = 0.0  # dead latents
    factors = latent @ rng.standard_normal((6, n_factors)) + rng.standard_normal((n, n_factors))
    return codes, factors


def test_in_sample_mode_reproduces_the_original_protocol() -> None:
    codes, factors = _sae_like()
    r2, completeness, weights, top = _original_protocol(codes, factors)
    out = lasso_completeness(codes, factors, held_out=False)
    np.testing.assert_allclose(out.r2, r2, atol=1e-6)
    np.testing.assert_allclose(out.importance, weights, atol=1e-6)
    np.testing.assert_allclose(out.completeness, completeness, atol=1e-3)  # the original's eps
    np.testing.assert_array_equal(np.sort(out.top), np.sort(top))
    assert out.summary["completeness_mean"] == pytest.approx(completeness[top].mean(), abs=1e-3)
    assert out.summary["r2_std"] == pytest.approx(np.std(r2[top]), abs=1e-6)
    assert out.n_alive == 37
    assert np.all(out.completeness_k_fair < out.completeness)


def test_held_out_r2_is_scored_on_unseen_rows() -> None:
    codes, factors = _sae_like(seed=1)
    out = lasso_completeness(codes, factors, held_out=True, test_fraction=0.25, seed=0)
    train, test = split_rows(len(codes), 0.25, seed=0)
    ref = lasso_completeness(codes[train], factors[train], held_out=False)
    np.testing.assert_allclose(out.importance, ref.importance, atol=1e-10)
    pred = fit_lasso(codes, factors, train, alpha=0.1).predict(codes[test])
    ss_res = ((factors[test] - pred) ** 2).sum(0)
    ss_tot = ((factors[test] - factors[test].mean(0)) ** 2).sum(0)
    np.testing.assert_allclose(out.r2, 1 - ss_res / ss_tot)
    assert out.held_out and out.summary["r2_mean"] < ref.summary["r2_mean"]


def test_sparse_and_dense_fits_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    codes, factors = _sae_like(seed=2)
    idx = np.arange(100)
    sparse = fit_lasso(codes, factors, idx, alpha=0.1)
    monkeypatch.setattr(dis, "_SPARSE_BELOW", 0.0)
    dense = fit_lasso(codes, factors, idx, alpha=0.1)
    np.testing.assert_allclose(sparse.coef, dense.coef, atol=1e-8)
    np.testing.assert_allclose(sparse.predict(codes), dense.predict(codes), atol=1e-8)


def test_constant_factors_are_skipped_and_constant_codes_do_not_crash() -> None:
    codes, factors = _sae_like(seed=3)
    codes[:, 5] = 7.0
    named = {"pitch": factors[:, 0], "flat": np.ones(len(codes)), "loudness": factors[:, 1]}
    out = lasso_completeness(codes, named)
    assert out.factor_names == ["pitch", "loudness"] and out.skipped == ["flat"]
    assert np.all(out.importance[[0, 1, 2, 5]] == 0)
    with pytest.raises(ValueError, match="every factor is constant"):
        lasso_completeness(codes, {"flat": np.ones(len(codes))})
    with pytest.raises(ValueError, match="nan or inf"):
        lasso_completeness(codes, np.full((len(codes), 1), np.nan))


def test_split_rows_keeps_groups_together() -> None:
    groups = np.repeat(np.array(["f1", "f2", "m1", "m2", "m3"]), 10)
    train, test = split_rows(50, 0.3, seed=1, groups=groups)
    assert set(groups[train]).isdisjoint(groups[test])
    assert len(test) >= 15 and len(train) + len(test) == 50
    again = split_rows(50, 0.3, seed=1, groups=groups)
    np.testing.assert_array_equal(again[1], test)


def _factors(seed: int = 0, n: int = 600, n_factors: int = 4):
    rng = np.random.default_rng(seed)
    return rng.uniform(size=(n, n_factors)), rng


def _rotation(rng: np.random.Generator, dim: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return q


def test_dci_on_known_cases() -> None:
    factors, rng = _factors()
    perfect = dci(factors, factors)
    assert perfect.disentanglement > 0.99 and perfect.completeness > 0.99
    assert perfect.informativeness > 0.9
    rotated = dci(factors @ _rotation(rng, 4), factors)
    assert rotated.disentanglement < 0.7 and rotated.completeness < 0.7
    noise = dci(rng.standard_normal((600, 6)), factors)
    assert abs(noise.informativeness) < 0.05


def test_dci_with_discrete_labels() -> None:
    rng = np.random.default_rng(4)
    technique = rng.choice(np.array(["belt", "breathy", "trill"]), 300)
    onehot = (technique[:, None] == np.array(["belt", "breathy", "trill"])).astype(float)
    pitch = rng.uniform(size=300)
    codes = np.concatenate([onehot, pitch[:, None], rng.normal(0, 0.01, (300, 2))], axis=1)
    out = dci(codes, {"pitch": pitch}, {"technique": technique, "flat": np.zeros(300)})
    assert out.factor_names == ["pitch", "technique"] and out.skipped == ["flat"]
    assert out.discrete.tolist() == [False, True]
    assert out.informativeness_discrete == 1.0 and out.informativeness_continuous > 0.9
    assert out.disentanglement > 0.95
    np.testing.assert_array_equal(out.importance[3:, 1], 0.0)


def test_mutual_information_matches_sklearn() -> None:
    rng = np.random.default_rng(5)
    codes = np.maximum(rng.standard_normal((200, 3)), 0.0)
    factor = rng.integers(0, 4, 200)
    binned = _BinnedCodes(codes, 5)
    mi = binned.mutual_info(factor, 4)
    for i in range(3):
        assert mi[i] == pytest.approx(mutual_info_score(binned.bins[:, i], factor))


def test_quantile_bins_are_equal_frequency() -> None:
    x = np.random.default_rng(6).standard_normal(1000)
    np.testing.assert_array_equal(np.bincount(quantile_bins(x, 10)), [100] * 10)


def test_mig_sap_modularity_on_known_cases() -> None:
    factors, rng = _factors(seed=7, n=2000)
    labels = {"technique": rng.integers(0, 4, 2000), "vowel": rng.integers(0, 5, 2000)}
    perfect_codes = np.concatenate([factors, np.stack(list(labels.values()), 1)], axis=1)
    # One scale for every code, so that the rotation mixes factors evenly.
    perfect_codes = (perfect_codes - perfect_codes.mean(0)) / perfect_codes.std(0)
    perfect = information_scores(perfect_codes, factors, labels)
    assert perfect.factor_mig[perfect.discrete].min() > 0.95
    assert perfect.mig > 0.8 and perfect.modularity > 0.95 and perfect.sap > 0.9
    rotated = information_scores(perfect_codes @ _rotation(rng, 6), factors, labels)
    assert rotated.mig < perfect.mig - 0.3
    assert rotated.modularity < perfect.modularity - 0.1
    assert rotated.sap < perfect.sap - 0.3
    assert mig(perfect_codes, factors, labels) == perfect.mig


def test_quantile_bins_give_a_heavy_tie_its_own_bin() -> None:
    x = np.concatenate([np.zeros(95), np.arange(1.0, 6.0)])  # e.g. unvoiced frames at pitch 0
    # Mid-ranks: F(0) = 0.475, F(1..5) in [0.955, 0.995], so bins 9 and 19, relabelled 0 and 1.
    np.testing.assert_array_equal(quantile_bins(x, 20), [0] * 95 + [1] * 5)
    np.testing.assert_array_equal(quantile_bins(x[::-1], 20), [1] * 5 + [0] * 95)


def test_histogram_classifier_matches_a_loop() -> None:
    rng = np.random.default_rng(8)
    codes = np.maximum(rng.standard_normal((120, 3)), 0.0)
    label = (codes[:, 0] > 0.5).astype(int) + rng.integers(0, 2, 120)
    train, test = np.arange(80), np.arange(80, 120)
    binned = _BinnedCodes(codes, 4)
    got = binned.histogram_accuracy(label, 3, train, test)
    for i in range(3):
        b = binned.bins[:, i]
        majority = np.bincount(label[train]).argmax()
        table = {
            k: np.bincount(label[train][b[train] == k], minlength=3).argmax() for k in range(4)
        }
        table = {k: (v if np.any(b[train] == k) else majority) for k, v in table.items()}
        assert got[i] == pytest.approx(np.mean([table[k] for k in b[test]] == label[test]))


def _hand_codes() -> tuple[np.ndarray, np.ndarray]:
    """Two balanced independent binary factors a, b; codes z0 = a, z1 = b, z2 = a AND b."""
    a = np.array([0, 0, 0, 0, 1, 1, 1, 1], dtype=float)
    b = np.array([0, 0, 1, 1, 0, 0, 1, 1], dtype=float)
    return np.stack([a, b, a * b], 1), np.stack([a, b], 1)


def test_mig_sap_modularity_exact_values_by_hand() -> None:
    """I(z0; a) = I(z1; b) = H(a) = log 2, I(z0; b) = I(z1; a) = 0 and, as z2 = 1 on a quarter of
    the rows, I(z2; a) = I(z2; b) = H(1/4) - H(z2 | a) = H(1/4) - log(2) / 2 =: c.
    MIG = (log 2 - c) / log 2 for both factors. SAP (continuous factors: S = corr²):
    corr(a AND b, a)² = (1/8)² / (3/16 · 1/4) = 1/3, so each factor's gap is 1 - 1/3.
    Modularity: z0 and z1 score 1; z2 has equal MI with both factors, 1 - c² / c² = 0."""
    codes, factors = _hand_codes()
    log2 = math.log(2)
    h_quarter = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    c = h_quarter - log2 / 2
    out = information_scores(codes, factors)
    np.testing.assert_allclose(out.mutual_info, [[log2, 0], [0, log2], [c, c]], atol=1e-12)
    np.testing.assert_allclose(out.factor_entropy, [log2, log2], atol=1e-12)
    assert out.mig == pytest.approx(1 - c / log2)
    np.testing.assert_allclose(out.sap_scores[:, 0], [1.0, 0.0, 1 / 3], atol=1e-12)
    assert out.sap == pytest.approx(2 / 3)
    np.testing.assert_allclose(out.code_modularity, [1.0, 1.0, 0.0], atol=1e-12)
    assert out.modularity == pytest.approx(2 / 3)
    # As discrete labels the MI, and so MIG and modularity, are the same.
    labels = {"a": factors[:, 0].astype(int), "b": factors[:, 1].astype(int)}
    discrete = information_scores(codes, labels=labels)
    assert discrete.mig == pytest.approx(out.mig)
    assert discrete.modularity == pytest.approx(out.modularity)
