"""A fit's generation: one id, made when a fit starts, carried by every artefact it writes.

A run directory is written by several fits over its life (a rerun, a resumed one, a `saelight
test`); each artefact records the fit it came from, so `saelight push` and `saelight report`
can tell a run whose results and exports belong to one fit from one that mixes two. The id is
readable (UTC start time) and unique (a random suffix): `20260102T030405Z-1a2b3c4d`.

Where it is written (each writer owns its file): `saes/<key>/cfg.json` and every entry of
`saes/best.json` (field `generation`), `results/results.json` (`run.generation`) and
`results.csv` (column `generation`), `report/report.md` (the Runs list), the explorer's
`latents.json` and page (`generation`), and `config.yaml` (its first line, a YAML comment, so
the file stays a config `saelight fit --config` takes as it is).
"""

from __future__ import annotations

import re
import time
import uuid
from pathlib import Path

GENERATION = "generation"
"""The JSON field (cfg.json, best.json entries, results.json's `run`, latents.json)."""

CONFIG_HEADER = "# saelight generation: "
"""config.yaml's first line starts with this, then the id."""

_ID = re.compile(r"^[\w.:-]{1,80}$")


def new_generation() -> str:
    """A new id: the UTC time and 8 random hex digits."""
    return f"{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}-{uuid.uuid4().hex[:8]}"


def config_header(generation: str | None) -> str:
    """The comment line that opens a fit's config.yaml ("" without a generation)."""
    return f"{CONFIG_HEADER}{generation}\n" if generation else ""


def config_generation(path: Path) -> str | None:
    """The generation a config.yaml's first line names, or None (written before ids existed,
    or a hand-written config)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            first = f.readline().strip()
    except FileNotFoundError:
        return None
    if not first.startswith(CONFIG_HEADER):
        return None
    value = first[len(CONFIG_HEADER) :].strip()
    return value if _ID.match(value) else None
