"""The audio behind a cache row: reload the clip through its source, cut the row's span, encode it.

A clip-pooled row covers `start_s..end_s` of its clip (a crop, or the whole file); a frame row is
one backbone frame, so it gets a `frame_window_s` window centred on the frame instead (one frame is
20 ms, too short to hear). Snippets are encoded in memory (FLAC, lossless, about a third of 16-bit
WAV on the quickstart; or Ogg Opus, about a ninth) because the page embeds them: no `audio/` folder.
"""

from __future__ import annotations

import io
import logging
from collections import OrderedDict

import numpy as np
import soundfile as sf

from saelight.audio.base import AudioSource, BadAudioError, Clip
from saelight.audio.decode import load_audio
from saelight.explorer.options import Codec

log = logging.getLogger(__name__)

SAMPLE_RATE = 16000
# codec -> (soundfile format, subtype, MIME type the page's players get)
CODECS: dict[str, tuple[str, str, str]] = {
    "flac": ("FLAC", "PCM_16", "audio/flac"),
    "opus": ("OGG", "OPUS", "audio/ogg"),
}


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


def cut(wave: np.ndarray, start_s: float, end_s: float, sample_rate: int) -> np.ndarray:
    """wave[start_s:end_s] in samples, at least one sample, clipped to [-1, 1] and to the clip."""
    lo = min(int(round(start_s * sample_rate)), max(len(wave) - 1, 0))
    hi = min(max(int(round(end_s * sample_rate)), lo + 1), len(wave))
    return np.clip(wave[lo:hi], -1.0, 1.0)


def encode(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, codec: Codec = "flac") -> bytes:
    """`wave` as the bytes of a FLAC (16-bit) or Ogg Opus file.

    Example:
        >>> data = encode(np.zeros(1600, np.float32))
        >>> data[:4], decode(data)[0].shape
        (b'fLaC', (1600,))
    """
    if codec not in CODECS:
        raise ValueError(f"codec must be one of {sorted(CODECS)}, got {codec!r}")
    fmt, subtype, _ = CODECS[codec]
    buffer = io.BytesIO()
    sf.write(buffer, np.asarray(wave, dtype=np.float32), sample_rate, format=fmt, subtype=subtype)
    return buffer.getvalue()


def decode(data: bytes) -> tuple[np.ndarray, int]:
    """(float32 mono wave, sample rate) of `encode`'s bytes (for W&B cells and tests)."""
    wave, rate = sf.read(io.BytesIO(data), dtype="float32")
    return (wave if wave.ndim == 1 else wave.mean(1)), int(rate)


class ClipLoader:
    """Loads clips by id through the cache's source (or from `path` when there is none), keeping
    the last `keep` in memory: rows are visited best latent first, so one clip recurs scattered.

    Args:
        source: the cache's audio source; None loads the row's `path` from disk (files only).
        sample_rate: rate of the returned waves.
        keep: clips held in memory.
    """

    def __init__(
        self, source: AudioSource | None, sample_rate: int = SAMPLE_RATE, keep: int = 16
    ) -> None:
        self.source, self.sample_rate, self.keep = source, sample_rate, keep
        self._clips: dict[str, Clip] | None = None
        self._waves: OrderedDict[str, np.ndarray | None] = OrderedDict()

    def load(self, clip_id: str, path: str = "") -> np.ndarray | None:
        """The whole clip as float32 at `sample_rate`, or None (logged once) if it cannot load."""
        if clip_id in self._waves:
            self._waves.move_to_end(clip_id)
            return self._waves[clip_id]
        wave = self._read(clip_id, path)
        self._waves[clip_id] = wave
        if len(self._waves) > self.keep:
            self._waves.popitem(last=False)
        return wave

    def _read(self, clip_id: str, path: str) -> np.ndarray | None:
        if self._clips is None:
            self._clips = {c.clip_id: c for c in self.source.clips()} if self.source else {}
        try:
            if clip_id in self._clips:
                return self.source.load(self._clips[clip_id], self.sample_rate)  # type: ignore[union-attr]
            if path:
                return load_audio(path, self.sample_rate)
        except (BadAudioError, OSError, ValueError) as err:
            log.warning("explorer: no audio for clip %s: %s", clip_id, err)
            return None
        log.warning("explorer: clip %s is neither in the source nor a file; no audio", clip_id)
        return None
