"""The explorer page: one static, self-contained `index.html` (inline CSS, JS and data).

The data goes in `<script type="application/json" id="explorer-data">`, read with `JSON.parse`, so
the page works from file:// with no server and no network. The page renders one page of latent
cards at a time (20), so a 2048-latent SAE opens in about a second; audio players use
`preload="none"` and fetch their WAV from `audio/` only when played. When its script has run to the
end it sets `document.body.dataset.ready = "1"`; an uncaught error sets `data-error` instead.
"""

from __future__ import annotations

import html
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

TEMPLATE = "page.html"


def page_json(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: every "<" is written as the JSON escape \\u003c.

    Example:
        >>> page_json({"a": "</script>"})
        '{"a": "\\\\u003c/script>"}'
    """
    return json.dumps(data, allow_nan=False).replace("<", "\\u003c")


def page_data(
    header: dict[str, Any],
    latents: list[dict[str, Any]],
    ranking: dict[str, dict[str, list[dict[str, Any]]]],
) -> dict[str, Any]:
    """The page's data: latents' top rows become [row, activation] pairs into one `rows` table,
    since the same rows recur in many latents' tops (about half the size of `latents.json`)."""
    rows: dict[str, dict[str, Any]] = {}
    compact = []
    for latent in latents:
        for t in latent["top"]:
            rows.setdefault(str(t["row"]), {k: v for k, v in t.items() if k != "activation"})
        compact.append({**latent, "top": [[t["row"], t["activation"]] for t in latent["top"]]})
    return {"header": header, "latents": compact, "rows": rows, "ranking": ranking}


def render_page(
    header: dict[str, Any],
    latents: list[dict[str, Any]],
    ranking: dict[str, dict[str, list[dict[str, Any]]]],
) -> str:
    """The page's HTML.

    Args:
        header: facts about the SAE and the split (title, split, layer, n_rows, d_sae, dead, ...).
        latents: one record per latent, in latent order (`explore.latent_records`).
        ranking: {label: {value: best latents}} (`explore.label_ranking`).
    """
    template = files("saelight.explorer").joinpath(TEMPLATE).read_text(encoding="utf-8")
    data = page_json(page_data(header, latents, ranking))
    page = template.replace("__TITLE__", html.escape(str(header.get("title", "sae"))))
    return page.replace("__DATA__", data)


def write_page(
    path: str | Path,
    header: dict[str, Any],
    latents: list[dict[str, Any]],
    ranking: dict[str, dict[str, list[dict[str, Any]]]],
) -> Path:
    """Write `render_page(...)` to `path` (usually `<out>/index.html`)."""
    path = Path(path)
    path.write_text(render_page(header, latents, ranking), encoding="utf-8")
    return path
