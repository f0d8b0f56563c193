"""The results table of a run: one row per (layer, SAE) plus one "dense" row per layer.

Written by the evaluation callback to `<run_dir>/results/results.{json,csv}` and read by
`saelight report`. Keys of a row (absent when not computed):

- identity: `layer`, `name` ("dense" for the backbone's own pooled activations), `kind`
  ("sae" | "dense"), `architecture`, `d_sae`, `k`, `sparsity` (fraction of zeroed latents,
  1 - L0/d_sae when not configured)
- reconstruction on test: `mse`, `fvu`, `cosine`, `l0`, `dead_fraction`, `dense_fraction`
- probes per label: `probe_<label>_acc`, `probe_<label>_f1`, `probe_<label>_acc_delta` (SAE − dense,
  accuracy in [0, 1] units), `ksparse_<label>_acc`, `probe_<label>_confusion`,
  `probe_<label>_classes`
- disentanglement (paper protocol, top-10 factors by R²): `r2_mean`, `r2_std`, `completeness_mean`,
  `completeness_std`, `completeness_kfair_mean`, `completeness_kfair_std`, `top_factors` (names)
- standard scores: `dci_disentanglement`, `dci_completeness`, `dci_informativeness`, `mig`, `sap`,
  `modularity`
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from saelight.cache.format import atomic_write_bytes

RESULTS_DIR = "results"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"


def write_results(run_dir: str | Path, rows: list[dict[str, Any]], run: dict[str, Any]) -> Path:
    """Write `results.json` ({"run": ..., "rows": [...]}) and a flat `results.csv`, atomically."""
    out = Path(run_dir) / RESULTS_DIR
    atomic_write_bytes(
        out / RESULTS_JSON, json.dumps({"run": run, "rows": rows}, indent=1).encode()
    )
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    atomic_write_bytes(out / RESULTS_CSV, buffer.getvalue().encode())
    return out / RESULTS_JSON


def _cell(value: Any) -> Any:
    """Lists of names become "a;b"; nested values (confusion matrices) JSON text."""
    if isinstance(value, list):
        return ";".join(value) if all(isinstance(v, str) for v in value) else json.dumps(value)
    return value


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The results of one run directory (or the results.json path itself)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / RESULTS_DIR / RESULTS_JSON
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: run `saelight fit` (or `saelight test`) with the SAEEvaluation "
            "callback first"
        )
    return json.loads(path.read_text())
