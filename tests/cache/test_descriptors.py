"""The descriptor pass over a cache: each frame row holds the descriptors at its frame's centre,
each clip row their mean over its frames; stored per shard beside the cache, resumed shard by
shard, recomputed when the settings change."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from saelight.audio.base import AudioSource, Clip
from saelight.audio.descriptors import DESCRIPTORS, DescriptorOptions, descriptor_tracks
from saelight.cache import descriptors as store
from saelight.cache.format import FORMAT_VERSION, part_name
from saelight.cache.parts import merge
from saelight.cache.reader import CacheReader
from saelight.cache.writer import ShardWriter

SR, FRAME_RATE, SECONDS = 16000, 50.0, 0.5
F0S = (140.0, 220.0, 330.0)


class Tones(AudioSource):
    """One steady harmonic tone per clip, at `F0S[i]` Hz."""

    def clips(self) -> list[Clip]:
        return [Clip(f"tone{i}", "test", {"pitch": str(i)}) for i in range(len(F0S))]

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        t = np.arange(int(SECONDS * sample_rate)) / sample_rate
        f0 = F0S[int(clip.clip_id[-1])]
        return sum(0.3 / h * np.sin(2 * np.pi * h * f0 * t) for h in (1, 2, 3)).astype(np.float32)

    def fingerprint(self) -> dict[str, Any]:
        return {"class": "Tones"}


def meta_rows(index: int, pooling: str) -> list[dict[str, Any]]:
    base = {"clip_index": index, "clip_id": f"tone{index}", "split": "test", "crop": 0}
    if pooling == "clip":
        return [{**base, "frame": -1, "start_s": 0.0, "end_s": SECONDS}]
    n = int(SECONDS * FRAME_RATE)
    return [{**base, "frame": f, "start_s": f / FRAME_RATE, "end_s": (f + 1) / FRAME_RATE}
            for f in range(n)]  # fmt: skip


def write(directory: Path, pooling: str) -> CacheReader:
    """A complete cache of the three tones, one clip per shard (rows are dummies)."""
    head = {
        "format_version": FORMAT_VERSION, "backbone": {"model": "fake"}, "source": {},
        "extraction": {"storage_dtype": "float32"}, "layers": [0], "dim": 2,
        "complete": False, "n_rows": 0, "shards": [], "skipped": [],
    }  # fmt: skip
    writer = ShardWriter(directory, {**head, "shards": [], "skipped": []}, part_name(0))
    for clip in range(len(F0S)):
        writer.begin(clip)
        rows = meta_rows(clip, pooling)
        writer.add({0: np.zeros((len(rows), 2), np.float32)}, rows)
        writer.commit(clip + 1)
    merge(directory, head, [(part_name(0), writer.part)], len(F0S))
    return CacheReader(directory)


def test_frame_rows_hold_the_descriptors_at_their_centres(tmp_path: Path) -> None:
    reader = write(tmp_path, "frame")
    table = store.compute_descriptors(reader, Tones(), SR, FRAME_RATE)
    assert list(table.columns) == ["row", *DESCRIPTORS] and len(table) == len(reader)
    meta = reader.metadata
    wave = Tones().load(Tones().clips()[1], SR)
    mine = meta["clip_index"].to_numpy() == 1
    centres = ((meta["start_s"] + meta["end_s"]) / 2).to_numpy()[mine]
    direct = descriptor_tracks(wave, SR, centres)
    for name in DESCRIPTORS:
        np.testing.assert_array_equal(table[name].to_numpy()[mine], direct[name], err_msg=name)
    voiced = table["voiced"].to_numpy() == 1
    f0 = table["f0_hz"].to_numpy()
    for i, f in enumerate(F0S):
        at = voiced & (meta["clip_index"].to_numpy() == i)
        assert at.sum() > 15 and np.allclose(f0[at], f, atol=2.0)


def test_clip_rows_average_their_frames(tmp_path: Path) -> None:
    reader = write(tmp_path, "clip")
    table = store.compute_descriptors(reader, Tones(), SR, FRAME_RATE)
    np.testing.assert_allclose(table["f0_hz"], F0S, atol=2.0)
    wave = Tones().load(Tones().clips()[2], SR)
    frames = descriptor_tracks(wave, SR, (np.arange(25) + 0.5) / FRAME_RATE)
    voiced = frames["voiced"] == 1
    assert table["voiced"][2] == pytest.approx(voiced.mean())
    assert table["centroid_hz"][2] == pytest.approx(frames["centroid_hz"].mean())
    assert table["hnr_db"][2] == pytest.approx(np.nanmean(frames["hnr_db"][voiced]))


def test_stored_per_shard_resumed_and_recomputed_on_new_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reader = write(tmp_path, "clip")
    assert store.read_descriptors(tmp_path) is None
    first = store.compute_descriptors(reader, Tones(), SR, FRAME_RATE)
    shards = sorted((tmp_path / store.DESCRIPTOR_DIR).glob("shard_*.parquet"))
    assert len(shards) == 3
    shards[1].unlink()  # an interrupted pass: only the missing shard is computed again
    calls: list[int] = []
    real = store.clip_descriptors
    monkeypatch.setattr(store, "clip_descriptors", lambda *a: calls.append(1) or real(*a))
    again = store.compute_descriptors(reader, Tones(), SR, FRAME_RATE)
    assert len(calls) == 1
    np.testing.assert_array_equal(again.to_numpy(), first.to_numpy())
    store.compute_descriptors(reader, Tones(), SR, FRAME_RATE, DescriptorOptions(hop_s=0.005))
    assert len(calls) == 4  # other settings: every shard again
    np.testing.assert_array_equal(store.read_descriptors(tmp_path)["row"], np.arange(3))
