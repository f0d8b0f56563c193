"""Merge the result rows of several runs (or of the paper's tables) into the report's rows.

Rows are told apart by (model, layer, name, seed): model is the backbone's hub id (plus "(frame)"
for frame-level runs), seed the run's `seed` (from its results.json `run` summary; None when the
run does not record one). So:

- a W&B sweep (one run per layer × sparsity) gives the same rows as one in-process grid: dense rows
  repeated by several runs are kept once, a duplicated SAE keeps its first run's row (listed under
  Notes), and a directory without results (an unfinished run) is skipped;
- runs of several seeds merge into one row per (model, layer, name) that holds the mean over seeds
  of every number, `<key>_seed_std` (sample std, `saelight.metrics.uncertainty.seed_mean_std`)
  and `n_seeds`; per-clip lists are averaged clip by clip, so intervals stay paired.

`derive_columns` then adds the width-independent columns rows may lack (see `derive_columns`).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from saelight.evaluation.results import (
    EFFECTIVE_DIMS,
    FACTOR_ENTROPY_BOOT,
    IDENTITY_KEYS,
    N_SEEDS,
    REPLICATE_OF,
    TEST_CLIP_ROWS,
    ResultsNotFoundError,
    Row,
    completeness_key,
    factor_entropy_key,
    is_dense,
    per_clip_keys,
    read_results,
    seed_std_key,
)
from saelight.io.generation import GENERATION
from saelight.metrics.uncertainty import seed_mean_std
from saelight.report.paper import is_paper_results, read_paper

RowKey = tuple[str, int, str]


def model_label(run: dict[str, Any]) -> str:
    """'hubert-base-ls960' from the run's backbone id, plus ' (frame)' for frame-level pooling."""
    backbone = run.get("backbone") or {}
    name = backbone.get("model") if isinstance(backbone, dict) else backbone
    label = Path(str(name)).name if name else ""
    if run.get("pooling") == "frame":
        label = f"{label} (frame)".strip()
    return label


def _read(run_dir: str | Path) -> tuple[list[Row], dict[str, Any]]:
    if is_paper_results(run_dir):
        return read_paper(run_dir)
    results = read_results(run_dir)
    run = results.get("run") or {}
    model = model_label(run)
    return [{**row, "model": model} for row in results["rows"]], run


def load_rows(run_dirs: list[str | Path]) -> tuple[list[Row], list[str], list[str]]:
    """Merged rows of several runs, one line per run, and notes about dropped duplicates."""
    found: dict[RowKey, dict[Any, tuple[Row, str]]] = defaultdict(dict)
    runs, notes, missing = [], [], []
    for run_dir in run_dirs:
        try:
            run_rows, run = _read(run_dir)
        except FileNotFoundError as err:
            # A glob over a sweep's runs can include an unfinished or crashed one.
            notes.append(f"{err}: skipped")
            missing.append(str(err.args[0]) if err.args else str(run_dir))
            continue
        models = sorted({str(r.get("model", "")) for r in run_rows}) or [""]
        seed = run.get("seed")
        if run.get("paper"):
            runs.append(f"`{run_dir}`: the paper's published tables ({len(run_rows)} rows)")
        else:
            runs.append(
                f"`{run_dir}`: {', '.join(m for m in models if m) or 'unknown backbone'}, pooling "
                f"{run.get('pooling', '?')}, {run.get('epochs', '?')} epochs, "
                + (f"seed {seed}, " if seed is not None else "")
                + f"{len(run_rows)} rows"
                + (f", generation `{run[GENERATION]}`" if run.get(GENERATION) else "")
            )
        for row in run_rows:
            # Seeds of one fit (`model.seeds`) merge into seed 0's row like runs of several seeds.
            name = str(row.get(REPLICATE_OF) or row["name"])
            key = (str(row.get("model", "")), int(row["layer"]), name)
            replicate = (seed, row.get("seed"))
            if replicate not in found[key]:
                found[key][replicate] = (row, str(run_dir))
                continue
            first, origin = found[key][replicate]
            differs = _differs(first, row)
            if not is_dense(row) or differs:
                notes.append(
                    f"{row['name']} of {key[0]} L{key[1]} appears in `{origin}` and `{run_dir}` "
                    f"with {'different' if differs else 'equal'} numbers: kept "
                    f"`{origin}`"
                )
    if not found:
        raise ResultsNotFoundError(
            "; ".join(missing) or "no run directory given",
            hint="run `saelight fit` (or `saelight test`) with the SAEEvaluation callback first",
        )
    rows = []
    for by_seed in found.values():
        replicates = [row for row, _ in by_seed.values()]
        rows.append(replicates[0] if len(replicates) == 1 else merge_seeds(replicates))
    return derive_columns(rows), runs, notes


