"""HFAudioDataset: any Hugging Face `datasets` audio dataset, by hub name or local directory.

Audio is decoded here with soundfile from the stored bytes or path (the audio column is cast to
`Audio(decode=False)`), because `datasets` >= 4 decodes with torchcodec, which saelight does not
need. A local directory written by `save_to_disk` is opened with `load_from_disk`; anything else
(hub id, local parquet/arrow repository) goes through `load_dataset`. An `audiofolder` directory
(audio files + metadata.csv) also goes through `load_dataset` when torchcodec is installed; without
it, open that folder with `saelight.audio.AudioFolder`, which reads the same layout.

Splits, in order of precedence:

- `split_column`: a column whose values are train/val/test (or validation, dev, ...). When it has
  no val row, val is carved out of train with `carve_val` (`val_fraction` of the train rows'
  `group_column` values, or of single rows), so no group straddles train and val.
- `group_column`: a column such as speaker; its distinct values are assigned to splits with
  `assign_group_splits`, so a group never straddles two splits.
- `hf_splits`: {our split: HF split}. By default train/validation/test, keeping those present; a
  dataset with a single HF split and no mapping given is split per row with the fractions.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from saelight.audio.base import (
    SPLITS,
    AudioSource,
    BadSourceError,
    Clip,
    assign_group_splits,
    canonical_split,
    carve_val,
    fraction_splits,
)
from saelight.audio.decode import file_rate, load_audio, validate_waveform
from saelight.io.defaults import DATA_SEED

if TYPE_CHECKING:
    from datasets import Dataset

DEFAULT_HF_SPLITS = {"train": "train", "val": "validation", "test": "test"}
_OPTIONS = (
    "path", "name", "revision", "audio_column", "label_columns", "factor_columns", "split_column",
    "group_column", "hf_splits", "id_column", "val_fraction", "test_fraction", "seed",
    "min_duration_s",
)  # fmt: skip


def _open(
    path: str, name: str | None, revision: str | None, cache_dir: str | None
) -> dict[str, Dataset]:
    # `datasets` is imported on use: it costs ~0.4 s and only this source needs it.
    from datasets import Dataset, DatasetDict, load_dataset, load_from_disk

    local = Path(path)
    if (local / "dataset_dict.json").is_file() or (local / "state.json").is_file():
        loaded = load_from_disk(path)
    else:
        try:
            loaded = load_dataset(path, name, revision=revision, cache_dir=cache_dir)
        except ImportError as err:
            raise BadSourceError(
                f"path: {path!r} could not be loaded by `datasets` ({err}); for a folder of audio "
                "files with a metadata.csv use saelight.audio.AudioFolder instead"
            ) from err
        except OSError as err:  # FileNotFoundError, ConnectionError (offline, unknown hub id)
            raise BadSourceError(
                f"path: {path!r} is neither a local dataset directory nor a reachable hub "
                f"dataset ({err})"
            ) from err
    if isinstance(loaded, Dataset):
        return {"train": loaded}
    if not isinstance(loaded, DatasetDict):
        raise BadSourceError(f"path: {path!r} is not a map-style Dataset or DatasetDict")
    return dict(loaded)


def _column_values(ds: Dataset, column: str) -> list[Any]:
    from datasets import ClassLabel

    feature = ds.features[column]
    values = ds[column]
    if isinstance(feature, ClassLabel):
        return [feature.int2str(v) for v in values]
    return list(values)


class HFAudioDataset(AudioSource):
    """A Hugging Face audio dataset with user-named audio, label, factor and split columns.

    Clip ids are `<id_column value>` when `id_column` is set, else `<hf split>/<row>`.
    """

    def __init__(
        self,
        path: str,
        audio_column: str = "audio",
        label_columns: tuple[str, ...] = (),
        factor_columns: tuple[str, ...] = (),
        split_column: str | None = None,
        group_column: str | None = None,
        hf_splits: dict[str, str] | None = None,
        id_column: str | None = None,
        name: str | None = None,
        revision: str | None = None,
        cache_dir: str | None = None,
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = DATA_SEED,
        min_duration_s: float = 0.1,
    ) -> None:
        """Open the dataset and build the clip list (no audio is decoded here).

        Args:
            path: hub id (e.g. "org/name") or local directory.
            audio_column: column holding the audio (an `Audio` feature or a file path string).
            label_columns: discrete label columns (ClassLabel ints become their names).
            factor_columns: numeric columns used as continuous factors.
            split_column: column of train/val/test values (takes precedence, see module doc).
            group_column: column whose values (speaker, singer) are kept within one split; with
                `split_column`, only the carved val split is grouped by it.
            hf_splits: {"train"|"val"|"test": HF split name}; None = train/validation/test.
            id_column: column of unique clip ids; None = "<hf split>/<row>".
            name: HF dataset configuration name.
            revision: hub revision (branch, tag or commit) to pin.
            cache_dir: where `load_dataset` caches; None = the `datasets` default.
            val_fraction: share of groups (or rows) sent to val when splitting here; with
                `split_column`, share of its train groups carved into val when it has no val.
            test_fraction: share of groups (or rows) sent to test when splitting here.
            seed: seed of that assignment.
            min_duration_s: shorter clips raise `BadAudioError` in `load`.
        """
        self.path, self.name, self.revision = path, name, revision
        self.audio_column = audio_column
        self.label_columns, self.factor_columns = list(label_columns), list(factor_columns)
        self.split_column, self.group_column, self.id_column = split_column, group_column, id_column
        self.val_fraction, self.test_fraction, self.seed = val_fraction, test_fraction, seed
        self.min_duration_s = min_duration_s
        self.cache_dir = cache_dir
        data = _open(path, name, revision, cache_dir)
        # True when this class assigns the splits instead of following the HF splits.
        self._split_here = split_column is not None or group_column is not None
        self._split_here |= hf_splits is None and len(data) == 1
        self.hf_splits = self._choose_splits(data, hf_splits)
        self._data = {hf: self._check_columns(data[hf], hf) for hf in self.hf_splits.values()}
        self._audio = {hf: ds.select_columns([audio_column]) for hf, ds in self._data.items()}
        self._clips, self._rows = self._build()
        self.validate()

    def _choose_splits(
        self, data: dict[str, Dataset], wanted: dict[str, str] | None
    ) -> dict[str, str]:
        """{our split (or the HF split's own name when we split here): HF split}."""
        if self._split_here:
            return {hf: hf for hf in sorted(data)}
        if wanted is None:
            chosen = {ours: hf for ours, hf in DEFAULT_HF_SPLITS.items() if hf in data}
            if not chosen:
                raise BadSourceError(
                    f"hf_splits: none of {list(DEFAULT_HF_SPLITS.values())} in the dataset's "
                    f"splits {sorted(data)}; give hf_splits, split_column or group_column"
                )
            return chosen
        for ours, hf in wanted.items():
            if ours not in SPLITS or hf not in data:
                raise BadSourceError(
                    f"hf_splits: {ours!r}: {hf!r} invalid; keys must be in {list(SPLITS)} and "
                    f"values in the dataset's splits {sorted(data)}"
                )
        return dict(wanted)

    def _check_columns(self, ds: Dataset, hf_split: str) -> Dataset:
        from datasets import Audio, Value

        named = {"audio_column": [self.audio_column], "label_columns": self.label_columns}
        named |= {"factor_columns": self.factor_columns}
        for field_name in ("split_column", "group_column", "id_column"):
            if getattr(self, field_name) is not None:
                named[field_name] = [getattr(self, field_name)]
        for field_name, columns in named.items():
            missing = [c for c in columns if c not in ds.column_names]
            if missing:
                raise BadSourceError(
                    f"{field_name}: {missing} not in split {hf_split!r}; columns: {ds.column_names}"
                )
        feature = ds.features[self.audio_column]
        if isinstance(feature, Audio):
            return ds.cast_column(self.audio_column, Audio(decode=False))
        if isinstance(feature, Value) and feature.dtype in ("string", "large_string"):
            return ds
        raise BadSourceError(
            f"audio_column: {self.audio_column!r} has feature {feature}; expected Audio or a path"
        )

    def _build(self) -> tuple[list[Clip], dict[str, tuple[str, int]]]:
        """Clips plus {clip_id: (HF split, row)}."""
        rows: list[tuple[str, int, str, dict[str, str], dict[str, float], str, str | None]] = []
        for ours, hf in self.hf_splits.items():
            ds = self._data[hf]
            labels = {c: [str(v) for v in _column_values(ds, c)] for c in self.label_columns}
            factors = {c: ds[c] for c in self.factor_columns}
            ids = _column_values(ds, self.id_column) if self.id_column else None
            given = _column_values(ds, self.split_column) if self.split_column else None
            groups = _column_values(ds, self.group_column) if self.group_column else None
            for r in range(len(ds)):
                clip_id = str(ids[r]) if ids is not None else f"{hf}/{r}"
                group = str(groups[r]) if groups is not None else clip_id
                split: str | None = None if self._split_here else ours
                if given is not None:
                    where = f"split_column {self.split_column!r} ({hf}[{r}])"
                    split = canonical_split(given[r], where)
                lab = {c: v[r] for c, v in labels.items()}
                fac = {c: self._factor(v[r], c, clip_id) for c, v in factors.items()}
                rows.append((hf, r, clip_id, lab, fac, group, split))
        splits = self._assign([row[5] for row in rows], [row[6] for row in rows])
        clips, index = [], {}
        for (hf, r, clip_id, lab, fac, _, _), split in zip(rows, splits, strict=True):
            if clip_id in index:
                raise BadSourceError(
                    f"id_column: duplicate clip id {clip_id!r}; ids must be unique"
                )
            index[clip_id] = (hf, r)
            clips.append(Clip(clip_id, split, lab, fac))
        return clips, index

    def _assign(self, groups: list[str], given: list[str | None]) -> list[str]:
        """The split of every row from its group and its given split (None: assign here)."""
        if self.split_column is not None:
            splits = [str(s) for s in given]
            return carve_val(splits, groups, val_fraction=self.val_fraction, seed=self.seed)
        if not self._split_here:
            return [str(s) for s in given]
        table = assign_group_splits(
            groups, val_fraction=self.val_fraction, test_fraction=self.test_fraction, seed=self.seed
        )
        return [table[g] for g in groups]

    def expected_splits(self) -> tuple[str, ...]:
        """The mapped HF splits; or train, val and test as the fractions and split column ask."""
        if not self._split_here:
            return tuple(self.hf_splits)
        return fraction_splits(
            self._clips, self.split_column, self.val_fraction, self.test_fraction
        )

    def split_hint(self, split: str) -> str:
        """Names the option that decides `split`."""
        if self.split_column is not None:
            if split == "val":
                return (
                    f"split_column {self.split_column!r} has no val rows and val_fraction="
                    f"{self.val_fraction} of its train groups rounds to none; raise val_fraction"
                )
            return f"split_column {self.split_column!r} has no {split} rows; add some"
        if self._split_here:
            return "change val_fraction/test_fraction, or add groups or rows"
        return f"map a split of the dataset to {split!r} with hf_splits"

    @staticmethod
    def _factor(value: Any, column: str, clip_id: str) -> float:
        try:
            return float(value)
        except (TypeError, ValueError) as err:
            raise BadSourceError(
                f"factor_columns: {column!r} of {clip_id!r} is {value!r}; expected a number"
            ) from err

    def clips(self) -> list[Clip]:
        """All clips, HF split by HF split, in row order."""
        return list(self._clips)

    def _encoded(self, clip: Clip) -> tuple[str | io.BytesIO | None, str]:
        """(the row's encoded bytes or file path, None without audio; how to name it in errors)."""
        location = self._rows.get(clip.clip_id)
        if location is None:
            raise ValueError(f"unknown clip_id {clip.clip_id!r}; expected one of clips()")
        hf, r = location
        value = self._audio[hf][r][self.audio_column]
        file = value if isinstance(value, str) else (value or {}).get("path")
        where = f"{self.path} [{hf}][{r}] ({clip.clip_id}, file {file})"
        if isinstance(value, dict) and value.get("bytes"):
            return io.BytesIO(value["bytes"]), where
        if file:
            # Relative paths in a local dataset are relative to its directory.
            resolved = Path(self.path) / file
            return (str(resolved) if resolved.exists() else file), where
        return None, where

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """Decode the row's audio with soundfile; raises `BadAudioError` naming the row and file."""
        encoded, where = self._encoded(clip)
        if encoded is None:
            wave = np.zeros(0, dtype=np.float32)
        else:
            wave = load_audio(encoded, sample_rate, where=where)
        min_samples = max(1, round(self.min_duration_s * sample_rate))
        return validate_waveform(wave, sample_rate, min_samples=min_samples, where=where)

    def native_rate(self, clip: Clip) -> int | None:
        """The stored audio's own sample rate (from the encoded header); None without audio."""
        encoded, where = self._encoded(clip)
        return None if encoded is None else file_rate(encoded, where=where)

    def fingerprint(self) -> dict[str, Any]:
        """Class, every option, the number of clips and a hash of their ids and splits."""
        ids = "\n".join(f"{c.clip_id}\t{c.split}" for c in self._clips)
        return {
            "class": type(self).__name__,
            **{k: getattr(self, k) for k in _OPTIONS},
            "n_clips": len(self._clips),
            "clips_sha1": hashlib.sha1(ids.encode()).hexdigest(),
        }
