"""`saelight report RUN_DIR [RUN_DIR ...] [--out DIR] [--wandb]`: the paper's tables and figures.

Reads `results/results.json` of each run (see `saelight.evaluation.results`) and merges their
rows, so a W&B
sweep (one run per layer × sparsity) gives the same report as one in-process grid: dense rows
repeated by several runs are kept once, a duplicated SAE keeps its first run's row, and a directory
without results (an unfinished run) is skipped; each case is listed under Notes. Rows are told
apart by (model, layer, name), where model is the backbone's hub id (plus "(frame)" for
frame-level runs), so runs of several backbones share one report.

Writes `report.md` (Markdown tables, with the verdict of each of the paper's three claims, see
`saelight.report.claims`) and one PNG per figure of `saelight.report.figures`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from saelight.evaluation.results import (
    Row,
    completeness_key,
    group_rows,
    is_dense,
    ksparse_acc_key,
    probe_acc_key,
    probed_labels,
    read_results,
    sparsity_key,
)
from saelight.io.atomic import atomic_write_text
from saelight.report.claims import Claim, check_claims, claim_line
from saelight.report.figures import figure_rgba, make_figures

log = logging.getLogger(__name__)
REPORT_FILE = "report.md"
STANDARD_SCORES = (
    "dci_disentanglement",
    "dci_completeness",
    "dci_informativeness",
    "mig",
    "sap",
    "modularity",
)


class Section(NamedTuple):
    """A report section: heading, claim lines, tables and the text shown when it has none."""

    heading: str
    claims: list[str]
    tables: list[Table]
    empty: str


@dataclass
class Table:
    """A formatted table: Markdown in `report.md`, a `wandb.Table` in W&B."""

    slug: str
    title: str
    columns: list[str]
    cells: list[list[str]]

    def markdown(self) -> str:
        lines = [
            "| " + " | ".join(self.columns) + " |",
            "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.columns))) + "|",
        ]
        lines += ["| " + " | ".join(row) + " |" for row in self.cells]
        return f"### {self.title}\n\n" + "\n".join(lines)


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
)
DISENTANGLEMENT = (
    Spec("r2", "Lasso R², top-10 factors (mean ± std)", "r2_mean", "{:.3f}", std_key="r2_std"),
    Spec("completeness", "Completeness, paper's K (mean ± std)", completeness_key("paper"),
         "{:.3f}", std_key=completeness_key("paper", "std")),
    Spec("completeness_kfair", "Completeness, K-fair (mean ± std)", completeness_key("kfair"),
         "{:.3f}", std_key=completeness_key("kfair", "std")),
)


def probe_specs(label: str) -> tuple[Spec, Spec]:
    """Accuracy tables of one label, as percentages with 2 decimals (0.8025 -> 80.25)."""
    return (
        Spec(f"probe_{label}", f"{label}: test accuracy (%)", probe_acc_key(label), "{:.2f}",
             scale=100.0),
        Spec(f"ksparse_{label}", f"{label}: k-sparse probe accuracy (%)", ksparse_acc_key(label),
             "{:.2f}", scale=100.0),
    )
# fmt: on


def _cell(
    row: Row | None, key: str, fmt: str, std_key: str | None = None, scale: float = 1.0
) -> str:
    value = None if row is None else row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = fmt.format(scale * float(value))
    if std_key is not None and row is not None and row.get(std_key) is not None:
        text += " ± " + fmt.format(scale * float(row[std_key]))
    return text


def model_label(run: dict[str, Any]) -> str:
    """'hubert-base-ls960' from the run's backbone id, plus ' (frame)' for frame-level pooling."""
    backbone = run.get("backbone") or {}
    name = backbone.get("model") if isinstance(backbone, dict) else backbone
    label = Path(str(name)).name if name else ""
    if run.get("pooling") == "frame":
        label = f"{label} (frame)".strip()
    return label


def load_rows(run_dirs: list[str | Path]) -> tuple[list[Row], list[str], list[str]]:
    """Merged rows of several runs, one line per run, and notes about dropped duplicates."""
    rows: dict[tuple[str, int, str], Row] = {}
    origin: dict[tuple[str, int, str], str] = {}
    runs, notes = [], []
    for run_dir in run_dirs:
        try:
            results = read_results(run_dir)
        except FileNotFoundError:
            # A glob over a sweep's runs can include an unfinished or crashed one.
            notes.append(f"`{run_dir}` holds no results/results.json (unfinished run?): skipped")
            continue
        run = results.get("run") or {}
        model = model_label(run)
        runs.append(
            f"`{run_dir}`: {model or 'unknown backbone'}, pooling "
            f"{run.get('pooling', '?')}, {run.get('epochs', '?')} epochs, "
            f"{len(results['rows'])} rows"
        )
        for row in results["rows"]:
            row = {**row, "model": model}
            key = (model, int(row["layer"]), str(row["name"]))
            if key not in rows:
                rows[key], origin[key] = row, str(run_dir)
            elif not is_dense(row) or _differs(rows[key], row):
                notes.append(
                    f"{row['name']} of {model} L{row['layer']} appears in `{origin[key]}` "
                    f"and `{run_dir}` with {'different' if _differs(rows[key], row) else 'equal'}"
                    f" numbers: kept `{origin[key]}`"
                )
    if not rows:
        raise FileNotFoundError(
            f"none of {[str(d) for d in run_dirs]} holds results/results.json: run `saelight fit` "
            "(or `saelight test`) with the SAEEvaluation callback first"
        )
    return list(rows.values()), runs, notes


