"""Whether the files of a run directory come from one fit: the generation check of `push` and
`report`.

Every artefact a fit writes carries its generation (`saelight.io.generation`). A run directory
rerun, or killed mid-rerun, can hold exports of one fit beside results of another, and a model
card would then publish one fit's metrics beside another's weights. `check_generations` reads
the id of each file that `push` and `report` rely on (config.yaml, saes/best.json, each export's
cfg.json, results/results.json) and refuses, in one line naming the files, when they disagree.
Files written before saelight tracked generations carry none: they are accepted with a note (an
id cannot be checked that was never written), so older runs still push and report.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from saelight.evaluation.results import RESULTS_DIR, RESULTS_JSON
from saelight.io.errors import SaelightError
from saelight.io.generation import GENERATION, config_generation
from saelight.io.layout import RunLayout
from saelight.sae.export_files import CFG_FILE

SHOWN = 3
"""Files named per generation in the error line; the rest are counted."""


class MixedGenerationsError(SaelightError):
    """The files of one run directory were written by different fits."""


def run_generations(run_dir: str | Path) -> dict[str, str | None]:
    """{file relative to the run directory: its generation id, or None when it carries none}
    for the files of `run_dir` that exist and are readable."""
    layout = RunLayout.of(run_dir)
    found: dict[str, str | None] = {}
    if layout.config.is_file():
        found[layout.config.name] = config_generation(layout.config)
    best = _json(layout.best)
    if isinstance(best, dict) and best:
        ids = {_id(e.get(GENERATION)) for e in best.values() if isinstance(e, dict)}
        found[f"{layout.saes.name}/{layout.best.name}"] = ids.pop() if len(ids) == 1 else None
    for folder in layout.exported_saes():
        cfg = _json(folder / CFG_FILE)
        if isinstance(cfg, dict):
            found[f"{layout.saes.name}/{folder.name}/{CFG_FILE}"] = _id(cfg.get(GENERATION))
    results = _json(layout.root / RESULTS_DIR / RESULTS_JSON)
    if isinstance(results, dict) and isinstance(results.get("run"), dict):
        found[f"{RESULTS_DIR}/{RESULTS_JSON}"] = _id(results["run"].get(GENERATION))
    return found


def check_generations(run_dir: str | Path) -> str | None:
    """Raises `MixedGenerationsError` when the run's files name two or more generations; returns
    a note when some files carry no id (written before ids existed), else None."""
    found = run_generations(run_dir)
    by_id: dict[str, list[str]] = defaultdict(list)
    for name, generation in found.items():
        if generation is not None:
            by_id[generation].append(name)
    if len(by_id) > 1:
        parts = [f"{_names(names)} are from fit {gid}" for gid, names in sorted(by_id.items())]
        raise MixedGenerationsError(
            f"run {run_dir} mixes the files of {len(by_id)} fits: {'; '.join(parts)}",
            hint="rerun `saelight fit` on that directory (or fit into a new one) so that "
            "every file comes from one fit",
        )
    unmarked = [name for name, generation in found.items() if generation is None]
    if unmarked and by_id:
        return (
            f"run {run_dir}: {_names(unmarked)} carry no generation id (written before saelight "
            "recorded one), so they cannot be checked against the rest"
        )
    return None


def _names(names: list[str]) -> str:
    shown = ", ".join(names[:SHOWN])
    return shown + (f" and {len(names) - SHOWN} more" if len(names) > SHOWN else "")


def _id(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _json(path: Path) -> Any:
    """The parsed file, or None when it is missing or unreadable (the command that reads it for
    real names that problem itself)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
