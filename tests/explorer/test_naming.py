"""Acoustic names on the explorer: a planted frame cache with stored descriptors gets its pitch
latent named by f0 and its frame-position latent flagged positional, in latents.json, the parquet
and the page, whose search box finds them by "f0" and "positional" in headless Chromium."""

from __future__ import annotations

import doctest
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saelight.cache.descriptors import compute_descriptors
from saelight.cache.format import layer_dir, shard_name
from saelight.cache.reader import CacheReader
from saelight.explorer import naming

from .test_browser import Chromium, alone

FRAMES, POSITION = 8, 25  # latent POSITION reads dim 2, planted on frame 0


@pytest.fixture(scope="module")
def named(tmp_path_factory: pytest.TempPathFactory, source, kit) -> Path:
    """The explorer folder of the planted SAE (plus a frame-0 latent) on a frame cache of every
    clip of the tiny source, after the descriptor pass."""
    from saelight.explorer import explore

    directory = tmp_path_factory.mktemp("named") / "cache"
    kit.write_cache(directory, source.clips(), pooling="frame", frames=FRAMES)
    shard = directory / layer_dir(kit.LAYER) / shard_name(0, ".npy")
    x = np.load(shard)
    x[::FRAMES, 2] += 6.0  # frame 0 of every clip
    np.save(shard, x)  # the reader does not verify checksums unless asked
    reader = CacheReader(directory)
    compute_descriptors(reader, source, 16000, 1 / kit.FRAME_S)
    sae = kit.planted_sae()
    with torch.no_grad():
        sae.W_enc[:, POSITION] = 0.0
        sae.W_enc[2, POSITION], sae.b_enc[POSITION] = 3.0, -6.0
    out = tmp_path_factory.mktemp("explorer") / "L03_named"
    return explore(sae, reader, kit.LAYER, out, split="train", top_n=3, audio=False)


def test_pitch_latent_named_by_f0_and_frame_latent_flagged(named: Path, kit) -> None:
    latents = json.loads((named / "latents.json").read_text())["latents"]
    pitch, position = latents[kit.PITCH], latents[POSITION]
    assert "f0" in pitch["name"] and pitch["name_score"] > 0.8
    assert pitch["name_family"] in ("pitch", "factor")
    assert position["positional_flag"] and position["positional"] > naming.POSITIONAL_MIN
    assert not latents[kit.VIBRATO]["positional_flag"]
    assert latents[kit.VIBRATO]["name"] == "technique = vibrato"
    assert len(pitch["tuning"]["edges"]) == len(pitch["tuning"]["mean"]) + 1
    table = pd.read_parquet(named / "latents.parquet")
    assert set(naming.NAME_COLUMNS) <= set(table.columns)
    assert table.loc[POSITION, "positional_flag"] and table.loc[kit.PITCH, "name"] == pitch["name"]
    page = kit.read_page(named / "index.html")
    assert page["columns"]["name"][kit.PITCH] == pitch["name"]


def test_names_without_descriptors_still_use_labels_and_factors(
    tmp_path: Path, clip_cache, kit
) -> None:
    from saelight.explorer import explore

    out = explore(kit.planted_sae(), clip_cache, kit.LAYER, tmp_path / "e", split="train")
    latents = json.loads((out / "latents.json").read_text())["latents"]
    assert latents[kit.VIBRATO]["name"] == "technique = vibrato"
    assert latents[kit.PITCH]["name_family"] == "factor"
    assert latents[kit.PITCH]["positional"] is None  # clip rows have no frame index


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
def test_page_search_finds_f0_and_positional(named: Path, tmp_path: Path, kit) -> None:
    browser = Chromium(tmp_path / "profile")
    try:
        session = browser.open(alone(named / "index.html", tmp_path / "alone") + "#q=positional")
        cards = "[...document.querySelectorAll('.card')].map((c) => Number(c.id.slice(7)))"
        found = browser.evaluate(session, cards)
        flags = json.loads((named / "latents.json").read_text())["latents"]
        assert found and POSITION in found
        assert all(flags[j]["positional_flag"] for j in found)
        search = "(() => { const q = document.getElementById('only'); q.value = 'f0';"
        search += " q.dispatchEvent(new Event('input')); })()"
        browser.evaluate(session, search)
        found = browser.evaluate(session, cards)
        assert kit.PITCH in found and all("f0" in flags[j]["name"] for j in found)
        badge = browser.evaluate(session, "document.querySelector('.badge.name').textContent")
        assert "f0" in badge and "AUROC" in badge
    finally:
        browser.close()


def test_doctests() -> None:
    assert doctest.testmod(naming).failed == 0
