"""Each latent's acoustic name on the explorer: `metrics.latent_naming` over one split's rows.

Candidates are the cache's stored acoustic descriptors (`cache.descriptors`, when the opt-in pass
has run), its continuous factors (`factor_*`) and its labels (`label_*`); a name reads
"f0 210–260 Hz", "onset strength ≥ 1.2", "voiced" or "technique = vocal_fry". A latent is
"positional" when the frame index explains at least `POSITIONAL_MIN` of its held-out activation
variance; the report counts latents whose name scores at least `NAMED_MIN` (held-out AUROC).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from saelight.audio.descriptors import DESCRIPTORS
from saelight.cache.format import factor_column, factor_names, label_column, label_names
from saelight.metrics.latent_naming import LatentNames, name_latents

NAMED_MIN = 0.75
"""Held-out AUROC from which a latent counts as named (report summary)."""
POSITIONAL_MIN = 0.5
"""Held-out variance fraction explained by the frame index from which a latent is positional."""
NAME_COLUMNS = (
    "name",
    "name_family",
    "name_score",
    "name_spearman",
    "positional",
    "positional_flag",
)
"""The per-latent naming scalars of latents.json / latents.parquet (plus `tuning`, JSON only)."""
SEED_COLUMNS = ("seed_match", "stable")
"""Per-latent columns of a run with `model.seeds` >= 2 (`evaluation.seeds.seed_columns`)."""


def family(source: str, kind: str) -> str:
    """The descriptor family of a name's source: a `DESCRIPTORS` family, "factor" or "label"."""
    if kind == "label":
        return "label"
    return DESCRIPTORS[source].family if source in DESCRIPTORS else "factor"


def _number(x: float, unit: str) -> str:
    text = f"{x:.3g}"
    return f"{text} {unit}" if unit else text


def name_text(source: str, kind: str, lo: Any, hi: float | None) -> str:
    """A name as the page shows it.

    Example:
        >>> name_text("f0_hz", "range", 210.0, 260.0), name_text("technique", "label", "fry", None)
        ('f0 210–260 Hz', 'technique = fry')
        >>> name_text("voiced", "range", 0.5, None), name_text("onset_strength", "range", 1.2, None)
        ('voiced', 'onset strength ≥ 1.2')
    """
    if kind == "label":
        return f"{source} = {lo}"
    known = DESCRIPTORS.get(source)
    short, unit = (known.short, known.unit) if known else (source, "")
    if source == "voiced" and hi is None and lo is not None and lo >= 0.5:
        return "voiced"
    if source == "voiced" and lo is None and hi is not None and hi <= 0.5:
        return "unvoiced"
    if lo is None and hi is None:
        return f"{short} (any)"
    if lo is None:
        return f"{short} < {_number(hi, unit)}"
    if hi is None:
        return f"{short} ≥ {_number(lo, unit)}"
    return f"{short} {lo:.3g}–{_number(hi, unit)}"


def latent_names(
    codes: sp.spmatrix, meta: pd.DataFrame, descriptors: pd.DataFrame | None
) -> list[dict[str, Any]]:
    """One dict of naming fields per latent (`NAME_COLUMNS` and `tuning`).

    Args:
        codes: (n, d) codes of the split's rows.
        meta: those rows' metadata, in the same order.
        descriptors: their stored descriptors, in the same order (None: not computed).
    """
    continuous = {} if descriptors is None else {
        k: descriptors[k].to_numpy(np.float64) for k in DESCRIPTORS if k in descriptors
    }  # fmt: skip
    for name in factor_names(meta.columns):
        continuous[name] = meta[factor_column(name)].to_numpy(np.float64)
    labels = {n: meta[label_column(n)].astype(str).to_numpy() for n in label_names(meta.columns)}
    frames = meta["frame"].to_numpy(np.int64) if "frame" in meta else np.full(len(meta), -1)
    names = name_latents(codes, continuous, labels, meta["clip_id"].to_numpy(), frames)
    return [_fields(names, j) for j in range(codes.shape[1])]


def _fields(names: LatentNames, j: int) -> dict[str, Any]:
    source, kind = names.source[j], names.kind[j]
    positional = float(names.positional[j])
    out: dict[str, Any] = {
        "name": None if source is None else name_text(source, kind, names.lo[j], names.hi[j]),
        "name_family": None if source is None else family(source, kind),
        "name_score": _float(names.auroc[j]),
        "name_spearman": _float(names.spearman[j]),
        "positional": _float(positional),
        "positional_flag": bool(np.isfinite(positional) and positional >= POSITIONAL_MIN),
        "tuning": names.tuning[j],
    }
    if out["tuning"] is not None:
        out["tuning"] = {
            "edges": out["tuning"]["edges"],
            "mean": [_float(m) for m in out["tuning"]["mean"]],
        }
    return out


def _float(x: float) -> float | None:
    x = float(x)
    return float(f"{x:.4g}") if np.isfinite(x) else None
