"""The audio behind a cache row: reload the clip through its source, cut the row's span.

A clip-pooled row covers `start_s..end_s` of its clip (a crop, or the whole file); a frame row is
one backbone frame, so it gets a `frame_window_s` window centred on the frame instead (one frame is
20 ms, too short to hear). Each clip is loaded once however many of its rows are needed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from saelight.audio.base import AudioSource, BadAudioError, Clip
from saelight.audio.decode import load_audio

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
AUDIO_DIR = "audio"


def snippet_span(
    start_s: float, end_s: float, frame: int, frame_window_s: float
) -> tuple[float, float]:
    """(start, end) in seconds of the audio to play for a row; frame rows (frame >= 0) get a
    `frame_window_s` window centred on the frame, clipped at 0.

    Example:
        >>> snippet_span(0.0, 2.0, -1, 1.0), snippet_span(0.1, 0.12, 5, 1.0)
        ((0.0, 2.0), (0.0, 1.0))
    """
    if frame < 0:
        return float(start_s), float(end_s)
    centre = (start_s + end_s) / 2.0
    start = max(centre - frame_window_s / 2.0, 0.0)
    return start, start + max(frame_window_s, end_s - start_s)


def snippet_name(row: int) -> str:
    """Relative path of the snippet of cache row `row`, e.g. "audio/row_0000042.wav"."""
    return f"{AUDIO_DIR}/row_{row:07d}.wav"


def write_snippets(
    meta: pd.DataFrame,
    source: AudioSource | None,
    out: str | Path,
    frame_window_s: float = 1.0,
    sample_rate: int = SAMPLE_RATE,
) -> dict[int, str]:
    """Write one 16-bit WAV per metadata row under `out/audio/`.

    Args:
        meta: cache metadata rows (columns row, clip_id, path, start_s, end_s, frame).
        source: the cache's audio source; None loads `path` from disk (files only).
        out: the explorer folder.
        frame_window_s: length of the window played for a frame row.
        sample_rate: rate of the written files.

    Returns:
        {cache row: path relative to `out`} for every row whose audio could be loaded.
    """
    out = Path(out)
    (out / AUDIO_DIR).mkdir(parents=True, exist_ok=True)
    clips = {c.clip_id: c for c in source.clips()} if source is not None else {}
    written: dict[int, str] = {}
    for clip_id, rows in meta.groupby("clip_id", sort=False):
        wave = _load(str(clip_id), str(rows["path"].iloc[0] or ""), clips, source, sample_rate)
        if wave is None:
            continue
        for row, start_s, end_s, frame in zip(
            rows["row"], rows["start_s"], rows["end_s"], rows["frame"], strict=True
        ):
            start, end = snippet_span(start_s, end_s, int(frame), frame_window_s)
            lo = min(int(round(start * sample_rate)), len(wave))
            hi = min(max(int(round(end * sample_rate)), lo + 1), len(wave))
            name = snippet_name(int(row))
            sf.write(out / name, np.clip(wave[lo:hi], -1.0, 1.0), sample_rate, subtype="PCM_16")
            written[int(row)] = name
    return written


def _load(
    clip_id: str, path: str, clips: dict[str, Clip], source: AudioSource | None, sample_rate: int
) -> np.ndarray | None:
    try:
        if clip_id in clips:
            return source.load(clips[clip_id], sample_rate)  # type: ignore[union-attr]
        if path:
            return load_audio(path, sample_rate)
    except (BadAudioError, OSError, ValueError) as err:
        log.warning("explorer: no audio for clip %s: %s", clip_id, err)
        return None
    log.warning("explorer: clip %s is not in the source and has no file path; no audio", clip_id)
    return None
