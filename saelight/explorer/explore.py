"""`explore`: one SAE over one split of the cache -> per-latent tables, a label ranking and a page.

The pipeline reads top to bottom: stream the split through `sae.encode` into `LatentStats`
(`encode_split`), compute selectivity from the sparse codes (`analyse`), turn that into records
(`latent_records`, `label_ranking`), cut the audio of every top row (`write_snippets`) and write
`latents.json`, `latents.parquet`, `labels.json` and `index.html`.

A latent's selectivity is its best AUROC over every (label, value) pair; latents are ranked for a
label value by AUROC, ties broken by the precision of "fires" (share of firing rows that carry
the value), so among perfect detectors the one that fires only for that value comes first.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from saelight.audio.base import AudioSource
from saelight.cache.format import factor_column, factor_names, label_column, label_names
from saelight.cache.reader import CacheReader
from saelight.explorer.audio import write_snippets
from saelight.explorer.html import write_page
from saelight.explorer.selectivity import column_ranks, factor_correlations, label_auroc
from saelight.explorer.stats import CodeSummary, LatentStats
from saelight.sae.base import SAE

log = logging.getLogger(__name__)

HIST_BINS = 16
MAX_VALUES_PER_LATENT = 5  # label values listed per latent and label (the best by AUROC)
MAX_PARQUET_VALUES = 64  # labels with more values get no per-value AUROC columns in the parquet


@dataclass
class LabelStats:
    """Selectivity of every latent for one discrete label (d = d_sae, K = values in the split).

    Attributes:
        values: the K label values, sorted.
        auroc: (d, K) AUROC of the latent's code as a detector of each value.
        precision: (d, K) share of the latent's firing rows that carry each value (NaN if dead).
        top_counts: (d, K) how often each value occurs among the latent's top activations.
    """

    values: list[str]
    auroc: np.ndarray
    precision: np.ndarray
    top_counts: np.ndarray


@dataclass
class Analysis:
    """`CodeSummary` plus per-label selectivity and factor correlations (d, m) of one split."""

    summary: CodeSummary
    labels: dict[str, LabelStats]
    factors: list[str]
    pearson: np.ndarray
    spearman: np.ndarray


@torch.no_grad()
def encode_split(
    sae: SAE,
    reader: CacheReader,
    layer: int,
    rows: np.ndarray,
    top_n: int = 10,
    batch_size: int = 1024,
) -> CodeSummary:
    """Stream cache `rows` of `layer` through `sae.encode` in batches; see `LatentStats`."""
    if layer not in reader.layers:
        raise ValueError(f"layer {layer} is not in the cache (layers {reader.layers})")
    param = next(sae.parameters())
    stats = LatentStats(sae.d_sae, top_n)
    for start in range(0, len(rows), batch_size):
        x = torch.from_numpy(reader.read(rows[start : start + batch_size], layers=[layer])[:, 0])
        stats.update(sae.encode(x.to(param.device, param.dtype)))
    return stats.finish()


def analyse(summary: CodeSummary, meta: pd.DataFrame) -> Analysis:
    """Selectivity and correlations of every latent; `meta` holds the streamed rows in order."""
    codes = summary.codes
    ranks = column_ranks(codes)
    valid = summary.top_values > 0
    top_cols = np.broadcast_to(np.arange(summary.d_sae), summary.top_positions.shape)[valid]
    labels: dict[str, LabelStats] = {}
    for name in label_names(meta.columns):
        column = label_column(name)
        values, y = np.unique(meta[column].astype(str).to_numpy(), return_inverse=True)
        k = len(values)
        auroc, fires_in = label_auroc(codes, y, k, ranks)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = fires_in / summary.fires[:, None]
        key = top_cols * k + y[summary.top_positions[valid]]
        top_counts = np.bincount(key, minlength=summary.d_sae * k).reshape(summary.d_sae, k)
        labels[name] = LabelStats(list(values), auroc, precision, top_counts)
    names = factor_names(meta.columns)
    factor_columns = [factor_column(n) for n in names]
    factors = meta[factor_columns].to_numpy(dtype=np.float64).reshape(len(meta), -1)
    pearson, spearman = factor_correlations(codes, factors, ranks)
    return Analysis(summary, labels, names, pearson, spearman)


def _num(x: float, digits: int = 4) -> float | None:
    """JSON-safe float rounded to `digits` significant digits (None for NaN)."""
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _best(auroc: np.ndarray, precision: np.ndarray) -> np.ndarray:
    """Column order of `auroc` (n, K) rows: by AUROC, then precision, both descending, NaN last."""
    a = np.where(np.isnan(auroc), -np.inf, auroc)
    p = np.where(np.isnan(precision), -np.inf, precision)
    return np.lexsort((-p, -a), axis=-1)


def selectivity(analysis: Analysis) -> tuple[np.ndarray, list[str | None]]:
    """(d,) best AUROC of each latent over every label value, and that "label=value" (NaN and
    None for a latent that never fires)."""
    d = analysis.summary.d_sae
    dead = analysis.summary.fires == 0
    best = np.full(d, np.nan)
    which: list[str | None] = [None] * d
    for name, stats in analysis.labels.items():
        order = _best(stats.auroc, stats.precision)[:, 0]
        value = np.where(dead, np.nan, stats.auroc[np.arange(d), order])
        better = np.nan_to_num(value, nan=-np.inf) > np.nan_to_num(best, nan=-np.inf)
        best = np.where(better, value, best)
        for j in np.flatnonzero(better):
            which[j] = f"{name}={stats.values[order[j]]}"
    return best, which


def latent_records(
    analysis: Analysis, rows: dict[int, dict[str, Any]], top_corr: int = 5
) -> list[dict[str, Any]]:
    """One JSON-able dict per latent.

    Fields: latent, fires (rows where code > 0), frequency (fires / rows), mean_activation (over
    firing rows), max_activation, selectivity and best_label (best AUROC over label values),
    histogram (`HIST_BINS` counts of the firing codes over (0, max]), top (the top rows, with
    clip_id, start_s, end_s, frame, labels, audio and activation), labels ({label: {auroc,
    precision: the best `MAX_VALUES_PER_LATENT` values; top: value counts among the top rows}})
    and correlations (the `top_corr` factors with the largest |Spearman|, with Pearson).

    Args:
        analysis: `analyse` output.
        rows: {stream position: row facts} for every position among the top rows.
        top_corr: factors listed per latent.
    """
    s = analysis.summary
    freq, mean, hist = s.frequency, s.mean_when_firing, s.histogram(HIST_BINS)
    sel, best = selectivity(analysis)
    strength = np.nan_to_num(np.abs(analysis.spearman), nan=-1.0)
    records = []
    for j in range(s.d_sae):
        labels = {}
        for name, st in analysis.labels.items():
            order = [
                c
                for c in _best(st.auroc[j], st.precision[j])[:MAX_VALUES_PER_LATENT]
                if not np.isnan(st.auroc[j, c])
            ]
            labels[name] = {
                "auroc": {st.values[c]: _num(st.auroc[j, c]) for c in order},
                "precision": {st.values[c]: _num(st.precision[j, c]) for c in order},
                "top": {st.values[c]: int(n) for c, n in enumerate(st.top_counts[j]) if n},
            }
        corr = [
            {
                "factor": analysis.factors[m],
                "pearson": _num(analysis.pearson[j, m]),
                "spearman": _num(analysis.spearman[j, m]),
            }
            for m in np.argsort(-strength[j])[:top_corr]
            if strength[j, m] >= 0
        ]
        top = [
            {**rows[int(p)], "activation": _num(v)}
            for v, p in zip(s.top_values[:, j], s.top_positions[:, j], strict=True)
            if v > 0
        ]
        records.append(
            {
                "latent": j,
                "fires": int(s.fires[j]),
                "frequency": _num(freq[j]),
                "mean_activation": _num(mean[j]),
                "max_activation": _num(s.max[j]),
                "selectivity": _num(sel[j]),
                "best_label": best[j],
                "histogram": hist[j].tolist(),
                "top": top,
                "labels": labels,
                "correlations": corr,
            }
        )
    return records


def label_ranking(
    analysis: Analysis, limit: int = 20
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{label: {value: the `limit` firing latents that best detect it}}, by AUROC then precision."""
    freq = analysis.summary.frequency
    live = np.flatnonzero(analysis.summary.fires > 0)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, st in analysis.labels.items():
        out[name] = {}
        for c, value in enumerate(st.values):
            if np.isnan(st.auroc[:, c]).all():
                continue
            order = live[_best(st.auroc[live, c], st.precision[live, c])[:limit]]
            out[name][value] = [
                {
                    "latent": int(j),
                    "auroc": _num(st.auroc[j, c]),
                    "precision": _num(st.precision[j, c]),
                    "frequency": _num(freq[j]),
                }
                for j in order
            ]
    return out


