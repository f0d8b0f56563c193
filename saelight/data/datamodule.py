"""ActivationDataModule: the activation cache as train/val/test loaders (builds it if missing)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import torch

from saelight.audio.base import SPLITS
from saelight.cache.build import ActivationCache
from saelight.cache.reader import CacheReader
from saelight.data.batches import CachedBatches, ResumableLoader, rank_and_world
from saelight.data.row_stats import RowStats, measure
from saelight.io.defaults import DATA_SEED, OUTLIER_NORM_MULTIPLE
from saelight.io.errors import ConfigError
from saelight.io.layout import RunLayout

log = logging.getLogger(__name__)


class ActivationDataModule(L.LightningDataModule):
    """Batches of cached activations, split by the source's split column (groups never straddle).

    The cache is built in `setup`, on every process: under DDP the ranks split the extraction.
    Under DDP each rank gets `batch_size` rows of every global batch of `batch_size × world` rows
    (see `CachedBatches`), and training resumes mid-epoch exactly (see `ResumableLoader`).

    Args:
        cache: the activation cache (its recipe: source, backbone, layers, pooling, crops).
        batch_size: rows per training batch on each process (global batch = batch_size × world).
        eval_batch_size: rows per validation/test batch on each process.
        buffer_rows: rows shuffled together (each process holds its share in RAM at once).
        num_workers: DataLoader worker processes (0 reads in the training process; rows are in RAM).
        seed: shuffling seed (epoch-dependent and reproducible).
        verify_checksums: check every shard's sha256 when the cache is opened.
        max_norm_multiple: leave out of training and evaluation the rows whose norm exceeds this
            multiple of their layer's median train-row norm (massive activations at a few
            positions, e.g. Whisper-base layer 5 at 20x); they are counted either way (a
            WARNING line per layer at start-up). None keeps every row.
        centre_positions: frame caches: subtract each frame position's mean train row before
            the SAE sees it (positional features stop taking latents); reconstruction metrics
            stay in the original space. The means are saved in the run (row_stats.safetensors).
    """

    def __init__(
        self,
        cache: ActivationCache,
        batch_size: int = 256,
        eval_batch_size: int = 4096,
        buffer_rows: int = 1 << 20,
        num_workers: int = 0,
        seed: int = DATA_SEED,
        verify_checksums: bool = True,
        max_norm_multiple: float | None = None,
        centre_positions: bool = False,
    ) -> None:
        super().__init__()
        self.check_args(
            batch_size=batch_size, eval_batch_size=eval_batch_size, num_workers=num_workers
        )
        self.cache = cache
        self.batch_size, self.eval_batch_size, self.buffer_rows = (
            batch_size,
            eval_batch_size,
            buffer_rows,
        )
        self.num_workers, self.seed, self.verify_checksums = num_workers, seed, verify_checksums
        if max_norm_multiple is not None and max_norm_multiple <= 1:
            raise ConfigError(f"data.max_norm_multiple must be > 1, got {max_norm_multiple}")
        self.max_norm_multiple, self.centre_positions = max_norm_multiple, centre_positions
        self.reader: CacheReader | None = None
        self.row_stats: RowStats | None = None
        self._frames: torch.Tensor | None = None

    @staticmethod
    def check_args(
        *, batch_size: int, eval_batch_size: int, num_workers: int = 0, **_: Any
    ) -> None:
        """The checks of this section's own values; the CLI runs them before the cache's backbone
        is built (jsonargparse builds nested objects first)."""
        for name, value in (("batch_size", batch_size), ("eval_batch_size", eval_batch_size)):
            if value < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {value}")
        if num_workers < 0:  # torch's DataLoader would say it mid-setup
            raise ConfigError(f"data.num_workers must be >= 0, got {num_workers}")

    @property
    def d_in(self) -> int:
        """Activation width, linked to the model's `d_in` (never typed twice)."""
        return self.cache.dim

    @property
    def layers(self) -> list[int]:
        return self.cache.layers

    @property
    def pooling(self) -> str:
        """ "clip" or "frame": what one cached row is."""
        return self.cache.pooling

    def backbone_identity(self) -> dict[str, Any]:
        """The backbone's id/revision/class, written into every export and result."""
        return self.cache.backbone.identity()

    def open_reader(self) -> CacheReader:
        """The cache reader, opening (and building) the cache if `setup` has not run yet."""
        if self.reader is None:
            self.setup("test")
        assert self.reader is not None
        return self.reader

    def run_summary(self) -> dict[str, Any]:
        """What the data of a run was: written beside its results."""
        cache = self.cache
        return {
            "backbone": self.backbone_identity(),
            "source": cache.source.fingerprint(),
            "pooling": cache.pooling,
            "layers": cache.layers,
            "cache": str(cache.directory),
        }

    def setup(self, stage: str | None = None) -> None:
        if self.reader is None:
            self.cache.build()  # checks the source's splits before extracting anything
            self.reader = self.cache.open(verify=self.verify_checksums)
        for split in SPLITS:
            if stage in (None, "fit") and split == "test":
                continue
            if stage in ("validate",) and split != "val" or stage == "test" and split != "test":
                continue
            if not len(self.reader.split_rows(split)):
                raise ValueError(
                    f"split '{split}' of cache {self.cache.directory} has no rows: check the "
                    "source's split assignment (e.g. test singers, val fraction)"
                )
        if self.row_stats is None:
            self._measure_rows()

    def _measure_rows(self) -> None:
        """The train rows' norms (and position means): reported, and applied by
        `on_after_batch_transfer` and the evaluation (see `RowStats`)."""
        assert self.reader is not None
        self.row_stats = measure(
            self.reader,
            self.reader.split_rows("train"),
            report_multiple=OUTLIER_NORM_MULTIPLE,
            max_norm_multiple=self.max_norm_multiple,
            centre_positions=self.centre_positions,
        )
        for line in self.row_stats.report or []:
            action = "left out" if self.max_norm_multiple is not None else "kept"
            tip = (
                ""
                if self.max_norm_multiple is not None
                else "; data.max_norm_multiple leaves them out"
            )
            log.warning("%s (%s%s)", line, action, tip)
        if self.centre_positions:
            self._frames = torch.from_numpy(self.reader.column("frame"))
        trainer = self.trainer
        if trainer is not None and trainer.is_global_zero and self.row_stats.report is not None:
            self.row_stats.save(RunLayout.of_trainer(trainer).row_stats)

    def on_after_batch_transfer(self, batch: Any, dataloader_idx: int) -> Any:
        """Adds what `RowStats` applies: `offset` (batch, n_layers, dim), the position means the
        SAEs' input is centred by (x − offset), and `keep` (batch, n_layers), the rows left in.
        The batch is unchanged when both options are off."""
        stats = self.row_stats
        if stats is None or not isinstance(batch, dict) or "row" not in batch:
            return batch
        x = batch["x"]
        if stats.position_mean is not None and self._frames is not None:
            frames = self._frames[batch["row"].cpu()].clamp(0, len(stats.position_mean) - 1)
            offset = torch.from_numpy(stats.position_mean)[frames].to(x.device, x.dtype)
            batch = {**batch, "offset": offset}
            x = x - offset
        keep = stats.keep(x)
        if keep is not None:
            batch = {**batch, "keep": keep}
        return batch

    def _epoch(self) -> int:
        return self.trainer.current_epoch if self.trainer is not None else 0

    def _loader(self, split: str, train: bool) -> ResumableLoader:
        assert self.reader is not None, "call setup() first"
        batches = CachedBatches(
            self.reader,
            self.reader.split_rows(split),
            batch_size=self.batch_size if train else self.eval_batch_size,
            shuffle=train,
            seed=self.seed,
            buffer_rows=self.buffer_rows,
            drop_last=train,
            epoch_fn=self._epoch,
        )
        if train and len(batches) == 0:
            raise ValueError(
                f"the train split has {len(batches.rows)} rows, fewer than one global batch "
                f"(data.batch_size={self.batch_size} x {rank_and_world()[1]} processes): lower "
                "data.batch_size"
            )
        return ResumableLoader(batches, num_workers=self.num_workers)

    def train_dataloader(self) -> ResumableLoader:
        return self._loader("train", train=True)

    def val_dataloader(self) -> ResumableLoader:
        return self._loader("val", train=False)

    def test_dataloader(self) -> ResumableLoader:
        return self._loader("test", train=False)