def _differs(a: Row, b: Row) -> bool:
    keys = {k for k in set(a) | set(b) if isinstance(a.get(k, b.get(k)), (int, float))}
    return any(
        a.get(k) is None or b.get(k) is None or abs(float(a[k]) - float(b[k])) > 1e-9
        for k in keys
        if not isinstance(a.get(k), bool)
    )


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def merge_seeds(replicates: list[Row]) -> Row:
    """One row from the same (model, layer, name) of runs with different seeds (see module doc)."""
    merged: Row = dict(replicates[0])
    per_clip = set(per_clip_keys(merged)) - {TEST_CLIP_ROWS}
    for key in {k for r in replicates for k in r} - set(IDENTITY_KEYS):
        values = [r[key] for r in replicates if r.get(key) is not None]
        if values and all(_is_number(v) for v in values):
            finite = [float(v) for v in values if not math.isnan(float(v))]
            if finite:
                merged[key], merged[seed_std_key(key)] = seed_mean_std(finite)
        elif key in per_clip:
            lists = [v for v in values if len(v) == len(values[0])]
            if len(lists) == len(replicates):
                stacked = np.array([[np.nan if x is None else x for x in v] for v in lists], float)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a resample nan in every seed
                    mean = np.nanmean(stacked, 0) if key == FACTOR_ENTROPY_BOOT else stacked.mean(0)
                merged[key] = mean.tolist()
            else:
                merged.pop(key, None)  # different test sets: cannot be paired clip by clip
    merged[N_SEEDS] = len(replicates)
    return merged


def derive_columns(rows: list[Row]) -> list[Row]:
    """Add the width-independent disentanglement columns a row lacks (copies; inputs untouched).

    - `factor_entropy_mean`/`_std` from the paper's completeness: C = 1 − H / log K with K the
      row's code width `d_sae` (how the paper computes it), so H = (1 − C) log K. Exact for the
      mean over factors (C is linear in H_j); the paper's tables hold only completeness.
    - `effective_dims` = exp(factor_entropy_mean).
    - `completeness_sharedk_mean`/`_std` = 1 − H / log K* with one K* for every row: the widest
      code among the rows (2048 for the paper's SAEs vs 768-d dense), so only H differs.
    """
    out = []
    for row in rows:
        row = dict(row)
        c, d = row.get(completeness_key("paper")), row.get("d_sae")
        if row.get(factor_entropy_key()) is None and _finite(c) and d and d > 1:
            row[factor_entropy_key()] = (1.0 - float(c)) * math.log(d)
            c_std = row.get(completeness_key("paper", "std"))
            if c_std is not None:
                row[factor_entropy_key("std")] = float(c_std) * math.log(d)
        if row.get(EFFECTIVE_DIMS) is None and row.get(factor_entropy_key()) is not None:
            row[EFFECTIVE_DIMS] = math.exp(float(row[factor_entropy_key()]))
        out.append(row)
    k_shared = shared_k(out)
    if k_shared is not None and k_shared > 1:
        for row in out:
            h = row.get(factor_entropy_key())
            if h is not None:
                row[completeness_key("sharedk")] = 1.0 - float(h) / math.log(k_shared)
                h_std = row.get(factor_entropy_key("std"))
                if h_std is not None:
                    row[completeness_key("sharedk", "std")] = float(h_std) / math.log(k_shared)
    return out


def _finite(value: Any) -> bool:
    return value is not None and math.isfinite(float(value))


def shared_k(rows: list[Row]) -> int | None:
    """The K* of `derive_columns` (None when no row has an entropy)."""
    widths = [int(r["d_sae"]) for r in rows if r.get(factor_entropy_key()) is not None]
    return max(widths, default=None)
