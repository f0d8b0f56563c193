"""The explain computation and page without a backbone: latents ranked by their peak relative to
their explorer maximum, links to cards, the page's curves and escaping."""

from __future__ import annotations

import doctest

import numpy as np
import pandas as pd

from saelight.explorer import explain
from saelight.explorer.explain import top_latents
from saelight.explorer.explain_page import WIDTH, render_explain, spectrogram_png


def cards() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "max_activation": [10.0, 1.0, 4.0, 2.0],
            "name": ["f0 ≥ 210 Hz", None, "technique = <fry>", None],
            "name_score": [0.91, np.nan, 0.8, np.nan],
            "positional_flag": [False, True, False, False],
        }
    )


def test_top_latents_rank_by_peak_relative_to_the_explorer_max() -> None:
    codes = np.array([[5.0, 0.9, 0.0, 0.0], [2.0, 0.1, 4.0, 0.0]])  # latent 3 never fires
    top = top_latents(codes, cards(), top=5, link="../explorer/L01/index.html")
    assert [e["latent"] for e in top] == [2, 1, 0]  # relative 1.0, 0.9, 0.5
    assert top[0]["link"] == "../explorer/L01/index.html#q=2"
    assert top[0]["activation"] == [0.0, 4.0] and top[2]["relative"] == 0.5
    assert top[1]["name"] is None and top[1]["name_score"] is None
    assert top[1]["positional_flag"] is True


def test_page_draws_one_curve_per_latent_on_the_spectrogram_axis() -> None:
    wave = np.sin(np.arange(16000) / 3.0).astype(np.float32)
    png = spectrogram_png(wave, 16000)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    top = top_latents(np.array([[1.0, 0.5, 4.0, 0.0]] * 3), cards(), 2, "e/index.html")
    record = {
        "path": "a<b>.wav", "duration_s": 1.0, "pooling": "frame", "window_s": None,
        "times": [0.25, 0.5, 0.75], "saes": [{"key": "L01_topk", "layer": 1, "top": top}],
    }  # fmt: skip
    page = render_explain([record], [png], "runs/x")
    assert page.count('class="curve"') == 2 and page.count('class="card-link"') == 2
    assert "a&lt;b&gt;.wav" in page and "technique = &lt;fry&gt;" in page
    assert f'href="e/index.html#q={top[0]["latent"]}"' in page
    assert f'points="{WIDTH * 0.25:.1f},' in page  # the curve shares the spectrogram's time axis
    assert 'dataset.ready = "1"' in page


def test_doctests() -> None:
    assert doctest.testmod(explain).failed == 0
