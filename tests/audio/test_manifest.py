"""Manifest reading and its one-line errors, through `AudioFolder` (saelight/audio/manifest.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.audio import AudioFolder, BadSourceError


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """Six short wav files a.wav ... f.wav next to where the manifests are written."""
    t = np.arange(800) / 16000
    for i, name in enumerate("abcdef"):
        sf.write(tmp_path / f"{name}.wav", 0.3 * np.sin(2 * np.pi * (200 + 50 * i) * t), 16000)
    return tmp_path


def _csv(folder: Path, text: str, encoding: str = "utf-8") -> str:
    (folder / "m.csv").write_text(text, encoding=encoding)
    return str(folder / "m.csv")


def _refused(root: str, **options: object) -> str:
    """The one-line message of the `BadSourceError` that building the source raises."""
    with pytest.raises(BadSourceError) as err:
        AudioFolder(root, **options)  # type: ignore[arg-type]
    message = str(err.value)
    assert "\n" not in message
    return message


ROWS = "".join(f"{name}.wav,{'xy'[i % 2]}\n" for i, name in enumerate("abcdef"))


def test_utf8_bom_is_read(folder: Path) -> None:
    root = _csv(folder, "file_name,style\n" + ROWS, encoding="utf-8-sig")
    assert (folder / "m.csv").read_bytes()[:3] == b"\xef\xbb\xbf"
    clips = AudioFolder(root).clips()
    assert clips[0].clip_id == "a.wav" and clips[0].labels == {"style": "x"}
    assert AudioFolder(root, label_columns=()).clips()[0].labels == {}  # () = no labels


def test_empty_label_names_file_line_and_column(folder: Path) -> None:
    root = _csv(folder, "file_name,style\n" + ROWS.replace("c.wav,x", "c.wav,"))
    message = _refused(root)
    assert message.startswith(f"{root}: line 4, column 'style' is empty; expected a label")
    assert "missing_label: skip" in message
    assert "line 4" in _refused(root, label_columns=("style",))


def test_missing_label_skip_leaves_the_row_out(
    folder: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _csv(folder, "file_name,style\n" + ROWS.replace("c.wav,x", "c.wav,  "))
    with caplog.at_level(logging.WARNING):
        clips = AudioFolder(root, missing_label="skip").clips()
    assert [c.clip_id for c in clips] == ["a.wav", "b.wav", "d.wav", "e.wav", "f.wav"]
    assert "skipped 1 rows with an empty label (first: line 4, column 'style')" in caplog.text
    assert "missing_label: 'drop'; expected one of ['error', 'skip']" in _refused(
        root, missing_label="drop"
    )


@pytest.mark.parametrize(
    ("text", "options", "expected"),
    [
        ("file_name,style\n,x\n", {}, "line 2, column 'file_name' is empty; expected the path"),
        (
            "file_name,fold\na.wav,train\nb.wav,\n",
            {"split_column": "fold"},
            "line 3, column 'fold' is empty; expected the split",
        ),
        (
            "file_name,fold\na.wav,holdout\n",
            {"split_column": "fold"},
            "split_column 'fold' ({root}: line 2): unknown split 'holdout'",
        ),
        (
            "file_name,spk\na.wav,s1\nb.wav,\n",
            {"group_column": "spk"},
            "line 3, column 'spk' is empty; expected the group (group_column)",
        ),
        (
            "file_name,f0\na.wav,220\nb.wav,high\n",
            {"factor_columns": ("f0",)},
            "factor_columns: 'f0' is 'high' at {root}: line 3; expected a number",
        ),
        ("file_name\nb.wav\na.wav\nb.wav\n", {}, "lines 2 and 4, column 'file_name': 'b.wav' is"),
        ("file_name\na.wav,extra\n", {}, "line 2 has more cells than the header's 1"),
        ("file_name,x,x\na.wav,1,2\n", {}, "header names ['x'] more than once"),
        ("", {}, "empty; expected a header line"),
        ("file_name\n", {}, "root: '{root}' has no rows"),
        ("file_name\nc.wav\n", {"path_column": "path"}, "path_column: ['path'] not in '{root}'"),
    ],
)
def test_bad_cells_name_the_line_and_column(
    folder: Path, text: str, options: dict[str, object], expected: str
) -> None:
    root = _csv(folder, text)
    assert expected.format(root=root) in _refused(root, **options)


def test_not_utf8_is_refused(folder: Path) -> None:
    root = _csv(folder, "file_name,style\nc.wav,caf\xe9\n", encoding="latin-1")
    assert "not UTF-8 text" in _refused(root) and "save the manifest as UTF-8" in _refused(root)


def test_absolute_paths_and_subfolders(folder: Path) -> None:
    (folder / "sub").mkdir()
    (folder / "a.wav").rename(folder / "sub" / "a.wav")
    root = _csv(folder / "sub", f"file_name\na.wav\n{folder / 'b.wav'}\n")
    clips = AudioFolder(root, val_fraction=0.0, test_fraction=0.0).clips()
    assert [Path(c.path or "").is_file() for c in clips] == [True, True]
