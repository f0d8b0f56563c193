"""The report's "Planted ground truth" table: each SAE's `gt_*` scores on a planted cache.

Present only when some row holds them (a run on a cache of `saelight planted`); the formulas are
in `saelight.metrics.dictionary_match.ground_truth_scores` and docs/planted_ground_truth.md.
"""

from __future__ import annotations

from saelight.evaluation.results import GROUND_TRUTH, Row, ground_truth_key, group_rows
from saelight.report.tables import Table, _cell, _seed_note

PLANTED_HEADING = "Planted ground truth"
NOTE = (
    "Test rows, against the planted dictionary. MCC: mean |cos| of the one-to-one (Hungarian) "
    "matching of decoder rows to true directions; precision, recall, F1: of each latent firing "
    "vs its matched feature being active, averaged over latents; uniqueness: distinct "
    "best-matching features / latents; shrinkage: a latent's contribution / its feature's on rows "
    "where both fire (< 1: shrunk); coverage: true features some latent matches at |cos| ≥ 0.9."
)


def planted_table(rows: list[Row]) -> Table | None:
    """One line per SAE row with ground-truth scores, or None when no row has any."""
    keys = [ground_truth_key(score) for score in GROUND_TRUTH]
    if not any(r.get(key) is not None for r in rows for key in keys):
        return None
    groups = group_rows(rows)
    multi_model = len({m for m, _ in groups}) > 1
    cells = []
    for (model, layer), (_, saes) in groups.items():
        for r in saes:
            if any(r.get(key) is not None for key in keys):
                line = ([model] if multi_model else []) + [f"L{layer}", str(r["name"])]
                cells.append(line + [_cell(r, key, "{:.3f}") for key in keys])
    header = (["model"] if multi_model else []) + ["layer", "SAE", *GROUND_TRUTH]
    title = "Planted ground truth (test)" + _seed_note(rows, keys[0])
    return Table("planted_ground_truth", title, header, cells, NOTE)
