"""Feature-page essentials on the planted explorer: nearest latents by decoder cosine and by
co-activation, rows drawn from activation quantiles, the full histogram; in latents.json, the
parquet and the page (headless Chromium: the card shows them and a neighbour link opens its card).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saelight.explorer import analyse, encode_split
from saelight.explorer.neighbours import coactivation_neighbours, decoder_neighbours
from saelight.explorer.records import HIST_BINS

from .test_browser import Chromium, alone

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_records_and_parquet_carry_neighbours_and_quantiles(
    explored: Path, kit, clip_cache
) -> None:
    data = json.loads((explored / "latents.json").read_text())
    sae = kit.planted_sae()
    cosine = decoder_neighbours(sae.W_dec.detach().numpy())
    rows = clip_cache.split_rows("test")
    meta = clip_cache.metadata.iloc[rows].reset_index(drop=True)
    codes = analyse(encode_split(sae, clip_cache, kit.LAYER, rows, 5), meta).summary.codes
    coactivation = coactivation_neighbours(codes)
    table = pd.read_parquet(explored / "latents.parquet")
    stream = {row: p for p, row in enumerate(meta["row"])}
    assert data["quantile_bands"] == 4
    drawn_any = False
    for r in data["latents"]:
        j = r["latent"]
        assert [e["latent"] for e in r["neighbours_cosine"]] == cosine.ids[j].tolist()
        assert [e["latent"] for e in r["neighbours_coactivation"]] == [
            i for i, _ in coactivation.of(j)
        ]
        top = {t["row"] for t in r["top"]}
        for q in r["quantiles"]:
            position = stream[q["row"]]
            assert q["row"] not in top
            assert q["activation"] == pytest.approx(codes[position, j], rel=1e-3)
            assert {"clip_id", "start_s", "end_s", "frame", "labels", "band", "audio"} <= set(q)
        drawn_any |= bool(r["quantiles"])
        assert table.loc[j, "neighbours_cosine"].tolist() == cosine.ids[j].tolist()
        assert table.loc[j, "quantile_rows"].tolist() == [q["row"] for q in r["quantiles"]]
    assert drawn_any
    media = data["media"]
    assert media["quantile_rows"] > 0 and media["quantile_audio_rows"] == media["quantile_rows"]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


CARD = """(() => {
  const card = document.getElementById("latent-%d");
  const q = (s) => [...card.querySelectorAll(s)];
  return {
    cosine: q(".near-cosine a.neighbour").map((a) => a.getAttribute("href")),
    coactivation: q(".near-coactivation a.neighbour").map((a) => a.getAttribute("href")),
    quantile_tiles: q(".quantiles figure.tile").length,
    bands: q(".quantiles .band").map((b) => b.textContent),
    quantile_audio: q(".quantiles figure.tile audio").length,
    bars: q("svg.hist rect").length,
    marks: q("svg.hist line.q-mark").length,
    axis: q("svg.hist text").map((t) => t.textContent),
  };
})()"""

SHOWN_AFTER_HASHCHANGE = """new Promise((done) => { const t0 = Date.now(); (function poll() {
  const ids = [...document.querySelectorAll(".card")].map((c) => c.id);
  if (ids.length === 1 && ids[0] === %s) done(ids);
  else if (Date.now() - t0 > 10000) done(ids); else setTimeout(poll, 20); })(); })"""


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
def test_card_shows_neighbours_quantiles_and_histogram(
    browser: Chromium, explored: Path, tmp_path: Path, kit
) -> None:
    data = json.loads((explored / "latents.json").read_text())
    record = data["latents"][kit.VIBRATO]
    session = browser.open(alone(explored / "index.html", tmp_path) + f"#q={kit.VIBRATO}")
    card = browser.evaluate(session, CARD % kit.VIBRATO)
    assert card["cosine"] == [f"#q={e['latent']}" for e in record["neighbours_cosine"]]
    assert card["coactivation"] == [f"#q={e['latent']}" for e in record["neighbours_coactivation"]]
    assert card["coactivation"]  # the planted latent fires with others
    n = len(record["quantiles"])
    assert n > 0 and card["quantile_tiles"] == card["marks"] == card["quantile_audio"] == n
    assert card["bands"] == [
        f"{25 * q['band']}–{25 * (q['band'] + 1)}%" for q in record["quantiles"]
    ]
    assert card["bars"] == HIST_BINS and card["axis"][0].startswith("0 … ")
    assert np.isclose(float(card["axis"][0].split()[2]), record["max_activation"], rtol=1e-2)

    target = record["neighbours_cosine"][0]["latent"]
    click = f"document.querySelector('#latent-{kit.VIBRATO} .near-cosine a.neighbour').click()"
    browser.evaluate(session, click)
    shown = browser.evaluate(session, SHOWN_AFTER_HASHCHANGE % json.dumps(f"latent-{target}"))
    assert shown == [f"latent-{target}"]
    assert f"q={target}" in browser.evaluate(session, "location.hash")
    assert browser.evaluate(session, "document.body.dataset.error || ''") == ""
