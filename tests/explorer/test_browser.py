"""The explorer page in headless Chromium, driven over the DevTools protocol: it renders, is one
file (opened alone, it loads nothing but data:/blob: URLs), its players decode, its thumbnails and
activation curves are drawn, and a 16384-latent page paginates, searches and sorts.

Chromium is driven through `--remote-debugging-pipe` (NUL-terminated JSON on fds 3 and 4), so no
websocket client is needed; `--dump-dom` cannot wait for the asynchronous audio decoding.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH"),
]


class Chromium:
    """One headless Chromium; `open(url)` returns a session whose page has set data-ready."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._send = os.pipe()
        self._recv, from_browser = os.pipe()

        def fds() -> None:  # the browser reads commands on fd 3 and answers on fd 4
            a, b = os.dup(to_browser), os.dup(from_browser)
            os.dup2(a, 3)
            os.dup2(b, 4)

        flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
        flags += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
        self.process = subprocess.Popen(
            [CHROMIUM, *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe"],
            preexec_fn=fds,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer, self._id = b"", 0

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._id += 1
        message: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._send, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + 90
        while True:
            while b"\0" not in self._buffer:
                if not select.select([self._recv], [], [], max(deadline - time.monotonic(), 0))[0]:
                    raise TimeoutError(method)
                chunk = os.read(self._recv, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(reply["error"])
                return reply["result"]

    def evaluate(self, session: str, expression: str) -> Any:
        """The JSON value of `expression` (awaited if it is a promise) in the session's page."""
        params = {"expression": expression, "awaitPromise": True, "returnByValue": True}
        result = self.call("Runtime.evaluate", params, session)
        if "exceptionDetails" in result:
            raise RuntimeError(result["exceptionDetails"])
        return result["result"].get("value")

    def open(self, url: str) -> str:
        target = self.call("Target.createTarget", {"url": url})["targetId"]
        params = {"targetId": target, "flatten": True}
        session = self.call("Target.attachToTarget", params)["sessionId"]
        wait = """new Promise((done) => { const t0 = Date.now(); (function poll() {
          const b = document.body;
          if (b && (b.dataset.ready || b.dataset.error)) done(b.dataset.error || "ready");
          else if (Date.now() - t0 > 60000) done("timeout"); else setTimeout(poll, 20); })(); })"""
        for _ in range(50):  # the first evaluate may land in about:blank, torn down by the load
            try:
                assert self.evaluate(session, wait) == "ready"
                return session
            except RuntimeError as err:
                if "context" not in str(err).lower():
                    raise
                time.sleep(0.1)
        raise TimeoutError(url)

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError, TimeoutError):
            pass
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._send)
        os.close(self._recv)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chromium]:
    chromium = Chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield chromium
    chromium.close()


def alone(page: Path, where: Path) -> str:
    """file:// URL of a copy of `page` in an otherwise empty folder: nothing beside it to load."""
    where.mkdir(parents=True, exist_ok=True)
    target = where / "index.html"
    shutil.copyfile(page, target)
    return target.as_uri()


DECODE_PLAYERS = """Promise.all([...document.querySelectorAll("figure.tile audio")].map(async a => {
  const buffer = await (await fetch(a.src)).arrayBuffer();
  const audio = await new OfflineAudioContext(1, 1, 16000).decodeAudioData(buffer);
  return [a.src.slice(0, 5), audio.duration, audio.sampleRate];
}))"""

THUMBNAILS = """Promise.all([...document.querySelectorAll("img.spectrogram")].map(async (img) => {
  await img.decode();
  return [img.naturalWidth, img.naturalHeight, img.src.slice(0, 22)];
}))"""

FETCHED = """performance.getEntriesByType("resource").map((e) => e.name.slice(0, 5))"""


def test_page_renders_players_decode_thumbnails_load(
    browser: Chromium, explored: Path, tmp_path: Path, kit
) -> None:
    session = browser.open(alone(explored / "index.html", tmp_path))
    dom = browser.evaluate(session, "document.documentElement.outerHTML")
    assert f'id="latent-{kit.VIBRATO}"' in dom and dom.count('class="card"') > 1
    assert 'class="rank-row"' in dom  # the "which latents encode..." ranking
    players = browser.evaluate(session, DECODE_PLAYERS)
    tiles = browser.evaluate(session, "document.querySelectorAll('figure.tile').length")
    assert len(players) == tiles > 10
    for scheme, duration, rate in players:
        assert scheme == "blob:" and rate == 16000
        assert duration == pytest.approx(kit.CROP_S, abs=0.01)
    thumbnails = browser.evaluate(session, THUMBNAILS)
    assert len(thumbnails) == tiles
    assert {tuple(t) for t in thumbnails} == {(96, 32, "data:image/png;base64,")}
    assert set(browser.evaluate(session, FETCHED)) <= {"data:", "blob:"}
    assert browser.evaluate(session, "document.getElementById('media-note').hidden")


