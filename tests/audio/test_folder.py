"""CSV manifests and labelled folder trees (saelight/audio/folder.py)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.audio import AudioFolder, BadAudioError, BadSourceError
from saelight.io.errors import SaelightError


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
    assert source.native_rate(clips[0]) == 22050  # the file's own rate: eGeMAPS is computed at it


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


def test_missing_file_is_found_when_the_manifest_is_read(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    _write(tmp_path / "ok.wav")
    rows = [{"file_name": "ok.wav"}, {"file_name": "gone.wav"}, {"file_name": "lost.wav"}]
    _manifest(tmp_path / "m.csv", rows)
    with pytest.raises(BadSourceError) as err:
        AudioFolder(str(tmp_path / "m.csv"))
    message = str(err.value)
    assert "m.csv: line 3, column 'file_name': 'gone.wav' does not exist" in message
    assert "1 more of the 3 paths are missing" in message and "System error" not in message
    assert "\n" not in message and isinstance(err.value, SaelightError)


def test_broken_or_vanished_files_raise_bad_audio(tmp_path: Path) -> None:
    (tmp_path / "broken.wav").write_bytes(b"RIFF....WAVEfmt nonsense")
    _write(tmp_path / "later_gone.wav")
    _manifest(tmp_path / "m.csv", [{"file_name": "later_gone.wav"}, {"file_name": "broken.wav"}])
    source = AudioFolder(str(tmp_path / "m.csv"), val_fraction=0.0, test_fraction=0.0)
    clips = {c.clip_id: c for c in source.clips()}
    with pytest.raises(BadAudioError, match="broken.wav: unreadable"):
        source.load(clips["broken.wav"], 16000)
    with pytest.raises(BadAudioError, match="broken.wav: unreadable"):
        source.native_rate(clips["broken.wav"])
    (tmp_path / "later_gone.wav").unlink()
    with pytest.raises(BadAudioError, match=r"later_gone\.wav: does not exist"):
        source.load(clips["later_gone.wav"], 16000)


@pytest.fixture
def official_split(tmp_path: Path) -> Path:
    """A manifest whose split column holds only train and test (an official test split)."""
    rows = []
    for i in range(40):
        name = f"clips/{i:02d}.wav"
        _write(tmp_path / name, seconds=0.05)
        speaker = f"spk{i % 10}"
        fold = "test" if speaker in ("spk0", "spk1") else "train"
        rows.append({"file_name": name, "speaker": speaker, "fold": fold})
    _manifest(tmp_path / "metadata.csv", rows)
    return tmp_path


def test_split_column_without_val_carves_val_out_of_train_by_group(official_split: Path) -> None:
    source = AudioFolder(
        str(official_split), split_column="fold", group_column="speaker", val_fraction=0.25
    )
    clips = source.clips()
    split_of: dict[str, set[str]] = {}
    for clip in clips:
        split_of.setdefault(clip.labels["speaker"], set()).add(clip.split)
    assert all(len(s) == 1 for s in split_of.values())  # no speaker in train and val
    assert {c.labels["speaker"] for c in clips if c.split == "test"} == {"spk0", "spk1"}
    assert sum(next(iter(s)) == "val" for s in split_of.values()) == 2  # 0.25 x 8 train speakers
    assert {c.split for c in clips} == {"train", "val", "test"}
    assert clips == AudioFolder(
        str(official_split), split_column="fold", group_column="speaker", val_fraction=0.25
    ).clips()  # fmt: skip
    reseeded = AudioFolder(
        str(official_split), split_column="fold", group_column="speaker", val_fraction=0.25,
        seed=5,
    ).clips()  # fmt: skip
    assert [c.split for c in reseeded] != [c.split for c in clips]
    assert [c.split == "test" for c in reseeded] == [c.split == "test" for c in clips]
    by_file = AudioFolder(str(official_split), split_column="fold", val_fraction=0.25).clips()
    assert sum(c.split == "val" for c in by_file) == 8  # no group column: 0.25 x 32 train files


def test_split_sizes_are_checked_before_extraction(official_split: Path, tmp_path: Path) -> None:
    rows = [
        {"file_name": f"clips/{i:02d}.wav", "who": "ab"[i % 2], "fold": "train"} for i in range(4)
    ]
    rows.append({"file_name": "clips/09.wav", "who": "c", "fold": "test"})
    _manifest(official_split / "two_groups.csv", rows)
    with pytest.raises(BadSourceError) as err:
        AudioFolder(str(official_split / "two_groups.csv"), split_column="fold", group_column="who")
    assert str(err.value) == (
        "AudioFolder: split 'val' would have no clips (train 4, val 0, test 1); split_column "
        f"'fold' of {official_split / 'two_groups.csv'} has no val rows and val_fraction=0.1 of "
        "its 2 train group_column 'who' values rounds to none; raise val_fraction or add val rows"
    )
    no_val = AudioFolder(str(official_split), split_column="fold", val_fraction=0.0)
    assert not any(c.split == "val" for c in no_val.clips())  # asked for: no val split
    with pytest.raises(BadSourceError, match="split 'val' would have no clips"):
        no_val.validate(["train", "val"])  # what a caller that needs val asks for
    rows = [{"file_name": f"clips/{i:02d}.wav", "fold": "train"} for i in range(4)]
    _manifest(official_split / "train_only.csv", rows)
    with pytest.raises(
        BadSourceError, match=r"split_column 'fold' of .*train_only.csv has no test rows"
    ):
        AudioFolder(str(official_split / "train_only.csv"), split_column="fold")
    for i in range(2):
        _write(tmp_path / "tree" / "a" / f"{i}.wav", seconds=0.05)
    with pytest.raises(
        BadSourceError, match=r"split 'val'.*val_fraction=0.1 of the 2 files of .*tree"
    ):
        AudioFolder(str(tmp_path / "tree"), test_fraction=0.0)


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"path_column": "path"}, "path_column"),
        ({"label_columns": ("style",)}, "label_columns"),
        ({"split_column": "fold", "factor_columns": ("f0",)}, "factor_columns, split_column"),
        ({"missing_label": "skip"}, "missing_label"),
    ],
)
def test_manifest_options_on_a_tree_are_refused(
    tmp_path: Path, options: dict[str, object], named: str
) -> None:
    _write(tmp_path / "a" / "x.wav")
    (tmp_path / "manifest.csv").write_text("path\nx.wav\n")  # not named metadata.csv
    with pytest.raises(BadSourceError, match=rf"^{named}: given, but root .* without metadata"):
        AudioFolder(str(tmp_path), **options)  # type: ignore[arg-type]


def test_tree_option_on_a_manifest_is_refused(manifest_dir: Path) -> None:
    with pytest.raises(BadSourceError, match="label_name: only used by a label-per-folder tree"):
        AudioFolder(str(manifest_dir), label_name="animal")
