"""Spectrogram thumbnails: a valid indexed PNG, a tone lands in its mel band, quiet is dark."""

import doctest
import io

import matplotlib.image
import numpy as np

from saelight.explorer import spectrogram
from saelight.explorer.spectrogram import (
    LEVELS,
    N_MELS,
    WIDTH,
    log_mel,
    mel_filterbank,
    palette,
    png_indexed,
    thumbnail_pixels,
    thumbnail_png,
)


def test_doctests() -> None:
    assert doctest.testmod(spectrogram).failed == 0


def test_png_round_trips_through_a_decoder() -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, LEVELS, size=(5, 7)).astype(np.uint8)
    decoded = matplotlib.image.imread(io.BytesIO(png_indexed(pixels, palette())), format="png")
    expected = palette()[pixels] / 255.0
    np.testing.assert_allclose(decoded[..., :3], expected, atol=1 / 255)


def test_a_tone_lights_its_mel_band() -> None:
    t = np.arange(16000) / 16000
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t)
    db = log_mel(tone, 16000)
    assert db.shape == (N_MELS, WIDTH)
    centres = mel_filterbank(16000).argmax(1) * 16000 / 512
    band = int(np.argmin(np.abs(centres - 1000)))
    assert abs(int(db.mean(1).argmax()) - band) <= 1
    pixels = thumbnail_pixels(tone, 16000)
    assert pixels.max() == LEVELS - 1 and pixels.min() == 0
    assert int(pixels.mean(1).argmax()) in {N_MELS - 1 - band + d for d in (-1, 0, 1)}  # flipped


def test_thumbnail_is_small_and_handles_short_snippets() -> None:
    rng = np.random.default_rng(1)
    png = thumbnail_png(rng.normal(size=32000) * 0.1, 16000)
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) < 4000
    short = matplotlib.image.imread(io.BytesIO(thumbnail_png(np.ones(100), 16000)), format="png")
    assert short.shape[:2] == (N_MELS, WIDTH)
