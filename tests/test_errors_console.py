"""Bad input through the installed console script: exit status 2, one clear line naming the
file or field, no traceback unless asked for, checked before a model is built; and a user's own
CSV with only train/test splits trains end to end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TINY = Path(__file__).parent / "data" / "tiny_csv.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def saelight(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [SAELIGHT, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "WANDB_MODE": "offline", **(env or {})},
    )


def one_clear_line(done: subprocess.CompletedProcess, *words: str) -> str:
    """The error line, after checking status 2, no traceback, and that it names `words`."""
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("saelight: error:")]
    for word in words:
        assert word in line, line
    return line


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (["--data.batch_size", "0"], ["data.batch_size", ">= 1"]),
        (["--data.cache.crops_per_file", "0"], ["cache.crops_per_file"]),
        (["--model.optimizer.init_args.lr", "-0.001"], ["model.optimizer", "learning rate"]),
        (["--data.cache.protocol", "paper"], ["cache.protocol: paper", "cache.crop_seconds"]),
    ],
    ids=["batch_size", "crops_per_file", "negative_lr", "paper_protocol_without_crops"],
)
def test_bad_config_values_stop_before_the_backbone(
    tmp_path: Path, override: list[str], words: list[str]
) -> None:
    done = saelight("fit", "--config", str(TINY), *override, cwd=tmp_path)
    one_clear_line(done, *words)
    assert not (tmp_path / "models").exists() and not (tmp_path / "cache").exists()


@pytest.mark.parametrize(
    ("override", "words"),
    [
        (
            ["--data.cache.protocol", "papers"],
            ["data.cache.protocol", "'saelight', 'paper'", "papers"],
        ),
        (["--data.cache.pooling", "token"], ["data.cache.pooling", "'clip', 'frame'", "token"]),
        (["--trainer.no_such_field", "1"], ["unrecognized arguments", "--trainer.no_such_field"]),
    ],
    ids=["protocol", "pooling", "unknown_field"],
)
def test_values_the_parser_rejects_are_one_line(
    tmp_path: Path, override: list[str], words: list[str]
) -> None:
    """A value outside a Literal, or an unknown key, stops in jsonargparse: one line naming the
    dotted field and what it expected, not the whole usage."""
    done = saelight("fit", "--config", str(TINY), *override, cwd=tmp_path)
    one_clear_line(done, *words)
    assert "usage:" not in done.stderr
    assert not (tmp_path / "models").exists() and not (tmp_path / "cache").exists()


def test_a_missing_config_file_is_one_line(tmp_path: Path) -> None:
    done = saelight("fit", "--config", str(tmp_path / "absent.yaml"), cwd=tmp_path)
    one_clear_line(done, "config", "absent.yaml", "does not exist")


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    args = ["fit", "--config", str(TINY), "--data.batch_size", "0"]
    for done in (
        saelight("--debug", *args, cwd=tmp_path),
        saelight(*args, cwd=tmp_path, env={"SAELIGHT_DEBUG": "1"}),
    ):
        assert done.returncode != 0 and "Traceback" in done.stderr
        assert "data.batch_size must be >= 1" in done.stderr


def test_truncated_checkpoint_is_named(tmp_path: Path) -> None:
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04 truncated")
    done = saelight("fit", "--config", str(TINY), "--ckpt_path", "last.ckpt", cwd=tmp_path)
    one_clear_line(done, "ckpt_path last.ckpt", "not a complete checkpoint")


def test_report_tells_a_missing_from_an_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    missing = one_clear_line(saelight("report", "nope", cwd=tmp_path), "nope does not exist")
    empty = one_clear_line(saelight("report", "empty", cwd=tmp_path), "empty holds no results")
    assert missing != empty


def _manifest(root: Path, rows: list[str], header: str, bom: bool = False) -> Path:
    text = "\n".join([header, *rows]) + "\n"
    (root / "metadata.csv").write_bytes(("\ufeff" if bom else "").encode() + text.encode())
    return root


def _wav(path: Path, f0: float, seconds: float = 1.0, sr: int = 16000) -> None:
    t = np.arange(int(sr * seconds)) / sr
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(2 * np.pi * f0 * t) * (1 + 0.2 * np.sin(2 * np.pi * 5 * t)), sr)


def _folder_args(root: Path) -> list[str]:
    source = {
        "class_path": "saelight.audio.AudioFolder",
        "init_args": {
            "root": str(root),
            "path_column": "path",
            "label_columns": ["technique"],
            "split_column": "split",
            "group_column": "singer",
        },
    }
    import json

    return ["--config", str(TINY), "--data.cache.source", json.dumps(source)]


def test_manifest_problems_are_one_line_naming_the_csv(tmp_path: Path) -> None:
    root = tmp_path / "data"
    _wav(root / "a.wav", 220)
    header = "path,singer,technique,split"
    _manifest(root, ["a.wav,s1,belt,train", "gone.wav,s1,belt,train"], header, bom=True)
    done = saelight("cache", *_folder_args(root), cwd=tmp_path)
    one_clear_line(done, "metadata.csv", "gone.wav", "does not exist")
    _manifest(root, ["a.wav,s1,,train"], header)
    done = saelight("cache", *_folder_args(root), cwd=tmp_path)
    one_clear_line(done, "metadata.csv", "technique")


@pytest.mark.slow
def test_a_csv_with_only_train_and_test_trains(tmp_path: Path) -> None:
    """A VocalSet-layout manifest (path, singer, technique, split with train/test only), with a
    BOM: validation is carved out of train by singer, and `fit` runs to its results."""
    root = tmp_path / "data"
    rows = []
    for s, singer in enumerate(["f1", "f3", "m1", "m2", "m4", "f2", "m3"]):
        split = "test" if singer in ("f2", "m3") else "train"
        for t, technique in enumerate(["belt", "breathy", "vibrato"]):
            for take in range(2):
                path = f"{singer}/{technique}_{take}.wav"
                _wav(root / path, 150 + 40 * t + 7 * s + 3 * take)
                rows.append(f"{path},{singer},{technique},{split}")
    _manifest(root, rows, "path,singer,technique,split", bom=True)
    args = [*_folder_args(root), "--trainer.max_epochs", "1"]
    done = saelight("fit", *args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    import pandas as pd

    meta = pd.concat(
        pd.read_parquet(p) for p in sorted((tmp_path / "cache/meta").glob("*.parquet"))
    )
    splits = meta.groupby("split")["path"].apply(lambda p: {Path(x).parent.name for x in p})
    assert set(splits.index) == {"train", "val", "test"}
    assert not splits["train"] & splits["val"] and splits["test"] == {"f2", "m3"}
    assert (tmp_path / "results" / "results.json").exists()
