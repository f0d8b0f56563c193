"""Decoding, mixdown, resampling, validation and cropping (saelight/audio/decode.py)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.audio import BadAudioError, crop_or_pad, load_audio, validate_waveform
from saelight.audio.decode import file_rate, resample


def _tone(freq: float, sr: int, seconds: float = 0.5, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def _peak_hz(wave: np.ndarray, sr: int) -> float:
    spectrum = np.abs(np.fft.rfft(wave * np.hanning(wave.size)))
    return float(np.fft.rfftfreq(wave.size, 1 / sr)[spectrum.argmax()])


def test_load_mixes_down_to_mono_float32(tmp_path: Path) -> None:
    left, right = _tone(440, 16000), np.full(8000, 0.25, dtype=np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = load_audio(path, 16000)
    assert wave.dtype == np.float32 and wave.shape == (8000,)
    np.testing.assert_allclose(wave, (left + right) / 2, atol=1e-6)


def test_load_resamples_and_keeps_pitch(tmp_path: Path) -> None:
    path = tmp_path / "tone.flac"
    sf.write(path, _tone(440, 44100, seconds=1.0), 44100)
    wave = load_audio(str(path), 16000)
    assert wave.shape == (16000,)
    assert abs(_peak_hz(wave, 16000) - 440) < 2


def test_load_reads_file_objects() -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(300, 8000), 8000, format="WAV")
    buf.seek(0)
    assert load_audio(buf, 16000, where="row 3").shape == (8000,)


@pytest.mark.parametrize("content", [b"this is not audio", b""])
def test_load_rejects_non_audio_naming_the_path(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "fake.wav"
    path.write_bytes(content)
    with pytest.raises(BadAudioError, match=r"fake\.wav.*unreadable"):
        load_audio(path, 16000)


def test_load_rejects_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BadAudioError, match="missing.wav"):
        load_audio(tmp_path / "missing.wav", 16000)


def test_file_rate_reads_the_header(tmp_path: Path) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(300, 8000), 44100, format="WAV")
    buf.seek(0)
    assert file_rate(buf) == 44100
    with pytest.raises(BadAudioError, match="missing.wav: does not exist"):
        file_rate(tmp_path / "missing.wav")
    (tmp_path / "fake.wav").write_bytes(b"not audio")
    with pytest.raises(BadAudioError, match=r"row 2: unreadable"):
        file_rate(tmp_path / "fake.wav", where="row 2")


@pytest.mark.parametrize(
    ("wave", "reason"),
    [
        (np.zeros(0, dtype=np.float32), "empty"),
        (np.array([0.1, np.nan, 0.2], dtype=np.float32), "NaN"),
        (np.array([0.1, np.inf, 0.2], dtype=np.float32), "NaN/Inf"),
        (np.zeros(16000, dtype=np.float32), "silent"),
        (np.full(100, 0.5, dtype=np.float32), "too short"),
        (np.ones((2, 100), dtype=np.float32), "1-D"),
    ],
)
def test_validate_names_clip_and_reason(wave: np.ndarray, reason: str) -> None:
    with pytest.raises(BadAudioError, match=rf"clip_7: .*{reason}"):
        validate_waveform(wave, 16000, min_samples=1600, where="clip_7")


def test_validate_returns_good_waveform_unchanged() -> None:
    wave = _tone(220, 16000)
    assert validate_waveform(wave, 16000, min_samples=1600, where="ok") is wave


def test_empty_wav_file_is_bad_audio(tmp_path: Path) -> None:
    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(BadAudioError, match="empty"):
        validate_waveform(load_audio(path, 16000), 16000, where=str(path))


def test_crop_or_pad() -> None:
    wave = np.arange(10, dtype=np.float32)
    np.testing.assert_array_equal(crop_or_pad(wave, 4, start=3), [3, 4, 5, 6])
    np.testing.assert_array_equal(crop_or_pad(wave, 4, start=8), [8, 9, 0, 0])
    padded = crop_or_pad(wave, 12)
    assert padded.dtype == np.float32 and padded.shape == (12,) and padded[-1] == 0
    with pytest.raises(ValueError, match="start"):
        crop_or_pad(wave, 4, start=10)
    with pytest.raises(ValueError, match="start"):
        crop_or_pad(wave, 4, start=-1)


def test_resample_identity_is_float32_copy_free() -> None:
    wave = np.linspace(-1, 1, 100, dtype=np.float32)
    assert resample(wave, 16000, 16000) is wave
    assert resample(wave.astype(np.float64), 16000, 8000).shape == (50,)
