"""What a downstream classifier reads from a headless encoder under steering: a clip-level probe
on the last hidden state, fitted on the run's cached training rows.

An encoder without an output head has no transcript or class to show. The closest stand-in for
"what the model outputs" is what a linear classifier trained on its last layer would predict: the
probe reads the mean of a clip's valid last-layer frames, standardised with the training clips'
mean and std, through a multinomial logistic regression (scikit-learn, lbfgs) fitted on the
cache's `train` clips (each clip's frame rows of hidden_states[N] averaged). Under steering each
clip's steered and clean probe distributions are compared: KL(clean ‖ steered) and whether the
most likely class stays (`evaluation.steer_stats`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from saelight.cache.format import label_column
from saelight.io.defaults import MAX_ROWS


@dataclass
class ClipProbe:
    """A fitted clip probe: class names, standardisation and the linear map (float64)."""

    label: str
    classes: list[str]
    mean: Tensor
    scale: Tensor
    weight: Tensor
    bias: Tensor

    def logits(self, h: Tensor, valid: Tensor) -> Tensor:
        """(b, K) logits of clips whose last hidden states are h (b, P, D), valid (b, P)."""
        w = valid.to(h.dtype)[..., None]
        pooled = (h * w).sum(1).double() / w.sum(1).double().clamp_min(1.0)
        z = (pooled - self.mean.to(pooled.device)) / self.scale.to(pooled.device)
        return z @ self.weight.to(pooled.device).T + self.bias.to(pooled.device)


def fit_clip_probe(reader, layer: int, label: str, seed: int) -> ClipProbe | None:  # noqa: ANN001
    """The probe of `label` on the cache's train clips at `layer` (their frame rows averaged per
    clip), or None when the cache lacks the layer or the label has fewer than two values there."""
    from sklearn.linear_model import LogisticRegression

    column = label_column(label)
    if layer not in reader.layers or column not in reader.metadata:
        return None
    rows = reader.split_rows("train")
    if len(rows) > MAX_ROWS:  # a seeded subset of frames: each clip's mean from fewer frames
        rows = np.sort(np.random.default_rng(seed).choice(rows, MAX_ROWS, replace=False))
    meta = reader.metadata.iloc[rows]
    clips, clip_of = np.unique(meta["clip_id"].astype(str).to_numpy(), return_inverse=True)
    x = reader.read(rows, layers=[layer])[:, 0].astype(np.float64)
    counts = np.bincount(clip_of, minlength=len(clips))[:, None]
    pooled = np.zeros((len(clips), x.shape[1]))
    np.add.at(pooled, clip_of, x)
    pooled /= counts
    values = meta[column].astype(str).to_numpy()
    y = np.empty(len(clips), dtype=object)
    y[clip_of] = values
    classes = sorted(set(y))
    if len(classes) < 2:
        return None
    mean, scale = pooled.mean(0), pooled.std(0)
    scale[scale == 0] = 1.0
    fitted = LogisticRegression(max_iter=2000, random_state=seed)
    fitted.fit((pooled - mean) / scale, y.astype(str))
    weight, bias = fitted.coef_, fitted.intercept_
    if len(fitted.classes_) == 2:  # sklearn's binary form: one row for the second class
        weight, bias = np.vstack([-weight / 2, weight / 2]), np.r_[-bias / 2, bias / 2]
    as_t = lambda a: torch.from_numpy(np.asarray(a, dtype=np.float64))  # noqa: E731
    return ClipProbe(label, [str(c) for c in fitted.classes_], as_t(mean), as_t(scale),
                     as_t(weight), as_t(bias))  # fmt: skip
