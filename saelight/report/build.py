"""The report of `saelight report RUN_DIR [RUN_DIR ...]`: the paper's tables, figures and claims.

Reads `results/results.json` of each run (see `saelight.evaluation.results`), or the paper's own
`paper_results.json` (`saelight.report.paper`), and merges their rows (`saelight.report.runs`):
a W&B sweep (one run per layer × sparsity) gives the same report as one in-process grid, and runs
of several seeds give mean ± std across seeds.

Writes `report.md` (Markdown tables, with the verdict, rule and numbers of each of the paper's
claims, see `saelight.report.claims`, and every SAE − dense difference with its 95 % interval,
see `saelight.report.intervals`) and one PNG per figure of `saelight.report.figures`. A run that
holds `splice/splice.json` (`saelight splice`, or `SAEEvaluation(splice=True)`) adds a "Causal
evaluation" section: its fidelity and ablation tables and its figure (`report.splice_section`),
with the ⚠ of a collapsed SAE (`report.collapse`) on its rows as on the claims that use it.
A run whose explorer named its latents adds a "Latent names" table (`report.naming_section`).
A run on a planted cache (`saelight planted`) adds a "Planted ground truth" table
(`report.planted_section`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, NamedTuple

from saelight.evaluation.results import Row, probed_labels
from saelight.io.atomic import atomic_savefig, atomic_write_text
from saelight.report.claims import THRESHOLDS, Claim, check_claims, claim_line
from saelight.report.figures import figure_rgba, make_figures
from saelight.report.intervals import Resamples
from saelight.report.naming_section import naming_table
from saelight.report.planted_section import PLANTED_HEADING, planted_table
from saelight.report.runs import load_rows, shared_k
from saelight.report.splice_section import splice_parts
from saelight.report.tables import (
    DISENTANGLEMENT,
    RECONSTRUCTION,
    Table,
    accuracy_difference_table,
    dims_ratio_table,
    grid_table,
    probe_specs,
    sharedk_spec,
    standard_table,
)

log = logging.getLogger(__name__)
REPORT_FILE = "report.md"
CAUSAL = "Causal evaluation"


class Section(NamedTuple):
    """A report section: heading, claim lines, tables and the text shown when it has none."""

    heading: str
    claims: list[str]
    tables: list[Table]
    empty: str


def build_sections(
    rows: list[Row], claims: dict[str, Claim], resamples: Resamples | None = None
) -> list[Section]:
    """The report's three sections, each with its claims and the tables the rows allow."""
    resamples = resamples or Resamples()
    probe: list[Table] = []
    for label in probed_labels(rows):
        acc, ksparse = (grid_table(rows, spec) for spec in probe_specs(label))
        delta = accuracy_difference_table(rows, label, resamples)
        probe += [t for t in (acc, delta, ksparse) if t is not None]
    k = shared_k(rows)
    disentangle = list(DISENTANGLEMENT) + ([sharedk_spec(k)] if k else [])
    tables = [t for t in (grid_table(rows, spec) for spec in disentangle) if t is not None]
    ratio = dims_ratio_table(rows, resamples)
    if ratio is not None:
        tables.insert(2, ratio)

    def lines(prefix: str) -> list[str]:
        """The claim's lines, its "+baseline" verdict included."""
        return [
            claim_line(n, c)
            for n, c in claims.items()
            if n.split(":")[0] in (prefix, f"{prefix}+baseline")
        ]

    return [
        Section(
            "Probe accuracy",
            lines("1"),
            probe,
            "No probe results in these runs (no label could be probed).",
        ),
        Section(
            "Reconstruction",
            lines("2"),
            [t for t in (grid_table(rows, spec) for spec in RECONSTRUCTION) if t is not None],
            "No reconstruction results.",
        ),
        Section(
            "Disentanglement",
            lines("3") + lines("3-paper") + lines("4"),
            tables + [t for t in [standard_table(rows)] if t],
            "No disentanglement results in these runs (SAEEvaluation(disentanglement=false), "
            "or a cache without factors): no R² or completeness table, and claim 3 cannot be "
            "checked.",
        ),
    ]