def latent_frame(records: list[dict[str, Any]], analysis: Analysis) -> pd.DataFrame:
    """The flat per-latent table written as `latents.parquet`."""
    keys = (
        "latent",
        "fires",
        "frequency",
        "mean_activation",
        "max_activation",
        "selectivity",
        "best_label",
    )
    frame = pd.DataFrame({k: [r[k] for r in records] for k in keys})
    frame["top_rows"] = [[t["row"] for t in r["top"]] for r in records]
    frame["top_activations"] = [[t["activation"] for t in r["top"]] for r in records]
    columns: dict[str, np.ndarray] = {}
    for name, st in analysis.labels.items():
        if len(st.values) <= MAX_PARQUET_VALUES:
            columns.update({f"auroc:{name}={v}": st.auroc[:, c] for c, v in enumerate(st.values)})
    columns.update(
        {f"spearman:{f}": analysis.spearman[:, m] for m, f in enumerate(analysis.factors)}
    )
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def _row_info(
    meta: pd.DataFrame, positions: np.ndarray, audio: dict[int, str]
) -> dict[int, dict[str, Any]]:
    """{stream position: the row's clip, time span, labels and audio snippet}."""
    labels = label_names(meta.columns)
    sub = meta.iloc[positions]
    info = {}
    for p, r in zip(positions, sub.to_dict("records"), strict=True):
        info[int(p)] = {
            "row": int(r["row"]),
            "clip_id": str(r["clip_id"]),
            "start_s": _num(r["start_s"], 6),
            "end_s": _num(r["end_s"], 6),
            "frame": int(r["frame"]),
            "audio": audio.get(int(r["row"])),
            "labels": {n: str(r[label_column(n)]) for n in labels},
        }
    return info


