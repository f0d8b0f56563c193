"""`Analysis` -> the explorer's tables: one record per latent (latents.json), the flat table
(latents.parquet) and per label value the latents that detect it best (labels.json).

Every ranking here is `selectivity.detector_order`: F1 of "fires" descending, ties by AUROC.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from saelight.cache.format import label_column, label_names
from saelight.explorer.analysis import Analysis, best_label_values
from saelight.explorer.naming import NAME_COLUMNS, SEED_COLUMNS
from saelight.explorer.neighbours import Neighbours
from saelight.explorer.output_effects import OUTPUT_EFFECT_COLUMNS
from saelight.explorer.quantiles import QuantileSamples
from saelight.explorer.selectivity import detector_order

HIST_BINS = 16
MAX_VALUES_PER_LATENT = 5  # label values listed per latent and label (the best by F1)
MAX_PARQUET_VALUES = 64  # labels with more values get no per-value columns in the parquet
RANKING_LIMIT = 20  # latents listed per label value in labels.json
LIST_COLUMNS = {
    "neighbours_cosine": ("neighbours_cosine", "latent"),
    "neighbours_cosine_values": ("neighbours_cosine", "cosine"),
    "neighbours_coactivation": ("neighbours_coactivation", "latent"),
    "neighbours_jaccard": ("neighbours_coactivation", "jaccard"),
    "quantile_rows": ("quantiles", "row"),
    "quantile_activations": ("quantiles", "activation"),
    "quantile_bands": ("quantiles", "band"),
}
"""latents.parquet list columns: {column: (record field, key of each entry)}."""


def num(x: float, digits: int = 4) -> float | None:
    """JSON-safe float rounded to `digits` significant digits (None for NaN).

    Example:
        >>> num(0.123456), num(float("nan")), num(12345.6, 3)
        (0.1235, None, 12300.0)
    """
    x = float(x)
    if not math.isfinite(x):
        return None
    return float(f"{x:.{digits}g}")


def _label_detail(analysis: Analysis, j: int) -> dict[str, dict[str, Any]]:
    out = {}
    for name, st in analysis.labels.items():
        order = st.order(j)[:MAX_VALUES_PER_LATENT]
        out[name] = {
            key: {st.values[c]: num(array[j, c]) for c in order}
            for key, array in (
                ("f1", st.f1),
                ("auroc", st.auroc),
                ("precision", st.precision),
                ("recall", st.recall),
            )
        }
        out[name]["top"] = {st.values[c]: int(n) for c, n in enumerate(st.top_counts[j]) if n}
    return out


def latent_records(
    analysis: Analysis,
    rows: dict[int, dict[str, Any]],
    top_corr: int = 5,
    cosine: Neighbours | None = None,
    coactivation: Neighbours | None = None,
    quantiles: QuantileSamples | None = None,
) -> list[dict[str, Any]]:
    """One JSON-able dict per latent.

    Fields: latent, fires (rows where code > 0), frequency (fires / rows), mean_activation (over
    firing rows), max_activation, selectivity (best F1 over label values, `detector_f1`),
    best_label ("label=value" of that F1) and best_auroc (its AUROC), histogram (`HIST_BINS`
    counts of the firing codes over (0, max]), top (the top rows: row, clip_id, start_s, end_s,
    frame, labels, activation; `explore` adds audio and spectrogram, whether the page embeds
    them), labels ({label: {f1, auroc, precision, recall: the best `MAX_VALUES_PER_LATENT`
    values by F1; top: value counts among the top rows}}) and correlations (the `top_corr`
    factors with the largest |Spearman|, with Pearson). When given, also
    neighbours_cosine ([{latent, cosine}]: the nearest latents by decoder-row cosine),
    neighbours_coactivation ([{latent, jaccard}]: the nearest by the Jaccard index of their
    firing rows; both `neighbours`, best first) and quantiles (rows drawn from the latent's
    activation-quantile bands, `quantiles`: the same facts as a top row plus band, 0 = the
    weakest; highest band first).

    Args:
        analysis: `analyse` output.
        rows: {stream position: row facts} for every position among the top and drawn rows.
        top_corr: factors listed per latent.
        cosine: nearest latents by decoder cosine (`decoder_neighbours`).
        coactivation: nearest latents by co-activation (`coactivation_neighbours`).
        quantiles: the quantile-band rows (`quantile_samples`).
    """
    s = analysis.summary
    freq, mean, hist = s.frequency, s.mean_when_firing, s.histogram(HIST_BINS)
    sel, sel_auroc, best = best_label_values(analysis)
    strength = np.nan_to_num(np.abs(analysis.spearman), nan=-1.0)
    records = []
    for j in range(s.d_sae):
        corr = [
            {
                "factor": analysis.factors[m],
                "pearson": num(analysis.pearson[j, m]),
                "spearman": num(analysis.spearman[j, m]),
            }
            for m in np.argsort(-strength[j])[:top_corr]
            if strength[j, m] >= 0
        ]
        top = [
            {**rows[int(p)], "activation": num(v)}
            for v, p in zip(s.top_values[:, j], s.top_positions[:, j], strict=True)
            if v > 0
        ]
        record = {
            "latent": j,
            "fires": int(s.fires[j]),
            "frequency": num(freq[j]),
            "mean_activation": num(mean[j]),
            "max_activation": num(s.max[j]),
            "selectivity": num(sel[j]),
            "best_label": best[j],
            "best_auroc": num(sel_auroc[j]),
            "histogram": hist[j].tolist(),
            "top": top,
            "labels": _label_detail(analysis, j),
            "correlations": corr,
        }
        for key, measure, found in (
            ("neighbours_cosine", "cosine", cosine),
            ("neighbours_coactivation", "jaccard", coactivation),
        ):
            if found is not None:
                record[key] = [{"latent": i, measure: num(x)} for i, x in found.of(j)]
        if quantiles is not None:
            record["quantiles"] = [
                {**rows[p], "activation": num(v), "band": b} for p, v, b in quantiles.of(j)
            ]
        records.append(record)
    return records


def label_ranking(
    analysis: Analysis, limit: int = RANKING_LIMIT
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """{label: {value: the `limit` firing latents that best detect it}}, by `detector_order`
    (F1 of "fires", ties by AUROC); each entry holds latent, f1, auroc, precision, recall and
    frequency."""
    freq = analysis.summary.frequency
    live = np.flatnonzero(analysis.summary.fires > 0)
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for name, st in analysis.labels.items():
        out[name] = {}
        for c, value in enumerate(st.values):
            if np.isnan(st.f1[:, c]).all():
                continue
            order = live[detector_order(st.f1[live, c], st.auroc[live, c])[:limit]]
            out[name][value] = [
                {
                    "latent": int(j),
                    "f1": num(st.f1[j, c]),
                    "auroc": num(st.auroc[j, c]),
                    "precision": num(st.precision[j, c]),
                    "recall": num(st.recall[j, c]),
                    "frequency": num(freq[j]),
                }
                for j in order
            ]
    return out


def latent_frame(records: list[dict[str, Any]], analysis: Analysis) -> pd.DataFrame:
    """The flat per-latent table written as `latents.parquet` (per-value `f1:` and `auroc:`
    columns for labels with at most `MAX_PARQUET_VALUES` values, `spearman:` per factor, and the
    naming scalars of `naming.NAME_COLUMNS` and the lists of `LIST_COLUMNS` (neighbour ids and
    scores, quantile rows, codes and bands) when the records carry them)."""
    keys = (
        "latent",
        "fires",
        "frequency",
        "mean_activation",
        "max_activation",
        "selectivity",
        "best_label",
        "best_auroc",
    )
    extra = (*NAME_COLUMNS, *SEED_COLUMNS, *OUTPUT_EFFECT_COLUMNS)
    keys += tuple(k for k in extra if records and k in records[0])
    frame = pd.DataFrame({k: [r[k] for r in records] for k in keys})
    frame["top_rows"] = [[t["row"] for t in r["top"]] for r in records]
    frame["top_activations"] = [[t["activation"] for t in r["top"]] for r in records]
    for column, (key, field) in LIST_COLUMNS.items():
        if records and key in records[0]:
            frame[column] = [[e[field] for e in r[key]] for r in records]
    columns: dict[str, np.ndarray] = {}
    for name, st in analysis.labels.items():
        if len(st.values) <= MAX_PARQUET_VALUES:
            for measure, a in (("f1", st.f1), ("auroc", st.auroc)):
                columns.update({f"{measure}:{name}={v}": a[:, c] for c, v in enumerate(st.values)})
    columns.update(
        {f"spearman:{f}": analysis.spearman[:, m] for m, f in enumerate(analysis.factors)}
    )
    return pd.concat([frame, pd.DataFrame(columns)], axis=1)


def row_info(meta: pd.DataFrame, positions: np.ndarray) -> dict[int, dict[str, Any]]:
    """{stream position: the row's cache row, clip, time span and labels}."""
    labels = label_names(meta.columns)
    sub = meta.iloc[positions]
    info = {}
    for p, r in zip(positions, sub.to_dict("records"), strict=True):
        info[int(p)] = {
            "row": int(r["row"]),
            "clip_id": str(r["clip_id"]),
            "start_s": num(r["start_s"], 6),
            "end_s": num(r["end_s"], 6),
            "frame": int(r["frame"]),
            "labels": {n: str(r[label_column(n)]) for n in labels},
        }
    return info
