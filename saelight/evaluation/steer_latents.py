"""Which latents `saelight steer` edits: ids, or the k latents that best detect label = value.

The detectors are ranked as splice's ablations rank them (`evaluation.ablation.latent_sets`: the
explorer's detector F1 of "fires", ties by AUROC, live latents only) on a run's cached training
rows of the SAE's layer, so the clips being steered (held-out by default) take no part in the
choice; the same call draws the frequency-matched random control.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from saelight.cache.format import label_column
from saelight.evaluation.ablation import latent_sets
from saelight.io.defaults import MAX_ROWS
from saelight.io.errors import SaelightError


def parse_latents(spec: str) -> list[int] | tuple[str, str]:
    """ "12,40" -> [12, 40]; "vowel=a" -> ("vowel", "a"); a SaelightError naming `latents` else.

    Example:
        >>> parse_latents("12,40"), parse_latents("vowel=a")
        ([12, 40], ('vowel', 'a'))
    """
    label, eq, value = spec.partition("=")
    if eq:
        if not label.strip() or not value.strip():
            raise SaelightError(f"latents={spec!r}: expected label=value, e.g. vowel=a")
        return label.strip(), value.strip()
    try:
        ids = [int(part) for part in spec.split(",") if part.strip()]
    except ValueError:
        ids = []
    if not ids or min(ids) < 0:
        raise SaelightError(
            f"latents={spec!r}: expected latent ids (e.g. 12 or 12,40) or label=value (vowel=a)"
        )
    return ids


def detector_latents(
    sae: Any, x: torch.Tensor, values: np.ndarray, value: str, k: int, seed: int
) -> tuple[list[int], list[int]]:
    """(the k latents that best detect `label = value` on rows x, their frequency-matched
    random control).

    Args:
        sae: the SAE.
        x: (n, D) rows of its layer.
        values: (n,) the label's value on each row.
        value: the value whose detectors are wanted.
        k: how many.
        seed: seed of the control draw.
    """
    values = np.asarray(values).astype(str)
    present = sorted(set(values.tolist()))
    if value not in present:
        raise SaelightError(f"latents: value {value!r} is not among the label's {present}")
    sets = latent_sets(sae, x, {"label": values}, k, seed)
    chosen = {s["kind"]: s["latents"] for s in sets if s["value"] == value}
    if not chosen.get("top"):
        raise SaelightError(f"latents: no live latent detects {value!r} on these rows")
    return chosen["top"], chosen.get("random", [])


def cached_detectors(
    reader: Any,
    sae: Any,
    layer: int,
    label: str,
    value: str,
    k: int,
    seed: int,
    max_rows: int = MAX_ROWS,
) -> tuple[list[int], list[int]]:
    """`detector_latents` on a cache's training rows of `layer` (a seeded subset of `max_rows`).

    Args:
        reader: the run's `CacheReader`.
        sae: the SAE, trained on that layer.
        layer: the SAE's hidden-state index.
        label, value: the label = value to detect.
        k: how many latents.
        seed: seed of the row subset and of the control draw.
        max_rows: rows read at most.
    """
    if label_column(label) not in reader.metadata.columns:
        raise SaelightError(
            f"latents: label {label!r} is not in the run's cache (it has {reader.label_names()})"
        )
    rows = reader.split_rows("train")
    if len(rows) > max_rows:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_rows, replace=False))
    x = torch.from_numpy(np.ascontiguousarray(reader.read(rows, [layer])[:, 0]))
    values = reader.metadata[label_column(label)].to_numpy()[rows]
    return detector_latents(sae, x, values, value, k, seed)
