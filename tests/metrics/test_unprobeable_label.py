"""A label whose groups the split keeps apart (singer, speaker) is skipped with one WARNING line
that says why and how to make it probeable (evaluation/layer.py; kept beside the probe tests)."""

import logging

import numpy as np
import pandas as pd
import pytest

from saelight.evaluation import layer
from saelight.evaluation.layer import SplitData, probe_labels


def _splits() -> dict[str, SplitData]:
    """`vowel` is shared by every split; `singer` has other values in val and test than in train;
    `gender` has one train value."""
    rng = np.random.default_rng(0)
    out = {}
    for i, split in enumerate(("train", "val", "test")):
        meta = pd.DataFrame(
            {
                "clip_id": [f"{split}{j}" for j in range(8)],
                "label_vowel": ["a", "i"] * 4,
                "label_singer": [f"s{2 * i}", f"s{2 * i + 1}"] * 4,
                "label_gender": "f" if split == "train" else ["f", "m"] * 4,
            }
        )
        out[split] = SplitData(rng.normal(size=(8, 4)).astype(np.float32), meta)
    return out


def test_unprobeable_labels_get_one_warning_line_each(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(layer, "_WARNED", set())
    with caplog.at_level(logging.INFO, logger="saelight.evaluation.layer"):
        for _ in range(3):  # the callback asks once per SAE and epoch: still one line each
            assert probe_labels(_splits(), None) == ["vowel"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2 and all("\n" not in r.getMessage() for r in warnings)
    singer, gender = sorted((r.getMessage() for r in warnings), reverse=True)
    assert singer.startswith("label 'singer' is not probed: 4 of its val/test values never")
    assert "(s2, s3, s4, s5)" in singer and "keeps its groups apart" in singer
    assert "to probe it" in singer and "split_column" in singer
    assert gender.startswith("label 'gender' is not probed: train holds 1 value(s)")
    assert "to probe it" in gender
