"""`explore` on a cache with planted structure: planted latents come out on top, files are right."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from saelight.explorer import explore


def test_planted_latent_ranks_first_for_its_label(explored: Path, kit) -> None:
    ranking = json.loads((explored / "labels.json").read_text())
    best = ranking["technique"]["vibrato"][0]
    assert best["latent"] == kit.VIBRATO and best["auroc"] > 0.95
    assert "m2" not in ranking["singer"]  # one test singer: no negatives, no AUROC
    record = json.loads((explored / "latents.json").read_text())["latents"][kit.VIBRATO]
    assert record["best_label"] == "technique=vibrato"
    assert {t["labels"]["technique"] for t in record["top"]} == {"vibrato"}
    assert record["labels"]["technique"]["top"] == {"vibrato": 5}


def test_planted_factor_is_the_strongest_correlation(explored: Path, kit) -> None:
    record = json.loads((explored / "latents.json").read_text())["latents"][kit.PITCH]
    assert record["correlations"][0]["factor"] == "f0_mean_hz"
    table = pd.read_parquet(explored / "latents.parquet")
    assert table["spearman:f0_mean_hz"].abs().idxmax() == kit.PITCH
    assert table["auroc:technique=vibrato"].idxmax() == kit.VIBRATO


def test_outputs(explored: Path, kit) -> None:
    data = json.loads((explored / "latents.json").read_text())
    assert data["d_sae"] == kit.D_SAE == len(data["latents"]) and data["split"] == "test"
    assert data["n_rows"] == 12 * kit.CROPS  # 1 test singer x 3 techniques x 2 vowels x 2 clips
    record = data["latents"][kit.VIBRATO]
    assert sum(record["histogram"]) == record["fires"] > 0
    assert [t["activation"] for t in record["top"]] == sorted(
        (t["activation"] for t in record["top"]), reverse=True
    )
    table = pd.read_parquet(explored / "latents.parquet")
    assert len(table) == kit.D_SAE and table.loc[kit.VIBRATO, "top_rows"].tolist() == [
        t["row"] for t in record["top"]
    ]
    html = (explored / "index.html").read_text()
    assert "__DATA__" not in html and 'id="explorer-data"' in html and "<script src" not in html


def test_audio_is_the_original_crop(explored: Path, kit, source) -> None:
    top = json.loads((explored / "latents.json").read_text())["latents"][kit.VIBRATO]["top"][0]
    wave, rate = sf.read(explored / top["audio"], dtype="float32")
    assert rate == 16000 and len(wave) == int(kit.CROP_S * 16000)
    clip = next(c for c in source.clips() if c.clip_id == top["clip_id"])
    start = int(round(top["start_s"] * 16000))
    original = source.load(clip, 16000)[start : start + len(wave)]
    np.testing.assert_allclose(wave, original, atol=1 / 16384)
    files = list((explored / "audio").iterdir())
    rows = {
        t["row"]
        for r in json.loads((explored / "latents.json").read_text())["latents"]
        for t in r["top"]
    }
    assert len(files) == len(rows)


def test_frame_rows_get_a_window(tmp_path: Path, kit, source) -> None:
    clips = [c for c in source.clips() if c.split == "test" and c.labels["vowel"] == "a"][::2]
    reader = kit.write_cache(tmp_path / "frames", clips, pooling="frame", frames=4)
    out = explore(
        kit.planted_sae(),
        reader,
        kit.LAYER,
        tmp_path / "out",
        source=source,
        top_n=2,
        frame_window_s=0.5,
    )
    top = json.loads((out / "latents.json").read_text())["latents"][kit.VIBRATO]["top"][0]
    assert top["frame"] >= 0 and top["end_s"] - top["start_s"] == pytest.approx(kit.FRAME_S)
    assert sf.info(out / top["audio"]).frames == 8000


def test_bad_requests(clip_cache, kit, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split 'nope'"):
        explore(kit.planted_sae(), clip_cache, kit.LAYER, tmp_path, split="nope")
    with pytest.raises(ValueError, match="layer 5 is not in the cache"):
        explore(kit.planted_sae(), clip_cache, 5, tmp_path)
