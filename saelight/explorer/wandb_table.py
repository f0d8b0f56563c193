"""The explorer in W&B: a table of the most selective latents with audio cells and histograms.

The audio comes from the snippets the page embeds (`PageMedia.audio`, FLAC or Opus bytes), decoded
to arrays for `wandb.Audio`, which writes its own WAV files into the run; no files are kept beside
the page. A row whose audio the page cap left out gets an empty cell.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from saelight.explorer.audio import decode

AUDIO_CELLS = 3


def histogram_svg(counts: list[int], width: int = 120, height: int = 32) -> str:
    """A bar chart of `counts` as an inline SVG string (for a `wandb.Html` cell)."""
    top = max(max(counts, default=0), 1)
    bar = width / max(len(counts), 1)
    rects = "".join(
        f'<rect x="{i * bar:.1f}" y="{height - height * c / top:.1f}" width="{bar - 1:.1f}" '
        f'height="{height * c / top:.1f}" fill="#4a7fc1"/>'
        for i, c in enumerate(counts)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{rects}</svg>'
    )


def log_explorer(
    run: Any,
    key: str,
    latents: list[dict[str, Any]],
    audio: Mapping[int, bytes],
    max_latents: int = 64,
) -> None:
    """Log `explorer/<key>/latents` (a `wandb.Table`) and `explorer/<key>/log10_frequency`.

    The table holds the `max_latents` most selective latents that fire: id, frequency, mean
    activation, selectivity (best F1), best label, acoustic name, its held-out AUROC, the
    positional flag (`naming`), an activation histogram (`wandb.Html` SVG), and
    the audio of its top `AUDIO_CELLS` rows as `wandb.Audio` cells (None where there is none).

    Args:
        run: a wandb run (`wandb.init(...)` or `WandbLogger.experiment`).
        key: the SAE key, used in the logged names.
        latents: `explore.latent_records` output.
        audio: {cache row: encoded snippet} (`PageMedia.audio`).
        max_latents: rows of the table.
    """
    import wandb

    live = [r for r in latents if r["fires"] > 0]
    live.sort(key=lambda r: -(r["selectivity"] if r["selectivity"] is not None else -1.0))
    columns = ["latent", "frequency", "mean_activation", "selectivity", "best_label"]
    columns += ["name", "name_score", "positional", "histogram"]
    columns += [f"top_{i + 1}" for i in range(AUDIO_CELLS)]
    table = wandb.Table(columns=columns)
    for r in live[:max_latents]:
        cells: list[Any] = []
        for t in r["top"][:AUDIO_CELLS]:
            caption = f"{t['clip_id']} act={t['activation']}"
            data = audio.get(t["row"])
            if data is None:
                cells.append(None)
                continue
            wave, rate = decode(data)
            cells.append(wandb.Audio(wave, sample_rate=rate, caption=caption))
        cells += [None] * (AUDIO_CELLS - len(cells))
        table.add_data(
            r["latent"],
            r["frequency"],
            r["mean_activation"],
            r["selectivity"],
            r["best_label"],
            r.get("name"),
            r.get("name_score"),
            r.get("positional_flag"),
            wandb.Html(histogram_svg(r["histogram"])),
            *cells,
        )
    freq = np.array([r["frequency"] for r in live], dtype=np.float64)
    logged: dict[str, Any] = {f"explorer/{key}/latents": table}
    if len(freq):
        logged[f"explorer/{key}/log10_frequency"] = wandb.Histogram(np.log10(freq))
    run.log(logged)
