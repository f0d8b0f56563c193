"""When an SAE has collapsed: the one rule the report (next to every claim) and W&B summaries use.

A collapsed SAE says nothing about what sparse codes can do (a dictionary that mostly never fires,
or a decoder that reconstructs no better than the mean), so a claim that counts it is flagged. The
rule reads the test-split numbers of a result row (`saelight.evaluation.results`):

- `dead_fraction >= DEAD_FRACTION_MAX` (0.9): at most a tenth of the latents ever fire on test.
  Measured on the test split only (~400 clips in the paper), so a small split inflates it; the bar
  is high for that reason (a 99 % TopK SAE fires 20 latents x 400 clips = 8000 times in all).
- `fvu >= FVU_MAX` (0.9): the reconstruction explains at most a tenth of the variance.
- `l0 < L0_MIN` (1): fewer than one active latent per row on average: codes are nearly empty.

Dense rows are never flagged.
"""

from __future__ import annotations

from collections.abc import Iterable

from saelight.evaluation.results import Row, is_baseline, is_dense

DEAD_FRACTION_MAX = 0.9
FVU_MAX = 0.9
L0_MIN = 1.0


def collapse_reasons(row: Row) -> list[str]:
    """Why `row`'s SAE counts as collapsed, e.g. ['dead 95 %'] ([] when it does not, and for a
    random baseline, which is a reference expected to reconstruct badly, not a failed fit)."""
    if is_dense(row) or is_baseline(row):
        return []
    reasons = []
    dead, fvu, l0 = row.get("dead_fraction"), row.get("fvu"), row.get("l0")
    if dead is not None and dead >= DEAD_FRACTION_MAX:
        reasons.append(f"dead {100 * dead:.0f} % >= {100 * DEAD_FRACTION_MAX:.0f} %")
    if fvu is not None and fvu >= FVU_MAX:
        reasons.append(f"FVU {fvu:.2f} >= {FVU_MAX:g}")
    if l0 is not None and l0 < L0_MIN:
        reasons.append(f"L0 {l0:.2f} < {L0_MIN:g}")
    return reasons


def is_collapsed(row: Row) -> bool:
    """True when :func:`collapse_reasons` finds any reason."""
    return bool(collapse_reasons(row))


def collapse_notes(rows: Iterable[tuple[str, Row]]) -> tuple[str, ...]:
    """'<where>: <reasons>' for each (where, row) pair whose SAE collapsed, in order, once each."""
    notes: dict[str, str] = {}
    for where, row in rows:
        reasons = collapse_reasons(row)
        if reasons:
            notes.setdefault(where, f"{where} ({', '.join(reasons)})")
    return tuple(notes.values())
