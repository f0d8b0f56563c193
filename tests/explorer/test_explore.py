"""`explore` on a cache with planted structure: planted latents come out on top, files are right,
the page holds the original audio, and a capped page drops the lowest-ranked latents' rows."""

import base64
import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from saelight.explorer import analyse, encode_split, explore
from saelight.explorer.analysis import latent_order
from saelight.explorer.audio import decode


def _embedded(page: dict, row: int) -> np.ndarray:
    """The decoded audio the page embeds for cache row `row`."""
    index = page["rows"]["row"].index(row)
    return decode(base64.b64decode(page["media"]["audio"][str(index)]))[0]


def test_planted_latent_ranks_first_for_its_label(explored: Path, kit) -> None:
    ranking = json.loads((explored / "labels.json").read_text())
    best = ranking["technique"]["vibrato"][0]
    assert best["latent"] == kit.VIBRATO and best["auroc"] > 0.95 and best["f1"] > 0.8
    assert set(best) == {"latent", "f1", "auroc", "precision", "recall", "frequency"}
    f1 = [e["f1"] for e in ranking["technique"]["vibrato"]]
    assert f1 == sorted(f1, reverse=True)
    assert "m2" not in ranking["singer"]  # one test singer: no negatives, no AUROC
    record = json.loads((explored / "latents.json").read_text())["latents"][kit.VIBRATO]
    assert record["best_label"] == "technique=vibrato" and record["selectivity"] == best["f1"]
    assert {t["labels"]["technique"] for t in record["top"]} == {"vibrato"}
    assert record["labels"]["technique"]["top"] == {"vibrato": 5}


def test_planted_factor_is_the_strongest_correlation(explored: Path, kit) -> None:
    record = json.loads((explored / "latents.json").read_text())["latents"][kit.PITCH]
    assert record["correlations"][0]["factor"] == "f0_mean_hz"
    table = pd.read_parquet(explored / "latents.parquet")
    assert table["spearman:f0_mean_hz"].abs().idxmax() == kit.PITCH
    assert table["auroc:technique=vibrato"].idxmax() == kit.VIBRATO
    assert table["f1:technique=vibrato"].idxmax() == kit.VIBRATO


def test_outputs(explored: Path, kit) -> None:
    data = json.loads((explored / "latents.json").read_text())
    assert data["d_sae"] == kit.D_SAE == len(data["latents"]) and data["split"] == "test"
    assert data["n_rows"] == 12 * kit.CROPS  # 1 test singer x 3 techniques x 2 vowels x 2 clips
    for r in data["latents"]:  # selectivity = the best F1 over every label value
        f1 = [v for d in r["labels"].values() for v in d["f1"].values() if v is not None]
        assert r["selectivity"] == (max(f1) if r["fires"] and f1 else None)
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
    assert sorted(p.name for p in explored.iterdir()) == [
        "index.html",
        "labels.json",
        "latents.json",
        "latents.parquet",
    ]  # the page is the unit: no audio/ folder beside it


def test_page_holds_the_original_crop(explored: Path, kit, source) -> None:
    data = json.loads((explored / "latents.json").read_text())
    top = data["latents"][kit.VIBRATO]["top"][0]
    assert top["audio"] is True and top["spectrogram"] is True
    wave = _embedded(kit.read_page(explored / "index.html"), top["row"])
    assert len(wave) == int(kit.CROP_S * 16000)
    clip = next(c for c in source.clips() if c.clip_id == top["clip_id"])
    start = int(round(top["start_s"] * 16000))
    original = source.load(clip, 16000)[start : start + len(wave)]
    np.testing.assert_allclose(wave, original, atol=1 / 16384)  # FLAC 16-bit: lossless
    rows = {t["row"] for r in data["latents"] for t in r["top"]}
    media = data["media"]
    assert media["top_rows"] == media["audio_rows"] == media["spectrogram_rows"] == len(rows)
    assert media["codec"] == "flac" and media["embedded"] and media["curves"] == 0


def test_capped_page_drops_the_lowest_ranks_first(
    clip_cache, kit, source, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        out = explore(
            kit.planted_sae(),
            clip_cache,
            kit.LAYER,
            tmp_path,
            source=source,
            top_n=5,
            max_page_mb=0.3,
        )
    assert (out / "index.html").stat().st_size <= 300_000
    assert "capped at 0.3 MB" in caplog.text
    data = json.loads((out / "latents.json").read_text())
    media = data["media"]
    assert 0 < media["audio_rows"] < media["top_rows"]
    assert media["spectrogram_rows"] == media["top_rows"]  # thumbnails are cheap: all fit
    rows = clip_cache.split_rows("test")
    meta = clip_cache.metadata.iloc[rows].reset_index(drop=True)
    order = latent_order(
        analyse(encode_split(kit.planted_sae(), clip_cache, kit.LAYER, rows, 5), meta)
    )
    heard, seen = [], set()  # rows in the order the budget met them: heard ones first, then none
    for rank in range(5):  # round-robin: every latent's best row before any latent's second
        for j in order:
            top = data["latents"][j]["top"]
            if rank < len(top) and top[rank]["row"] not in seen:
                seen.add(top[rank]["row"])
                heard.append(top[rank]["audio"])
    assert heard[0] and not heard[-1] and heard == sorted(heard, reverse=True)


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
    data = json.loads((out / "latents.json").read_text())
    top = data["latents"][kit.VIBRATO]["top"][0]
    assert top["frame"] >= 0 and top["end_s"] - top["start_s"] == pytest.approx(kit.FRAME_S)
    page = kit.read_page(out / "index.html")
    assert len(_embedded(page, top["row"])) == 8000
    index = page["rows"]["row"].index(top["row"])
    curve = base64.b64decode(page["media"]["curves"][f"{kit.VIBRATO}:{index}"])
    assert len(curve) == 2 * 4  # (x, y) of each of the clip's 4 frames, all inside the window
    assert max(curve[1::2]) == 255  # the top activation of the latent is its maximum
    assert data["media"]["curves"] > 0


def test_bad_requests(clip_cache, kit, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="split 'nope'"):
        explore(kit.planted_sae(), clip_cache, kit.LAYER, tmp_path, split="nope")
    with pytest.raises(ValueError, match="layer 5 is not in the cache"):
        explore(kit.planted_sae(), clip_cache, 5, tmp_path)