def _differs(a: Row, b: Row) -> bool:
    keys = {k for k in set(a) | set(b) if isinstance(a.get(k, b.get(k)), (int, float))}
    return any(
        a.get(k) is None or b.get(k) is None or abs(float(a[k]) - float(b[k])) > 1e-9
        for k in keys
        if not isinstance(a.get(k), bool)
    )


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
        head = f"{round(100 * float(s), 2):g} %" if s is not None else str(r["name"])
        if len(archs) > 1 and s is not None:
            head = f"{r.get('architecture')} {head}"
        headers.setdefault(str(r["name"]), head)
    if len(set(headers.values())) < len(headers):
        headers = {name: name for name in headers}
    return list(headers.items())


def grid_table(rows: list[Row], spec: Spec) -> Table | None:
    """Layers × SAE columns of `spec.key` (plus a dense column); None if no row has the key."""
    if not any(r.get(spec.key) is not None for r in rows):
        return None
    groups = group_rows(rows)
    multi_model = len({m for m, _ in groups}) > 1
    columns = _sae_columns(rows)
    header = (["model"] if multi_model else []) + ["layer"] + (["dense"] if spec.dense else [])
    cells = []
    for (model, layer), (dense_row, saes) in groups.items():
        by_name = {str(r["name"]): r for r in saes}
        shown = ([dense_row] if spec.dense else []) + [by_name.get(name) for name, _ in columns]
        line = ([model] if multi_model else []) + [f"L{layer}"]
        cells.append(line + [_cell(r, spec.key, spec.fmt, spec.std_key, spec.scale) for r in shown])
    return Table(spec.slug, spec.title, header + [h for _, h in columns], cells)


def standard_table(rows: list[Row]) -> Table | None:
    """One line per dense/SAE row with DCI, MIG, SAP and modularity; None if none is present."""
    present = [k for k in STANDARD_SCORES if any(r.get(k) is not None for r in rows)]
    if not present:
        return None
    groups = group_rows(rows)
    multi_model = len({m for m, _ in groups}) > 1
    cells = []
    for (model, layer), (dense_row, saes) in groups.items():
        for r in ([dense_row] if dense_row else []) + saes:
            line = ([model] if multi_model else []) + [f"L{layer}", str(r["name"])]
            cells.append(line + [_cell(r, k, "{:.3f}") for k in present])
    header = (["model"] if multi_model else []) + ["layer", "representation"] + present
    return Table("standard_scores", "Standard disentanglement scores (test)", header, cells)


def build_sections(rows: list[Row], claims: dict[str, Claim]) -> list[Section]:
    """The report's three sections, each with its claims and the tables the rows allow."""
    probe = [spec for label in probed_labels(rows) for spec in probe_specs(label)]

    def made(specs: tuple[Spec, ...] | list[Spec]) -> list[Table]:
        return [t for t in (grid_table(rows, spec) for spec in specs) if t is not None]

    line = claim_line
    return [
        Section(
            "Probe accuracy",
            [line("1", claims["1"])],
            made(probe),
            "No probe results in these runs (no label could be probed).",
        ),
        Section(
            "Reconstruction",
            [line("2", claims["2"])],
            made(RECONSTRUCTION),
            "No reconstruction results.",
        ),
        Section(
            "Disentanglement",
            [line("3", claims["3"]), line("3-kfair", claims["3-kfair"])],
            made(DISENTANGLEMENT) + [t for t in [standard_table(rows)] if t],
            "No disentanglement results in these runs (SAEEvaluation(disentanglement=false), "
            "or a cache without factors): no R² or completeness table, and claim 3 cannot be "
            "checked.",
        ),
    ]


def figure_section(name: str) -> str:
    """The report section a figure of `make_figures` belongs to."""
    if name.startswith("accuracy_"):
        return "Probe accuracy"
    return "Reconstruction" if name == "reconstruction" else "Disentanglement"


