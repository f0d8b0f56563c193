"""`CachedBatches` and `ResumableLoader` on a written cache whose row r holds the value r: rank
splits without duplicates or gaps, reproducible per-epoch shuffles, exact mid-epoch resume."""

from pathlib import Path

import numpy as np
import pytest
import torch

import saelight.data.batches as batches_module
from saelight.cache import CacheReader
from saelight.cache.format import FORMAT_VERSION, part_name
from saelight.cache.parts import merge
from saelight.cache.writer import ShardWriter
from saelight.data.batches import CachedBatches, ResumableLoader

ROWS, PER_SHARD = 50, 7


def write_cache(directory: Path, n: int = ROWS, per_shard: int = PER_SHARD) -> CacheReader:
    """n rows (one per clip) in shards of `per_shard`; every value of row r is r."""
    header = {
        "format_version": FORMAT_VERSION,
        **{"backbone": {}, "source": {"n": n}, "extraction": {"storage_dtype": "float32"}},
        **{"layers": [3], "dim": 2, "n_rows": 0, "shards": [], "skipped": []},
    }
    writer = ShardWriter(directory, {**header, "shards": [], "skipped": []}, part_name(0))
    for lo in range(0, n, per_shard):
        hi = min(lo + per_shard, n)
        writer.begin(lo)
        writer.add({3: np.repeat(np.arange(lo, hi, dtype=np.float32)[:, None], 2, 1)}, [
            {"clip_index": i, "split": "train"} for i in range(lo, hi)
        ])  # fmt: skip
        writer.commit(hi)
    merge(directory, header, [(part_name(0), writer.part)], n)
    return CacheReader(directory, verify=True)


@pytest.fixture(scope="module")
def reader(tmp_path_factory: pytest.TempPathFactory) -> CacheReader:
    return write_cache(tmp_path_factory.mktemp("cache"))


def batches(reader: CacheReader, **kwargs: object) -> CachedBatches:
    options = {"batch_size": 4, "shuffle": True, "seed": 0, "buffer_rows": 14, "drop_last": False}
    return CachedBatches(reader, np.arange(len(reader)), **{**options, **kwargs})  # type: ignore[arg-type]


def on_rank(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    monkeypatch.setattr(batches_module, "rank_and_world", lambda: (rank, world))


def stream(data: CachedBatches | ResumableLoader) -> list[list[int]]:
    out = []
    for batch in data:
        assert torch.equal(batch["x"][:, 0, 0].long(), batch["row"])  # the rows read are the rows
        out.append(batch["row"].tolist())
    return out


@pytest.mark.parametrize("world", [1, 2, 3])
def test_ranks_see_every_row_exactly_once(
    reader: CacheReader, monkeypatch: pytest.MonkeyPatch, world: int
) -> None:
    seen = []
    for rank in range(world):
        on_rank(monkeypatch, rank, world)
        data = batches(reader)
        got = stream(data)
        assert len(got) == len(data)
        seen += [r for b in got for r in b]
    assert sorted(seen) == list(range(ROWS))


def test_training_ranks_split_each_global_batch(
    reader: CacheReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    single = stream(batches(reader, batch_size=6, drop_last=True))
    assert len(single) == ROWS // 6 and all(len(b) == 6 for b in single)
    per_rank = []
    for rank in range(3):
        on_rank(monkeypatch, rank, 3)
        data = batches(reader, batch_size=2, drop_last=True)
        per_rank.append(stream(data))
        assert len(data) == len(per_rank[-1]) == ROWS // 6
    assert [a + b + c for a, b, c in zip(*per_rank, strict=True)] == single
    used = [r for b in single for r in b]
    assert len(set(used)) == len(used) == ROWS - ROWS % 6


def test_shuffle_is_reproducible_differs_per_epoch_and_keeps_shards_together(
    reader: CacheReader,
) -> None:
    data = batches(reader, buffer_rows=PER_SHARD)
    e0, again, e1 = data.epoch_order(0), data.epoch_order(0), data.epoch_order(1)
    np.testing.assert_array_equal(e0, again)
    assert not np.array_equal(e0, e1) and sorted(e0) == sorted(e1) == list(range(ROWS))
    assert not np.array_equal(e0, batches(reader, seed=1).epoch_order(0))
    for lo in range(0, ROWS, PER_SHARD):  # a buffer of one shard's size holds one whole shard
        assert len(set(e0[lo : lo + PER_SHARD] // PER_SHARD)) == 1
    np.testing.assert_array_equal(batches(reader, shuffle=False).epoch_order(5), np.arange(ROWS))


def test_workers_keep_the_batch_order(reader: CacheReader) -> None:
    expected = stream(ResumableLoader(batches(reader)))
    assert stream(ResumableLoader(batches(reader), num_workers=2)) == expected


@pytest.mark.parametrize("num_workers", [0, 2])
def test_loader_resumes_at_the_next_batch_of_the_same_epoch(
    reader: CacheReader, num_workers: int
) -> None:
    epoch = [1]
    loader = ResumableLoader(batches(reader, epoch_fn=lambda: epoch[0]), num_workers=num_workers)
    full = stream(loader)
    iterator, head = iter(loader), []
    for _ in range(5):
        head.append(next(iterator)["row"].tolist())
    state = loader.state_dict()
    assert state == {"epoch": 1, "batches": 5, "global_batch": 4}

    resumed = ResumableLoader(batches(reader, epoch_fn=lambda: epoch[0]), num_workers=num_workers)
    resumed.load_state_dict(state)
    assert head + stream(resumed) == full
    assert resumed.state_dict()["batches"] == len(full)
    assert stream(resumed) == full  # the next pass starts over


def test_saved_state_of_an_earlier_epoch_is_ignored(reader: CacheReader) -> None:
    epoch = [2]
    loader = ResumableLoader(batches(reader, epoch_fn=lambda: epoch[0]))
    loader.load_state_dict({"epoch": 1, "batches": 13, "global_batch": 4})
    assert stream(loader) == stream(ResumableLoader(batches(reader, epoch_fn=lambda: 2)))


def test_resume_on_more_ranks_with_the_same_global_batch(
    reader: CacheReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    full = stream(ResumableLoader(batches(reader, drop_last=True)))
    state = {"epoch": 0, "batches": 3, "global_batch": 4}
    halves = []
    for rank in range(2):
        on_rank(monkeypatch, rank, 2)
        loader = ResumableLoader(batches(reader, batch_size=2, drop_last=True))
        loader.load_state_dict(state)
        halves.append(stream(loader))
    assert [a + b for a, b in zip(*halves, strict=True)] == full[3:]


def test_bad_sizes_are_refused(reader: CacheReader) -> None:
    with pytest.raises(ValueError, match="batch_size and buffer_rows must be >= 1, got 0"):
        batches(reader, batch_size=0)
