"""Which parts of a clip become cache rows: the segments of one file, per split and protocol.

- train: `crops_per_file` random crops of `crop_seconds` (seeded by the cache seed and the clip's
  index), zero-padded when the file is shorter;
- val: the first `crop_seconds`;
- test: the whole file (`test_full_length`, the paper's MSE and disentanglement rows), else the
  first crop; under protocol "paper" also the first `crop_seconds` again as a `TEST_HEAD`
  segment, the rows the paper scores its probes on.

Without `crop_seconds` every split keeps whole files.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from saelight.cache.format import TEST_HEAD


class Segment(NamedTuple):
    """One segment of a clip, in samples at the backbone's rate."""

    crop: int
    """Crop number within its split (0 for val, test and the test head)."""
    start: int
    """First sample."""
    end: int
    """One past the last sample; beyond the file's end the segment is zero-padded."""
    split: str
    """The rows' `split`: the clip's, or `TEST_HEAD`."""


def plan_segments(
    split: str,
    n: int,
    *,
    crop_samples: int | None,
    crops_per_file: int,
    test_full_length: bool,
    protocol: str,
    seed: int,
    index: int,
) -> list[Segment]:
    """The segments of clip number `index` (split `split`, `n` samples), whole-file row first.

    Args:
        split: the clip's split.
        n: its length in samples at the backbone's rate.
        crop_samples: crop length in samples (None = whole files everywhere).
        crops_per_file: random train crops per file.
        test_full_length: test rows are whole files, not the first crop.
        protocol: "paper" adds the test head (needs `crop_samples` and `test_full_length`).
        seed: the cache seed of the random crop positions.
        index: the clip's position in the source (seeds its crops).
    """
    if crop_samples is None:
        return [Segment(0, 0, n, split)]
    if split == "test" and test_full_length:
        whole = [Segment(0, 0, n, split)]
        head = [Segment(0, 0, crop_samples, TEST_HEAD)] if protocol == "paper" else []
        return whole + head
    if split != "train":
        return [Segment(0, 0, crop_samples, split)]
    rng = np.random.default_rng([seed, index])
    starts = rng.integers(0, max(n - crop_samples, 0) + 1, size=crops_per_file)
    return [Segment(c, int(s), int(s) + crop_samples, split) for c, s in enumerate(starts)]
