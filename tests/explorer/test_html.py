"""The page: data embedded safely, template filled, no external resources."""

import doctest
import json
import re

import pytest

from saelight.explorer import html
from saelight.explorer.html import render_page


def test_doctests() -> None:
    assert doctest.testmod(html).failed == 0


def test_page_embeds_data_safely() -> None:
    header = {"title": "<b>L1</b>", "split": "test", "layer": 1, "n_rows": 1, "d_sae": 1, "dead": 0}
    latent = {
        "latent": 0,
        "fires": 1,
        "top": [],
        "best_label": "x=</script><script>alert(1)</script>",
    }
    page = render_page(header, [latent], {})
    assert page.count("</script>") == 2  # the data block's and the code's, none from the data
    assert "<title>&lt;b&gt;L1&lt;/b&gt;" in page
    block = re.search(
        r'<script type="application/json" id="explorer-data">(.*?)</script>', page, re.S
    )
    assert json.loads(block.group(1))["latents"][0]["best_label"] == latent["best_label"]
    assert not re.search(r"(src|href)=\"(https?:)?//", page)


def test_nan_is_refused() -> None:
    with pytest.raises(ValueError):
        render_page({"title": "x"}, [{"latent": 0, "top": [], "frequency": float("nan")}], {})
