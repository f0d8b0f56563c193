"""Acoustic descriptors of a waveform at given times, in the terms a phonetician or singer uses.

A latent is easier to read as "f0 210–260 Hz" or "onset" than as a column of numbers, so each
frame gets the classic descriptors of the field, computed by the libraries the field trusts:

* Praat (through praat-parselmouth, Jadoul et al. 2018): f0 (autocorrelation pitch, NaN where
  unvoiced), voicing, intensity (dB), harmonics-to-noise ratio (cross-correlation HNR, dB) and
  the first three formants (Burg LPC, Hz). Each is read at a time with Praat's own interpolation
  (`Pitch.get_value_at_time`, `Intensity.get_value`, `Harmonicity.get_value`,
  `Formant.get_value_at_time`), so a value equals what parselmouth gives called directly.
* librosa (McFee et al. 2015): spectral centroid, flatness and roll-off of the magnitude STFT and
  onset strength (spectral flux of the log-mel spectrogram), linearly interpolated from librosa's
  centred frames (frame i at i·hop / sr seconds) to the requested times.

Times outside the wave are NaN for every descriptor: zero padding is not audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from saelight.io.errors import SaelightError


class Descriptor(NamedTuple):
    """How a descriptor is named on a latent: its short name, unit and family."""

    short: str
    unit: str
    family: str


DESCRIPTORS: dict[str, Descriptor] = {
    "f0_hz": Descriptor("f0", "Hz", "pitch"),
    "voiced": Descriptor("voiced", "", "pitch"),
    "intensity_db": Descriptor("intensity", "dB", "loudness"),
    "hnr_db": Descriptor("HNR", "dB", "voice quality"),
    "f1_hz": Descriptor("F1", "Hz", "formants"),
    "f2_hz": Descriptor("F2", "Hz", "formants"),
    "f3_hz": Descriptor("F3", "Hz", "formants"),
    "centroid_hz": Descriptor("centroid", "Hz", "spectrum"),
    "rolloff_hz": Descriptor("roll-off", "Hz", "spectrum"),
    "flatness": Descriptor("flatness", "", "noise"),
    "onset_strength": Descriptor("onset strength", "", "onsets"),
}
"""Every descriptor column, in a fixed order: name -> (short name, unit, family)."""
VOICED_ONLY = ("f0_hz", "hnr_db", "f1_hz", "f2_hz", "f3_hz")
"""Descriptors averaged over the voiced frames only when a row spans several frames."""
HNR_SILENT_DB = -200.0
"""Praat's HNR of a frame with no periodicity at all (silence): stored as NaN."""


@dataclass(frozen=True)
class DescriptorOptions:
    """Analysis settings of the descriptor pass (stored with the descriptors; a change recomputes).

    Attributes:
        pitch_floor_hz: Praat's pitch floor (also the intensity and HNR minimum pitch).
        pitch_ceiling_hz: Praat's pitch ceiling; 1000 Hz covers sung sopranos, Praat's own
            default (600) does not.
        max_formant_hz: Praat's formant ceiling (5500 Hz: Praat's default for adult voices).
        hop_s: analysis step of every descriptor (Praat time step, librosa hop).
        n_fft: STFT size of the spectral descriptors, in samples.
    """

    pitch_floor_hz: float = 75.0
    pitch_ceiling_hz: float = 1000.0
    max_formant_hz: float = 5500.0
    hop_s: float = 0.01
    n_fft: int = 1024


def descriptor_tracks(
    wave: np.ndarray, sample_rate: int, times: np.ndarray, options: DescriptorOptions | None = None
) -> dict[str, np.ndarray]:
    """{descriptor: (len(times),) float64} of `wave` at `times` (seconds from its start).

    Args:
        wave: 1-D mono waveform.
        sample_rate: its rate in Hz.
        times: where to read every descriptor (NaN outside [0, duration]).
        options: analysis settings (None: `DescriptorOptions()`).
    """
    options = options or DescriptorOptions()
    _require()
    wave = np.asarray(wave, dtype=np.float64).ravel()
    times = np.asarray(times, dtype=np.float64)
    out = _praat(wave, sample_rate, times, options)
    out.update(_librosa(wave, sample_rate, times, options))
    outside = (times < 0) | (times > len(wave) / sample_rate)
    for values in out.values():
        values[outside] = np.nan
    return {name: out[name] for name in DESCRIPTORS}


