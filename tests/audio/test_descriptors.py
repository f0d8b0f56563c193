"""Acoustic descriptors on planted audio: a tone with a known f0 ramp, then a noise burst with a
known onset. Each value equals parselmouth / librosa called directly on the same audio, the f0
follows the ramp, voicing and onsets fall where they were planted."""

from __future__ import annotations

import doctest

import librosa
import numpy as np
import parselmouth
import pytest

from saelight.audio import descriptors
from saelight.audio.descriptors import DESCRIPTORS, DescriptorOptions, descriptor_tracks

SR = 16000
TONE_S, GAP_S, BURST_AT, BURST_S = 1.0, 0.3, 1.3, 0.4
F0_START, F0_END = 150.0, 300.0


def planted() -> np.ndarray:
    """A 1 s harmonic tone gliding 150 -> 300 Hz, 0.3 s of silence, then a 0.4 s noise burst."""
    t = np.arange(int(TONE_S * SR)) / SR
    f0 = F0_START + (F0_END - F0_START) * t / TONE_S
    phase = 2 * np.pi * np.cumsum(f0) / SR
    tone = sum(0.3 / h * np.sin(h * phase) for h in (1, 2, 3))
    noise = 0.3 * np.random.default_rng(0).standard_normal(int(BURST_S * SR))
    return np.concatenate([tone, np.zeros(int(GAP_S * SR)), noise]).astype(np.float64)


@pytest.fixture(scope="module")
def tracks() -> dict[str, np.ndarray]:
    return descriptor_tracks(planted(), SR, TIMES)


OPTIONS = DescriptorOptions()
HOP = round(OPTIONS.hop_s * SR)
TIMES = np.arange(3, 165) * HOP / SR  # on librosa's frame grid: its values need no interpolation


def test_praat_values_equal_parselmouth_called_directly(tracks: dict[str, np.ndarray]) -> None:
    sound = parselmouth.Sound(planted(), SR)
    pitch = sound.to_pitch(
        time_step=OPTIONS.hop_s, pitch_floor=OPTIONS.pitch_floor_hz, pitch_ceiling=1000.0
    )
    f0 = np.array([pitch.get_value_at_time(t) for t in TIMES])
    np.testing.assert_array_equal(tracks["f0_hz"], f0)
    intensity = sound.to_intensity(minimum_pitch=OPTIONS.pitch_floor_hz, time_step=OPTIONS.hop_s)
    np.testing.assert_array_equal(tracks["intensity_db"], [intensity.get_value(t) for t in TIMES])
    formant = sound.to_formant_burg(time_step=OPTIONS.hop_s, maximum_formant=OPTIONS.max_formant_hz)
    f2 = [formant.get_value_at_time(2, t) for t in TIMES]
    np.testing.assert_array_equal(tracks["f2_hz"], f2)
    hnr = sound.to_harmonicity_cc(time_step=OPTIONS.hop_s, minimum_pitch=OPTIONS.pitch_floor_hz)
    direct = np.array([hnr.get_value(t) for t in TIMES])
    voiced = np.isfinite(tracks["hnr_db"])
    np.testing.assert_array_equal(tracks["hnr_db"][voiced], direct[voiced])
    assert (direct[~voiced] <= -200).all()  # Praat's "no periodicity", stored as NaN


def test_librosa_values_equal_librosa_called_directly(tracks: dict[str, np.ndarray]) -> None:
    y = planted()
    magnitude = np.abs(librosa.stft(y, n_fft=OPTIONS.n_fft, hop_length=HOP))
    frames = (TIMES * SR / HOP).round().astype(int)
    centroid = librosa.feature.spectral_centroid(S=magnitude, sr=SR)[0]
    np.testing.assert_allclose(tracks["centroid_hz"], centroid[frames], rtol=1e-9)
    flatness = librosa.feature.spectral_flatness(S=magnitude)[0]
    np.testing.assert_allclose(tracks["flatness"], flatness[frames], rtol=1e-9)
    onset = librosa.onset.onset_strength(y=y, sr=SR, hop_length=HOP, n_fft=OPTIONS.n_fft)
    np.testing.assert_allclose(tracks["onset_strength"], onset[frames], rtol=1e-9)


def test_planted_f0_ramp_voicing_and_onset(tracks: dict[str, np.ndarray]) -> None:
    inside = (TIMES > 0.1) & (TIMES < 0.9)
    expected = F0_START + (F0_END - F0_START) * TIMES[inside] / TONE_S
    np.testing.assert_allclose(tracks["f0_hz"][inside], expected, atol=3.0)
    assert (tracks["voiced"][inside] == 1).all()
    silence = (TIMES > 1.05) & (TIMES < 1.25)
    assert (tracks["voiced"][silence] == 0).all()
    assert np.isnan(tracks["f0_hz"][silence]).all()
    peak = TIMES[np.argmax(tracks["onset_strength"] * (TIMES > 1.1))]
    assert abs(peak - BURST_AT) <= 0.03
    burst = (TIMES > 1.35) & (TIMES < 1.6)
    assert tracks["flatness"][burst].min() > 10 * tracks["flatness"][inside].max()


def test_times_outside_the_wave_are_nan_and_every_descriptor_is_returned() -> None:
    out = descriptor_tracks(planted(), SR, np.array([-0.1, 0.5, 2.0]))
    assert list(out) == list(DESCRIPTORS)
    for name, values in out.items():
        assert np.isnan(values[[0, 2]]).all(), name
        assert np.isfinite(values[1]), name


def test_a_wave_too_short_for_praat_gives_nan_not_an_error() -> None:
    out = descriptor_tracks(np.sin(np.arange(400) / 5.0), SR, np.array([0.01]))
    assert np.isnan(out["f0_hz"]).all() and out["voiced"].tolist() == [0.0]
    assert np.isfinite(out["centroid_hz"]).all()


def test_doctests() -> None:
    assert doctest.testmod(descriptors).failed == 0
