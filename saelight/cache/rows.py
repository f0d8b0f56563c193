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
from saelight.audio.decode import crop_or_pad
from saelight.backbones.base import Backbone
from saelight.cache.format import factor_column, label_column
from saelight.cache.segments import Segment

EGEMAPS_RATE = "source"
"""`extraction.egemaps_rate` of a cache: eGeMAPS on the source's own rate (see module doc)."""


def segment_egemaps(
    source: AudioSource, clip: Clip, seg: Segment, wave: np.ndarray, sample_rate: int
) -> dict[str, float]:
    """The 88 eGeMAPSv02 factor columns (`factor_egemaps_<name>`) of segment `seg` of `clip`.

    The clip is loaded again at `source.native_rate(clip)` (when that differs from the backbone's
    `sample_rate`) and the segment's span is cut in seconds at that rate, zero-padded past the
    file's end like the backbone's segment; a whole-file segment takes the whole file.

    Args:
        source: the clip's source.
        clip: the clip.
        seg: the segment, in samples at `sample_rate`.
        wave: the clip at `sample_rate` (used as is when the native rate is unknown or equal).
        sample_rate: the backbone's rate.

    Raises:
        BadAudioError: the clip cannot be loaded at its own rate.
    """
    from saelight.audio.egemaps import egemaps_functionals

    rate = source.native_rate(clip) or sample_rate
    native = wave if rate == sample_rate else source.load(clip, rate)
    start = round(seg.start * rate / sample_rate)
    end = len(native) if seg.end == len(wave) else round(seg.end * rate / sample_rate)
    functionals = egemaps_functionals(crop_or_pad(native, end - start, start), rate)
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
