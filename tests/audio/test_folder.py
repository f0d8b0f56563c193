"""CSV manifests and labelled folder trees (saelight/audio/folder.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.audio import AudioFolder, BadAudioError


def _write(path: Path, freq: float = 330.0, seconds: float = 0.25, sr: int = 22050) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(sr * seconds)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * freq * t), sr)


def _manifest(path: Path, rows: list[dict[str, str]]) -> None:
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


@pytest.fixture
def manifest_dir(tmp_path: Path) -> Path:
    rows = []
    for i in range(12):
        name = f"clips/{i:02d}.wav"
        _write(tmp_path / name, freq=200 + 20 * i)
        fold = ["train", "train", "validation", "test"][i % 4]
        row = {"file_name": name, "speaker": f"s{i % 4}", "style": "ab"[i % 2]}
        rows.append(row | {"f0": str(200 + 20 * i), "fold": fold})
    _manifest(tmp_path / "metadata.csv", rows[::-1])  # unsorted on purpose
    return tmp_path


def test_manifest_labels_factors_and_split_column(manifest_dir: Path) -> None:
    source = AudioFolder(
        str(manifest_dir / "metadata.csv"), label_columns=("style",), factor_columns=("f0",),
        split_column="fold",
    )  # fmt: skip
    clips = source.clips()
    assert [c.clip_id for c in clips] == [f"clips/{i:02d}.wav" for i in range(12)]
    assert clips[3].labels == {"style": "b"} and clips[3].factors == {"f0": 260.0}
    assert [c.split for c in clips[:4]] == ["train", "train", "val", "test"]
    wave = source.load(clips[0], 16000)
    assert wave.dtype == np.float32 and wave.shape == (4000,)


def test_folder_with_metadata_csv_and_default_labels(manifest_dir: Path) -> None:
    clips = AudioFolder(str(manifest_dir), factor_columns=("f0",), group_column="speaker").clips()
    assert set(clips[0].labels) == {"speaker", "style", "fold"}
    split_of: dict[str, set[str]] = {}
    for clip in clips:
        split_of.setdefault(clip.labels["speaker"], set()).add(clip.split)
    assert all(len(s) == 1 for s in split_of.values())
    assert {next(iter(s)) for s in split_of.values()} == {"train", "val", "test"}


def test_tree_layout_labels_by_parent_folder(tmp_path: Path) -> None:
    for label in ("dog", "cat"):
        for i in range(5):
            _write(tmp_path / label / f"{label}{i}.flac")
    (tmp_path / "notes.txt").write_text("not audio")
    source = AudioFolder(str(tmp_path), label_name="animal", val_fraction=0.2, test_fraction=0.2)
    clips = source.clips()
    assert len(clips) == 10 and clips[0].clip_id == "cat/cat0.flac"
    assert clips[0].labels == {"animal": "cat"}
    assert sorted(c.split for c in clips).count("test") == 2
    assert (
        clips
        == AudioFolder(
            str(tmp_path), label_name="animal", val_fraction=0.2, test_fraction=0.2
        ).clips()
    )
    assert source.fingerprint()["n_clips"] == 10


def test_errors_name_the_field(manifest_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="root: .*nowhere"):
        AudioFolder(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match=r"label_columns: \['mood'\]"):
        AudioFolder(str(manifest_dir), label_columns=("mood",))
    with pytest.raises(ValueError, match="factor_columns: 'style'"):
        AudioFolder(str(manifest_dir), factor_columns=("style",))
    with pytest.raises(ValueError, match="split_column"):
        AudioFolder(str(manifest_dir), split_column="style")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="root: no"):
        AudioFolder(str(tmp_path / "empty"))


def test_missing_and_broken_files_raise_bad_audio(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    _manifest(tmp_path / "m.csv", [{"file_name": "gone.wav"}, {"file_name": "broken.wav"}])
    source = AudioFolder(str(tmp_path / "m.csv"))
    clips = {c.clip_id: c for c in source.clips()}
    for name in ("gone.wav", "broken.wav"):
        with pytest.raises(BadAudioError, match=name):
            source.load(clips[name], 16000)
