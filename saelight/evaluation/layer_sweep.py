"""Dense probe accuracy per layer, from an activation cache that holds every layer.

Which layers to put SAEs on? The paper picks one early and one late layer per backbone by dense
probe accuracy. This recipe reads one cache (e.g. `configs/layer_sweep_hubert.yaml`, layers: all),
probes the chosen label on each cached layer (train fits, val selects, test scores) and writes
`layer_sweep_<label>.json` plus `layer_sweep_<label>.png` (accuracy vs layer), and prints a table.
A cache built with `protocol: paper` is scored on its `test_head` rows (each test file's first
`crop_seconds`), as the paper scores its probes and as `SAEEvaluation` then does:

    saelight cache --config configs/layer_sweep_hubert.yaml --data.cache.source.init_args.root DIR
    saelight layer-sweep --cache runs/layer_sweep/hubert/cache --label technique
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from saelight.audio.base import SPLITS
from saelight.cache.format import TEST_HEAD, label_column
from saelight.cache.reader import CacheReader
from saelight.metrics.probe import ProbeResult, linear_probe, logistic_probe


def probe_test_split(reader: CacheReader) -> str:
    """The split the probes are scored on: `TEST_HEAD` when the cache holds it, else "test"."""
    return TEST_HEAD if len(reader.split_rows(TEST_HEAD)) else "test"


def split_rows(reader: CacheReader, max_rows: int | None, seed: int) -> dict[str, np.ndarray]:
    """Row indices per split (test: `probe_test_split`'s rows), each subsampled (sorted) to at most
    `max_rows` (frame caches)."""
    rng = np.random.default_rng(seed)
    out = {}
    for split in SPLITS:
        rows = reader.split_rows(probe_test_split(reader) if split == "test" else split)
        if not len(rows):
            raise ValueError(f"cache {reader.directory} has no '{split}' rows")
        if max_rows is not None and len(rows) > max_rows:
            rows = np.sort(rng.choice(rows, max_rows, replace=False))
        out[split] = rows
    return out


def probe_layer(
    reader: CacheReader,
    layer: int,
    rows: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    probe: Literal["logistic", "paper"],
    seed: int,
) -> ProbeResult:
    """Fit the probe on one layer's dense activations (train), score val and test."""
    x = {s: reader.read(rows[s], layers=[layer])[:, 0] for s in SPLITS}
    args = [a for s in SPLITS for a in (x[s], y[s])]
    return (
        logistic_probe(*args, seed=seed) if probe == "logistic" else linear_probe(*args, seed=seed)
    )


def layer_sweep(
    cache: str | Path | CacheReader,
    label: str,
    probe: Literal["logistic", "paper"],
    layers: list[int] | None,
    max_rows: int | None,
    seed: int,
) -> list[dict[str, Any]]:
    """Test accuracy of a dense probe of `label` on each cached layer (defaults: the command's).

    Args:
        cache: a complete activation cache directory, or its open reader.
        label: metadata label to probe (`label_<label>` column).
        probe: "logistic" (standardised scikit-learn logistic regression, fast) or "paper" (the
            paper's linear layer: cross-entropy, Adam 1e-3, 120 epochs, best epoch by val loss).
        layers: layers to probe (default: every cached layer).
        max_rows: subsample each split to this many rows (None: all rows).
        seed: seed of the probe and the subsampling.

    Returns:
        One dict per layer: layer, accuracy, macro_f1, val_accuracy, best_epoch, n_train, n_test.
    """
    if probe not in ("logistic", "paper"):
        raise ValueError(f"probe must be 'logistic' or 'paper', got {probe!r}")
    reader = cache if isinstance(cache, CacheReader) else CacheReader(cache)
    cache = reader.directory
    if label not in reader.label_names():
        raise ValueError(f"label {label!r} is not in cache {cache}; it has {reader.label_names()}")
    layers = list(reader.layers if layers is None else layers)
    missing = sorted(set(layers) - set(reader.layers))
    if missing:
        raise ValueError(f"layers {missing} are not cached in {cache}; cached: {reader.layers}")
    rows = split_rows(reader, max_rows, seed)
    labels = reader.metadata[label_column(label)].to_numpy()
    y = {s: labels[rows[s]] for s in SPLITS}
    results = []
    for layer in layers:
        r = probe_layer(reader, layer, rows, y, probe, seed)
        results.append(
            {
                "layer": layer,
                "accuracy": r.accuracy,
                "macro_f1": r.macro_f1,
                "val_accuracy": r.val_accuracy,
                "best_epoch": r.best_epoch,
                "n_train": int(len(rows["train"])),
                "n_test": int(len(rows["test"])),
            }
        )
    return results
