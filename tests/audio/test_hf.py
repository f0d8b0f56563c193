"""Hugging Face datasets as audio sources, on local datasets only (saelight/audio/hf.py)."""

from __future__ import annotations

import io
import os
from pathlib import Path

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import soundfile as sf  # noqa: E402

from saelight.audio import BadAudioError, BadSourceError, HFAudioDataset  # noqa: E402

datasets = pytest.importorskip("datasets")

SPEAKERS = ["ann", "bob", "cat", "dan", "eve"]


def _wav_bytes(freq: float, sr: int = 16000, seconds: float = 0.25) -> bytes:
    t = np.arange(int(sr * seconds)) / sr
    buf = io.BytesIO()
    sf.write(buf, 0.3 * np.sin(2 * np.pi * freq * t), sr, format="WAV")
    return buf.getvalue()


def _table(n: int, offset: int = 0) -> datasets.Dataset:
    rows = range(offset, offset + n)
    table = datasets.Dataset.from_dict(
        {
            "audio": [{"bytes": _wav_bytes(200 + 10 * i), "path": None} for i in rows],
            "emotion": [i % 2 for i in rows],
            "speaker": [SPEAKERS[i % len(SPEAKERS)] for i in rows],
            "pitch": [200.0 + 10 * i for i in rows],
            "fold": [["train", "validation", "test", "train"][i % 4] for i in rows],
            "uid": [f"utt{i:03d}" for i in rows],
        }
    )
    table = table.cast_column("audio", datasets.Audio(decode=False))
    return table.cast_column("emotion", datasets.ClassLabel(names=["calm", "angry"]))


