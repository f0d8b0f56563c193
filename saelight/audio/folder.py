"""AudioFolder: audio files described by a CSV manifest, or a folder tree labelled by directory.

Two layouts:

- Manifest: `root` is a CSV file, or a folder holding `metadata.csv` (the Hugging Face
  `audiofolder` layout, whose path column is `file_name`). One row per file; paths are relative
  to the CSV's folder. Other columns give labels, numeric factors, a split or a group.
- Tree: `root` is a folder without `metadata.csv`; every audio file below it is a clip and the
  name of its parent folder is its label (`dogs/bark1.wav` -> {"label": "dogs"}).

Splits: the manifest's `split_column` (train/val/test, validation, dev, ...) when given; otherwise
the distinct values of `group_column` (speaker, singer), or every file on its own, are assigned
with `assign_group_splits`, so a group never straddles two splits.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from saelight.audio.base import AudioSource, Clip, assign_group_splits, canonical_split
from saelight.audio.decode import load_audio, validate_waveform


class AudioFolder(AudioSource):
    """Local audio files with labels from a CSV manifest or from their folder names.

    Clip ids are the paths relative to the manifest's (or the tree's) folder, in POSIX form.
    """

    def __init__(
        self,
        root: str,
        path_column: str = "file_name",
        label_columns: tuple[str, ...] | None = None,
        factor_columns: tuple[str, ...] = (),
        split_column: str | None = None,
        group_column: str | None = None,
        label_name: str = "label",
        extensions: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"),
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        min_duration_s: float = 0.1,
    ) -> None:
        """Read the manifest or scan the tree (no audio is read here).

        Args:
            root: a CSV manifest, a folder with metadata.csv, or a folder tree of audio files.
            path_column: manifest column with the audio paths (relative to the CSV's folder).
            label_columns: manifest columns used as discrete labels; None = every column that is
                not the path, split or a factor column.
            factor_columns: numeric manifest columns used as continuous factors.
            split_column: manifest column of train/val/test values.
            group_column: manifest column whose values (speaker, singer) stay in one split.
            label_name: label key of the parent-folder name in the tree layout.
            extensions: audio file suffixes collected in the tree layout (case-insensitive).
            val_fraction: share of groups (or files) sent to val when no split column is given.
            test_fraction: share of groups (or files) sent to test when no split column is given.
            seed: seed of that assignment.
            min_duration_s: shorter files raise `BadAudioError` in `load`.
        """
        if split_column is not None and group_column is not None:
            raise ValueError("split_column and group_column: give at most one of them")
        path = Path(root)
        if path.is_dir() and (path / "metadata.csv").is_file():
            path = path / "metadata.csv"
        if not path.exists():
            raise ValueError(f"root: {root!r} does not exist; expected a CSV manifest or a folder")
        self.root, self.path_column = path, path_column
        self.label_columns = None if label_columns is None else list(label_columns)
        self.factor_columns = list(factor_columns)
        self.split_column, self.group_column = split_column, group_column
        self.label_name = label_name
        self.extensions = tuple(e.lower() for e in extensions)
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.min_duration_s = min_duration_s
        rows = self._read_manifest() if path.is_file() else self._scan_tree()
        self._clips = self._to_clips(rows)

    def _read_manifest(self) -> list[dict[str, str]]:
        with open(self.root, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns, rows = list(reader.fieldnames or []), list(reader)
        named: dict[str, list[str]] = {"path_column": [self.path_column]}
        named["label_columns"] = self.label_columns or []
        named["factor_columns"] = self.factor_columns
        for field_name in ("split_column", "group_column"):
            if getattr(self, field_name) is not None:
                named[field_name] = [getattr(self, field_name)]
        for field_name, wanted in named.items():
            missing = [c for c in wanted if c not in columns]
            if missing:
                raise ValueError(
                    f"{field_name}: {missing} not in {str(self.root)!r}; columns: {columns}"
                )
        if self.label_columns is None:
            taken = {self.path_column, self.split_column, *self.factor_columns}
            self.label_columns = [c for c in columns if c not in taken]
        seen: set[str] = set()
        for row in rows:
            row["_path"] = Path(row[self.path_column]).as_posix()
            if row["_path"] in seen:
                raise ValueError(f"path_column: {row['_path']!r} is listed more than once")
            seen.add(row["_path"])
        return sorted(rows, key=lambda row: row["_path"])

    def _scan_tree(self) -> list[dict[str, str]]:
        if self.split_column is not None or self.group_column is not None or self.factor_columns:
            raise ValueError(
                "split_column, group_column, factor_columns: need a CSV manifest; "
                f"{str(self.root)!r} is a folder tree"
            )
        files = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in self.extensions
        )
        if not files:
            raise ValueError(f"root: no {list(self.extensions)} files under {str(self.root)!r}")
        self.label_columns = [self.label_name]
        return [{"_path": f, self.label_name: (self.root / f).parent.name} for f in files]

    def _to_clips(self, rows: list[dict[str, str]]) -> list[Clip]:
        if self.split_column is not None:
            where = f"split_column {self.split_column!r}"
            splits = [canonical_split(row[self.split_column], where) for row in rows]
        else:
            keys = [row[self.group_column or "_path"] for row in rows]
            assigned = assign_group_splits(
                keys,
                val_fraction=self.val_fraction,
                test_fraction=self.test_fraction,
                seed=self.seed,
            )
            splits = [assigned[k] for k in keys]
        base = self.root.parent if self.root.is_file() else self.root
        clips = []
        for row, split in zip(rows, splits, strict=True):
            clip_id = row["_path"]
            labels = {c: row[c] for c in self.label_columns or []}
            factors = {c: self._factor(row[c], c, clip_id) for c in self.factor_columns}
            clips.append(Clip(clip_id, split, labels, factors, path=str(base / clip_id)))
        return clips

    @staticmethod
    def _factor(value: str, column: str, clip_id: str) -> float:
        try:
            return float(value)
        except ValueError as err:
            raise ValueError(
                f"factor_columns: {column!r} of {clip_id!r} is {value!r}; expected a number"
            ) from err

    def clips(self) -> list[Clip]:
        """All files, sorted by relative path."""
        return list(self._clips)

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """Decode, mix down and resample the file; raises `BadAudioError` naming it."""
        if clip.path is None:
            raise ValueError(f"clip {clip.clip_id!r} has no path; expected one of clips()")
        wave = load_audio(clip.path, sample_rate)
        min_samples = max(1, round(self.min_duration_s * sample_rate))
        return validate_waveform(wave, sample_rate, min_samples=min_samples, where=clip.path)

    def fingerprint(self) -> dict[str, Any]:
        """Class, every option, the number of clips and a hash of their ids and splits."""
        ids = "\n".join(f"{c.clip_id}\t{c.split}" for c in self._clips)
        options = (
            "path_column", "label_columns", "factor_columns", "split_column", "group_column",
            "label_name", "extensions", "val_fraction", "test_fraction", "seed", "min_duration_s",
        )  # fmt: skip
        return {
            "class": type(self).__name__,
            **{k: getattr(self, k) for k in options},
            "n_clips": len(self._clips),
            "clips_sha1": hashlib.sha1(ids.encode()).hexdigest(),
        }