def test_capped_page_says_what_it_left_out(
    browser: Chromium, clip_cache, source, tmp_path: Path, kit
) -> None:
    from saelight.explorer import explore

    out = explore(
        kit.planted_sae(),
        clip_cache,
        kit.LAYER,
        tmp_path / "capped",
        source=source,
        top_n=5,
        max_page_mb=0.25,
    )
    assert (out / "index.html").stat().st_size <= 250_000
    session = browser.open(alone(out / "index.html", tmp_path / "alone"))
    note = browser.evaluate(session, "document.getElementById('media-note').textContent")
    assert "left out to stay under 0.25 MB" in note and "Audio of " in note
    summary = json.loads((out / "latents.json").read_text())["media"]
    total, audio = summary["top_rows"] - summary["unavailable"], summary["audio_rows"]
    assert f"Audio of {total - audio} rows (of {total})" in note
    missing = browser.evaluate(session, "document.body.textContent.includes('no audio (page cap)')")
    assert missing and len(browser.evaluate(session, DECODE_PLAYERS)) > 0


def test_frame_page_draws_activation_over_time(
    browser: Chromium, tmp_path: Path, kit, source
) -> None:
    from saelight.explorer import explore

    clips = [c for c in source.clips() if c.split == "test" and c.labels["vowel"] == "a"]
    reader = kit.write_cache(tmp_path / "frames", clips, pooling="frame", frames=8)
    out = explore(kit.planted_sae(), reader, kit.LAYER, tmp_path / "out", source=source, top_n=3)
    session = browser.open(alone(out / "index.html", tmp_path / "alone"))
    curves = browser.evaluate(
        session, "[...document.querySelectorAll('polyline.curve')].map((p) => p.points.length)"
    )
    assert curves and min(curves) >= 2
    assert browser.evaluate(session, "document.querySelectorAll('svg.overlay line').length") > 0
    players = browser.evaluate(session, DECODE_PLAYERS)
    assert players and all(d == pytest.approx(1.0, abs=0.01) for _, d, _ in players)


@pytest.fixture(scope="module")
def wide_page(tmp_path_factory: pytest.TempPathFactory, clip_cache, source, kit) -> Path:
    """The page of a random 16384-latent ReLU SAE (d_in 16) on the clip cache's test split."""
    from saelight.explorer import explore
    from saelight.sae import ReLUSAE

    torch.manual_seed(0)
    sae = ReLUSAE(d_in=kit.D_IN, d_sae=16384)
    with torch.no_grad():
        sae.W_enc.normal_(0.0, 1.0)
        sae.b_enc.fill_(-6.0)  # each latent fires on a few rows; some never
    out = tmp_path_factory.mktemp("wide") / "index"
    return explore(sae.eval(), clip_cache, kit.LAYER, out, source=source, top_n=3) / "index.html"


def _page_order(page: Path, key: str) -> list[int]:
    """The live latents sorted as the page sorts them: `key` descending, null last, then id."""
    data = json.loads(re.search(r'id="explorer-data">(.*?)</script>', page.read_text()).group(1))
    col, fires = data["columns"][key], data["columns"]["fires"]
    live = [i for i in range(len(fires)) if fires[i] > 0]
    return sorted(live, key=lambda i: (col[i] is None, -(col[i] or 0.0), i))


def _cards(browser: Chromium, session: str) -> list[int]:
    ids = "[...document.querySelectorAll('.card')].map((c) => Number(c.id.slice(7)))"
    return browser.evaluate(session, ids)


