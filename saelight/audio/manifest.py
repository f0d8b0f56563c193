"""Reading an `AudioFolder` CSV manifest: every cell the source will use is checked here, once.

The whole manifest is read when the source is built (LightningCLI builds the source before the
backbone), so a missing file, an empty label or a misnamed column stops the run with one line that
names the CSV, the line (numbered as an editor or a spreadsheet shows it: the header is line 1) and
the column, instead of surfacing mid-extraction as a decoder's "System error.".

The file is read as `utf-8-sig`: spreadsheet programs ("CSV UTF-8" in Excel) write a byte-order
mark, which plain `utf-8` glues to the first column name (`'\\ufefffile_name'`).
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from saelight.audio.base import BadSourceError, canonical_split

log = logging.getLogger(__name__)

MissingLabel = Literal["error", "skip"]
MISSING_LABEL_POLICIES: tuple[str, ...] = ("error", "skip")


@dataclass(frozen=True)
class ManifestColumns:
    """Which manifest columns a source reads, by role (names as in the CSV header).

    Attributes:
        path: column of the audio paths.
        labels: discrete label columns; None = every column that is not the path, split or a
            factor column.
        factors: numeric columns.
        split: column of train/val/test values, or None.
        group: column of groups (speaker, singer) kept in one split, or None.
    """

    path: str
    labels: tuple[str, ...] | None = None
    factors: tuple[str, ...] = ()
    split: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class ManifestRow:
    """One checked manifest row.

    Attributes:
        line: its line in the CSV (header = line 1).
        path: the audio path in POSIX form, as written (relative to the CSV's folder).
        labels: {label column: non-empty value}.
        factors: {factor column: value}.
        split: canonical split from the split column, or None without one.
        group: value of the group column, or None without one.
    """

    line: int
    path: str
    labels: dict[str, str] = field(default_factory=dict)
    factors: dict[str, float] = field(default_factory=dict)
    split: str | None = None
    group: str | None = None


def read_manifest(
    csv_path: Path, columns: ManifestColumns, missing_label: MissingLabel = "error"
) -> tuple[list[ManifestRow], list[str]]:
    """Read and check a manifest; no audio is opened, but every path is checked to exist.

    Args:
        csv_path: the CSV file; relative paths in it are relative to its folder.
        columns: the columns to read.
        missing_label: "error" stops at the first empty label cell; "skip" leaves such rows out
            (logging how many).

    Returns:
        (rows sorted by path, the label columns used).

    Raises:
        BadSourceError: unreadable CSV, a named column not in its header, an empty path, split
            or group cell, an empty label under "error", a factor that is not a number, a path
            listed twice, or a path that does not exist.
    """
    header, records = _read_csv(csv_path)
    _check_columns(csv_path, header, columns)
    taken = {columns.path, columns.split, *columns.factors}
    if columns.labels is None:
        label_columns = [c for c in header if c not in taken]
    else:
        label_columns = list(columns.labels)
    rows, skipped = [], []
    for line, record in records:
        _check_required(csv_path, line, record, columns)
        empty = [c for c in label_columns if not record[c].strip()]
        if empty and missing_label == "skip":
            skipped.append((line, empty[0]))
            continue
        if empty:
            raise BadSourceError(
                f"{csv_path}: line {line}, column {empty[0]!r} is empty; expected a label",
                hint="fill it in, set missing_label: skip to leave such rows out, or leave the "
                "column out of label_columns",
            )
        rows.append(_row(csv_path, line, record, columns, label_columns))
    if skipped:
        log.warning(
            "%s: skipped %d rows with an empty label (first: line %d, column %r)",
            csv_path, len(skipped), *skipped[0],
        )  # fmt: skip
    rows.sort(key=lambda row: row.path)
    _check_paths(csv_path, rows, columns.path)
    return rows, label_columns


def _read_csv(csv_path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(header, [(line, {column: cell})]); short rows get "" for their missing cells."""
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = list(reader.fieldnames or [])
            records = []
            for record in reader:
                if None in record:
                    raise BadSourceError(
                        f"{csv_path}: line {reader.line_num} has more cells than the header's "
                        f"{len(header)}; expected one cell per column of {header}"
                    )
                records.append((reader.line_num, {k: v or "" for k, v in record.items()}))
    except UnicodeDecodeError as err:
        raise BadSourceError(
            f"{csv_path}: not UTF-8 text ({err.reason} at byte {err.start})",
            hint="save the manifest as UTF-8 CSV",
        ) from err
    except csv.Error as err:
        raise BadSourceError(f"{csv_path}: not a readable CSV ({err})") from err
    if not header:
        raise BadSourceError(f"{csv_path}: empty; expected a header line of column names")
    doubled = sorted({c for c in header if header.count(c) > 1})
    if doubled:
        raise BadSourceError(f"{csv_path}: header names {doubled} more than once")
    return header, records


def _check_columns(csv_path: Path, header: list[str], columns: ManifestColumns) -> None:
    named: dict[str, list[str]] = {"path_column": [columns.path]}
    named["label_columns"] = list(columns.labels or [])
    named["factor_columns"] = list(columns.factors)
    if columns.split is not None:
        named["split_column"] = [columns.split]
    if columns.group is not None:
        named["group_column"] = [columns.group]
    for option, wanted in named.items():
        missing = [c for c in wanted if c not in header]
        if missing:
            raise BadSourceError(f"{option}: {missing} not in {str(csv_path)!r}; columns: {header}")


def _check_required(
    csv_path: Path, line: int, record: dict[str, str], columns: ManifestColumns
) -> None:
    """The path, split and group cells are never optional, whatever `missing_label` says."""
    for role, column in (("path", columns.path), ("split", columns.split)):
        if column is not None and not record[column].strip():
            raise BadSourceError(
                f"{csv_path}: line {line}, column {column!r} is empty; expected the {role}"
            )
    if columns.group is not None and not record[columns.group].strip():
        raise BadSourceError(
            f"{csv_path}: line {line}, column {columns.group!r} is empty; expected the group "
            "(group_column)"
        )


def _row(
    csv_path: Path,
    line: int,
    record: dict[str, str],
    columns: ManifestColumns,
    label_columns: list[str],
) -> ManifestRow:
    where = f"{csv_path}: line {line}"
    factors = {}
    for column in columns.factors:
        try:
            factors[column] = float(record[column])
        except ValueError as err:
            raise BadSourceError(
                f"factor_columns: {column!r} is {record[column]!r} at {where}; expected a number"
            ) from err
    split = None
    if columns.split is not None:
        split = canonical_split(record[columns.split], f"split_column {columns.split!r} ({where})")
    return ManifestRow(
        line=line,
        path=Path(record[columns.path]).as_posix(),
        labels={c: record[c] for c in label_columns},
        factors=factors,
        split=split,
        group=None if columns.group is None else record[columns.group],
    )


def _check_paths(csv_path: Path, rows: list[ManifestRow], path_column: str) -> None:
    """Every path listed once and present on disk (one stat per row, no decoding)."""
    for before, row in zip(rows, rows[1:], strict=False):
        if row.path == before.path:
            lines = sorted((before.line, row.line))
            raise BadSourceError(
                f"{csv_path}: lines {lines[0]} and {lines[1]}, column {path_column!r}: "
                f"{row.path!r} is listed twice; expected each file once"
            )
    base = csv_path.parent
    missing = [row for row in rows if not (base / row.path).is_file()]
    if missing:
        first = missing[0]
        others = ""
        if len(missing) > 1:
            others = f"; {len(missing) - 1} more of the {len(rows)} paths are missing too"
        raise BadSourceError(
            f"{csv_path}: line {first.line}, column {path_column!r}: {first.path!r} does not exist "
            f"(looked for {base / first.path}){others}",
            hint="paths are relative to the manifest's folder",
        )
