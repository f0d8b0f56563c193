"""The explorer page: one static, self-contained `index.html` (inline CSS, JS, data and media).

Everything goes in one `<script type="application/json" id="explorer-data">` block, read with
`JSON.parse`, so the page works from file:// with no server, no network and no folder beside it.
The data is columnar (one array per field, index = latent id), per-latent scalars to 3
significant digits, scores in [0, 1] and correlations in [-1, 1] as integer thousandths, rows and
label values as indices into shared tables: about 0.3 kB per latent, so a 16384-latent SAE's
numbers take about 5 MB. Each latent's nearest latents (`neighbours`: [id, score in
thousandths]) and its rows drawn from activation quantiles (`quantiles`: [row index, code,
band]) add about 0.14 kB per latent, plus a rows-table entry (about 40 bytes) per drawn row not
shown elsewhere. The page's script builds the DOM of one page of latent cards at a time (20),
whatever d_sae is. Each latent's acoustic name, its score and the positional flag
(`naming`) are columns too; the latent box searches them ("f0", "positional") as well as ids.
Audio (FLAC or Opus) and PNG thumbnails are base64 strings in the same block
(`media.PageMedia`); players get a `blob:` URL made when their card is drawn. When its
script has run to the end the page sets `document.body.dataset.ready = "1"`; an uncaught error
sets `data-error` instead.
"""

from __future__ import annotations

import base64
import html
import json
from importlib.resources import files
from pathlib import Path
from typing import Any

from saelight.explorer.audio import CODECS
from saelight.explorer.media import PageMedia
from saelight.explorer.naming import NAME_COLUMNS, SEED_COLUMNS
from saelight.explorer.output_effects import OUTPUT_EFFECT_COLUMNS
from saelight.explorer.records import num

TEMPLATE = "page.html"
PAGE_DIGITS = 3
PAGE_VALUES = 5  # best (label, value) pairs per latent on the page
PAGE_FACTORS = 3  # strongest factor correlations per latent on the page
SCALARS = ("fires", "frequency", "mean_activation", "max_activation", "selectivity", "best_auroc")


def page_json(data: dict[str, Any]) -> str:
    """JSON safe inside a <script> element: every "<" is written as the JSON escape \\u003c.

    Example:
        >>> page_json({"a": "</script>"})
        '{"a":"\\\\u003c/script>"}'
    """
    return json.dumps(data, allow_nan=False, separators=(",", ":")).replace("<", "\\u003c")


def _n(x: float | None) -> float | None:
    return None if x is None else num(x, PAGE_DIGITS)


def _m(x: float | None) -> int | None:
    """x in thousandths, for scores and correlations (the page shows 3 decimals)."""
    return None if x is None else int(round(1000 * x))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class _Tables:
    """Index tables shared by every latent: label values, factors, rows and clips."""

    def __init__(self) -> None:
        self.labels: dict[str, list[str]] = {}
        self.factors: list[str] = []
        self.clips: list[str] = []
        self.rows: dict[int, int] = {}
        self.row_data: dict[str, list[Any]] = {
            k: [] for k in ("row", "clip", "start", "end", "frame", "labels")
        }
        self._index: dict[tuple[str, ...], Any] = {}

    def value(self, name: str, value: str) -> list[int]:
        """[label index, value index] of "name=value", added to the tables if new."""
        key = ("v", name, value)
        if key not in self._index:
            if ("l", name) not in self._index:
                self._index[("l", name)] = len(self.labels)
                self.labels[name] = []
            self._index[key] = [self._index[("l", name)], len(self.labels[name])]
            self.labels[name].append(value)
        return self._index[key]

    def factor(self, name: str) -> int:
        if ("f", name) not in self._index:
            self._index[("f", name)] = len(self.factors)
            self.factors.append(name)
        return self._index[("f", name)]

    def row(self, t: dict[str, Any]) -> int:
        """Index of the top row `t` in the rows table, added if new; its labels are stored as
        value indices at their label's index (None where the row lacks that label)."""
        if t["row"] not in self.rows:
            self.rows[t["row"]] = len(self.rows)
            if ("c", t["clip_id"]) not in self._index:
                self._index[("c", t["clip_id"])] = len(self.clips)
                self.clips.append(t["clip_id"])
            labels: list[int | None] = []
            for k, v in t["labels"].items():
                li, vi = self.value(k, v)
                labels += [None] * (li + 1 - len(labels))
                labels[li] = vi
            d = self.row_data
            d["row"].append(t["row"])
            d["clip"].append(self._index[("c", t["clip_id"])])
            d["start"].append(t["start_s"])
            d["end"].append(t["end_s"])
            d["frame"].append(t["frame"])
            d["labels"].append(labels)
        return self.rows[t["row"]]