@pytest.fixture(scope="module")
def saved_dict(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hf") / "dict"
    splits = {"train": _table(12), "validation": _table(4, 12), "test": _table(4, 16)}
    datasets.DatasetDict(splits).save_to_disk(str(path))
    return str(path)


@pytest.fixture(scope="module")
def saved_single(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("hf") / "single"
    _table(20).save_to_disk(str(path))
    return str(path)


def test_hf_splits_labels_and_factors(saved_dict: str) -> None:
    options = dict(label_columns=("emotion", "speaker"), factor_columns=("pitch",))
    source = HFAudioDataset(saved_dict, **options)
    clips = source.clips()
    assert [c.split for c in clips] == ["train"] * 12 + ["val"] * 4 + ["test"] * 4
    assert clips[0].clip_id == "train/0" and clips[12].clip_id == "validation/0"
    assert clips[1].labels == {"emotion": "angry", "speaker": "bob"}
    assert clips[13].factors == {"pitch": 330.0}
    wave = source.load(clips[13], 8000)
    assert wave.dtype == np.float32 and wave.shape == (2000,)
    spectrum = np.abs(np.fft.rfft(wave))
    assert abs(np.fft.rfftfreq(wave.size, 1 / 8000)[spectrum.argmax()] - 330) < 8
    assert clips == HFAudioDataset(saved_dict, **options).clips()


def test_explicit_hf_split_mapping(saved_dict: str) -> None:
    clips = HFAudioDataset(saved_dict, hf_splits={"train": "train", "test": "validation"}).clips()
    assert [c.split for c in clips] == ["train"] * 12 + ["test"] * 4
    with pytest.raises(ValueError, match="hf_splits"):
        HFAudioDataset(saved_dict, hf_splits={"train": "dev"})
    with pytest.raises(ValueError, match="hf_splits"):
        HFAudioDataset(saved_dict, hf_splits={"holdout": "train"})


def test_group_column_keeps_speakers_in_one_split(saved_dict: str) -> None:
    clips = HFAudioDataset(
        saved_dict, label_columns=("speaker",), group_column="speaker",
        val_fraction=0.2, test_fraction=0.2,
    ).clips()  # fmt: skip
    assert len(clips) == 20
    split_of: dict[str, set[str]] = {}
    for clip in clips:
        split_of.setdefault(clip.labels["speaker"], set()).add(clip.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert sorted(next(iter(s)) for s in split_of.values()) == [
        "test", "train", "train", "train", "val"
    ]  # fmt: skip


def test_split_column_and_id_column(saved_single: str) -> None:
    clips = HFAudioDataset(saved_single, split_column="fold", id_column="uid").clips()
    assert [c.clip_id for c in clips[:2]] == ["utt000", "utt001"]
    assert [c.split for c in clips[:4]] == ["train", "val", "test", "train"]


def test_single_split_is_split_per_row(saved_single: str) -> None:
    clips = HFAudioDataset(saved_single, val_fraction=0.1, test_fraction=0.2).clips()
    assert sorted(c.split for c in clips).count("test") == 4
    assert sum(c.split == "val" for c in clips) == 2


def test_parquet_repository_through_load_dataset(tmp_path: Path) -> None:
    (tmp_path / "repo" / "data").mkdir(parents=True)
    _table(6).to_parquet(str(tmp_path / "repo" / "data" / "train-00000.parquet"))
    _table(3, 6).to_parquet(str(tmp_path / "repo" / "data" / "test-00000.parquet"))
    source = HFAudioDataset(str(tmp_path / "repo"), cache_dir=str(tmp_path / "cache"))
    clips = source.clips()
    assert [c.split for c in clips] == ["train"] * 6 + ["test"] * 3
    assert source.load(clips[-1], 16000).shape == (4000,)


def test_missing_columns_and_paths_raise(saved_dict: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"label_columns: \['mood'\]"):
        HFAudioDataset(saved_dict, label_columns=("mood",))
    with pytest.raises(ValueError, match="audio_column"):
        HFAudioDataset(saved_dict, audio_column="sound")
    with pytest.raises(ValueError, match="audio_column.*expected Audio"):
        HFAudioDataset(saved_dict, audio_column="pitch")
    with pytest.raises(ValueError, match="not_here"):
        HFAudioDataset(str(tmp_path / "not_here"))


def test_bad_audio_names_the_row(tmp_path: Path) -> None:
    silent = io.BytesIO()
    sf.write(silent, np.zeros(4000), 16000, format="WAV")
    table = datasets.Dataset.from_dict(
        {"audio": [{"bytes": b"garbage", "path": None}, {"bytes": silent.getvalue(), "path": None}]}
    ).cast_column("audio", datasets.Audio(decode=False))
    table.save_to_disk(str(tmp_path / "bad"))
    source = HFAudioDataset(str(tmp_path / "bad"), hf_splits={"test": "train"})
    clips = source.clips()
    with pytest.raises(BadAudioError, match=r"\[train\]\[0\].*unreadable"):
        source.load(clips[0], 16000)
    with pytest.raises(BadAudioError, match=r"\[train\]\[1\].*silent"):
        source.load(clips[1], 16000)


def test_path_column_of_strings(tmp_path: Path) -> None:
    (tmp_path / "ds").mkdir()
    (tmp_path / "ds" / "a.wav").write_bytes(_wav_bytes(440))
    datasets.Dataset.from_dict({"file": ["a.wav"], "y": ["x"]}).save_to_disk(str(tmp_path / "ds"))
    source = HFAudioDataset(str(tmp_path / "ds"), audio_column="file", hf_splits={"train": "train"})
    assert source.load(source.clips()[0], 16000).shape == (4000,)
    assert source.native_rate(source.clips()[0]) == 16000
    assert source.fingerprint()["n_clips"] == 1


def test_native_rate_is_the_stored_audio_rate(tmp_path: Path) -> None:
    audio = [{"bytes": _wav_bytes(300, sr=22050), "path": None}, {"bytes": b"junk", "path": None}]
    table = datasets.Dataset.from_dict({"audio": audio})
    table.cast_column("audio", datasets.Audio(decode=False)).save_to_disk(str(tmp_path / "ds"))
    source = HFAudioDataset(str(tmp_path / "ds"), hf_splits={"train": "train"})
    good, bad = source.clips()
    assert source.native_rate(good) == 22050 and source.load(good, 22050).shape == (5512,)
    with pytest.raises(BadAudioError, match=r"\[train\]\[1\].*unreadable"):
        source.native_rate(bad)


def test_split_column_without_val_carves_val_by_group(tmp_path: Path) -> None:
    table = _table(20).map(lambda row, i: {"fold": "test" if i < 4 else "train"}, with_indices=True)
    table.save_to_disk(str(tmp_path / "official"))
    source = HFAudioDataset(
        str(tmp_path / "official"), label_columns=("speaker",), split_column="fold",
        group_column="speaker", val_fraction=0.25,
    )  # fmt: skip
    clips = source.clips()
    assert [c.split for c in clips[:4]] == ["test"] * 4  # given test rows stay
    train_val: dict[str, set[str]] = {}
    for clip in clips[4:]:
        train_val.setdefault(clip.labels["speaker"], set()).add(clip.split)
    assert all(len(s) == 1 for s in train_val.values())  # no speaker in train and val
    assert sorted(next(iter(s)) for s in train_val.values()) == ["train"] * 4 + ["val"]
    with pytest.raises(BadSourceError, match=r"split 'val' would have no clips.*hf_splits"):
        HFAudioDataset(str(tmp_path / "official"), hf_splits={"train": "train"}).validate(
            ["train", "val"]
        )
