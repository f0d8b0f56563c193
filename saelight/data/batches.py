"""Iterable batches of cached rows, shuffled by shard and buffer, split over ranks by global batch.

Why not a map-style Dataset + sampler: per-row random reads from memmaps are slow, and Lightning's
DistributedSampler knows nothing of shards. Here each epoch has one global row order, the same on
every rank: shards in a seeded random order, rows shuffled within buffers of `buffer_rows`. It is
cut into global batches of `batch_size × world` rows, and rank r takes the r-th slice of each.
So a DDP run sees exactly the batches of a one-process run with `world` times the batch size (its
gradient is their mean), every rank reads only its own rows, and no row is duplicated or dropped
(except the final short global batch when `drop_last`).

`ResumableLoader` makes the stream checkpointable: Lightning stores its `state_dict` (epoch and
global batches served) in every checkpoint, and a resumed fit continues mid-epoch at the next batch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, Dataset, IterableDataset, get_worker_info

from saelight.cache.reader import CacheReader

log = logging.getLogger(__name__)
# Lightning warns that an IterableDataset's __len__ may be wrong with several workers unless each
# worker takes its own share; `CachedBatches.__iter__` does exactly that (worker w yields batches
# w, w + n, ...), so the warning says nothing a user can act on.
warnings.filterwarnings(
    "ignore", message="Your `IterableDataset` has `__len__` defined", category=UserWarning
)


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class CachedBatches(IterableDataset):
    """Yields {"x": (batch, n_layers, dim) float32, "row": (batch,) int64} from one split.

    Args:
        reader: the cache.
        rows: the split's row indices (sorted).
        batch_size: rows per batch on each rank.
        shuffle: shuffle shard order and rows within each buffer (train); else cache order.
        seed: base seed; with the epoch it seeds the epoch's order (reproducible, new each epoch).
        buffer_rows: rows shuffled together (global; each rank holds its share in RAM at once).
        drop_last: drop the final short global batch (train), so every rank yields the same
            number of full batches; else its rows are split over the ranks (each row exactly once).
        epoch_fn: returns the current epoch.
    """

    def __init__(
        self,
        reader: CacheReader,
        rows: np.ndarray,
        batch_size: int,
        shuffle: bool,
        seed: int,
        buffer_rows: int,
        drop_last: bool,
        epoch_fn: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__()
        if batch_size < 1 or buffer_rows < 1:
            raise ValueError(
                f"batch_size and buffer_rows must be >= 1, got {batch_size} and {buffer_rows}"
            )
        self.reader, self.rows, self.batch_size = reader, np.asarray(rows, np.int64), batch_size
        self.shuffle, self.seed, self.buffer_rows = shuffle, seed, buffer_rows
        self.drop_last, self.epoch_fn = drop_last, epoch_fn
        self.start_batch = 0  # set by ResumableLoader before iterating

    def epoch_order(self, epoch: int) -> np.ndarray:
        """Every rank's rows of the epoch in global order (identical on all ranks)."""
        if not self.shuffle:
            return self.rows
        rng = np.random.default_rng([self.seed, epoch])
        rows = self.rows
        if len(rows) and bool((rows[1:] >= rows[:-1]).all()):
            # Sorted rows (every split): each shard's rows are one slice, so the shard order is
            # a concatenation of slices; no per-row shard index or argsort (3 x 8 B/row of
            # peak memory on a 2M-row cache). Same order as the general path below.
            bounds = np.searchsorted(rows, self.reader.row_starts)
            shards = np.flatnonzero(np.diff(bounds) > 0)
            chosen = rng.permutation(shards)
            order = np.concatenate([rows[bounds[s] : bounds[s + 1]] for s in chosen])
        else:
            shard_of = np.searchsorted(self.reader.row_starts, rows, side="right") - 1
            shards = np.unique(shard_of)
            position = np.empty(shard_of.max() + 1 if len(shard_of) else 0, np.int64)
            position[rng.permutation(shards)] = np.arange(len(shards))
            order = rows[np.argsort(position[shard_of], kind="stable")]
        for lo in range(0, len(order), self.buffer_rows):
            block = order[lo : lo + self.buffer_rows]
            order[lo : lo + self.buffer_rows] = block[rng.permutation(len(block))]
        return order

    def rank_batches(self, epoch: int, rank: int, world: int) -> list[np.ndarray]:
        """This rank's batches (row indices) of the epoch, in order."""
        order = self.epoch_order(epoch)
        size = self.batch_size * world
        n_full = len(order) // size
        full = order[: n_full * size].reshape(n_full, world, self.batch_size)[:, rank]
        batches = list(full)
        tail = order[n_full * size :]
        if len(tail) and not self.drop_last:
            mine = np.array_split(tail, world)[rank]
            if len(mine):
                batches.append(mine)
        return batches

    def __len__(self) -> int:
        rank, world = rank_and_world()
        n, size = len(self.rows), self.batch_size * world
        return n // size + int(not self.drop_last and rank < n % size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rank, world = rank_and_world()
        batches = self.rank_batches(self.epoch_fn(), rank, world)[self.start_batch :]
        info = get_worker_info()
        if info is not None:  # worker w yields batches w, w + n, ...: the DataLoader's round robin
            batches = batches[info.id :: info.num_workers]
        # One read per batch: malloc recycles a batch-sized buffer, while a buffer of several
        # batches is mmapped afresh (and page-faulted in row by row) on every read.
        for b in batches:
            yield {"x": torch.from_numpy(self.reader.read(b)), "row": torch.from_numpy(b)}


