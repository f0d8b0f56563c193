"""Audio snippets: the right span of the right clip, from the source or from the file path, and
codecs the page can embed."""

import doctest
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.explorer import audio
from saelight.explorer.audio import ClipLoader, cut, decode, encode


def test_doctests() -> None:
    assert doctest.testmod(audio).failed == 0


def test_file_path_fallback_resampling_and_cut(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000)
    loader = ClipLoader(None)
    wave = loader.load("a", str(tmp_path / "a.wav"))
    assert wave is not None and len(wave) == 16000  # 1 s resampled to 16 kHz
    assert loader.load("a") is wave  # kept: not read again
    assert len(cut(wave, 0.25, 0.75, 16000)) == 8000
    assert len(cut(wave, 0.9, 1.5, 16000)) == 1600  # clipped to the clip
    assert len(cut(wave, 2.0, 2.0, 16000)) == 1  # never empty


def test_loader_forgets_the_oldest_clip(tmp_path: Path) -> None:
    for name in "abc":
        sf.write(tmp_path / f"{name}.wav", np.zeros(160), 16000)
    loader = ClipLoader(None, keep=2)
    for name in "abc":
        loader.load(name, str(tmp_path / f"{name}.wav"))
    assert list(loader._waves) == ["b", "c"]


def test_source_clips_are_loaded_by_id(source) -> None:
    clip = source.clips()[0]
    wave = ClipLoader(source).load(clip.clip_id)
    np.testing.assert_array_equal(wave, source.load(clip, 16000))


def test_missing_audio_is_skipped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert ClipLoader(None).load("c0", str(tmp_path / "missing.wav")) is None
    assert ClipLoader(None).load("c1") is None
    assert "no audio" in caplog.text


def test_flac_is_lossless_and_opus_is_smaller() -> None:
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.01 * rng.normal(size=t.size)).astype(np.float32)
    quantised = np.round(wave * 32767) / 32767
    flac = encode(wave)
    back, rate = decode(flac)
    assert flac[:4] == b"fLaC" and rate == 16000
    np.testing.assert_allclose(back, quantised, atol=1.5 / 32768)
    opus = encode(wave, codec="opus")
    assert opus[:4] == b"OggS" and len(opus) < len(flac) / 2
    back, rate = decode(opus)
    assert rate == 16000 and abs(len(back) - len(wave)) < 400
    with pytest.raises(ValueError, match="codec must be one of"):
        encode(wave, codec="mp3")  # type: ignore[arg-type]