def figure_section(name: str) -> str:
    """The report section a figure of `make_figures` (or a copied splice.png) belongs to."""
    if name.startswith("splice"):
        return CAUSAL
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
) -> str:
    """The text of report.md."""
    models = sorted({str(r.get("model", "")) for r in rows if r.get("model")})
    labels = [n.split(":", 1)[1] for n in claims if n.startswith("1:")]
    out = [
        "# saelight report",
        "",
        f"Backbone(s): {', '.join(models) or 'unknown'}; claim 1 is checked on the "
        f"{', '.join(f'`{label}`' for label in labels)} probe(s). Paper: Mariotte et al. 2025, "
        "arXiv:2509.24793. A claim holds when its rule, written under it, holds on the point "
        "estimates and on the 95 % interval where the rows allow one.",
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


def log_to_wandb(
    run: Any,
    figures: dict[str, Any],
    tables: list[Table],
    rows: list[Row],
    images: dict[str, Path] | None = None,
) -> None:
    """Log the figures (`report/<name>` images), tables (`report/table/<slug>`) and PNGs already
    on disk (`images`: {name: path}, the copied splice figures) to a W&B run."""
    import wandb

    data: dict[str, Any] = {
        f"report/{name}": wandb.Image(figure_rgba(fig), caption=name)
        for name, fig in figures.items()
    }
    for name, path in (images or {}).items():
        data[f"report/{name}"] = wandb.Image(str(path), caption=name)
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
    labels: list[str] | None = None,
    figures: bool = True,
    label: str | None = None,
    **thresholds: Any,
) -> Path:
    """Merge the runs' results and write `report.md` + PNGs into `out`; returns the report path.

    Args:
        run_dirs: run directories (or results.json paths, or the paper's paper_results.json),
            merged in this order.
        out: output folder (default: `<first run dir>/report`, or `report` beside a file).
        wandb_run: a W&B run to also log the figures and tables to.
        labels: labels of claim 1 (default: every probed label).
        figures: draw the PNG figures (and log them to W&B).
        label: one label of claim 1, when `labels` is not given (the older single-label form).
        **thresholds: claim thresholds (see `saelight.report.claims.check_claims`).
    """
    if not run_dirs:
        raise ValueError("give at least one run directory")
    first = Path(run_dirs[0])
    out = Path(out) if out is not None else (first if first.is_dir() else first.parent) / "report"
    rows, runs, notes = load_rows(run_dirs)
    claims = check_claims(rows, labels or ([label] if label else None), **thresholds)
    boot = {k: thresholds[k] for k in THRESHOLDS["intervals"] if thresholds.get(k) is not None}
    sections = build_sections(rows, claims, Resamples(**boot))
    drawn = make_figures(rows) if figures else {}
    out.mkdir(parents=True, exist_ok=True)
    for name, fig in drawn.items():
        atomic_savefig(fig, out / f"{name}.png", dpi=120)
    intro, splice_tables, copied = splice_parts(run_dirs, out, figures, rows)
    if splice_tables:
        sections.append(Section(CAUSAL, intro, splice_tables, ""))
    planted = planted_table(rows)
    if planted is not None:
        sections.append(Section(PLANTED_HEADING, [], [planted], ""))
    names = naming_table(run_dirs)
    if names is not None:
        sections.append(Section("Latent names", [], [names], ""))
    text = render(rows, claims, sections, [*drawn, *copied], runs, notes)
    path = out / REPORT_FILE
    atomic_write_text(path, text)
    if wandb_run is not None:
        images = {name: out / f"{name}.png" for name in copied}
        log_to_wandb(wandb_run, drawn, [t for s in sections for t in s.tables], rows, images)
    return path
