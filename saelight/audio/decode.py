"""Turning files into checked mono float32 waveforms: decode, mix down, resample, validate, crop.

Every file-backed source goes through `load_audio` then `validate_waveform`, so a bad file fails the
same way whatever its source: a `BadAudioError` naming the file and the reason. Whether to skip that
clip or abort is the cache builder's decision, not the source's.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, BinaryIO, TypeVar

import numpy as np
import soundfile as sf
import soxr

from saelight.audio.base import BadAudioError

T = TypeVar("T")

SILENCE_PEAK = 1e-4
"""Peak amplitude (-80 dBFS) below which a waveform counts as silent: 16-bit dither is ~3e-5."""


def resample(wave: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample a mono waveform with soxr's high-quality filter.

    Args:
        wave: (samples,) waveform.
        orig_sr: its sample rate in Hz.
        target_sr: the wanted sample rate in Hz.

    Returns:
        (round(samples * target_sr / orig_sr),) float32 waveform; `wave` itself as float32 when
        the rates already match.
    """
    if orig_sr == target_sr:
        return np.asarray(wave, dtype=np.float32)
    out = soxr.resample(np.asarray(wave, dtype=np.float32), orig_sr, target_sr, quality="HQ")
    return np.asarray(out, dtype=np.float32)


def load_audio(
    path: str | os.PathLike[str] | BinaryIO, sample_rate: int, *, where: str | None = None
) -> np.ndarray:
    """Decode an audio file with soundfile, average its channels and resample it.

    Args:
        path: a file path, or a binary file object (e.g. `io.BytesIO` of an encoded file).
        sample_rate: the wanted sample rate in Hz.
        where: how to name the file in errors (defaults to `path`).

    Returns:
        (samples,) float32 mono waveform at `sample_rate`. It is not validated: call
        `validate_waveform` on it.

    Raises:
        BadAudioError: the file does not exist, cannot be read or is not audio.
    """
    data, file_sr = _soundfile(lambda f: sf.read(f, dtype="float32", always_2d=True), path, where)
    return resample(data.mean(axis=1), int(file_sr), sample_rate)


def _soundfile(
    read: Callable[[Any], T], path: str | os.PathLike[str] | BinaryIO, where: str | None
) -> T:
    """`read(path)` (a soundfile call), its failures as one `BadAudioError` naming the file."""
    name = where if where is not None else str(path)
    # Said plainly: libsndfile reports a missing file as "System error." after the path again.
    if isinstance(path, str | os.PathLike) and not os.path.isfile(path):
        raise BadAudioError(f"{name}: does not exist; expected an audio file")
    try:
        return read(path)
    except (sf.LibsndfileError, RuntimeError, OSError, TypeError) as err:
        raise BadAudioError(f"{name}: unreadable file or not audio ({err})") from err


def file_rate(path: str | os.PathLike[str] | BinaryIO, *, where: str | None = None) -> int:
    """The sample rate of an audio file in Hz, read from its header (nothing is decoded).

    Args:
        path: a file path, or a binary file object (e.g. `io.BytesIO` of an encoded file).
        where: how to name the file in errors (defaults to `path`).

    Raises:
        BadAudioError: the file does not exist, cannot be read or is not audio.
    """
    return int(_soundfile(lambda f: sf.info(f).samplerate, path, where))


def validate_waveform(
    wave: np.ndarray,
    sample_rate: int,
    *,
    min_samples: int = 1,
    where: str = "<waveform>",
    min_peak: float = SILENCE_PEAK,
) -> np.ndarray:
    """Check that a waveform is usable; return it unchanged if so.

    Args:
        wave: (samples,) mono waveform.
        sample_rate: its sample rate in Hz (for the durations in messages).
        min_samples: the fewest samples accepted.
        where: the file path or clip id named in errors.
        min_peak: the smallest accepted peak |amplitude|; quieter clips count as silent.

    Returns:
        `wave`.

    Raises:
        BadAudioError: `wave` is not 1-D, is empty, holds NaN/Inf, is silent or is too short.
    """
    if wave.ndim != 1:
        raise BadAudioError(f"{where}: expected a 1-D mono waveform, got shape {wave.shape}")
    if wave.size == 0:
        raise BadAudioError(f"{where}: empty audio (0 samples)")
    finite = np.isfinite(wave)
    if not finite.all():
        raise BadAudioError(f"{where}: {int((~finite).sum())} NaN/Inf samples")
    peak = float(np.abs(wave).max())
    if peak < min_peak:
        raise BadAudioError(f"{where}: silent (peak {peak:.2e} < {min_peak:.0e})")
    if wave.size < min_samples:
        raise BadAudioError(
            f"{where}: too short ({wave.size} samples = {wave.size / sample_rate:.3f} s; "
            f"needs at least {min_samples} = {min_samples / sample_rate:.3f} s)"
        )
    return wave


def crop_or_pad(wave: np.ndarray, n_samples: int, start: int = 0) -> np.ndarray:
    """Take `n_samples` from `start`, zero-padding at the end when the waveform runs out.

    The paper crops 5 s windows (random start for training, 0 for validation) and zero-pads
    shorter files the same way.

    Args:
        wave: (samples,) waveform.
        n_samples: length of the result.
        start: first sample taken; must lie in [0, samples] (a start past the end is an error,
            not silence).

    Returns:
        (n_samples,) array of `wave`'s dtype.
    """
    if n_samples < 0:
        raise ValueError(f"n_samples must be >= 0, got {n_samples}")
    if not 0 <= start <= max(wave.size - 1, 0):
        raise ValueError(f"start must lie in [0, {max(wave.size - 1, 0)}], got {start}")
    out = wave[start : start + n_samples]
    if out.size < n_samples:
        out = np.concatenate([out, np.zeros(n_samples - out.size, dtype=wave.dtype)])
    return out