def _best_values(tables: _Tables, latent: dict[str, Any]) -> list[list[Any]]:
    """[label, value, f1, auroc, precision, recall (thousandths)] of the latent's best
    `PAGE_VALUES` (label, value) pairs over all labels, by F1 then AUROC."""
    pairs = []
    for name, d in latent["labels"].items():
        for v, f1 in d["f1"].items():
            auroc, p, r = d["auroc"].get(v), d["precision"].get(v), d["recall"].get(v)
            pairs.append([*tables.value(name, v), _m(f1), _m(auroc), _m(p), _m(r)])
    pairs.sort(key=lambda q: (-(q[2] if q[2] is not None else -1), -(q[3] or 0)))
    return pairs[:PAGE_VALUES]


def page_data(
    header: dict[str, Any],
    latents: list[dict[str, Any]],
    ranking: dict[str, dict[str, list[dict[str, Any]]]],
    media: PageMedia | None = None,
) -> dict[str, Any]:
    """The page's data block (see the module docstring); `media` None embeds no media."""
    if [lat["latent"] for lat in latents] != list(range(len(latents))):
        raise ValueError("page_data needs one record per latent, in latent order")
    tables = _Tables()
    for name, values in ranking.items():
        for v in values:
            tables.value(name, v)
    columns: dict[str, list[Any]] = {k: [_n(lat.get(k)) for lat in latents] for k in SCALARS}
    columns["fires"] = [lat["fires"] for lat in latents]
    for key in (*NAME_COLUMNS, *SEED_COLUMNS, *OUTPUT_EFFECT_COLUMNS):
        if latents and key in latents[0]:
            raw = [lat[key] for lat in latents]
            numeric = key in ("name_score", "name_spearman", "positional", "seed_match")
            numeric |= key in OUTPUT_EFFECT_COLUMNS
            columns[key] = [_n(x) for x in raw] if numeric else raw
    best, top, values, corr = [], [], [], []
    drawn: list[list[list[Any]]] = []
    near: dict[str, list[list[list[Any]]]] = {"cosine": [], "coactivation": []}
    for lat in latents:
        label = lat.get("best_label")
        best.append(tables.value(*label.split("=", 1)) if label else None)
        top.append([[tables.row(t), _n(t["activation"])] for t in lat["top"]])
        drawn.append(
            [[tables.row(t), _n(t["activation"]), t["band"]] for t in lat.get("quantiles", ())]
        )
        for key, score in (("cosine", "cosine"), ("coactivation", "jaccard")):
            found = lat.get(f"neighbours_{key}", ())
            near[key].append([[e["latent"], _m(e[score])] for e in found])
        values.append(_best_values(tables, lat))
        corr.append(
            [
                [tables.factor(c["factor"]), _m(c["pearson"]), _m(c["spearman"])]
                for c in lat["correlations"][:PAGE_FACTORS]
            ]
        )
    ranked = {
        name: {
            v: [
                [
                    e["latent"],
                    _m(e["f1"]),
                    _m(e["auroc"]),
                    _m(e["precision"]),
                    _m(e["recall"]),
                    _n(e["frequency"]),
                ]
                for e in entries
            ]
            for v, entries in by_value.items()
        }
        for name, by_value in ranking.items()
    }
    return {
        "header": header,
        "columns": columns,
        "histogram": [lat["histogram"] for lat in latents],
        "best": best,
        "top": top,
        "quantiles": drawn,
        "near": near,
        "values": values,
        "corr": corr,
        "labels": tables.labels,
        "factors": tables.factors,
        "clips": tables.clips,
        "rows": tables.row_data,
        "ranking": ranked,
        "media": _media(tables, media),
    }


def _media(tables: _Tables, media: PageMedia | None) -> dict[str, Any]:
    media = media or PageMedia()
    at = tables.rows
    return {
        "mime": CODECS[media.codec][2],
        "audio": {at[r]: _b64(v) for r, v in media.audio.items() if r in at},
        "spectrogram": {at[r]: _b64(v) for r, v in media.spectrogram.items() if r in at},
        "window": {at[r]: list(w) for r, w in media.window.items() if r in at},
        "curves": {f"{j}:{at[r]}": _b64(v) for (j, r), v in media.curves.items() if r in at},
    }


def render_page(
    header: dict[str, Any],
    latents: list[dict[str, Any]],
    ranking: dict[str, dict[str, list[dict[str, Any]]]],
    media: PageMedia | None = None,
) -> str:
    """The page's HTML.

    Args:
        header: facts about the SAE and the split (title, split, layer, n_rows, d_sae, dead, ...).
        latents: one record per latent, in latent order (`records.latent_records`).
        ranking: {label: {value: best latents}} (`records.label_ranking`).
        media: audio, thumbnails and curves to embed (None: none).
    """
    template = files("saelight.explorer").joinpath(TEMPLATE).read_text(encoding="utf-8")
    data = page_json(page_data(header, latents, ranking, media))
    page = template.replace("__TITLE__", html.escape(str(header.get("title", "sae"))))
    return page.replace("__DATA__", data)


def write_page(path: str | Path, page: str) -> Path:
    """Write the HTML `page` (from `render_page`) to `path` (usually `<out>/index.html`)."""
    path = Path(path)
    path.write_text(page, encoding="utf-8")
    return path
