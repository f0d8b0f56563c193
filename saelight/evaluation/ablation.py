"""Latent ablation and downstream probes for splicing (`saelight.evaluation.splice`).

Probes. For each label, a logistic probe (StandardScaler + LogisticRegression) reads the clean
rows of a later layer. The held-out clips are split in two folds by clip (seeded); each fold's
rows are scored by the probe fitted on the other fold's clean rows (2-fold cross-fitting), so
every row is scored by a probe that never saw its clip, and the clean and spliced rows of a clip
meet the same probe. Accuracy drop = acc(clean) − acc(spliced), in [0, 1] units.

Ablation. For label value c the k latents that best detect "label = c" on the clean rows of layer L
are ablated: the explorer's ranking (`saelight.explorer.selectivity.detector_order`: F1 of
"fires", ties by AUROC), live latents only. The control is k random live latents of similar
firing frequency: for each top latent j, one drawn uniformly from the 4 other live latents
nearest in |log f_i − log f_j|. The drop in that label's probe accuracy (and in the recall of c)
is the effect; the drops in the other labels' accuracies measure specificity.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import Tensor

from saelight.explorer.selectivity import detector_f1, detector_order, label_auroc
from saelight.io.defaults import MAX_ROWS

log = logging.getLogger(__name__)
MATCH_POOL = 4
"""Candidates (nearest in log frequency) a control latent is drawn from."""


class CrossFitProbe:
    """Two logistic probes per label, each fitted on the clean rows of one fold of clips.

    Args:
        x: (n, D) clean rows of the probe layer.
        clips: (n,) clip index (0..n_clips-1) of each row.
        labels: {label: (n_clips,) value of each clip}.
        seed: seed of the folds and of the row subsample.
        max_rows: training rows per probe, subsampled (frames of one clip are alike).
    """

    def __init__(
        self,
        x: np.ndarray,
        clips: np.ndarray,
        labels: dict[str, np.ndarray],
        seed: int,
        max_rows: int = MAX_ROWS,
    ) -> None:
        rng = np.random.default_rng(seed)
        n_clips = max(len(v) for v in labels.values())
        self.fold = rng.permutation(n_clips) % 2
        self.labels = {k: np.asarray(v).astype(str) for k, v in labels.items()}
        self.models: dict[str, list[Any]] = {}
        row_fold = self.fold[clips]
        for name, values in self.labels.items():
            y = values[clips]
            models = []
            for f in (0, 1):
                train = np.flatnonzero(row_fold != f)
                if len(np.unique(y[train])) < 2:
                    break
                if len(train) > max_rows:
                    train = np.sort(rng.choice(train, max_rows, replace=False))
                model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
                models.append(model.fit(x[train], y[train]))
            if len(models) == 2:
                self.models[name] = models
            else:
                log.info("label %r not probed: a fold of clips holds a single value", name)

    def predict(self, x: np.ndarray, clips: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """{label: (predicted, true)} for rows `x` (n, D) of clips `clips` (n,)."""
        row_fold = self.fold[clips]
        out = {}
        for name, models in self.models.items():
            pred = np.empty(len(x), dtype=object)
            for f, model in enumerate(models):
                rows = row_fold == f
                if rows.any():
                    pred[rows] = model.predict(x[rows])
            out[name] = (pred.astype(str), self.labels[name][clips])
        return out


class ProbeTally:
    """Correct and total rows per (label, true value), summed over batches."""

    def __init__(self) -> None:
        self.correct: dict[str, dict[str, int]] = {}
        self.total: dict[str, dict[str, int]] = {}
        # Per label and clip: [correct rows, rows], for paired bootstrap intervals over clips.
        self.clips: dict[str, dict[int, list[int]]] = {}

    def update(self, probe: CrossFitProbe, rows: Tensor, clips: np.ndarray) -> None:
        for name, (pred, true) in probe.predict(rows.float().cpu().numpy(), clips).items():
            correct, total = self.correct.setdefault(name, {}), self.total.setdefault(name, {})
            for value in np.unique(true):
                these = true == value
                correct[value] = correct.get(value, 0) + int((pred[these] == value).sum())
                total[value] = total.get(value, 0) + int(these.sum())
            per_clip = self.clips.setdefault(name, {})
            right = pred == true
            for clip in np.unique(clips):
                these = clips == clip
                tally = per_clip.setdefault(int(clip), [0, 0])
                tally[0] += int(right[these].sum())
                tally[1] += int(these.sum())

    def clip_correct(self, name: str) -> tuple[list[int], list[int]]:
        """(correct rows, rows) of label `name` per clip, clips in index order."""
        per_clip = self.clips.get(name, {})
        order = sorted(per_clip)
        return [per_clip[c][0] for c in order], [per_clip[c][1] for c in order]

    def accuracy(self, name: str) -> float:
        return sum(self.correct[name].values()) / max(sum(self.total[name].values()), 1)

    def recall(self, name: str, value: str) -> float:
        return self.correct[name].get(value, 0) / max(self.total[name].get(value, 0), 1)

    def drops(self, other: ProbeTally) -> dict[str, dict[str, float]]:
        """{label: clean_acc (self), spliced_acc (other), drop = clean − spliced}."""
        out = {}
        for name in self.correct:
            clean, spliced = self.accuracy(name), other.accuracy(name)
            out[name] = {"clean_acc": clean, "spliced_acc": spliced, "drop": clean - spliced}
        return out

    def ablation_drops(self, other: ProbeTally, target: dict[str, Any]) -> dict[str, Any]:
        """Drops after ablating `target`'s latents: its label's accuracy and value's recall, and
        each other label's accuracy (specificity)."""
        label, value = target["label"], target["value"]
        if label not in self.correct:
            return {}
        drops = self.drops(other)
        others = {k: v["drop"] for k, v in drops.items() if k != label}
        correct, rows = other.clip_correct(label)
        return {
            "target_drop": drops[label]["drop"],
            "target_clip_correct": correct,
            "target_clip_rows": rows,
            "target_value_drop": self.recall(label, value) - other.recall(label, value),
            "others_drop": others,
            "others_drop_mean": float(np.mean(list(others.values()))) if others else None,
        }


