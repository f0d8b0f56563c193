"""`cache.protocol: paper` (a `test_head` row of each test file's first crop beside its whole-file
row) and eGeMAPS factors at the source's own rate, on a frame-statistics backbone (milliseconds;
the eGeMAPS test runs openSMILE on two 1 s files)."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from saelight.audio import AudioFolder
from saelight.audio.base import SPLITS, AudioSource, Clip
from saelight.audio.decode import resample
from saelight.cache import TEST_HEAD, ActivationCache, CacheMismatchError, CacheReader
from saelight.io.errors import ConfigError

SR = 1000
FRAME = 100  # samples per backbone frame


class LongSource(AudioSource):
    """Clip i (split SPLITS[i % 3]) lasts 500 + 100 * (i % 4) samples (0.5-0.8 s at 1 kHz)."""

    def clips(self) -> list[Clip]:
        return [Clip(f"c{i}", SPLITS[i % 3], {"parity": str(i % 2)}) for i in range(9)]

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        i = int(clip.clip_id[1:])
        n = round((500 + 100 * (i % 4)) * sample_rate / SR)
        return np.sin(np.arange(n) * (0.05 + i / 40) + np.arange(n) ** 2 * 1e-5).astype(np.float32)

    def fingerprint(self) -> dict[str, Any]:
        return {"class": "LongSource"}


class FrameStats:
    """Per 100-sample frame: mean, std, max (layer 0) and twice that (layer 1); any lengths, one
    batch, padded frames masked, so a segment's rows do not depend on what it is batched with."""

    hidden_size, layers, min_samples = 3, [0, 1], FRAME

    def __init__(self, sample_rate: int = SR) -> None:
        self.sample_rate, self.frame_rate_hz = sample_rate, sample_rate / FRAME

    def identity(self) -> dict[str, Any]:
        return {"model": "frame-stats", "sample_rate": self.sample_rate}

    def extract(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        frames = [len(w) // FRAME for w in waves]
        h = torch.zeros(len(waves), max(frames), 3)
        mask = torch.zeros(len(waves), max(frames), dtype=torch.bool)
        for b, (w, t) in enumerate(zip(waves, frames, strict=True)):
            x = torch.from_numpy(w[: t * FRAME].reshape(t, FRAME))
            h[b, :t] = torch.stack([x.mean(1), x.std(1), x.max(1).values], 1)
            mask[b, :t] = True
        return {0: h, 1: 2 * h}, mask


def build(directory: Path, **kwargs: Any) -> CacheReader:
    kwargs.setdefault("source", LongSource())
    kwargs.setdefault("backbone", FrameStats())
    kwargs.setdefault("crop_seconds", 0.3)
    return ActivationCache(str(directory), batch_size=3, clips_per_shard=4, **kwargs).build(
        progress=False
    )  # type: ignore[arg-type]


def rows_by_clip(reader: CacheReader, split: str) -> tuple[list[str], np.ndarray]:
    rows = reader.split_rows(split)
    return reader.metadata["clip_id"].iloc[rows].tolist(), reader.read(rows)


@pytest.mark.parametrize("pooling", ["clip", "frame"])
def test_paper_adds_a_head_row_group_per_test_file(tmp_path: Path, pooling: str) -> None:
    paper = build(tmp_path / "paper", protocol="paper", pooling=pooling)
    ours = build(tmp_path / "ours", pooling=pooling)
    first_crop = build(tmp_path / "first", test_full_length=False, pooling=pooling)
    assert not len(ours.split_rows(TEST_HEAD)) and not len(first_crop.split_rows(TEST_HEAD))
    assert paper.manifest["extraction"]["protocol"] == "paper"
    assert ours.manifest["extraction"]["protocol"] == "saelight"
    # The whole-file test rows (and train, val) are those of a "saelight" cache.
    for split in SPLITS:
        (ids, x), (their_ids, theirs) = rows_by_clip(paper, split), rows_by_clip(ours, split)
        assert ids == their_ids
        np.testing.assert_array_equal(x, theirs)
    # The head rows are a first-crop extraction's test rows, one group per test clip.
    head_ids, head = rows_by_clip(paper, TEST_HEAD)
    crop_ids, crop = rows_by_clip(first_crop, "test")
    assert head_ids == crop_ids and sorted(set(head_ids)) == ["c2", "c5", "c8"]
    np.testing.assert_array_equal(head, crop)
    _, whole = rows_by_clip(paper, "test")
    assert len(whole) > len(head) if pooling == "frame" else not np.array_equal(whole, head)
    meta = paper.metadata.iloc[paper.split_rows(TEST_HEAD)]
    if pooling == "clip":
        assert len(meta) == 3 and (meta["start_s"] == 0).all() and (meta["end_s"] == 0.3).all()
        assert (meta["crop"] == 0).all() and (meta["frame"] == -1).all()
    else:
        assert len(meta) == 3 * 3 and meta["end_s"].max() == pytest.approx(0.3)
    assert set(paper.metadata.columns) == set(ours.metadata.columns)


def test_the_head_of_a_short_file_is_zero_padded(tmp_path: Path) -> None:
    paper = build(tmp_path / "paper", protocol="paper", crop_seconds=0.7)
    short = paper.metadata["clip_id"] == "c8"  # 500 samples: its head is 200 samples of zeros
    head = paper.split_rows(TEST_HEAD)
    row = head[short.to_numpy()[head]]
    wave = np.concatenate([LongSource().load(Clip("c8", "test"), SR), np.zeros(200, np.float32)])
    frames = torch.from_numpy(wave.reshape(7, FRAME))
    expected = torch.stack([frames.mean(1), frames.std(1), frames.max(1).values], 1).mean(0)
    np.testing.assert_allclose(paper.read(row)[0, 0], expected.numpy(), rtol=1e-6)


def test_a_cache_of_the_other_protocol_is_refused(tmp_path: Path) -> None:
    build(tmp_path / "c")
    with pytest.raises(CacheMismatchError, match="extraction.protocol' is 'saelight'"):
        build(tmp_path / "c", protocol="paper")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"protocol": "papers"}, "cache.protocol must be 'saelight' or 'paper', got 'papers'"),
        ({"protocol": "paper", "crop_seconds": None}, "cache.protocol: paper needs cache.crop_s"),
        ({"protocol": "paper", "test_full_length": False}, "test_full_length: true"),
    ],
    ids=["unknown", "no_crops", "first_crop_test"],
)
def test_bad_protocol_options_are_one_line(kwargs: dict, message: str) -> None:
    kwargs.setdefault("crop_seconds", 0.3)
    with pytest.raises(ConfigError, match=message) as err:
        ActivationCache("unused", LongSource(), FrameStats(), **kwargs)  # type: ignore[arg-type]
    assert "\n" not in str(err.value)


