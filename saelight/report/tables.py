"""The report's tables: layers × sparsities grids of one row key, SAE − dense differences with their
95 % intervals, and the standard disentanglement scores; Markdown in `report.md`, `wandb.Table`
in W&B.

A cell shows "mean ± std": the std across seeds when the row merges several seeds (see
`saelight.report.runs`, the title then says so), else the spread the key's `std_key` holds (over
factors for R² and completeness).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from saelight.evaluation.results import (
    EFFECTIVE_DIMS,
    N_SEEDS,
    STABILITY,
    Row,
    completeness_key,
    group_rows,
    is_dense,
    ksparse_acc_key,
    probe_acc_key,
    seed_std_key,
    sparsity_key,
)
from saelight.report.intervals import Resamples, accuracy_interval, entropy_samples, fmt_interval
from saelight.report.verdict import pct, points

STANDARD_SCORES = (
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "mig",
    "sap",
    "modularity",
)


@dataclass
class Table:
    """A formatted table: Markdown in `report.md`, a `wandb.Table` in W&B."""

    slug: str
    title: str
    columns: list[str]
    cells: list[list[str]]
    note: str = ""
    """a line under the Markdown table that says how to read it (not in W&B)."""

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.cells]
        note = f"\n\n{self.note}" if self.note else ""
        return f"### {self.title}\n\n" + "\n".join(lines) + note


class Spec(NamedTuple):
    """One layers × sparsities table: which row key, how to format it, with which extras."""

    slug: str
    title: str
    key: str
    fmt: str
    """format() spec of one value, e.g. "{:.4g}"."""
    dense: bool = True
    """add the dense column."""
    std_key: str | None = None
    """key of a standard deviation shown as "mean ± std"."""
    scale: float = 1.0
    """factor applied before formatting (100 for accuracies in %)."""


# fmt: off
RECONSTRUCTION = (
    # 4 significant digits: MSE spans orders of magnitude across backbones (AST ~10x).
    Spec("mse", "MSE (test)", "mse", "{:.4g}", dense=False),
    Spec("fvu", "FVU = 1 − explained variance (test)", "fvu", "{:.4f}", dense=False),
    Spec("dead_fraction", "Dead latent fraction (test)", "dead_fraction", "{:.3f}", dense=False),
    Spec("stability", "Seed stability: mean pairwise MCC of the seeds' decoders (1 = one "
         "dictionary)", STABILITY, "{:.3f}", dense=False),
)
DISENTANGLEMENT = (
    Spec("r2", "Lasso R², top-10 factors (mean ± std)", "r2_mean", "{:.3f}", std_key="r2_std"),
    Spec("effective_dims", "Effective dims per factor, exp(H) (K-independent; claim 3)",
         EFFECTIVE_DIMS, "{:.2f}"),
    Spec("completeness", "Completeness, paper's K = code width (mean ± std)",
         completeness_key("paper"), "{:.3f}", std_key=completeness_key("paper", "std")),
    Spec("completeness_kfair", "Completeness, K-fair = log K_alive (mean ± std)",
         completeness_key("kfair"), "{:.3f}", std_key=completeness_key("kfair", "std")),
)
# fmt: on


def sharedk_spec(k: int) -> Spec:
    """Completeness with one K for every representation (`saelight.report.runs.derive_columns`)."""
    title = f"Completeness, one shared K = {k} for every representation (mean ± std)"
    key, std = completeness_key("sharedk"), completeness_key("sharedk", "std")
    return Spec("completeness_sharedk", title, key, "{:.3f}", std_key=std)


def probe_specs(label: str) -> tuple[Spec, Spec]:
    """Accuracy tables of one label, as percentages with 2 decimals (0.8025 -> 80.25)."""
    acc, ksparse = probe_acc_key(label), ksparse_acc_key(label)
    return (
        Spec(f"probe_{label}", f"{label}: test accuracy (%)", acc, "{:.2f}", scale=100.0),
        Spec(f"ksparse_{label}", f"{label}: k-sparse probe accuracy (%)", ksparse, "{:.2f}",
             scale=100.0),
    )  # fmt: skip


def _cell(
    row: Row | None, key: str, fmt: str, std_key: str | None = None, scale: float = 1.0
) -> str:
    value = None if row is None else row.get(key)
    if row is None or value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = fmt.format(scale * float(value))
    spread = row.get(seed_std_key(key)) if row.get(N_SEEDS, 1) > 1 else row.get(std_key or "")
    if spread is not None and not math.isnan(float(spread)):
        text += " ± " + fmt.format(scale * float(spread))
    return text


def _sae_columns(rows: list[Row]) -> list[tuple[str, str]]:
    """(SAE name, column header) sorted by sparsity: '75 %', or 'topk 75 %' with several
    architectures, or the name when sparsities collide."""
    saes = sorted(
        (r for r in rows if not is_dense(r)),
        key=lambda r: (sparsity_key(r), str(r.get("architecture", ""))),
    )
    archs = {r.get("architecture") for r in saes}
    headers: dict[str, str] = {}
    for r in saes:
        s = r.get("sparsity")
        head = pct(float(s)) if s is not None else str(r["name"])
        if len(archs) > 1 and s is not None:
            head = f"{r.get('architecture')} {head}"
        headers.setdefault(str(r["name"]), head)
    if len(set(headers.values())) < len(headers):
        headers = {name: name for name in headers}
    return list(headers.items())


CellFn = Callable[[Row | None, Row | None], str]
"""(SAE row or the dense row itself, the layer's dense row) -> cell text."""


def grid(rows: list[Row], slug: str, title: str, cell: CellFn, dense: bool = True) -> Table:
    """Layers × SAE columns (plus a dense column), each cell from `cell(row, dense_row)`."""
    groups = group_rows(rows)
    multi_model = len({m for m, _ in groups}) > 1
    columns = _sae_columns(rows)
    header = (["model"] if multi_model else []) + ["layer"] + (["dense"] if dense else [])
    cells = []
    for (model, layer), (dense_row, saes) in groups.items():
        by_name = {str(r["name"]): r for r in saes}
        shown = ([dense_row] if dense else []) + [by_name.get(name) for name, _ in columns]
        line = ([model] if multi_model else []) + [f"L{layer}"]
        cells.append(line + [cell(r, dense_row) for r in shown])
    return Table(slug, title, header + [h for _, h in columns], cells)


def _seed_note(rows: list[Row], key: str) -> str:
    seeds = max((int(r.get(N_SEEDS, 1)) for r in rows if r.get(key) is not None), default=1)
    return f"; ± = std across {seeds} seeds" if seeds > 1 else ""


def grid_table(rows: list[Row], spec: Spec) -> Table | None:
    """Layers × SAE columns of `spec.key` (plus a dense column); None if no row has the key."""
    if not any(r.get(spec.key) is not None for r in rows):
        return None

    def cell(row: Row | None, _: Row | None) -> str:
        return _cell(row, spec.key, spec.fmt, spec.std_key, spec.scale)

    return grid(rows, spec.slug, spec.title + _seed_note(rows, spec.key), cell, spec.dense)


def accuracy_difference_table(rows: list[Row], label: str, resamples: Resamples) -> Table | None:
    """SAE − dense accuracy of `label` in points, with its paired interval where rows allow."""
    key = probe_acc_key(label)
    if not any(r.get(key) is not None and not is_dense(r) for r in rows):
        return None

    def cell(row: Row | None, dense: Row | None) -> str:
        if row is None or dense is None or row.get(key) is None or dense.get(key) is None:
            return "–"
        interval = accuracy_interval(row, dense, label, resamples)
        return f"{points(row[key] - dense[key])} {fmt_interval(interval)}".strip()

    title = (
        f"{label}: SAE − dense accuracy (points), {pct(resamples.level)} paired bootstrap "
        "interval over test clips"
    )
    return grid(rows, f"probe_{label}_delta", title, cell, dense=False)


def dims_ratio_table(rows: list[Row], resamples: Resamples) -> Table | None:
    """D_SAE / D_dense effective dims, with the paired interval when rows hold bootstrap values."""
    if not any(r.get(EFFECTIVE_DIMS) is not None and not is_dense(r) for r in rows):
        return None

    def cell(row: Row | None, dense: Row | None) -> str:
        if (
            row is None
            or dense is None
            or not row.get(EFFECTIVE_DIMS)
            or not dense.get(EFFECTIVE_DIMS)
        ):
            return "–"
        text = f"{row[EFFECTIVE_DIMS] / dense[EFFECTIVE_DIMS]:.2f}"
        samples = entropy_samples(row, dense)
        if samples is not None and math.isfinite(float(sum(samples))):
            i = resamples.interval(0.0, samples)
            text += f" [{math.exp(i.low):.2f}, {math.exp(i.high):.2f}]"
        return text

    title = f"Effective dims, SAE / dense (< 1: fewer dims per factor; {pct(resamples.level)} "
    title += "interval where the rows hold bootstrap values)"
    return grid(rows, "effective_dims_ratio", title, cell, dense=False)


INFORMATIVENESS = "dci_informativeness"
INFORMATIVENESS_NOTE = (
    "`dci_informativeness` is the mean over factors of the held-out score of the DCI Lassos: "
    "R² = 1 − SS_res / SS_tot for a continuous factor, argmax accuracy for a label. R² has no "
    "lower bound: it is negative when a Lasso predicts the few hundred test rows worse than "
    "their mean would, and a few such factors pull the mean far below 0. A negative value is "
    "shown clipped at 0 (no information) with the raw mean beside it; see "
    "docs/metrics_disentanglement.md."
)


def _informativeness(row: Row) -> str:
    """The informativeness cell: as is when >= 0, else '0.000 (raw -33.970)'."""
    text = _cell(row, INFORMATIVENESS, "{:.3f}")
    raw = row.get(INFORMATIVENESS)
    if raw is None or math.isnan(float(raw)) or float(raw) >= 0:
        return text
    return f"{0.0:.3f} (raw {text})"


def standard_table(rows: list[Row]) -> Table | None:
    """One line per dense/SAE row with DCI, MIG, SAP and modularity; None if none is present.
    A negative `dci_informativeness` (held-out R²) is shown clipped at 0 beside its raw value,
    and a note under the table says why it can be negative."""
    present = [k for k in STANDARD_SCORES if any(r.get(k) is not None for r in rows)]
    if not present:
        return None
    groups = group_rows(rows)
    multi_model = len({m for m, _ in groups}) > 1
    cells = []
    for (model, layer), (dense_row, saes) in groups.items():
        for r in ([dense_row] if dense_row else []) + saes:
            line = ([model] if multi_model else []) + [f"L{layer}", str(r["name"])]
            line += [
                _informativeness(r) if k == INFORMATIVENESS else _cell(r, k, "{:.3f}")
                for k in present
            ]
            cells.append(line)
    header = (["model"] if multi_model else []) + ["layer", "representation"] + present
    note = INFORMATIVENESS_NOTE if INFORMATIVENESS in present else ""
    title = "Standard disentanglement scores (test)"
    return Table("standard_scores", title, header, cells, note)
