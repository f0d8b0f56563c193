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
from collections import defaultdict
from pathlib import Path
from typing import Any

from saelight.io.atomic import atomic_write_bytes

RESULTS_DIR = "results"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"

Row = dict[str, Any]
GroupKey = tuple[str, int]
"""(model, layer): rows of merged runs are told apart by the backbone's `model` label."""
DENSE = "dense"
"""`name` and `kind` of the backbone's own activations."""
COMPLETENESS_VARIANTS = {"paper": "completeness", "kfair": "completeness_kfair"}
"""Completeness columns: paper's log K, and log K_alive ("K-fair"); each has `_mean`/`_std`."""


def probe_acc_key(label: str) -> str:
    return f"probe_{label}_acc"


def probe_f1_key(label: str) -> str:
    return f"probe_{label}_f1"


def probe_delta_key(label: str) -> str:
    """SAE − dense accuracy of `label`, in [0, 1] units."""
    return f"probe_{label}_acc_delta"


def probe_confusion_key(label: str) -> str:
    return f"probe_{label}_confusion"


def probe_classes_key(label: str) -> str:
    return f"probe_{label}_classes"


def ksparse_acc_key(label: str) -> str:
    """Accuracy of the k-sparse probe (the k best single latents) on `label`."""
    return f"ksparse_{label}_acc"


def completeness_key(variant: str = "paper", stat: str = "mean") -> str:
    """`completeness_mean`, `completeness_kfair_std`, …; `variant` in COMPLETENESS_VARIANTS."""
    if variant not in COMPLETENESS_VARIANTS:
        raise ValueError(
            f"completeness variant {variant!r}; allowed: {list(COMPLETENESS_VARIANTS)}"
        )
    return f"{COMPLETENESS_VARIANTS[variant]}_{stat}"


def is_dense(row: Row) -> bool:
    return row.get("kind") == DENSE


def probed_labels(rows: list[Row]) -> list[str]:
    """Labels with a probe accuracy in any row, technique first, then alphabetical."""
    prefix, suffix = probe_acc_key(""), probe_acc_key("x")[-len("_acc") :]
    prefix = prefix[: -len(suffix)]
    names = {
        k[len(prefix) : -len(suffix)]
        for r in rows
        for k in r
        if k.startswith(prefix) and k.endswith(suffix) and not k.endswith("_acc_delta")
    }
    return sorted(names, key=lambda n: (n != "technique", n))


def confusion_labels(row: Row) -> list[str]:
    """Labels whose confusion matrix the row holds."""
    return [label for label in probed_labels([row]) if row.get(probe_confusion_key(label))]


def sparsity_key(row: Row) -> tuple[float, str]:
    """Sort key: numeric sparsity (missing last), then name."""
    s = row.get("sparsity")
    return (float(s) if s is not None else float("inf"), str(row.get("name", "")))


def group_rows(rows: list[Row]) -> dict[GroupKey, tuple[Row | None, list[Row]]]:
    """{(model, layer): (dense row or None, SAE rows sorted by sparsity)}."""
    groups: dict[GroupKey, tuple[list[Row], list[Row]]] = defaultdict(lambda: ([], []))
    for row in rows:
        key = (str(row.get("model", "")), int(row["layer"]))
        groups[key][0 if is_dense(row) else 1].append(row)
    return {
        key: (dense[0] if dense else None, sorted(saes, key=sparsity_key))
        for key, (dense, saes) in sorted(groups.items())
    }


def where(key: GroupKey, row: Row | None = None) -> str:
    """Human name of a layer (and SAE), e.g. 'hubert-base-ls960 L3 topk_s90'."""
    model, layer = key
    text = f"{model} L{layer}".strip()
    return f"{text} {row.get('name', '?')}" if row is not None else text


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