def _wav_folder(root: Path, sr: int) -> list[Path]:
    """Six 1 s sung-like tones at `sr` in two label folders (AudioFolder's tree layout)."""
    paths = []
    t = np.arange(sr) / sr
    for i in range(6):
        f0 = 180 + 35 * i
        vibrato = 1 + 0.02 * np.sin(2 * np.pi * 5.5 * t)
        phase = 2 * np.pi * np.cumsum(f0 * vibrato) / sr
        wave = sum(0.25 / h * np.sin(h * phase) for h in range(1, 6)) * (0.6 + 0.4 * t)
        path = root / ("low" if i < 3 else "high") / f"take{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, wave, sr, subtype="FLOAT")
        paths.append(path)
    return paths


def test_egemaps_are_computed_at_the_source_rate(tmp_path: Path) -> None:
    pytest.importorskip("opensmile")
    from saelight.audio.egemaps import egemaps_functionals

    _wav_folder(tmp_path / "wavs", 44100)
    source = AudioFolder(str(tmp_path / "wavs"), val_fraction=0.2, test_fraction=0.34)
    backbone = FrameStats(sample_rate=16000)
    reader = build(tmp_path / "c", source=source, backbone=backbone, egemaps=True, protocol="paper")
    assert reader.manifest["extraction"]["egemaps_rate"] == "source"
    meta = reader.metadata
    columns = [c for c in meta.columns if c.startswith("factor_egemaps_")]
    assert len(columns) == 88
    test = meta.iloc[reader.split_rows("test")]
    assert len(test) == 2
    for _, row in test.iterrows():
        native, file_sr = sf.read(row["path"], dtype="float32")
        at_source = egemaps_functionals(native, file_sr)
        cached = np.array([row[c] for c in columns])
        expected = np.array([at_source[c.removeprefix("factor_egemaps_")] for c in columns])
        np.testing.assert_array_equal(cached, expected)
        at_backbone = egemaps_functionals(resample(native, file_sr, 16000), 16000)
        moved = [c for c in columns if at_backbone[c.removeprefix("factor_egemaps_")] != row[c]]
        assert len(moved) > 44, "the 16 kHz resample gives other factors"
    others = meta[meta["split"] != "test"]
    assert others[columns].isna().all().all()  # train, val and the test heads get none
    assert set(others["split"]) == {"train", "val", TEST_HEAD}
    # the test clips are decoded once at 44.1 kHz and resampled: the activations are those of a
    # cache that loads them at 16 kHz directly
    plain = build(tmp_path / "p", source=source, backbone=backbone, protocol="paper")
    np.testing.assert_array_equal(
        reader.read(reader.split_rows("test")), plain.read(plain.split_rows("test"))
    )
