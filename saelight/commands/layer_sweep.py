"""`saelight layer-sweep --cache DIR --label L`: dense probe accuracy vs layer, before any SAE.

Probes the label on each cached layer (`evaluation.layer_sweep`), writes
`layer_sweep_<label>.json` and `.png` and prints the table:

    saelight cache --config configs/layer_sweep_hubert.yaml --data.cache.source.init_args.root DIR
    saelight layer-sweep --cache runs/layer_sweep/hubert/cache --label technique
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from saelight.io.defaults import EVAL_SEED, MAX_ROWS


def layer_sweep(
    cache: str,
    label: str = "technique",
    probe: Literal["logistic", "paper"] = "logistic",
    layers: list[int] | None = None,
    max_rows: int = MAX_ROWS,
    seed: int = EVAL_SEED,
    out: str | None = None,
) -> None:
    """Probe the dense activations of every cached layer for one label: accuracy vs layer.

    Writes `layer_sweep_<label>.json` and `.png` and prints the table, so the layers worth an
    SAE can be chosen before training any. The cache is opened as `fit` opens it: every file
    checked against its sha256.

    Args:
        cache: activation cache directory holding the layers to compare.
        label: metadata label to probe (e.g. technique, vowel).
        probe: "logistic" (fast) or "paper" (linear layer, 120 epochs, best epoch by val loss).
        layers: layers to probe (default: every cached layer).
        max_rows: rows per split, subsampled for frame caches.
        seed: seed of the probe and of the subsampling.
        out: output folder (default: `<cache>/../layer_sweep`).
    """
    from saelight.cache.reader import CacheReader
    from saelight.evaluation.layer_sweep import layer_sweep as sweep_layers
    from saelight.evaluation.layer_sweep import probe_test_split
    from saelight.io.atomic import atomic_savefig, atomic_write_text
    from saelight.io.errors import SaelightError
    from saelight.report.layer_sweep import format_table, sweep_figure

    folder = Path(out) if out else Path(cache).resolve().parent / "layer_sweep"
    if folder.exists() and not folder.is_dir():
        raise SaelightError(f"--out {folder} is a file, expected a folder")
    reader = CacheReader(cache, verify=True)  # every file against its sha256, as `fit` does
    results = sweep_layers(reader, label, probe, layers, max_rows, seed)
    folder.mkdir(parents=True, exist_ok=True)
    backbone = reader.manifest.get("backbone", {})
    stem = f"layer_sweep_{label}"
    payload = {
        "cache": str(cache),
        "backbone": backbone,
        "label": label,
        "probe": probe,
        "seed": seed,
        "max_rows": max_rows,
        "test_split": probe_test_split(reader),
        "layers": results,
    }
    atomic_write_text(folder / f"{stem}.json", json.dumps(payload, indent=1))
    title = f"{Path(str(backbone.get('model', ''))).name}: dense {label} probe ({probe})"
    atomic_savefig(sweep_figure(results, label, title), folder / f"{stem}.png", dpi=120)
    print(format_table(results))
    best = max(results, key=lambda r: r["accuracy"])
    print(
        f"best layer: L{best['layer']} ({100 * best['accuracy']:.2f} %); "
        f"wrote {folder / stem}.json and .png"
    )