def explore(
    sae: SAE,
    reader: CacheReader,
    layer: int,
    out: str | Path,
    source: AudioSource | None = None,
    split: str = "test",
    top_n: int = 10,
    title: str = "sae",
    info: dict[str, Any] | None = None,
    audio: bool = True,
    frame_window_s: float = 1.0,
    batch_size: int = 1024,
    wandb_run: Any = None,
) -> Path:
    """Inspect one SAE on one split and write the explorer folder.

    Args:
        sae: the SAE (on any device; codes are gathered on the CPU).
        reader: the activation cache.
        layer: the backbone layer the SAE reads.
        out: output folder (index.html, latents.json/.parquet, labels.json, audio/).
        source: the cache's audio source, to re-load the top rows' audio (None: files by path).
        split: which split's rows to inspect.
        top_n: top activating rows kept per latent.
        title: name shown on the page (e.g. the SAE key).
        info: extra facts shown on the page and stored in the JSON (cfg.json fields).
        audio: write the audio snippets of the top rows.
        frame_window_s: seconds of audio played around a frame row (frame pooling).
        batch_size: rows per encode batch.
        wandb_run: a wandb run to log a table with audio cells to.

    Returns:
        `out`.
    """
    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = reader.split_rows(split)
    if not len(rows):
        raise ValueError(f"split {split!r} of cache {reader.directory} has no rows")
    meta = reader.metadata.iloc[rows].reset_index(drop=True)
    analysis = analyse(encode_split(sae, reader, layer, rows, top_n, batch_size), meta)
    s = analysis.summary
    positions = np.unique(s.top_positions[s.top_values > 0])
    snippets = write_snippets(meta.iloc[positions], source, out, frame_window_s) if audio else {}
    records = latent_records(analysis, _row_info(meta, positions, snippets))
    ranking = label_ranking(analysis)
    header = {
        "title": title,
        "split": split,
        "layer": layer,
        "n_rows": s.n_rows,
        "top_n": top_n,
        "d_sae": s.d_sae,
        "dead": int((s.fires == 0).sum()),
        **(info or {}),
    }
    (out / "latents.json").write_text(json.dumps({**header, "latents": records}))
    (out / "labels.json").write_text(json.dumps(ranking, indent=1))
    latent_frame(records, analysis).to_parquet(out / "latents.parquet", index=False)
    write_page(out / "index.html", header, records, ranking)
    if wandb_run is not None:
        from saelight.explorer.wandb_table import log_explorer

        log_explorer(wandb_run, title, records, out)
    log.info(
        "explorer %s: %d latents over %d %s rows in %.1f s -> %s",
        title,
        s.d_sae,
        s.n_rows,
        split,
        time.perf_counter() - t0,
        out,
    )
    return out
