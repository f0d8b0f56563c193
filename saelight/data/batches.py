"""Iterable batches of cached rows: shuffled by shard groups + an in-memory buffer, split across ranks.

Why not a map-style Dataset + sampler: per-row random reads from memmaps are slow, and Lightning's
DistributedSampler would give every rank a view of every shard. Here each epoch permutes the order of
shards, each rank takes one contiguous, equal-length range of that row order (so no rank reads the whole
cache), loads it in groups of shards into RAM, shuffles within the group and slices batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
import torch.distributed as dist
from torch.utils.data import IterableDataset, get_worker_info

from saelight.cache.reader import CacheReader


def rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class CachedBatches(IterableDataset):
    """Yields {"x": (batch, n_layers, dim) float32, "row": (batch,) int64} from one split.

    Args:
        reader: the cache.
        rows: the split's row indices (sorted).
        batch_size: rows per batch.
        shuffle: shuffle shard order and rows within each buffer (train); else cache order.
        seed: base seed; the epoch comes from `epoch_fn` so each epoch differs yet is reproducible.
        buffer_rows: rows loaded into RAM at once (whole shards, at least one).
        drop_last: drop the final short batch (train) so every step sees `batch_size` rows.
        even_ranks: give every rank the same number of rows (required for training under DDP;
            validation keeps every row exactly once instead).
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
        even_ranks: bool,
        epoch_fn: Callable[[], int] = lambda: 0,
    ) -> None:
        super().__init__()
        self.reader, self.rows, self.batch_size = reader, np.asarray(rows, np.int64), batch_size
        self.shuffle, self.seed, self.buffer_rows = shuffle, seed, buffer_rows
        self.drop_last, self.even_ranks, self.epoch_fn = drop_last, even_ranks, epoch_fn

    def _rank_rows(self, rng: np.random.Generator) -> np.ndarray:
        """This rank's rows for the epoch, shard-ordered (shuffled shard order when shuffling)."""
        shard_of = np.searchsorted(self.reader.row_starts, self.rows, side="right") - 1
        shards = np.unique(shard_of)
        if self.shuffle:
            shards = rng.permutation(shards)
        ordered = (
            np.concatenate([self.rows[shard_of == s] for s in shards]) if len(shards) else self.rows
        )
        rank, world = rank_and_world()
        info = get_worker_info()
        if info is not None:
            rank, world = rank * info.num_workers + info.id, world * info.num_workers
        if self.even_ranks:
            per_rank = len(ordered) // world
            return ordered[rank * per_rank : (rank + 1) * per_rank]
        return np.array_split(ordered, world)[rank]

    def __len__(self) -> int:
        _, world = rank_and_world()
        n = len(self.rows) // world if self.even_ranks else -(-len(self.rows) // world)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        rng = np.random.default_rng([self.seed, self.epoch_fn()])
        rows = self._rank_rows(rng)
        carry: np.ndarray | None = None
        carry_rows = np.zeros(0, np.int64)
        for lo in range(0, len(rows), self.buffer_rows):
            group = rows[lo : lo + self.buffer_rows]
            data = self.reader.read(group)
            if self.shuffle:
                perm = rng.permutation(len(group))
                data, group = data[perm], group[perm]
            if carry is not None:
                data, group = np.concatenate([carry, data]), np.concatenate([carry_rows, group])
            tensor = torch.from_numpy(data)
            row_tensor = torch.from_numpy(group)
            n_full = len(group) // self.batch_size * self.batch_size
            for start in range(0, n_full, self.batch_size):
                yield {
                    "x": tensor[start : start + self.batch_size],
                    "row": row_tensor[start : start + self.batch_size],
                }
            carry, carry_rows = data[n_full:], group[n_full:]
        if carry is not None and len(carry) and not self.drop_last:
            yield {"x": torch.from_numpy(carry), "row": torch.from_numpy(carry_rows)}
