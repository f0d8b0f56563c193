"""`CacheReader`: rows in any order across shards and layers; refuses incomplete caches."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import saelight.cache.reader as reader_module
from saelight.cache import CacheCorruptError, CacheReader


def test_reads_any_rows_in_the_order_asked(write_cache, kit: SimpleNamespace) -> None:  # noqa: ANN001
    reader = write_cache(10, 4)
    every = np.concatenate([kit.rows_of(c) for c in range(10)])
    assert len(reader) == len(every) == 9 and reader.layers == [0, 5] and reader.dim == 3
    rows = np.array([8, 0, 3, 3, 7])
    out = reader.read(rows)
    np.testing.assert_array_equal(out[:, 0], every[rows])
    np.testing.assert_array_equal(out[:, 1], -every[rows])
    np.testing.assert_array_equal(reader.read(rows, layers=[5])[:, 0], -every[rows])
    assert reader.split_rows("train").tolist() == list(range(9))
    assert reader.split_rows("test").tolist() == []


def test_incomplete_or_missing_cache_is_refused(tmp_path: Path, kit: SimpleNamespace) -> None:
    with pytest.raises(FileNotFoundError, match="no manifest.json"):
        CacheReader(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(kit.header(4)))
    with pytest.raises(CacheCorruptError, match="is incomplete: run `saelight cache`"):
        CacheReader(tmp_path)


def test_metadata_that_disagrees_with_the_manifest_is_refused(write_cache) -> None:  # noqa: ANN001
    reader = write_cache(10, 4)
    manifest = json.loads((reader.directory / "manifest.json").read_text())
    manifest["n_rows"] += 1
    (reader.directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheCorruptError, match="metadata rows do not match the manifest"):
        CacheReader(reader.directory).metadata  # noqa: B018


def test_a_large_cache_releases_its_pages_and_reads_the_same(  # noqa: ANN001
    write_cache, kit: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = write_cache(10)
    assert not small.release_pages  # a few bytes: pages stay mapped
    monkeypatch.setattr(reader_module, "RELEASE_PAGES_ABOVE", 0)
    large = CacheReader(small.directory)
    assert large.release_pages
    released = []
    monkeypatch.setattr(reader_module, "_release", lambda block: released.append(block.shape))
    rows = np.array([5, 0, 8, 3])
    np.testing.assert_array_equal(large.read(rows), small.read(rows))
    assert released  # every shard block it read from was released


def test_the_training_path_reads_split_and_frame_without_the_metadata_table(  # noqa: ANN001
    write_cache,
) -> None:
    """`split_rows` and `column` read one parquet column each: the per-row string table (~70 B
    a row) stays unloaded through training, and both agree with the table once it is loaded."""
    reader = write_cache(10, 4)
    fresh = CacheReader(reader.directory)
    rows, frames = fresh.split_rows("train"), fresh.column("row")
    assert "metadata" not in fresh.__dict__
    assert fresh.column("no_such_column") is None
    meta = reader.metadata
    np.testing.assert_array_equal(rows, np.flatnonzero(meta["split"].to_numpy() == "train"))
    np.testing.assert_array_equal(frames, meta["row"].to_numpy())
    np.testing.assert_array_equal(reader.column("row"), frames)  # the loaded table's column
    assert fresh.split_rows("test").tolist() == []
    manifest = json.loads((reader.directory / "manifest.json").read_text())
    manifest["n_rows"] += 1
    (reader.directory / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CacheCorruptError, match="metadata rows do not match the manifest"):
        CacheReader(reader.directory).split_rows("train")
