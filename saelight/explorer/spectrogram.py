"""Log-mel spectrogram thumbnails as small indexed-colour PNGs, for the page's top activations.

Audio researchers read a spectrogram faster than they listen, so every top row gets one. The
thumbnail is `N_MELS` x `WIDTH` pixels whatever the snippet's length (the STFT hop is the snippet's
length / `WIDTH`), low frequencies at the bottom, the top `DYNAMIC_RANGE_DB` dB of the snippet
mapped to `LEVELS` steps (2.5 dB) of a magma-like palette. numpy + zlib only: an indexed-colour PNG
of 32 x 96 pixels is about 1 kB on the quickstart (1.8 kB on noisy clips; 256 levels would take
about twice that), a twentieth of the FLAC it sits beside.
"""

from __future__ import annotations

import struct
import zlib
from functools import lru_cache

import numpy as np

N_MELS = 32
WIDTH = 96
N_FFT = 512
DYNAMIC_RANGE_DB = 80.0
LEVELS = 32
# magma-like stops (position, RGB), linearly interpolated into the 256-entry palette
_STOPS = (
    (0.0, (0, 0, 4)),
    (0.25, (81, 18, 124)),
    (0.5, (183, 55, 121)),
    (0.75, (252, 137, 97)),
    (1.0, (252, 253, 191)),
)


@lru_cache(maxsize=8)
def mel_filterbank(sample_rate: int, n_fft: int = N_FFT, n_mels: int = N_MELS) -> np.ndarray:
    """(n_mels, n_fft // 2 + 1) triangular filters equally spaced on the HTK mel scale
    m = 2595 log10(1 + f / 700), from 0 Hz to Nyquist, each with a peak of 1.

    Example:
        >>> fb = mel_filterbank(16000, 512, 8)
        >>> fb.shape, bool(np.isclose(fb.max(), 1.0, atol=0.05)), bool((fb.sum(0)[1:-1] > 0).all())
        ((8, 257), True, True)
    """
    mel = np.linspace(0.0, 2595.0 * np.log10(1.0 + (sample_rate / 2) / 700.0), n_mels + 2)
    edges = 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    freqs = np.linspace(0.0, sample_rate / 2, n_fft // 2 + 1)
    lo, centre, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs - lo) / (centre - lo)
    falling = (hi - freqs) / (hi - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def log_mel(
    wave: np.ndarray, sample_rate: int, width: int = WIDTH, n_mels: int = N_MELS
) -> np.ndarray:
    """(n_mels, width) log-mel power in dB (10 log10), `width` Hann-windowed frames spread evenly
    over the wave (zero-padded when shorter than one FFT), row 0 = the lowest band."""
    wave = np.asarray(wave, dtype=np.float64).ravel()
    if len(wave) < N_FFT:
        wave = np.pad(wave, (0, N_FFT - len(wave)))
    starts = np.linspace(0, len(wave) - N_FFT, width).round().astype(np.int64)
    frames = wave[starts[:, None] + np.arange(N_FFT)] * np.hanning(N_FFT)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    return 10.0 * np.log10(mel_filterbank(sample_rate, N_FFT, n_mels) @ power.T + 1e-10)


def palette(levels: int = LEVELS) -> np.ndarray:
    """(levels, 3) uint8 colours, dark (quiet) to light (loud)."""
    at = np.linspace(0.0, 1.0, levels)
    positions = [p for p, _ in _STOPS]
    rgb = [np.interp(at, positions, [c[i] for _, c in _STOPS]) for i in range(3)]
    return np.stack(rgb, 1).round().astype(np.uint8)


def png_indexed(pixels: np.ndarray, colours: np.ndarray) -> bytes:
    """An 8-bit indexed-colour PNG (colour type 3) of `pixels` (h, w) uint8 indices into `colours`
    (at most 256, 3) uint8; every scanline uses filter 0 (PNG spec, ISO/IEC 15948 sections 11-12).

    Example:
        >>> png_indexed(np.zeros((2, 3), np.uint8), palette())[:8]
        b'\\x89PNG\\r\\n\\x1a\\n'
    """
    h, w = pixels.shape

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + body))
        return struct.pack(">I", len(body)) + kind + body + crc

    rows = np.concatenate([np.zeros((h, 1), np.uint8), pixels.astype(np.uint8)], 1)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 3, 0, 0, 0)),
            chunk(b"PLTE", colours.astype(np.uint8).tobytes()),
            chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)),
            chunk(b"IEND", b""),
        ]
    )


def thumbnail_png(wave: np.ndarray, sample_rate: int) -> bytes:
    """The PNG thumbnail of `wave`: `log_mel`, its top `DYNAMIC_RANGE_DB` dB -> `palette`."""
    return png_indexed(thumbnail_pixels(wave, sample_rate), palette())


def thumbnail_pixels(wave: np.ndarray, sample_rate: int) -> np.ndarray:
    """(N_MELS, WIDTH) palette indices 0..LEVELS-1 of the thumbnail, row 0 = the highest band."""
    db = log_mel(wave, sample_rate)
    scaled = (db - (db.max() - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB
    return np.clip(scaled * (LEVELS - 1), 0, LEVELS - 1).round().astype(np.uint8)[::-1]
