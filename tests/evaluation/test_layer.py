"""The held-out evaluation of one layer, on arrays with a known structure."""

import numpy as np
import pandas as pd
import pytest

from saelight.cache.format import TEST_HEAD
from saelight.evaluation.layer import (
    EvalOptions,
    SplitData,
    _probe_splits,
    evaluate_layer,
    probe_labels,
)
from saelight.metrics.disentanglement import lasso_completeness
from saelight.sae import TopKSAE


def make_splits(seed: int = 0, n: int = 60, dim: int = 8) -> dict[str, SplitData]:
    """Label `vowel` lives in dim 0; `singer` differs between splits (groups never straddle)."""
    rng = np.random.default_rng(seed)
    splits = {}
    for i, split in enumerate(("train", "val", "test")):
        vowel = rng.choice(["a", "i"], n)
        x = rng.normal(size=(n, dim)).astype(np.float32)
        x[:, 0] += np.where(vowel == "a", 3.0, -3.0)
        meta = pd.DataFrame(
            {
                "clip_id": [f"{split}{j}" for j in range(n)],
                "split": split,
                "crop": np.arange(n) % 2,
                "label_vowel": vowel,
                "label_singer": f"s{i}",
                "factor_f0": x[:, 0] * 2 + rng.normal(scale=0.1, size=n),
                "factor_noise": rng.normal(size=n),
            }
        )
        splits[split] = SplitData(x, meta)
    return splits


def test_probe_labels_skip_labels_whose_classes_do_not_cross_splits() -> None:
    assert probe_labels(make_splits(), None) == ["vowel"]
    with pytest.raises(ValueError, match="not in the cache"):
        probe_labels(make_splits(), ["technique"])


def test_probe_splits_keep_first_crops_of_train_only() -> None:
    splits = make_splits()
    kept = _probe_splits(splits, 1)
    assert len(kept["train"].x) == 30 and (kept["train"].meta["crop"] == 0).all()
    assert kept["test"] is splits["test"]
    assert _probe_splits(splits, 0) is splits


def test_evaluate_layer_rows_and_deltas() -> None:
    splits = make_splits()
    sae = TopKSAE(8, d_sae=16, k=4)
    rows = evaluate_layer(3, splits, {"topk_k4": sae}, EvalOptions(probe="logistic", k_sparse=1))
    dense, row = rows
    assert (dense["name"], dense["kind"], row["kind"]) == ("dense", "dense", "sae")
    assert dense["probe_vowel_acc"] > 0.95  # the label is linearly separable in dim 0
    assert row["l0"] <= 4 and row["sparsity"] == pytest.approx(1 - 4 / 16)
    assert row["probe_vowel_acc_delta"] == pytest.approx(
        row["probe_vowel_acc"] - dense["probe_vowel_acc"]
    )
    assert dense["top_factors"][0] == "f0" and dense["r2_mean"] > 0.3
    assert 0 <= row["completeness_mean"] <= 1 and "mig" in row


def test_rows_hold_per_clip_correctness_that_adds_up_to_the_accuracy() -> None:
    splits = make_splits()
    rows = evaluate_layer(
        3, splits, {"s": TopKSAE(8, d_sae=16, k=4)}, EvalOptions(probe="logistic")
    )
    for row in rows:
        correct = row["probe_vowel_clip_correct"]
        assert len(correct) == 60 and set(correct) <= {0, 1}
        assert sum(correct) / 60 == pytest.approx(row["probe_vowel_acc"])
        assert "test_clip_rows" not in row  # one test row per clip
    # Frame-level: 3 rows per clip; the counts are per clip, sorted by clip id.
    test = splits["test"]
    test.meta["clip_id"] = [f"c{j // 3:02d}" for j in range(60)]
    dense = evaluate_layer(3, splits, {}, EvalOptions(probe="logistic", disentanglement=False))[0]
    assert dense["test_clip_rows"] == [3] * 20
    assert sum(dense["probe_vowel_clip_correct"]) / 60 == pytest.approx(dense["probe_vowel_acc"])
    assert max(dense["probe_vowel_clip_correct"]) <= 3


def test_width_independent_columns_protocol_and_bootstrap() -> None:
    splits = make_splits()
    sae = {"s": TopKSAE(8, d_sae=16, k=4)}
    ours = evaluate_layer(3, splits, sae, EvalOptions(probe="logistic", standard_scores=False))
    for row in ours:
        assert row["effective_dims"] == pytest.approx(np.exp(row["factor_entropy_mean"]))
        h, width = row["factor_entropy_mean"], row["d_sae"]
        assert row["completeness_mean"] == pytest.approx(1 - h / np.log(width))
        assert "factor_entropy_boot" not in row
    opts = EvalOptions(probe="logistic", standard_scores=False, protocol="paper", bootstrap=3)
    paper = evaluate_layer(3, splits, sae, opts)
    meta = splits["test"].meta
    factors = {n: meta[f"factor_{n}"].to_numpy(np.float64) for n in ("f0", "noise")}
    in_sample = lasso_completeness(
        splits["test"].x, factors, held_out=False, groups=meta["clip_id"]
    )
    assert paper[0]["r2_mean"] == pytest.approx(in_sample.summary["r2_mean"])
    assert paper[0]["r2_mean"] != pytest.approx(ours[0]["r2_mean"])
    for row in paper:
        assert len(row["factor_entropy_boot"]) == 3
        assert all(v is None or 0 <= v <= np.log(row["d_sae"]) for v in row["factor_entropy_boot"])


def test_probes_follow_the_test_head_rows_and_the_rest_the_whole_files() -> None:
    """`test_head` rows (the paper's first 5 s) carry the label, the whole files do not: the
    probes are scored on the head, reconstruction and disentanglement on the whole files."""
    splits = make_splits()
    whole = splits["test"]
    rng = np.random.default_rng(1)
    whole.x[:, 0] = rng.normal(size=60)  # the label is gone from the whole-file rows
    head_x = np.repeat(make_splits(seed=2)["test"].x, 2, axis=0)  # 2 rows (frames) per clip
    head_meta = whole.meta.loc[np.repeat(np.arange(60), 2)].reset_index(drop=True)
    head_x[:, 0] = np.where(head_meta["label_vowel"] == "a", 3.0, -3.0)
    head_meta["split"] = TEST_HEAD
    sae = {"s": TopKSAE(8, d_sae=16, k=4)}
    opts = EvalOptions(probe="logistic", k_sparse=1, standard_scores=False)
    without = evaluate_layer(3, splits, sae, opts)
    paper = evaluate_layer(3, {**splits, TEST_HEAD: SplitData(head_x, head_meta)}, sae, opts)
    assert without[0]["probe_vowel_acc"] < 0.75 < 0.95 < paper[0]["probe_vowel_acc"]
    assert paper[0]["ksparse_vowel_acc"] > 0.95 > 0.75 > without[0]["ksparse_vowel_acc"]
    for row in paper:
        assert row["test_clip_rows"] == [2] * 60  # the probes' rows per clip: the head's
        assert sum(row["probe_vowel_clip_correct"]) / 120 == pytest.approx(row["probe_vowel_acc"])
        assert np.sum(row["probe_vowel_confusion"]) == 120
    for a, b in zip(paper, without, strict=True):
        for key in ("mse", "fvu", "l0", "r2_mean", "completeness_mean", "top_factors"):
            assert a.get(key) == b.get(key), key  # whole files, as without head rows