def test_16k_latents_paginate_search_and_sort(browser: Chromium, wide_page: Path) -> None:
    assert wide_page.stat().st_size < 20e6
    session = browser.open(wide_page.as_uri())
    order = _page_order(wide_page, "selectivity")
    assert 1000 < len(order) < 16384
    assert _cards(browser, session) == order[:20]
    info = browser.evaluate(session, "document.getElementById('page-info').textContent")
    assert f"/ {-(-len(order) // 20)} ({len(order)} latents)" == info
    for _ in range(3):
        browser.evaluate(session, "document.getElementById('next').click()")
    assert _cards(browser, session) == order[60:80]
    assert browser.evaluate(session, "document.getElementById('page-input').value") == "4"

    type_in = "(() => { const q = document.getElementById('only'); q.value = %s;"
    type_in += " q.dispatchEvent(new Event('input')); })()"
    browser.evaluate(session, type_in % json.dumps("12345"))
    assert _cards(browser, session) == [12345]
    browser.evaluate(session, type_in % json.dumps("100-104, 16383"))
    assert _cards(browser, session) == [100, 101, 102, 103, 104, 16383]
    browser.evaluate(session, type_in % json.dumps("99999"))
    assert _cards(browser, session) == []
    assert "no latent matches" in browser.evaluate(session, "document.body.textContent")
    browser.evaluate(session, type_in % json.dumps(""))

    choose = "(() => { const s = document.getElementById('sort'); s.value = 'frequency';"
    choose += " s.dispatchEvent(new Event('change')); })()"
    browser.evaluate(session, choose)
    assert _cards(browser, session) == _page_order(wide_page, "frequency")[:20]
    assert "sort=frequency" in browser.evaluate(session, "location.hash")


def test_deep_link_opens_one_latent(browser: Chromium, wide_page: Path) -> None:
    session = browser.open(wide_page.as_uri() + "#q=4242")
    assert _cards(browser, session) == [4242]


LONG_ID = "vocalset_female9_arpeggios_straight_a_take3_" + "x" * 16  # 60 characters

LAYOUT = """[...document.querySelectorAll("figure.tile")].map((f) => {
  const box = (n) => {
    const r = n.getBoundingClientRect();
    return [r.left, r.right, r.top, r.bottom];
  };
  const text = document.createRange(); text.selectNodeContents(f.querySelector("figcaption"));
  return { tile: box(f), card: box(f.closest(".card")), text: box(text),
           audio: box(f.querySelector("audio")), spec: box(f.querySelector(".spec")) };
})"""


def _long_id_page(tmp_path: Path) -> Path:
    """A two-latent page whose top rows come from clips with 60-character ids, audio embedded."""
    import numpy as np

    from saelight.explorer.audio import encode
    from saelight.explorer.html import render_page, write_page
    from saelight.explorer.media import PageMedia
    from saelight.explorer.spectrogram import thumbnail_png

    assert len(LONG_ID) == 60
    wave = (0.1 * np.sin(np.linspace(0, 2000, 8000))).astype(np.float32)
    media = PageMedia(codec="flac")
    rows = [
        {"row": r, "clip_id": f"{LONG_ID[:-1]}{r}", "start_s": 0.0, "end_s": 0.5, "frame": -1,
         "labels": {"singer": "female9"}, "activation": 2.0}
        for r in range(4)
    ]  # fmt: skip
    for r in range(4):
        media.audio[r], media.spectrogram[r] = encode(wave), thumbnail_png(wave, 16000)
        media.window[r] = (0.0, 0.5, 0.5)
    media.top_rows = 4
    latents = [
        {"latent": j, "fires": 4, "frequency": 1.0, "mean_activation": 2.0, "max_activation": 2.0,
         "selectivity": None, "best_label": None, "best_auroc": None, "histogram": [0, 4],
         "top": rows[2 * j : 2 * j + 2] + rows[:1], "labels": {}, "correlations": []}
        for j in range(2)
    ]  # fmt: skip
    header = {"title": "long ids", "split": "test", "layer": 1, "n_rows": 4, "d_sae": 2, "dead": 0}
    header["media"] = {**media.summary(), "embedded": True, "max_page_mb": 20}
    page = render_page(header, latents, {}, media)
    return write_page(tmp_path / "index.html", page)


def test_long_clip_ids_and_players_stay_inside_their_tiles(
    browser: Chromium, tmp_path: Path
) -> None:
    session = browser.open(alone(_long_id_page(tmp_path), tmp_path / "alone"))
    assert LONG_ID[:-1] in browser.evaluate(session, "document.body.textContent")
    tiles = browser.evaluate(session, LAYOUT)
    assert len(tiles) == 6
    for t in tiles:
        left, right, top, bottom = t["tile"]
        assert t["card"][0] <= left and right <= t["card"][1]
        assert left - 0.5 <= t["text"][0] and t["text"][1] <= right + 0.5, t  # id wraps
        assert top <= t["text"][2] and t["text"][3] <= bottom + 0.5
        assert t["audio"][0] >= left - 0.5 and t["audio"][1] <= right + 0.5  # not clipped
        assert t["audio"][1] - t["audio"][0] >= t["spec"][1] - t["spec"][0] - 0.5  # full width
    boxes = [t["tile"] for t in tiles]
    for i, a in enumerate(boxes):  # no tile overprints another
        for b in boxes[i + 1 :]:
            assert a[1] <= b[0] or b[1] <= a[0] or a[3] <= b[2] or b[3] <= a[2]