def sparse_codes(sae: Any, x: Tensor, batch: int = 4096) -> sp.csc_matrix:
    """(n, d_sae) CSC codes of `sae` on rows x (n, D)."""
    parts = []
    with torch.inference_mode():
        for rows in x.split(batch):
            z = sae.encode(rows.to(_device(sae))).float().cpu().numpy()
            parts.append(sp.csr_matrix(np.maximum(z, 0)))
    return sp.vstack(parts).tocsc()


def _device(sae: Any) -> torch.device:
    params = list(sae.parameters()) if hasattr(sae, "parameters") else []
    return params[0].device if params else torch.device("cpu")


def matched_random(
    top: list[int], frequency: np.ndarray, rng: np.random.Generator, pool: int = MATCH_POOL
) -> list[int]:
    """For each top latent, a random other live latent among the `pool` nearest in log frequency.

    Example:
        >>> f = np.array([0.5, 0.0, 0.4, 0.01, 0.6])
        >>> matched_random([0], f, np.random.default_rng(0), pool=1)
        [4]
    """
    log_f = np.log(np.where(frequency > 0, frequency, np.nan))
    free = np.isfinite(log_f)
    free[top] = False
    chosen = []
    for j in top:
        candidates = np.flatnonzero(free)
        if not len(candidates):
            break
        near = candidates[np.argsort(np.abs(log_f[candidates] - log_f[j]), kind="stable")[:pool]]
        pick = int(rng.choice(near))
        chosen.append(pick)
        free[pick] = False
    return chosen


def latent_sets(
    sae: Any, x: Tensor, frame_labels: dict[str, np.ndarray], k: int, seed: int
) -> list[dict[str, Any]]:
    """Per label value: the k best live detectors ("top") and a frequency-matched control.

    Args:
        sae: the spliced SAE.
        x: (n, D) clean rows of layer L.
        frame_labels: {label: (n,) value of each row}.
        k: latents per set.
        seed: seed of the control draw.

    Returns:
        [{label, value, kind ("top" | "random"), latents, frequency}], two per label value.
    """
    codes = sparse_codes(sae, x)
    n = codes.shape[0]
    fires = np.diff(codes.indptr)
    frequency = fires / max(n, 1)
    rng = np.random.default_rng(seed)
    out = []
    for name, values in frame_labels.items():
        classes, y = np.unique(np.asarray(values).astype(str), return_inverse=True)
        if len(classes) < 2:
            continue
        auroc, fires_in = label_auroc(codes, y, len(classes))
        _, _, f1 = detector_f1(fires_in, fires, np.bincount(y, minlength=len(classes)), n)
        for c, value in enumerate(classes):
            order = detector_order(f1[:, c], auroc[:, c])
            top = [int(j) for j in order if fires[j] > 0][:k]
            for kind, latents in (("top", top), ("random", matched_random(top, frequency, rng))):
                out.append(
                    {
                        "label": name,
                        "value": str(value),
                        "kind": kind,
                        "latents": latents,
                        "frequency": [float(frequency[j]) for j in latents],
                    }
                )
    return out
