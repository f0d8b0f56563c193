"""The report's "Latent names" table: per SAE, how many live latents the explorer named above
`explorer.naming.NAMED_MIN` (held-out AUROC), by descriptor family, and how many are positional.

Read from each run's `explorer/<key>/latents.parquet` (the key names layer and sparsity), so it
appears once the explorer has run (`LatentExplorer` at fit end, or `saelight inspect`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saelight.audio.descriptors import DESCRIPTORS
from saelight.explorer.naming import NAMED_MIN
from saelight.io.layout import RunLayout
from saelight.report.splice_section import run_root
from saelight.report.tables import Table

FAMILIES = (*dict.fromkeys(d.family for d in DESCRIPTORS.values()), "factor", "label")
"""Table columns, in order: the descriptor families, then factors and labels."""


def naming_table(run_dirs: list[str | Path]) -> Table | None:
    """The table over every explorer folder of the runs, or None when none has names."""
    cells = []
    for root in (r for r in map(run_root, run_dirs) if r is not None):
        for path in sorted(RunLayout.of(root).explorer.glob("*/latents.parquet")):
            frame = pd.read_parquet(path)
            if "name_score" not in frame:
                continue
            live = frame[frame["fires"] > 0]
            named = live[live["name_score"].fillna(0) >= NAMED_MIN]
            counts = named["name_family"].value_counts()
            key = path.parent.name if len(run_dirs) == 1 else f"{root.name}/{path.parent.name}"
            cells.append(
                [key, str(len(live)), f"{len(named)} ({len(named) / max(len(live), 1):.0%})"]
                + [str(int(counts.get(f, 0))) for f in FAMILIES]
                + [str(int(live["positional_flag"].fillna(False).astype(bool).sum()))]
            )
    if not cells:
        return None
    return Table(
        slug="latent_names",
        title=f"Latents named (held-out AUROC ≥ {NAMED_MIN}), by descriptor family",
        columns=["SAE", "live", "named", *FAMILIES, "positional"],
        cells=cells,
        note="A latent's name is the descriptor range or label value whose indicator its "
        "activation detects best on half the clips, scored on the other half; positional: the "
        "frame index explains at least half its held-out variance (explorer cards list them).",
    )
