"""`saelight report RUN_DIR [RUN_DIR ...] [--out DIR] [--wandb]`: the paper's tables and figures.

Reads `results/results.json` of each run (see `saelight.results`) and merges their rows, so a W&B
sweep (one run per layer × sparsity) gives the same report as one in-process grid: dense rows
repeated by several runs are kept once, and a duplicated SAE keeps its first run's row (both are
listed under Notes). Rows are told apart by (model, layer, name), where model is the backbone's hub
id (plus "(frame)" for frame-level runs), so runs of several backbones share one report.

Writes `report.md` (Markdown tables, with the verdict of each of the paper's three claims, see
`saelight.report_claims`) and one PNG per figure of `saelight.report_figures`.
"""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from saelight.report_claims import (
    Claim,
    Row,
    check_claims,
    claim_line,
    group_rows,
    probed_labels,
    sparsity_key,
)
from saelight.report_figures import figure_rgba, make_figures
from saelight.results import read_results

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


def fmt_pct(v: float) -> str:
    """Accuracy in [0, 1] as a percentage with 2 decimals, e.g. 0.8025 -> '80.25'."""
    return f"{100 * v:.2f}"


def fmt_g4(v: float) -> str:
    """4 significant digits (MSE spans orders of magnitude across backbones)."""
    return f"{v:.4g}"


def fmt_f3(v: float) -> str:
    return f"{v:.3f}"


def fmt_f4(v: float) -> str:
    return f"{v:.4f}"


