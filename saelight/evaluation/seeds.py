"""The seeds of one fit (`model.seeds`): which rows replicate which, and how stable an SAE is.

Seed n >= 1 of an SAE is trained beside seed 0 on the same batches from its own random init and
evaluated like any SAE; its row names seed 0's row (`replicate_of`), so the report averages the
seeds into one row with a std, as it does for runs of several seeds. Stability is the mean
pairwise MCC of the seeds' decoder directions (`metrics.dictionary_match.seed_stability`).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
import torch
from torch import Tensor

from saelight.evaluation.results import REPLICATE_OF, STABILITY, Row
from saelight.grid import GridEntry
from saelight.metrics.dictionary_match import best_match_cosine, seed_stability
from saelight.sae.base import SAE


def replicate_groups(replicate_of: dict[str, str | None]) -> dict[str, list[str]]:
    """{seed 0's name: [its name, seed 1's, ...]} for every SAE with 2+ seeds."""
    groups: dict[str, list[str]] = defaultdict(list)
    for name, first in replicate_of.items():
        groups[first or name].append(name)
    return {first: names for first, names in groups.items() if len(names) > 1}


def tag_seeds(rows: list[Row], replicate_of: dict[str, str | None], saes: dict[str, SAE]) -> None:
    """Adds `seed`, `replicate_of` and `stability` to the SAE rows of one layer, in place.

    Args:
        rows: the layer's rows (`evaluate_layer`).
        replicate_of: {row name: seed 0's name, or None for seed 0 / a single seed}.
        saes: the evaluated SAEs by row name (their `W_dec` gives the stability).
    """
    groups = replicate_groups(replicate_of)
    stability: dict[str, float] = {}
    for names in groups.values():
        value = seed_stability([saes[n].W_dec.detach().float().cpu() for n in names])
        stability.update(dict.fromkeys(names, value))
    seed_of: dict[str, Any] = {n: i for names in groups.values() for i, n in enumerate(names)}
    for row in rows:
        name = row.get("name")
        if name not in seed_of:
            continue
        row["seed"] = seed_of[name]
        row[STABILITY] = stability[name]
        if replicate_of.get(name):
            row[REPLICATE_OF] = replicate_of[name]


STABLE_MIN = 0.9
"""A latent is "stable" when its decoder direction has a match of |cos| >= this in every other
seed (the explorer's badge and filter)."""


def seed_match(W_dec: Tensor, others: list[Tensor]) -> np.ndarray:
    """(d_sae,) per latent, its worst over the other seeds of its best |cos| with any of their
    latents (`metrics.dictionary_match.best_match_cosine`): >= `STABLE_MIN` = found again in
    every seed."""
    best = [
        best_match_cosine(W_dec.detach().float().cpu(), o.detach().float().cpu()) for o in others
    ]
    return torch.stack(best).amin(0).numpy()


def seed_columns(grid: list[GridEntry], saes: dict[str, SAE]) -> dict[str, dict[str, np.ndarray]]:
    """{grid key: {"seed_match": (d_sae,), "stable": (d_sae,) bool}} for SAEs with 2+ seeds."""
    first = {e.key: e.replicate_of or e.name for e in grid}
    out = {}
    for e in grid:
        others = [
            saes[o.key].W_dec
            for o in grid
            if o.key != e.key and first[o.key] == first[e.key] and o.layer == e.layer
        ]
        if others:
            match = seed_match(saes[e.key].W_dec, others)
            out[e.key] = {"seed_match": match, "stable": match >= STABLE_MIN}
    return out
