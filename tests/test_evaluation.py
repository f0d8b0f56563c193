"""The held-out evaluation of one layer, on arrays with a known structure."""

import numpy as np
import pandas as pd
import pytest

from saelight.evaluation.layer import (
    EvalOptions,
    SplitData,
    _probe_splits,
    evaluate_layer,
    probe_labels,
)
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