def _require() -> None:
    """SaelightError naming the extra when Praat or librosa is not installed."""
    import importlib.util

    missing = [m for m in ("parselmouth", "librosa") if importlib.util.find_spec(m) is None]
    if missing:
        raise SaelightError(
            f"acoustic descriptors need {' and '.join(missing)}",
            hint="pip install 'saelight[descriptors]' (praat-parselmouth, librosa)",
        )


def _praat(
    wave: np.ndarray, sr: int, times: np.ndarray, o: DescriptorOptions
) -> dict[str, np.ndarray]:
    """Praat's descriptors; one that needs more audio than the wave holds is all NaN."""
    import parselmouth

    sound = parselmouth.Sound(wave, sampling_frequency=sr)
    nan = np.full(len(times), np.nan)
    out = {k: nan.copy() for k in ("f0_hz", "intensity_db", "hnr_db", "f1_hz", "f2_hz", "f3_hz")}
    try:
        pitch = sound.to_pitch(
            time_step=o.hop_s, pitch_floor=o.pitch_floor_hz, pitch_ceiling=o.pitch_ceiling_hz
        )
        out["f0_hz"] = np.array([pitch.get_value_at_time(t) for t in times], dtype=np.float64)
    except parselmouth.PraatError:
        pass
    out["voiced"] = np.isfinite(out["f0_hz"]).astype(np.float64)
    try:
        intensity = sound.to_intensity(minimum_pitch=o.pitch_floor_hz, time_step=o.hop_s)
        out["intensity_db"] = np.array([intensity.get_value(t) for t in times], dtype=np.float64)
    except parselmouth.PraatError:
        pass
    try:
        hnr = sound.to_harmonicity_cc(time_step=o.hop_s, minimum_pitch=o.pitch_floor_hz)
        values = np.array([hnr.get_value(t) for t in times], dtype=np.float64)
        out["hnr_db"] = np.where(values <= HNR_SILENT_DB, np.nan, values)
    except parselmouth.PraatError:
        pass
    try:
        formant = sound.to_formant_burg(time_step=o.hop_s, maximum_formant=o.max_formant_hz)
        for i in (1, 2, 3):
            track = [formant.get_value_at_time(i, t) for t in times]
            out[f"f{i}_hz"] = np.array(track, dtype=np.float64)
    except parselmouth.PraatError:
        pass
    return out


def _librosa(
    wave: np.ndarray, sr: int, times: np.ndarray, o: DescriptorOptions
) -> dict[str, np.ndarray]:
    """librosa's spectral descriptors and onset strength, interpolated to `times`."""
    import librosa

    hop = max(1, round(o.hop_s * sr))
    n_fft = min(o.n_fft, max(16, 1 << int(np.log2(max(len(wave), 16)))))
    magnitude = np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=hop))
    frames = {
        "centroid_hz": librosa.feature.spectral_centroid(S=magnitude, sr=sr)[0],
        "rolloff_hz": librosa.feature.spectral_rolloff(S=magnitude, sr=sr)[0],
        "flatness": librosa.feature.spectral_flatness(S=magnitude)[0],
        "onset_strength": librosa.onset.onset_strength(y=wave, sr=sr, hop_length=hop, n_fft=n_fft),
    }
    at = librosa.frames_to_time(np.arange(magnitude.shape[1]), sr=sr, hop_length=hop)
    return {k: np.interp(times, at[: len(v)], v).astype(np.float64) for k, v in frames.items()}


def row_means(tracks: dict[str, np.ndarray]) -> dict[str, float]:
    """One row's descriptors from the frames it spans (a clip-pooled row, a crop): `voiced` is
    the voiced fraction, `VOICED_ONLY` descriptors the mean over voiced frames (NaN if none), the
    others the mean over frames where they are defined.

    Example:
        >>> t = {k: np.array([1.0, 3.0, np.nan, 5.0]) for k in DESCRIPTORS}
        >>> t["voiced"] = np.array([1.0, 0.0, 1.0, 0.0])
        >>> m = row_means(t)
        >>> m["voiced"], m["f0_hz"], m["centroid_hz"]
        (0.5, 1.0, 3.0)
    """
    voiced = tracks["voiced"] > 0
    out = {}
    for name, values in tracks.items():
        keep = np.isfinite(values) & (voiced if name in VOICED_ONLY else True)
        out[name] = float(values[keep].mean()) if keep.any() else float("nan")
    return out
