"""The metadata rows of one cached segment: what the parquet files say about each activation row.

One row per segment (clip pooling) or per frame (frame pooling), carrying the clip's identity,
split, crop position in seconds, its `label_*` and `factor_*` columns (and eGeMAPS factors of test
segments when asked), so every later stage can group, filter and label rows without the audio.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from saelight.audio.base import Clip
from saelight.backbones.base import Backbone
from saelight.cache.format import factor_column, label_column

Segment = tuple[int, int, int]
"""(crop index, start sample, end sample) of one segment of a clip, at the backbone's rate."""


def row_metadata(
    index: int,
    clip: Clip,
    seg: Segment,
    n_rows: int,
    wave: np.ndarray,
    backbone: Backbone,
    pooling: str,
    egemaps: bool,
) -> list[dict[str, Any]]:
    """The `n_rows` metadata rows of segment `seg` of clip number `index`."""
    sr = backbone.sample_rate
    base: dict[str, Any] = {
        "clip_index": index,
        "clip_id": clip.clip_id,
        "path": clip.path or "",
        "split": clip.split,
        "crop": seg[0],
        "start_s": seg[1] / sr,
        "end_s": seg[2] / sr,
    }
    base.update({label_column(k): str(v) for k, v in clip.labels.items()})
    base.update({factor_column(k): float(v) for k, v in clip.factors.items()})
    if egemaps and clip.split == "test":
        from saelight.audio.egemaps import egemaps_functionals

        functionals = egemaps_functionals(wave, sr)
        base.update({factor_column(f"egemaps_{k}"): v for k, v in functionals.items()})
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
