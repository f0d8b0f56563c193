"""The clip probe a headless encoder's steering reads (`evaluation.steer_probe`): fitted on a
cache's train clips (frame rows averaged per clip), it reproduces scikit-learn's probabilities
(the binary case expanded to two rows), and it refuses a missing layer or a one-valued label."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression

from saelight.evaluation.steer_probe import fit_clip_probe


def fake_reader(values: list[str], frames: int = 3, dim: int = 4, seed: int = 0):  # noqa: ANN201
    """A duck-typed cache: one clip per value, `frames` rows each, class c shifted along axis c."""
    rng = np.random.default_rng(seed)
    classes = sorted(set(values))
    rows, meta = [], []
    for i, v in enumerate(values):
        centre = np.zeros(dim)
        centre[classes.index(v)] = 3.0
        rows.append(centre + rng.standard_normal((frames, dim)))
        meta += [{"clip_id": f"c{i}", "split": "train", "label_tech": v}] * frames
    x = np.concatenate(rows).astype(np.float32)
    table = pd.DataFrame(meta)
    return SimpleNamespace(
        layers=[2],
        metadata=table,
        split_rows=lambda s: np.flatnonzero(table["split"].to_numpy() == s),
        read=lambda r, layers: x[r][:, None],
    ), x


def test_binary_probe_equals_sklearn_on_the_clip_means() -> None:
    values = ["a", "b"] * 6
    reader, x = fake_reader(values)
    probe = fit_clip_probe(reader, 2, "tech", seed=0)
    assert probe is not None and probe.classes == ["a", "b"]
    pooled = x.reshape(len(values), 3, -1).astype(np.float64).mean(1)
    mean, scale = pooled.mean(0), pooled.std(0)
    reference = LogisticRegression(max_iter=2000, random_state=0)
    reference.fit((pooled - mean) / scale, values)
    h = torch.from_numpy(x.reshape(len(values), 3, -1))
    valid = torch.ones(len(values), 3, dtype=torch.bool)
    ours = probe.logits(h, valid).softmax(-1).numpy()
    np.testing.assert_allclose(ours, reference.predict_proba((pooled - mean) / scale), atol=1e-6)
    # padding frames outside `valid` do not move the clip mean
    padded = torch.cat([h, torch.full((len(values), 2, h.shape[2]), 99.0)], 1)
    mask = torch.cat([valid, torch.zeros(len(values), 2, dtype=torch.bool)], 1)
    torch.testing.assert_close(probe.logits(padded, mask), probe.logits(h, valid))


def test_three_classes_and_the_refusals() -> None:
    values = ["a", "b", "c"] * 5
    reader, _ = fake_reader(values)
    probe = fit_clip_probe(reader, 2, "tech", seed=0)
    assert probe is not None and probe.weight.shape == (3, 4)
    assert fit_clip_probe(reader, 7, "tech", seed=0) is None  # layer not cached
    assert fit_clip_probe(reader, 2, "singer", seed=0) is None  # no such label
    one, _ = fake_reader(["a"] * 4)
    assert fit_clip_probe(one, 2, "tech", seed=0) is None