def _cell(
    row: Row | None, key: str, fmt: Callable[[float], str], std_key: str | None = None
) -> str:
    value = None if row is None else row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    text = fmt(float(value))
    if std_key is not None and row is not None and row.get(std_key) is not None:
        text += f" ± {fmt(float(row[std_key]))}"
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
        results = read_results(run_dir)
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
            elif row.get("kind") != "dense" or _differs(rows[key], row):
                notes.append(
                    f"{row['name']} of {model} L{row['layer']} appears in `{origin[key]}` "
                    f"and `{run_dir}` with {'different' if _differs(rows[key], row) else 'equal'}"
                    f" numbers: kept `{origin[key]}`"
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
        (r for r in rows if r.get("kind") != "dense"),
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


def grid_table(
    rows: list[Row],
    slug: str,
    title: str,
    key: str,
    fmt: Callable[[float], str],
    dense: bool = True,
    std_key: str | None = None,
) -> Table | None:
    """Layers × SAE columns of `key` (with a dense column); None if no row has `key`."""
    if not any(r.get(key) is not None for r in rows):
        return None
    groups = group_rows(rows)
    multi_model = len({m for m, _ in groups}) > 1
    columns = _sae_columns(rows)
    header = (["model"] if multi_model else []) + ["layer"] + (["dense"] if dense else [])
    cells = []
    for (model, layer), (dense_row, saes) in groups.items():
        by_name = {str(r["name"]): r for r in saes}
        line = ([model] if multi_model else []) + [f"L{layer}"]
        line += [_cell(dense_row, key, fmt, std_key)] if dense else []
        line += [_cell(by_name.get(name), key, fmt, std_key) for name, _ in columns]
        cells.append(line)
    return Table(slug, title, header + [h for _, h in columns], cells)


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
            cells.append(line + [_cell(r, k, fmt_f3) for k in present])
    header = (["model"] if multi_model else []) + ["layer", "representation"] + present
    return Table("standard_scores", "Standard disentanglement scores (test)", header, cells)


def build_sections(
    rows: list[Row], claims: dict[str, Claim]
) -> list[tuple[str, list[str], list[Table], str]]:
    """(heading, claim lines, tables, text when empty) per report section."""
    probe = [
        t
        for label in probed_labels(rows)
        for t in (
            grid_table(
                rows, f"probe_{label}", f"{label}: test accuracy (%)", f"probe_{label}_acc", fmt_pct
            ),
            grid_table(
                rows,
                f"ksparse_{label}",
                f"{label}: k-sparse probe accuracy (%)",
                f"ksparse_{label}_acc",
                fmt_pct,
            ),
        )
        if t
    ]
    recon = [
        t
        for t in (
            grid_table(rows, "mse", "MSE (test)", "mse", fmt_g4, dense=False),
            grid_table(
                rows, "fvu", "FVU = 1 − explained variance (test)", "fvu", fmt_f4, dense=False
            ),
            grid_table(
                rows,
                "dead_fraction",
                "Dead latent fraction (test)",
                "dead_fraction",
                fmt_f3,
                dense=False,
            ),
        )
        if t
    ]
    dis = [
        t
        for t in (
            grid_table(
                rows,
                "r2",
                "Lasso R², top-10 factors (mean ± std)",
                "r2_mean",
                fmt_f3,
                std_key="r2_std",
            ),
            grid_table(
                rows,
                "completeness",
                "Completeness, paper's K (mean ± std)",
                "completeness_mean",
                fmt_f3,
                std_key="completeness_std",
            ),
            grid_table(
                rows,
                "completeness_kfair",
                "Completeness, K-fair (mean ± std)",
                "completeness_kfair_mean",
                fmt_f3,
                std_key="completeness_kfair_std",
            ),
            standard_table(rows),
        )
        if t
    ]
    line = claim_line
    return [
        (
            "Probe accuracy",
            [line("1", claims["1"])],
            probe,
            "No probe results in these runs (no label could be probed).",
        ),
        ("Reconstruction", [line("2", claims["2"])], recon, "No reconstruction results."),
        (
            "Disentanglement",
            [line("3", claims["3"]), line("3-kfair", claims["3-kfair"])],
            dis,
            "No disentanglement results in these runs (SAEEvaluation(disentanglement=false), or a "
            "cache without factors): no R² or completeness table, and claim 3 cannot be checked.",
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
    sections: list,
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
        f"{len(runs)} run(s), backbone(s): {', '.join(models) or 'unknown'}; "
        f"claim 1 uses the `{claim_label}` probe. Paper: Mariotte et al. 2025, arXiv:2509.24793.",
        "",
        "## Claims",
        "",
    ]
    out += [claim_line(name, claim) for name, claim in claims.items()]
    for heading, claim_lines, tables, empty in sections:
        out += ["", f"## {heading}", "", *claim_lines, ""]
        out += [t.markdown() + "\n" for t in tables] or [empty, ""]
        out += [f"![{f}]({f}.png)" for f in figures if figure_section(f) == heading]
    out += ["", "## Runs", "", *[f"- {r}" for r in runs]]
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
    **thresholds: Any,
) -> Path:
    """Merge the runs' results and write `report.md` + PNGs into `out`; returns the report path.

    Args:
        run_dirs: run directories (or results.json paths), merged in this order.
        out: output folder (default: `<first run dir>/report`).
        wandb_run: a W&B run to also log the figures and tables to.
        label: label of claim 1.
        **thresholds: claim thresholds (see `saelight.report_claims.check_claims`).
    """
    if not run_dirs:
        raise ValueError("give at least one run directory")
    out = Path(out) if out is not None else Path(run_dirs[0]) / "report"
    rows, runs, notes = load_rows(run_dirs)
    claims = check_claims(rows, label, **thresholds)
    sections = build_sections(rows, claims)
    figures = make_figures(rows)
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in figures.items():
        fig.savefig(out / f"{name}.png", dpi=120)
    text = render(rows, claims, sections, list(figures), runs, notes, label)
    path = out / REPORT_FILE
    tmp = path.with_name(f".{REPORT_FILE}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    if wandb_run is not None:
        log_to_wandb(wandb_run, figures, [t for s in sections for t in s[2]], rows)
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
        help="claim 1: allowed accuracy drop in [0, 1] units (default 0.05)",
    )
    parser.add_argument(
        "--ratio",
        type=float,
        default=None,
        help="claim 2: required FVU ratio highest/lowest sparsity (default 1.5)",
    )
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
            tolerance=ns.tolerance,
            ratio=ns.ratio,
        )
    finally:
        if run is not None:
            run.finish()
    print(f"report written to {path}")
    for line in path.read_text().split("## Claims\n\n", 1)[1].split("\n\n", 1)[0].splitlines():
        print(line)
