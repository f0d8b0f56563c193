"""`ActivationDataModule` over a written cache: split checks, loaders Lightning can checkpoint."""

from pathlib import Path

import numpy as np
import pytest
from lightning.fabric.utilities.types import _Stateful

from saelight.cache import CacheReader
from saelight.cache.format import FORMAT_VERSION, part_name
from saelight.cache.parts import merge
from saelight.cache.writer import ShardWriter
from saelight.data import ActivationDataModule


class Prebuilt:
    """The part of `ActivationCache` the datamodule uses, over a cache written by `write_cache`."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.built = directory, 0
        self.dim, self.layers = 2, [3]

    def build(self, progress: bool = True) -> CacheReader:
        self.built += 1
        return CacheReader(self.directory)

    def open(self, verify: bool = False) -> CacheReader:
        return CacheReader(self.directory, verify=verify)


def write_cache(directory: Path, splits: list[str]) -> Prebuilt:
    """One row per split entry, in shards of 4 rows; every value of row r is r."""
    header = {
        "format_version": FORMAT_VERSION,
        **{"backbone": {}, "source": {}, "extraction": {"storage_dtype": "float32"}},
        **{"layers": [3], "dim": 2, "n_rows": 0, "shards": [], "skipped": []},
    }
    writer = ShardWriter(directory, {**header, "shards": [], "skipped": []}, part_name(0))
    for lo in range(0, len(splits), 4):
        hi = min(lo + 4, len(splits))
        rows = np.repeat(np.arange(lo, hi, dtype=np.float32)[:, None], 2, 1)
        writer.begin(lo)
        writer.add({3: rows}, [{"clip_index": i, "split": splits[i]} for i in range(lo, hi)])
        writer.commit(hi)
    merge(directory, header, [(part_name(0), writer.part)], len(splits))
    return Prebuilt(directory)


def module(cache: Prebuilt, **kwargs: int) -> ActivationDataModule:
    return ActivationDataModule(cache, **{"batch_size": 4, "eval_batch_size": 3, **kwargs})  # type: ignore[arg-type]


def test_loaders_cover_their_splits_and_training_can_be_checkpointed(tmp_path: Path) -> None:
    splits = ["train"] * 10 + ["val"] * 5 + ["test"] * 4
    dm = module(write_cache(tmp_path, splits))
    dm.setup("fit")
    assert dm.d_in == 2 and dm.layers == [3] and dm.cache.built == 1  # type: ignore[attr-defined]
    train = dm.train_dataloader()
    assert isinstance(train, _Stateful)  # so Lightning saves its position in checkpoints
    rows = [r for b in train for r in b["row"].tolist()]
    assert len(rows) == 8 and set(rows) <= set(range(10))  # 2 full batches of 4, shuffled
    val = [b["row"].tolist() for b in dm.val_dataloader()]
    assert val == [[10, 11, 12], [13, 14]]  # cache order, every row once
    dm.setup("test")
    assert dm.cache.built == 1  # type: ignore[attr-defined]
    assert [r for b in dm.test_dataloader() for r in b["row"].tolist()] == [15, 16, 17, 18]


def test_a_split_with_no_rows_is_a_clear_error(tmp_path: Path) -> None:
    dm = module(write_cache(tmp_path, ["train"] * 8 + ["test"] * 2))
    with pytest.raises(ValueError, match="split 'val' of cache .* has no rows: check the source"):
        dm.setup("fit")


def test_fewer_train_rows_than_one_batch_is_a_clear_error(tmp_path: Path) -> None:
    dm = module(write_cache(tmp_path, ["train"] * 3 + ["val", "test"]), batch_size=8)
    dm.setup("fit")
    with pytest.raises(ValueError, match=r"train split has 3 rows, fewer than one global batch"):
        dm.train_dataloader()


def test_batch_size_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data.batch_size must be >= 1, got 0"):
        module(Prebuilt(tmp_path), batch_size=0)
