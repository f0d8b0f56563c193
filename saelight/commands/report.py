"""`saelight report RUN_DIR [RUN_DIR ...]`: tables, figures and claims of finished runs."""

from __future__ import annotations

import sys
from pathlib import Path

from saelight.io.layout import RunLayout


def report(
    run_dirs: list[str],
    out: str | None = None,
    wandb: bool = False,
    labels: list[str] | None = None,
    tolerance: float | None = None,
    max_drop: float | None = None,
    ratio: float | None = None,
    max_ratio: float | None = None,
    figures: bool = True,
) -> None:
    """Tables, figures and the paper's claim checks of finished runs, merged into one report.

    Reads `results/results.json` of each run directory (or the paper's `paper_results.json`),
    refusing a run directory whose files come from different fits (their generation ids), so
    the runs of a W&B sweep (one per layer × sparsity) give the same report as one in-process
    grid, and runs of several seeds give mean ± std across seeds.

    Args:
        run_dirs: run directories (`trainer.default_root_dir` of `saelight fit`).
        out: output folder (default: `<first run>/report`).
        wandb: also log the figures and tables to a new W&B run (WANDB_MODE, default offline).
        labels: labels whose probe accuracy claim 1 checks (default: every probed label).
        tolerance: claim 1's allowed median accuracy drop in [0, 1] units (default: the claim's).
        max_drop: claim 1's allowed drop of any one SAE in [0, 1] units (default: the claim's).
        ratio: claim 2's error ratio, sparsest SAE / next sparsity down (default: the claim's).
        max_ratio: claim 3's bound on the median effective-dims ratio SAE / dense (default: 1).
        figures: draw the PNG figures (`--no_figures`: tables only).
    """
    from saelight.io.errors import SaelightError
    from saelight.io.wandb_run import new_wandb_run
    from saelight.report.build import write_report
    from saelight.report.generations import check_generations

    if out is not None and Path(out).exists() and not Path(out).is_dir():
        raise SaelightError(f"--out {out} is a file, expected a folder")
    for run_dir in run_dirs:  # each run's own files must come from one fit
        note = check_generations(run_dir) if Path(run_dir).is_dir() else None
        if note:
            print(f"saelight: note: {note}", file=sys.stderr)
    run = None
    if wandb:
        folder = Path(out or RunLayout.of(run_dirs[0]).report)
        run = new_wandb_run("report", folder, {"run_dirs": [str(d) for d in run_dirs]})
    try:
        path = write_report(
            list(run_dirs),
            out,
            wandb_run=run,
            labels=labels,
            figures=figures,
            tolerance=tolerance,
            max_drop=max_drop,
            ratio=ratio,
            max_ratio=max_ratio,
        )
    finally:
        if run is not None:
            run.finish()
    print(f"report written to {path}")
    for line in path.read_text().split("## Claims\n\n", 1)[1].split("\n\n", 1)[0].splitlines():
        print(line)
