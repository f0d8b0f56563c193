"""95 % intervals of the report's SAE − dense differences, from what the result rows store.

- Probe accuracy: each row holds its correct test rows per test clip
  (`probe_<label>_clip_correct`, see `saelight.evaluation.results`); a difference is resampled
  over test clips with one resample shared by the SAE and the dense row of its layer (paired), see
  `saelight.metrics.uncertainty`. Rows with the same number of clips share one set of resamples, so
  a statistic over several SAEs (claim 1's median) is resampled jointly.
- Entropy / effective dims: rows evaluated with `SAEEvaluation(bootstrap=N)` hold the mean factor
  entropy refitted on N resamples of the test clips (`factor_entropy_boot`), drawn with one seed,
  so the SAE's resample b and the dense row's resample b are the same clips.

A function returns None when the rows lack what it needs; the report then shows point estimates
and says so.
"""

from __future__ import annotations

import numpy as np

from saelight.evaluation.results import (
    FACTOR_ENTROPY_BOOT,
    TEST_CLIP_ROWS,
    Row,
    probe_acc_key,
    probe_clip_correct_key,
)
from saelight.io.defaults import DATA_SEED
from saelight.metrics.uncertainty import (
    LEVEL,
    N_RESAMPLES,
    Interval,
    bootstrap_weights,
    percentile_interval,
    resampled_mean,
)


class Resamples:
    """Bootstrap weights by number of clips, drawn once per report so every row shares them.

    Args:
        n_resamples: resamples per interval.
        seed: seeds the resamples (one draw per distinct clip count).
        level: coverage of the intervals.
    """

    def __init__(self, n_resamples: int = N_RESAMPLES, seed: int = DATA_SEED, level: float = LEVEL):
        self.n_resamples, self.seed, self.level = n_resamples, seed, level
        self._weights: dict[int, np.ndarray] = {}

    def weights(self, n_clips: int) -> np.ndarray:
        """``(n_resamples, n_clips)`` draws, the same for every row with `n_clips` clips."""
        if n_clips not in self._weights:
            self._weights[n_clips] = bootstrap_weights(n_clips, self.n_resamples, self.seed)
        return self._weights[n_clips]

    def interval(self, estimate: float, samples: np.ndarray) -> Interval:
        """`estimate` with the percentile interval of `samples` at this report's level."""
        return percentile_interval(estimate, samples, self.level)


def accuracy_samples(
    sae: Row, dense: Row, label: str, resamples: Resamples
) -> tuple[float, np.ndarray] | None:
    """SAE − dense accuracy of `label`: (estimate, (n_resamples,) paired resampled values)."""
    key = probe_clip_correct_key(label)
    a, b = sae.get(key), dense.get(key)
    if a is None or b is None or len(a) != len(b) or not a:
        return None
    rows = dense.get(TEST_CLIP_ROWS) or sae.get(TEST_CLIP_ROWS)
    if rows is not None and len(rows) != len(a):
        return None
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    samples = resampled_mean(resamples.weights(len(a)), diff, rows)
    estimate = float(sae[probe_acc_key(label)]) - float(dense[probe_acc_key(label)])
    return estimate, samples


def accuracy_interval(sae: Row, dense: Row, label: str, resamples: Resamples) -> Interval | None:
    """SAE − dense accuracy of `label` with its paired 95 % interval (accuracy units)."""
    found = accuracy_samples(sae, dense, label, resamples)
    return None if found is None else resamples.interval(*found)


def entropy_samples(sae: Row, dense: Row) -> np.ndarray | None:
    """SAE − dense mean factor entropy on each shared resample (nats; nan where one is nan)."""
    a, b = sae.get(FACTOR_ENTROPY_BOOT), dense.get(FACTOR_ENTROPY_BOOT)
    if not a or not b or len(a) != len(b):
        return None
    as_float = [[np.nan if v is None else float(v) for v in x] for x in (a, b)]
    return np.asarray(as_float[0]) - np.asarray(as_float[1])


def median_interval(
    estimate: float, samples: list[np.ndarray], resamples: Resamples
) -> Interval | None:
    """Interval of a median over several paired differences, resampled jointly (nan-aware)."""
    stacked = np.stack(samples)
    per_resample = np.nanmedian(stacked, axis=0) if np.isfinite(stacked).any(0).all() else None
    return None if per_resample is None else resamples.interval(estimate, per_resample)


def fmt_interval(interval: Interval | None, scale: float = 100.0, digits: int = 2) -> str:
    """'[-4.00, +1.50]' (points for accuracies), or '' without an interval."""
    if interval is None:
        return ""
    return f"[{scale * interval.low:+.{digits}f}, {scale * interval.high:+.{digits}f}]"
