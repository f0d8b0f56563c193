"""The page: data embedded safely and compactly, template filled, no external resources."""

import base64
import doctest
import json
import re

import pytest

from saelight.explorer import html
from saelight.explorer.html import page_data, render_page
from saelight.explorer.media import PageMedia

HEADER = {"title": "<b>L1</b>", "split": "test", "layer": 1, "n_rows": 4, "d_sae": 2, "dead": 1}


def _latent(j: int, top: list[dict], **fields) -> dict:
    base = {
        "latent": j,
        "fires": len(top),
        "frequency": 0.5,
        "mean_activation": 1.0,
        "max_activation": 2.0,
        "selectivity": 0.75,
        "best_label": "technique=vibrato",
        "best_auroc": 0.9,
        "histogram": [1, 0],
        "top": top,
        "labels": {
            "technique": {
                "f1": {"vibrato": 0.75, "belt": 0.2},
                "auroc": {"vibrato": 0.9, "belt": 0.6},
                "precision": {"vibrato": 0.6, "belt": 0.1},
                "recall": {"vibrato": 1.0, "belt": 0.5},
                "top": {"vibrato": 1},
            }
        },
        "correlations": [{"factor": "f0", "pearson": 0.5, "spearman": -0.25}],
    }
    return {**base, **fields}


def _row(row: int, clip: str = "c0") -> dict:
    return {
        "row": row,
        "clip_id": clip,
        "start_s": 0.0,
        "end_s": 1.0,
        "frame": -1,
        "labels": {"technique": "vibrato", "vowel": "a"},
        "activation": 2.0,
    }


def test_doctests() -> None:
    assert doctest.testmod(html).failed == 0


def test_page_embeds_data_safely() -> None:
    evil = "x=</script><script>alert(1)</script>"
    latents = [_latent(0, [], best_label=evil), _latent(1, [])]
    page = render_page(HEADER, latents, {})
    assert page.count("</script>") == 2  # the data block's and the code's, none from the data
    assert "<title>&lt;b&gt;L1&lt;/b&gt;" in page
    block = re.search(
        r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S
    )
    data = json.loads(block.group(1))
    label, value = data["best"][0]
    assert list(data["labels"])[label] + "=" + data["labels"]["x"][value] == evil
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


def test_columnar_tables_share_rows_and_values() -> None:
    latents = [_latent(0, [_row(7), _row(9, "c1")]), _latent(1, [_row(9, "c1")])]
    media = PageMedia(audio={9: b"fLaC..."}, spectrogram={7: b"png"}, window={7: (0, 1, 2)})
    media.curves[(1, 9)] = b"\x00\xff"
    data = page_data(HEADER, latents, {"technique": {"vibrato": []}}, media)
    assert data["columns"]["fires"] == [2, 1] and data["columns"]["selectivity"] == [0.75, 0.75]
    assert data["rows"]["row"] == [7, 9] and data["clips"] == ["c0", "c1"]
    assert data["top"] == [[[0, 2.0], [1, 2.0]], [[1, 2.0]]]
    assert data["labels"] == {"technique": ["vibrato", "belt"], "vowel": ["a"]}
    assert data["rows"]["labels"] == [[0, 0], [0, 0]]
    assert data["values"][0] == [[0, 0, 750, 900, 600, 1000], [0, 1, 200, 600, 100, 500]]
    assert data["corr"][0] == [[0, 500, -250]] and data["factors"] == ["f0"]
    assert data["media"]["mime"] == "audio/flac"
    assert base64.b64decode(data["media"]["audio"][1]) == b"fLaC..."
    assert data["media"]["window"] == {0: [0, 1, 2]}
    assert data["media"]["curves"] == {"1:1": "AP8="}


def test_records_must_be_in_latent_order() -> None:
    with pytest.raises(ValueError, match="latent order"):
        page_data(HEADER, [_latent(1, [])], {})


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        render_page({"title": "x"}, [_latent(0, [], histogram=[float("nan")])], {})