def render(
    rows: list[Row],
    claims: dict[str, Claim],
    sections: list[Section],
    figures: list[str],
    runs: list[str],
    notes: list[str],
    claim_label: str,
) -> str:
    """The text of report.md."""
    models = sorted({str(r.get("model", "")) for r in rows if r.get("model")})
    out = [
        "# saelight report",
        "",
        f"Backbone(s): {', '.join(models) or 'unknown'}; claim 1 uses the `{claim_label}` probe. "
        "Paper: Mariotte et al. 2025, arXiv:2509.24793.",
        "",
        "## Claims",
        "",
    ]
    out += [claim_line(name, claim) for name, claim in claims.items()]
    for heading, claim_lines, tables, empty in sections:
        out += ["", f"## {heading}", "", *claim_lines, ""]
        out += [t.markdown() + "\n" for t in tables] or [empty, ""]
        out += [f"![{f}]({f}.png)" for f in figures if figure_section(f) == heading]
    out += ["", "## Runs", "", f"{len(runs)} run(s):", "", *[f"- {r}" for r in runs]]
    if notes:
        out += ["", "## Notes", "", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"


def log_to_wandb(run: Any, figures: dict[str, Any], tables: list[Table], rows: list[Row]) -> None:
    """Log the figures (`report/<name>` images) and tables (`report/table/<slug>`) to a W&B run."""
    import wandb

    data: dict[str, Any] = {
        f"report/{name}": wandb.Image(figure_rgba(fig), caption=name)
        for name, fig in figures.items()
    }
    for t in tables:
        data[f"report/table/{t.slug}"] = wandb.Table(columns=t.columns, data=t.cells)
    scalar = sorted({k for r in rows for k, v in r.items() if _is_scalar(v)})
    data["report/table/results"] = wandb.Table(
        columns=scalar,
        data=[[r.get(k) if _is_scalar(r.get(k)) else None for k in scalar] for r in rows],
    )
    run.log(data)


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (int, float, str, bool))


def write_report(
    run_dirs: list[str | Path],
    out: str | Path | None = None,
    wandb_run: Any = None,
    label: str = "technique",
    figures: bool = True,
    **thresholds: Any,
) -> Path:
    """Merge the runs' results and write `report.md` + PNGs into `out`; returns the report path.

    Args:
        run_dirs: run directories (or results.json paths), merged in this order.
        out: output folder (default: `<first run dir>/report`).
        wandb_run: a W&B run to also log the figures and tables to.
        label: label of claim 1.
        figures: draw the PNG figures (and log them to W&B).
        **thresholds: claim thresholds (see `saelight.report.claims.check_claims`).
    """
    if not run_dirs:
        raise ValueError("give at least one run directory")
    out = Path(out) if out is not None else Path(run_dirs[0]) / "report"
    rows, runs, notes = load_rows(run_dirs)
    claims = check_claims(rows, label, **thresholds)
    sections = build_sections(rows, claims)
    drawn = make_figures(rows) if figures else {}
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in drawn.items():
        fig.savefig(out / f"{name}.png", dpi=120)
    text = render(rows, claims, sections, list(drawn), runs, notes, label)
    path = out / REPORT_FILE
    atomic_write_text(path, text)
    if wandb_run is not None:
        log_to_wandb(wandb_run, drawn, [t for s in sections for t in s.tables], rows)
    return path


def main(args: list[str]) -> None:
    """Entry point of `saelight report`."""
    parser = argparse.ArgumentParser(
        prog="saelight report", description="Tables, figures and claim checks of finished runs."
    )
    parser.add_argument("run_dirs", nargs="+", help="run directories (trainer.default_root_dir)")
    parser.add_argument("--out", default=None, help="output folder (default: <first run>/report)")
    parser.add_argument(
        "--wandb",
        action="store_true",
        help="also log figures and tables to a new W&B run (WANDB_MODE, default offline)",
    )
    parser.add_argument("--label", default="technique", help="label whose probe claim 1 checks")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="claim 1: allowed accuracy drop in [0, 1] units (default: probe_accuracy_claim's)",
    )
    parser.add_argument(
        "--ratio",
        type=float,
        default=None,
        help="claim 2: FVU ratio highest/lowest sparsity (default: reconstruction_claim's)",
    )
    parser.add_argument("--no-figures", action="store_true", help="tables only, no PNG figures")
    ns = parser.parse_args(args)
    run = None
    if ns.wandb:
        import wandb

        wandb_dir = Path(ns.out or Path(ns.run_dirs[0]) / "report")
        wandb_dir.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project="saelight",
            job_type="report",
            dir=str(wandb_dir),
            mode=os.environ.get("WANDB_MODE", "offline"),
            config={"run_dirs": [str(d) for d in ns.run_dirs]},
        )
    try:
        path = write_report(
            ns.run_dirs,
            ns.out,
            wandb_run=run,
            label=ns.label,
            figures=not ns.no_figures,
            tolerance=ns.tolerance,
            ratio=ns.ratio,
        )
    finally:
        if run is not None:
            run.finish()
    print(f"report written to {path}")
    for line in path.read_text().split("## Claims\n\n", 1)[1].split("\n\n", 1)[0].splitlines():
        print(line)
