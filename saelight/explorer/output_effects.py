"""Each latent's ablation effect on the model's output, for its explorer card: read from the run's
splice.json (`saelight splice` with an output head, `evaluation.output_effects`), so the card
shows what removing the latent does to the transcript or class beside what it correlates with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

OUTPUT_EFFECT_COLUMNS = ("output_delta_ce", "output_kl", "output_top1_drop")
"""Per-latent columns of latents.json/.parquet and the page: ΔCE (nats), KL and top-1 drop of
the output with the latent ablated alone; None for a latent splice did not score."""
_FIELDS = dict(zip(OUTPUT_EFFECT_COLUMNS, ("delta_ce", "kl", "top1_drop"), strict=True))


def output_effect_columns(
    splice_json: Path, sae_key: str, layer: int, d_sae: int
) -> dict[str, np.ndarray] | None:
    """{column: (d_sae,) object array} of the SAE's scored latents, or None when splice.json is
    missing or scored no latent of this SAE. The SAE is found by its export key
    ("L01_topk_s90") or by its grid name ("topk_s90", how `SAEEvaluation(splice=True)` names it)
    among the spliced layer's rows."""
    if not splice_json.is_file():
        return None
    payload: dict[str, Any] = json.loads(splice_json.read_text())
    names = {sae_key, re.sub(r"^L\d+_", "", sae_key)}
    for entry in payload.get("layers", []):
        if int(entry.get("layer", -1)) != layer:
            continue
        rows = (entry.get("output") or {}).get("saes") or {}
        effects = next((rows[n]["latent_effects"] for n in names if n in rows
                        and rows[n].get("latent_effects")), None)  # fmt: skip
        if not effects:
            continue
        columns = {c: np.full(d_sae, None, dtype=object) for c in OUTPUT_EFFECT_COLUMNS}
        for e in effects:
            j = int(e["latent"])
            if 0 <= j < d_sae:
                for column, field in _FIELDS.items():
                    columns[column][j] = float(e[field])
        return columns
    return None
