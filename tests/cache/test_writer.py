"""`ShardWriter`: files first, part manifest last; a failed write loses nothing committed."""

import errno
import json
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import saelight.io.atomic as atomic
from saelight.cache.format import part_name, sha256_file
from saelight.cache.writer import ShardWriter


def writer(tmp_path: Path, kit: SimpleNamespace) -> ShardWriter:
    return ShardWriter(tmp_path, {**kit.header(6), "shards": [], "skipped": []}, part_name(2))


def add_clip(w: ShardWriter, clip: int) -> None:
    x = np.full((2, 3), clip, np.float32)
    w.add({0: x, 5: x}, [{"clip_index": clip, "split": "val"}] * 2)


def test_commit_writes_checksummed_files_then_the_part(
    tmp_path: Path, kit: SimpleNamespace
) -> None:
    w = writer(tmp_path, kit)
    w.begin(2)
    add_clip(w, 2)
    w.skip(3, "c3", None, "silent")
    w.commit(4)
    w.commit(4)  # an empty run commits nothing
    part = json.loads((tmp_path / "manifest.rank2.json").read_text())
    assert part == w.part and len(part["shards"]) == 1
    shard = part["shards"][0]
    assert (shard["index"], shard["clip_start"], shard["clip_end"], shard["rows"]) == (2, 2, 4, 2)
    assert set(shard["files"]) == {
        "layer_00/shard_00002.npy", "layer_05/shard_00002.npy", "meta/shard_00002.parquet"
    }  # fmt: skip
    for rel, digest in shard["files"].items():
        assert sha256_file(tmp_path / rel) == digest
    assert part["skipped"] == [{"clip_index": 3, "clip_id": "c3", "path": "", "reason": "silent"}]
    assert w.clip_start == 4
    add_clip(w, 4)
    with pytest.raises(RuntimeError, match="uncommitted rows"):
        w.begin(5)


def test_disk_full_keeps_every_committed_shard(
    tmp_path: Path, kit: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    w = writer(tmp_path, kit)
    w.begin(0)
    add_clip(w, 0)
    w.commit(1)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    add_clip(w, 1)
    message = r"clips \[1, 2\) .*No space left on device.*committed before are kept.*rerun"
    with pytest.raises(OSError, match=message):
        w.commit(2)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # no temp files, the part still lists shard 0 only
