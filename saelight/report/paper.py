"""The paper's published numbers as result rows, so `saelight report` checks the paper itself.

`paper_results.json` (Mariotte et al. 2025 tables, see `PAPER_TABLES`) holds one table per metric:
rows "<model> L<layer>", columns "75 %" … "99 %" and "dense". `paper_rows` turns it into the rows
of `saelight.evaluation.results`, with the paper's definitions: d_sae 2048 and
k = int((1 - s) · 2048) for the SAEs, the layer width 768 for dense, completeness with the paper's
K (the code width). `saelight report paper_results.json` then goes through the same code path as a
run's results (merge, derived columns, claims, tables).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from saelight.evaluation.results import DENSE, Row, completeness_key, probe_acc_key

#: table name in the file -> row key (accuracies are stored in %, rows in [0, 1]).
PAPER_TABLES: dict[str, str] = {
    "technique_probe_accuracy_percent": probe_acc_key("technique"),
    "test_mse": "mse",
    "lasso_r2_top10_mean": "r2_mean",
    "completeness_top10_mean_paper_K": completeness_key("paper"),
}
PAPER_D_SAE, PAPER_D_IN = 2048, 768


def is_paper_results(path: str | Path) -> bool:
    """Whether `path` is a file in the `paper_results.json` format (not a run's results)."""
    path = Path(path)
    if not path.is_file() or path.suffix != ".json":
        return False
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and any(t in data for t in PAPER_TABLES)


def paper_rows(data: dict[str, Any]) -> list[Row]:
    """Result rows of the paper's tables; `model` is the backbone name ("AST", "WavLM", …)."""
    rows: dict[tuple[str, int, str], Row] = {}
    for table, key in PAPER_TABLES.items():
        if table not in data:
            continue
        columns, scale = data[table]["columns"], 0.01 if table.endswith("_percent") else 1.0
        for where, values in data[table]["rows"].items():
            model, layer = _where(where)
            for column, value in zip(columns, values, strict=True):
                if value is None:
                    continue
                row = rows.setdefault((model, layer, column), _identity(model, layer, column))
                row[key] = scale * float(value)
    return list(rows.values())


def read_paper(path: str | Path) -> tuple[list[Row], dict[str, Any]]:
    """(rows, run summary) of a `paper_results.json`."""
    data = json.loads(Path(path).read_text())
    run = {"source": data.get("source", "paper"), "pooling": "clip", "paper": True}
    return paper_rows(data), run


def _where(text: str) -> tuple[str, int]:
    match = re.fullmatch(r"(.+?)\s+L(\d+)", text.strip())
    if match is None:
        raise ValueError(f"paper table row {text!r} is not '<model> L<layer>'")
    return match.group(1), int(match.group(2))


def _identity(model: str, layer: int, column: str) -> Row:
    base = {"model": model, "layer": layer}
    if column == DENSE:
        return {**base, "name": DENSE, "kind": DENSE, "architecture": DENSE, "d_sae": PAPER_D_IN}
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*%", column)
    if match is None:
        raise ValueError(f"paper table column {column!r} is neither 'dense' nor '<sparsity> %'")
    s = float(match.group(1)) / 100
    return {
        **base,
        "name": f"topk_s{match.group(1)}",
        "kind": "sae",
        "architecture": "topk",
        "d_sae": PAPER_D_SAE,
        "k": int((1 - s) * PAPER_D_SAE),
        "sparsity": s,
    }