class ResumableLoader(DataLoader):
    """A DataLoader over `CachedBatches` whose position Lightning saves in checkpoints.

    `state_dict()` = {"epoch", "batches" served this epoch, "global_batch"}. After
    `load_state_dict`, the next iteration in that epoch starts at the following batch (a resumed
    fit then sees exactly the batches an uninterrupted one would); in another epoch it starts at 0.

    Args:
        dataset: the batches.
        num_workers: DataLoader worker processes.
    """

    def __init__(self, dataset: CachedBatches, num_workers: int = 0) -> None:
        super().__init__(dataset, batch_size=None, num_workers=num_workers)
        self._epoch, self._served = -1, 0
        self._resume: dict[str, Any] | None = None

    def _global_batch(self) -> int:
        return self.dataset.batch_size * rank_and_world()[1]

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:  # type: ignore[override]
        dataset: CachedBatches = self.dataset  # type: ignore[assignment]
        epoch, skip = dataset.epoch_fn(), 0
        state, self._resume = self._resume, None
        if state is not None and state["epoch"] == epoch:
            rows = state["batches"] * state["global_batch"]
            skip = rows // self._global_batch()
            if rows % self._global_batch():
                log.warning(
                    "resuming with global batch %d (saved %d): %d rows of epoch %d replayed",
                    self._global_batch(),
                    state["global_batch"],
                    rows % self._global_batch(),
                    epoch,
                )
        self._epoch, self._served = epoch, skip
        dataset.start_batch = skip
        try:
            for batch in super().__iter__():
                self._served += 1
                yield batch
        finally:
            dataset.start_batch = 0

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self._epoch, "batches": self._served, "global_batch": self._global_batch()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._resume = dict(state_dict)


class TensorBatches(Dataset):
    """Rows in memory as the datamodule's batches, for `SAEModule` on a tensor (planted data, a
    quick experiment): `DataLoader(TensorBatches(x, 256), batch_size=None)`.

    Args:
        x: (n, d_in) rows of one layer, or (n, n_layers, d_in).
        batch: rows per batch (consecutive; the last partial batch is dropped).
    """

    def __init__(self, x: torch.Tensor, batch: int) -> None:
        self.x = x[:, None] if x.dim() == 2 else x
        self.batch = batch

    def __len__(self) -> int:
        return len(self.x) // self.batch

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"x": self.x[i * self.batch : (i + 1) * self.batch]}
