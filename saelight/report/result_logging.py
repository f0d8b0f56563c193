"""Result rows as logger payloads: the `<layer>/<name>/test/<metric>` scalars, confusion images and
collapse flags every logger (or the W&B run) gets at the end of an evaluation."""

from __future__ import annotations

import logging
from typing import Any

from saelight.evaluation.results import Row, confusion_labels, is_dense
from saelight.report.collapse import collapse_reasons

NOT_METRICS = ("layer", "d_sae", "k")
"""Numeric row keys that name the row rather than measure it."""


log = logging.getLogger(__name__)


def row_prefix(row: Row) -> str:
    """`L<layer>/<name>`, as `GridEntry.prefix` names the same SAE during training."""
    return f"L{row['layer']}/{row['name']}"


def test_metrics(rows: list[Row]) -> dict[str, float]:
    """Every numeric column of every row as `L<layer>/<name>/test/<column>`."""
    return {
        f"{row_prefix(r)}/test/{k}": float(v)
        for r in rows
        for k, v in r.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in NOT_METRICS
    }


def confusion_images(rows: list[Row]) -> dict[str, Any]:
    """`L<layer>/<name>/test/confusion_<label>` -> wandb.Image of each probe's confusion matrix."""
    import wandb

    from saelight.report.figures import confusion_figure, figure_rgba

    images = {}
    for row in rows:
        for label in confusion_labels(row):
            fig = confusion_figure(row, label)
            if fig is not None:
                images[f"{row_prefix(row)}/test/confusion_{label}"] = wandb.Image(figure_rgba(fig))
    return images


def collapse_flags(rows: list[Row]) -> tuple[dict[str, Any], list[str]]:
    """(W&B summary `<prefix>/collapsed` + `/collapse_reasons` per SAE row, one warning line per
    collapsed SAE), by the one rule of `saelight.report.collapse`."""
    summary: dict[str, Any] = {}
    lines = []
    for row in rows:
        if is_dense(row):
            continue
        reasons = collapse_reasons(row)
        if reasons:
            lines.append(f"L{row['layer']} {row['name']} collapsed: {'; '.join(reasons)}")
        summary[f"{row_prefix(row)}/collapsed"] = bool(reasons)
        summary[f"{row_prefix(row)}/collapse_reasons"] = "; ".join(reasons)
    return summary, lines


def log_rows(loggers: list[Any], step: int, run: Any, rows: list[Row]) -> None:
    """The rows' test metrics to every logger; confusion images and collapse flags to the W&B
    `run` (None: no W&B); one warning line per collapsed SAE."""
    for logger in loggers:
        logger.log_metrics(test_metrics(rows), step=step)
        logger.save()
    summary, lines = collapse_flags(rows)
    for line in lines:
        log.warning(line)
    if run is not None:
        run.log(confusion_images(rows))
        run.summary.update(summary)
