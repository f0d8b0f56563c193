"""What the post-training evaluation reads: held-out splits as training saw them, and the SAEs.

`HeldOutSplits` reads each split once (a seeded subset of `max_rows`; NaN/Inf rows refused or
left out, as `model.nonfinite` says) and gives one layer's rows with the data options of the run
applied (`RowStats`: position offsets, outlier rows left out). `grid_saes` gives the SAEs of the
grid, best exports first (the weights `BestSAEExport` kept), the live weights otherwise.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

from saelight.cache.format import TEST_HEAD
from saelight.cache.reader import CacheReader
from saelight.data.row_stats import RowStats
from saelight.evaluation.layer import (
    SPLIT_NAMES,
    EvalOptions,
    SplitData,
    encode,
    evaluate_layer,
    label_arrays,
    probe_labels,
    run_probe,
)
from saelight.evaluation.planted_scores import add_planted_scores
from saelight.evaluation.seeds import tag_seeds
from saelight.grid import GridEntry
from saelight.io.layout import RunLayout
from saelight.sae.base import SAE
from saelight.sae.export_files import CFG_FILE

log = logging.getLogger(__name__)


class HeldOutSplits:
    """The held-out splits of a cache, read once and kept.

    Args:
        reader: the run's cache.
        names: the splits to read (train, val, test[, test_head]).
        max_rows: rows per split (a seeded subset of a larger split).
        seed: seeds the subsets.
        drop_nonfinite: leave NaN/Inf rows out (logged) instead of raising.
        row_stats: the run's data options, applied to every layer's rows (None: none).
    """

    def __init__(
        self,
        reader: CacheReader,
        names: Iterable[str],
        max_rows: int,
        seed: int,
        drop_nonfinite: bool,
        row_stats: RowStats | None = None,
    ) -> None:
        self.reader, self.names, self.max_rows, self.seed = reader, tuple(names), max_rows, seed
        self.drop_nonfinite, self.row_stats = drop_nonfinite, row_stats
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def rows(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(rows, activations (n, n_layers, dim)) per split."""
        if self._splits is None:
            rng = np.random.default_rng(self.seed)
            self._splits = {}
            for split in self.names:
                rows = self.reader.split_rows(split)
                if len(rows) > self.max_rows:
                    rows = np.sort(rng.choice(rows, self.max_rows, replace=False))
                x = self.reader.read(rows)
                finite = np.isfinite(x).reshape(len(x), -1).all(1)
                if not finite.all():
                    bad = int((~finite).sum())
                    if not self.drop_nonfinite:
                        raise ValueError(
                            f"{bad} cached {split} rows hold NaN/Inf activations; set "
                            "model.nonfinite: skip to leave them out of the evaluation"
                        )
                    log.warning(
                        "evaluation: %d %s rows with NaN/Inf activations left out", bad, split
                    )
                    rows, x = rows[finite], x[finite]
                self._splits[split] = (rows, x)
        return self._splits

    def layer(self, layer_pos: int) -> dict[str, SplitData]:
        """Each split's rows of one layer, as training saw them (`RowStats.layer_rows`)."""
        meta = self.reader.metadata
        splits = {}
        for name, (rows, x) in self.rows().items():
            split = SplitData(x[:, layer_pos], meta.iloc[rows].reset_index(drop=True))
            if self.row_stats is not None:
                frames = split.meta["frame"].to_numpy() if "frame" in split.meta else None
                kept, split.offset = self.row_stats.layer_rows(split.x, frames, layer_pos)
                split = split if kept.all() else split.subset(kept)
            splits[name] = split
        return splits


def best_or_live(entry: GridEntry, live: SAE, layout: RunLayout, best: bool = True) -> SAE:
    """The entry's best export when `best` and one exists, else a float32 CPU copy of `live`."""
    path = layout.sae(entry.key)
    if best and (path / CFG_FILE).exists():
        return SAE.from_pretrained(path)
    return copy.deepcopy(live).cpu().float()


def grid_saes(
    entries: Iterable[GridEntry], live: dict[str, SAE], layout: RunLayout, best: bool
) -> tuple[dict[str, SAE], dict[str, float | None]]:
    """The entries' SAEs by row name (`best_or_live`), one per `SAE.eval_variants` (a
    HierarchicalTopK SAE: `<name>@k<k>` per k of its ladder), with the sparsity each reports."""
    saes: dict[str, SAE] = {}
    sparsities: dict[str, float | None] = {}
    for e in entries:
        sae = best_or_live(e, live[e.key], layout, best)
        for suffix, variant in sae.eval_variants().items():
            name = e.name + suffix
            saes[name] = variant
            sparsities[name] = e.sparsity if not suffix else variant.target_sparsity
    return saes, sparsities


def cache_protocol(reader: CacheReader, protocol: str | None) -> str:
    """`protocol`, or the one the cache was built with (caches before it: "saelight")."""
    return protocol or reader.manifest["extraction"].get("protocol", "saelight")


def split_names(reader: CacheReader, protocol: str | None) -> tuple[str, ...]:
    """train, val, test, and `TEST_HEAD` (the paper's probe rows) under protocol "paper"."""
    if cache_protocol(reader, protocol) != "paper":
        return SPLIT_NAMES
    if len(reader.split_rows(TEST_HEAD)):
        return (*SPLIT_NAMES, TEST_HEAD)
    log.info(
        "SAEEvaluation(protocol=paper): cache %s holds no test_head rows (built without "
        "data.cache.protocol: paper), so the probes are scored on whole test files",
        reader.directory,
    )
    return SPLIT_NAMES


def fast_probe_accuracies(
    sae: SAE, splits: dict[str, SplitData], labels: list[str] | None, seed: int
) -> dict[str, float]:
    """{label: validation accuracy} of logistic probes on `sae`'s codes (the in-fit check)."""
    codes = {s: encode(sae, splits[s].sae_input()) for s in SPLIT_NAMES}
    return {
        label: run_probe("logistic", codes, label_arrays(splits, label), seed).val_accuracy
        for label in probe_labels(splits, labels)
    }


def saes_by_layer(
    entries: Iterable[GridEntry], live: dict[str, SAE], layout: RunLayout
) -> dict[int, dict[str, tuple[SAE, float | None]]]:
    """{layer: {export key: (best-or-live SAE, grid sparsity)}}: what splice takes."""
    out: dict[int, dict[str, tuple[SAE, float | None]]] = {}
    for e in entries:
        out.setdefault(e.layer, {})[e.key] = (best_or_live(e, live[e.key], layout), e.sparsity)
    return out


def grid_layer_rows(
    layer: int,
    grid: list[GridEntry],
    live: dict[str, SAE],
    layout: RunLayout,
    best: bool,
    splits: dict[str, SplitData],
    opts: EvalOptions,
    reader: CacheReader,
) -> list[dict[str, Any]]:
    """The results rows of one layer: dense + every SAE of the grid at that layer (`grid_saes`,
    `evaluate_layer`), with planted ground-truth scores on a planted cache, the grid sparsity of
    knob-set SAEs and the seed tags of replicates."""
    entries = [e for e in grid if e.layer == layer]
    saes, sparsities = grid_saes(entries, live, layout, best)
    rows = evaluate_layer(layer, splits, saes, opts)
    add_planted_scores(rows, saes, splits["test"], reader)
    for row in rows[1:]:
        if sparsities.get(row["name"]) is not None:
            row["sparsity"] = sparsities[row["name"]]
    tag_seeds(rows, {e.name: e.replicate_of for e in entries}, saes)
    return rows
