"""AudioFolder: audio files described by a CSV manifest, or a folder tree labelled by directory.

Two layouts:

- Manifest: `root` is a CSV file, or a folder holding `metadata.csv` (the Hugging Face
  `audiofolder` layout, whose path column is `file_name`). One row per file; paths are relative
  to the CSV's folder. Other columns give labels, numeric factors, a split or a group. The whole
  manifest is checked when the source is built (see `saelight.audio.manifest`).
- Tree: `root` is a folder without `metadata.csv`; every audio file below it is a clip and the
  name of its parent folder is its label (`dogs/bark1.wav` -> {"label": "dogs"}). A manifest
  option given with a tree is an error, not silently ignored: a folder whose manifest is missing
  or misnamed must not be read as a tree by accident.

Splits:

- Without `split_column`: the distinct values of `group_column` (speaker, singer), or every file
  on its own, are assigned with `assign_group_splits` (`val_fraction`, `test_fraction`), so a
  group never straddles two splits.
- With `split_column` (train/val/test, validation, dev, ...): its values are kept. When it has
  train and test rows but no val row (an official test split, no validation part), val is carved
  out of train with `carve_val`: `val_fraction` of the train rows' groups (`group_column` values,
  or single files), so no group straddles train and val and the test rows stay as given.
  `test_fraction` is unused with a split column.

Every split the options ask for must get a clip; that is checked when the source is built, before
any backbone is loaded or clip extracted.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from saelight.audio.base import (
    AudioSource,
    BadSourceError,
    Clip,
    assign_group_splits,
    carve_val,
    fraction_splits,
)
from saelight.audio.decode import file_rate, load_audio, validate_waveform
from saelight.audio.manifest import (
    MISSING_LABEL_POLICIES,
    ManifestColumns,
    ManifestRow,
    MissingLabel,
    read_manifest,
)
from saelight.io.defaults import DATA_SEED

DEFAULT_PATH_COLUMN = "file_name"
DEFAULT_LABEL_NAME = "label"


class AudioFolder(AudioSource):
    """Local audio files with labels from a CSV manifest or from their folder names.

    Clip ids are the paths relative to the manifest's (or the tree's) folder, in POSIX form.
    """

    def __init__(
        self,
        root: str,
        path_column: str | None = None,
        label_columns: tuple[str, ...] | None = None,
        factor_columns: tuple[str, ...] = (),
        split_column: str | None = None,
        group_column: str | None = None,
        missing_label: MissingLabel = "error",
        label_name: str | None = None,
        extensions: tuple[str, ...] = (".wav", ".flac", ".ogg", ".mp3", ".aif", ".aiff"),
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = DATA_SEED,
        min_duration_s: float = 0.1,
    ) -> None:
        """Read and check the manifest, or scan the tree (no audio is decoded here).

        Args:
            root: a CSV manifest, a folder with metadata.csv, or a folder tree of audio files.
            path_column: manifest column with the audio paths (relative to the CSV's folder);
                None = "file_name", the Hugging Face audiofolder column.
            label_columns: manifest columns used as discrete labels; None = every column that is
                not the path, split or a factor column.
            factor_columns: numeric manifest columns used as continuous factors.
            split_column: manifest column of train/val/test values; without val rows, val is
                carved out of train (see module doc).
            group_column: manifest column whose values (speaker, singer) stay in one split; with
                `split_column`, only the carved val split is grouped by it.
            missing_label: an empty label cell: "error" stops naming its line and column;
                "skip" leaves the row out (the count is logged).
            label_name: label key of the parent-folder name in the tree layout; None = "label".
            extensions: audio file suffixes collected in the tree layout (case-insensitive).
            val_fraction: share of groups (or files) sent to val; with `split_column`, share of
                its train groups carved into val when it has no val rows.
            test_fraction: share of groups (or files) sent to test when no split column is given.
            seed: seed of those assignments.
            min_duration_s: shorter files raise `BadAudioError` in `load`.

        Raises:
            BadSourceError: see `validate` and `saelight.audio.manifest.read_manifest`.
        """
        if missing_label not in MISSING_LABEL_POLICIES:
            raise BadSourceError(
                f"missing_label: {missing_label!r}; expected one of {list(MISSING_LABEL_POLICIES)}"
            )
        path = Path(root)
        if path.is_dir() and (path / "metadata.csv").is_file():
            path = path / "metadata.csv"
        if not path.exists():
            raise BadSourceError(
                f"root: {root!r} does not exist; expected a CSV manifest or a folder"
            )
        self.root = path
        # Resolved defaults are stored, so fingerprints match caches built before they were None.
        self.path_column = path_column or DEFAULT_PATH_COLUMN
        self.label_columns = None if label_columns is None else list(label_columns)
        self.factor_columns = list(factor_columns)
        self.split_column, self.group_column = split_column, group_column
        self.missing_label: MissingLabel = missing_label
        self.label_name = label_name or DEFAULT_LABEL_NAME
        self.extensions = tuple(e.lower() for e in extensions)
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.min_duration_s = min_duration_s
        # Checked up front: a bad fraction must not wait for a split column without val rows.
        assign_group_splits([], val_fraction=val_fraction, test_fraction=test_fraction, seed=seed)
        if path.is_file():
            self._refuse_options(label_name=label_name)
            rows = self._read_manifest()
        else:
            self._refuse_options(
                path_column=path_column, label_columns=label_columns,
                factor_columns=factor_columns or None, split_column=split_column,
                group_column=group_column,
                missing_label=None if missing_label == "error" else missing_label,
            )  # fmt: skip
            rows = self._scan_tree()
        self._n_train_groups = 0  # for split_hint
        self._clips = self._to_clips(rows)
        self.validate()

    def _refuse_options(self, **given: object) -> None:
        """A layout-specific option given for the other layout is an error naming it."""
        unused = [name for name, value in given.items() if value is not None]
        if not unused:
            return
        if self.root.is_file():
            raise BadSourceError(
                f"{', '.join(unused)}: only used by a label-per-folder tree, but root "
                f"{str(self.root)!r} is a CSV manifest",
                hint="use label_columns to name the manifest's label columns",
            )
        raise BadSourceError(
            f"{', '.join(unused)}: given, but root {str(self.root)!r} is a folder without "
            "metadata.csv, read as a label-per-folder tree that has no manifest columns",
            hint="point root at the CSV manifest (or name it metadata.csv), or drop those options",
        )

    def _read_manifest(self) -> list[ManifestRow]:
        columns = ManifestColumns(
            path=self.path_column,
            labels=None if self.label_columns is None else tuple(self.label_columns),
            factors=tuple(self.factor_columns),
            split=self.split_column,
            group=self.group_column,
        )
        rows, self.label_columns = read_manifest(self.root, columns, self.missing_label)
        if not rows:
            raise BadSourceError(
                f"root: {str(self.root)!r} has no rows",
                hint="expected one row per audio file below its header",
            )
        return rows

    def _scan_tree(self) -> list[ManifestRow]:
        files = sorted(
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and p.suffix.lower() in self.extensions
        )
        if not files:
            raise BadSourceError(
                f"root: no {list(self.extensions)} files under {str(self.root)!r}",
                hint="expected <label>/<file> audio files, or a CSV manifest",
            )
        self.label_columns = [self.label_name]
        return [
            ManifestRow(0, f, labels={self.label_name: (self.root / f).parent.name}) for f in files
        ]

    def _to_clips(self, rows: list[ManifestRow]) -> list[Clip]:
        groups = [row.path if row.group is None else row.group for row in rows]
        if self.split_column is not None:
            given = [str(row.split) for row in rows]
            train = zip(groups, given, strict=True)
            self._n_train_groups = len({g for g, s in train if s == "train"})
            splits = carve_val(given, groups, val_fraction=self.val_fraction, seed=self.seed)
        else:
            self._n_train_groups = len(set(groups))
            assigned = assign_group_splits(
                groups,
                val_fraction=self.val_fraction,
                test_fraction=self.test_fraction,
                seed=self.seed,
            )
            splits = [assigned[g] for g in groups]
        base = self.root.parent if self.root.is_file() else self.root
        return [
            Clip(row.path, split, row.labels, row.factors, path=str(base / row.path))
            for row, split in zip(rows, splits, strict=True)
        ]

    def expected_splits(self) -> tuple[str, ...]:
        """Train; val unless `val_fraction` is 0 (and no val rows are given); test unless
        `test_fraction` is 0 without a split column (a split column must give test rows)."""
        return fraction_splits(
            self._clips, self.split_column, self.val_fraction, self.test_fraction
        )

    def split_hint(self, split: str) -> str:
        """Names the option that decides `split` and the numbers behind the empty result."""
        unit = f"group_column {self.group_column!r} values" if self.group_column else "files"
        n, root = self._n_train_groups, str(self.root)
        if self.split_column is not None:
            column = f"split_column {self.split_column!r} of {root}"
            if split == "val":
                return (
                    f"{column} has no val rows and val_fraction={self.val_fraction} of its {n} "
                    f"train {unit} rounds to none; raise val_fraction or add val rows"
                )
            return f"{column} has no {split} rows; add some"
        fraction = f"{split}_fraction={getattr(self, f'{split}_fraction', None)}"
        if split == "train":
            fraction = f"val_fraction={self.val_fraction} and test_fraction={self.test_fraction}"
        return f"{fraction} of the {n} {unit} of {root} leaves it empty; change it or add {unit}"

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

    def native_rate(self, clip: Clip) -> int | None:
        """The file's own sample rate (from its header); raises `BadAudioError` naming it."""
        return None if clip.path is None else file_rate(clip.path)

    def fingerprint(self) -> dict[str, Any]:
        """Class, every option, the number of clips and a hash of their ids and splits.

        `missing_label` is left out: which rows it keeps is already in the clip hash.
        """
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
