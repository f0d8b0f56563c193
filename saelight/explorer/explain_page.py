"""The `saelight explain` page: one static HTML file, each audio file's log-mel spectrogram with
the top latents' activations over time drawn on the same time axis below it.

Everything is inline (the spectrogram a PNG data URL, the curves SVG polylines), so the page opens
from file:// alone; the only URLs are the links to each latent's card in the run's explorer
(`../explorer/<key>/index.html#q=<latent>`, relative to the page). The page sets
`document.body.dataset.ready = "1"` once loaded, as the explorer page does.
"""

from __future__ import annotations

import base64
import html
from typing import Any

import numpy as np

from saelight.explorer.spectrogram import DYNAMIC_RANGE_DB, LEVELS, log_mel, palette, png_indexed

WIDTH = 800
"""Pixels of the time axis, shared by the spectrogram and every curve."""
MELS = 64
CURVE_HEIGHT = 36
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 0; color: #222; background: #f6f6f4; }
header { padding: 12px 20px; background: #1f2933; color: #eee; }
main { padding: 12px 20px; }
section.file { background: #fff; border: 1px solid #ddd; border-radius: 6px; padding: 10px 14px;
  margin-bottom: 12px; }
.row { display: flex; align-items: center; gap: 12px; margin: 2px 0; }
.label { width: 340px; flex: none; font-size: 12px; overflow-wrap: anywhere; }
.muted { color: #777; }
.name { color: #1d5e2a; font-weight: 600; }
.flag { color: #8a2a1f; }
img.spec { image-rendering: pixelated; display: block; }
svg.curve { background: #fafafa; border-bottom: 1px solid #eee; }
"""


def spectrogram_png(wave: np.ndarray, sample_rate: int) -> bytes:
    """The file's log-mel spectrogram, `WIDTH` x `MELS` pixels, top `DYNAMIC_RANGE_DB` dB."""
    db = log_mel(wave, sample_rate, width=WIDTH, n_mels=MELS)
    scaled = (db - (db.max() - DYNAMIC_RANGE_DB)) / DYNAMIC_RANGE_DB
    pixels = np.clip(scaled * (LEVELS - 1), 0, LEVELS - 1).round().astype(np.uint8)[::-1]
    return png_indexed(pixels, palette())


def _curve(times: list[float], values: list[float | None], duration: float) -> str:
    """An SVG strip of one latent's activation over time (height = its peak on this file)."""
    peak = max((v or 0.0 for v in values), default=0.0) or 1.0

    def x(t: float) -> float:
        return WIDTH * t / max(duration, 1e-9)

    def y(v: float | None) -> float:
        return CURVE_HEIGHT - 2 - (CURVE_HEIGHT - 4) * (v or 0.0) / peak

    points = [f"{x(t):.1f},{y(v):.1f}" for t, v in zip(times, values, strict=True)]
    if len(points) == 1:  # one window: a flat line across the file
        y = points[0].split(",")[1]
        points = [f"0,{y}", f"{WIDTH},{y}"]
    return (
        f'<svg class="curve" width="{WIDTH}" height="{CURVE_HEIGHT}">'
        f'<polyline fill="none" stroke="#d2462f" stroke-width="1.5" points="{" ".join(points)}"/>'
        "</svg>"
    )


def _latent_row(entry: dict[str, Any], times: list[float], duration: float) -> str:
    e = {k: html.escape(str(v)) if isinstance(v, str) else v for k, v in entry.items()}
    name = f'<span class="name">{e["name"]}</span>' if entry.get("name") else "unnamed"
    score = f" · AUROC {entry['name_score']:.2f}" if entry.get("name_score") is not None else ""
    flag = ' · <span class="flag">positional</span>' if entry.get("positional_flag") else ""
    label = (
        f'<a class="card-link" href="{e["link"]}">latent {entry["latent"]}</a> {name}{score}'
        f'{flag}<br><span class="muted">peak {entry["peak"]:.3g} = {entry["relative"]:.2f}× '
        "its explorer max</span>"
    )
    return (
        f'<div class="row latent"><div class="label">{label}</div>'
        f"{_curve(times, entry['activation'], duration)}</div>"
    )


def _file_section(record: dict[str, Any], spectrogram: bytes) -> str:
    times, duration = record["times"], record["duration_s"]
    src = "data:image/png;base64," + base64.b64encode(spectrogram).decode("ascii")
    if record["pooling"] == "frame":
        how = "per backbone frame"
    elif record["window_s"] is None:
        how = "of the whole file, mean-pooled as the run's rows are"
    else:
        how = f"on windows of {record['window_s']:.3g} s, every quarter window"
    parts = [
        f"<h2>{html.escape(record['path'])}</h2>",
        f'<div class="muted">{duration:.2f} s · activations {how}</div>',
        f'<div class="row"><div class="label">log-mel spectrogram</div>'
        f'<img class="spec" alt="spectrogram" src="{src}" width="{WIDTH}" height="{2 * MELS}">'
        "</div>",
    ]
    for sae in record["saes"]:
        parts.append(f"<h3>{html.escape(sae['key'])} · layer {sae['layer']}</h3>")
        parts += [_latent_row(entry, times, duration) for entry in sae["top"]]
        if not sae["top"]:
            parts.append('<div class="muted">no latent fires on this file</div>')
    return '<section class="file">' + "".join(parts) + "</section>"


def render_explain(records: list[dict[str, Any]], spectrograms: list[bytes], title: str) -> str:
    """The page's HTML.

    Args:
        records: one `explain.explain_file` record per file.
        spectrograms: each file's `spectrogram_png`.
        title: the run, shown in the header.
    """
    body = "".join(_file_section(r, s) for r, s in zip(records, spectrograms, strict=True))
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)} · saelight explain</title><style>{STYLE}</style></head>"
        f"<body><header><h1>Explain · {html.escape(title)}</h1><div>the latents that fire on "
        "each file, over time; a latent's link opens its card in the run's explorer</div>"
        f"</header><main>{body}</main>"
        '<script>document.body.dataset.ready = "1";</script></body></html>'
    )
