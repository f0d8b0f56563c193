"""The metadata rows of one cached segment: what the parquet files say about each activation row.

One row per segment (clip pooling) or per frame (frame pooling), carrying the clip's identity,
split, crop position in seconds, its `label_*` and `factor_*` columns (and eGeMAPS factors of test
segments when asked), so every later stage can group, filter and label rows without the audio.

eGeMAPS factors are computed on the audio at the source's own rate (`AudioSource.native_rate`:
44.1 kHz for VocalSet, as the paper does), not on the backbone's resample, so a clip's factors are
the same whichever backbone reads it; a source that does not know its rate (None) falls back to
the backbone's rate. The cache recipe records this as `extraction.egemaps_rate: "source"`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from saelight.audio.base import AudioSource, Clip
from saelight.audio.decode import crop_or_pad, resample
from saelight.backbones.base import Backbone
from saelight.cache.format import factor_column, label_column
from saelight.cache.segments import Segment

EGEMAPS_RATE = "source"
"""`extraction.egemaps_rate` of a cache: eGeMAPS on the source's own rate (see module doc)."""


def load_waves(
    source: AudioSource, clip: Clip, sample_rate: int, native: bool
) -> tuple[np.ndarray, tuple[np.ndarray, int]]:
    """(the clip at `sample_rate`, (the clip at its own rate, that rate)), decoded once.

    With `native` (a test clip whose eGeMAPS are wanted) and a known `source.native_rate(clip)`
    the clip is loaded at its own rate and resampled here, which is what `source.load` does at
    `sample_rate` for every built-in source (decode, then one soxr resample); otherwise it is
    loaded at `sample_rate` only and serves as both.
    """
    rate = source.native_rate(clip) if native else None
    if rate is None or rate == sample_rate:
        wave = source.load(clip, sample_rate)
        return wave, (wave, sample_rate)
    at_rate = source.load(clip, rate)
    return resample(at_rate, rate, sample_rate), (at_rate, rate)


def segment_egemaps(
    seg: Segment, native: tuple[np.ndarray, int], n_samples: int, sample_rate: int
) -> dict[str, float]:
    """The 88 eGeMAPSv02 factor columns (`factor_egemaps_<name>`) of segment `seg`.

    The segment's span is cut in seconds from the clip at its own rate (`load_waves`),
    zero-padded past the file's end like the backbone's segment; a whole-file segment takes the
    whole file.

    Args:
        seg: the segment, in samples at `sample_rate`.
        native: (the clip at its own rate, that rate), from `load_waves`.
        n_samples: the clip's length at `sample_rate`.
        sample_rate: the backbone's rate.
    """
    from saelight.audio.egemaps import egemaps_functionals

    wave, rate = native
    start = round(seg.start * rate / sample_rate)
    end = len(wave) if seg.end == n_samples else round(seg.end * rate / sample_rate)
    functionals = egemaps_functionals(crop_or_pad(wave, end - start, start), rate)
    return {factor_column(f"egemaps_{k}"): v for k, v in functionals.items()}


def row_metadata(
    index: int,
    clip: Clip,
    seg: Segment,
    n_rows: int,
    backbone: Backbone,
    pooling: str,
    factors: dict[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The `n_rows` metadata rows of segment `seg` of clip number `index`.

    Args:
        index: the clip's position in the source.
        clip: the clip.
        seg: the segment (its `split` is the rows' split).
        n_rows: activation rows of the segment (1 for clip pooling, its frames otherwise).
        backbone: the backbone (its rate and frame rate place the rows in seconds).
        pooling: "clip" or "frame".
        factors: extra factor columns of the segment (eGeMAPS, see `segment_egemaps`).
    """
    sr = backbone.sample_rate
    base: dict[str, Any] = {
        "clip_index": index,
        "clip_id": clip.clip_id,
        "path": clip.path or "",
        "split": seg.split,
        "crop": seg.crop,
        "start_s": seg.start / sr,
        "end_s": seg.end / sr,
    }
    base.update({label_column(k): str(v) for k, v in clip.labels.items()})
    base.update({factor_column(k): float(v) for k, v in clip.factors.items()})
    base.update(factors or {})
    if pooling == "clip":
        return [{**base, "frame": -1}]
    frame_s = 1.0 / backbone.frame_rate_hz
    return [
        {
            **base,
            "frame": f,
            "start_s": base["start_s"] + f * frame_s,
            "end_s": base["start_s"] + (f + 1) * frame_s,
        }
        for f in range(n_rows)
    ]
