"""One SAE over one split: stream the codes (`encode_split`), then score every latent against the
labels and factors (`analyse`) and pick each latent's best label value (`best_label_values`).

A latent is scored for a label value by the F1 of "it fires" as a detector of that value (formula
and why in `selectivity.detector_f1`), ties broken by AUROC; its selectivity is its best F1 over
every (label, value) pair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from saelight.cache.format import factor_column, factor_names, label_column, label_names
from saelight.cache.reader import CacheReader
from saelight.data.row_stats import RowStats
from saelight.explorer.selectivity import (
    column_ranks,
    detector_f1,
    detector_order,
    factor_correlations,
    label_auroc,
)
from saelight.explorer.stats import CodeSummary, LatentStats
from saelight.sae.base import SAE


@dataclass
class LabelStats:
    """Selectivity of every latent for one discrete label (d = d_sae, K = values in the split).

    Attributes:
        values: the K label values, sorted.
        positives: (K,) rows carrying each value.
        auroc: (d, K) AUROC of the latent's code as a detector of each value.
        precision: (d, K) share of the latent's firing rows that carry each value (NaN if dead).
        recall: (d, K) share of each value's rows on which the latent fires.
        f1: (d, K) F1 of "fires" as a detector of each value: the ranking score.
        top_counts: (d, K) how often each value occurs among the latent's top activations.
    """

    values: list[str]
    positives: np.ndarray
    auroc: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    top_counts: np.ndarray

    def order(self, j: int) -> np.ndarray:
        """Value indices of latent j, best first (`detector_order`), undefined ones left out."""
        return np.array(
            [c for c in detector_order(self.f1[j], self.auroc[j]) if not np.isnan(self.f1[j, c])],
            dtype=np.int64,
        )


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
    row_stats: RowStats | None = None,
) -> CodeSummary:
    """Stream cache `rows` of `layer` through `sae.encode` in batches; see `LatentStats`.

    With the run's `row_stats`, rows are centred as in training, and a row training left out
    (`data.max_norm_multiple`) gets all-zero codes: it stays in place but never fires."""
    if layer not in reader.layers:
        raise ValueError(f"layer {layer} is not in the cache (layers {reader.layers})")
    param = next(sae.parameters())
    stats = LatentStats(sae.d_sae, top_n)
    frames = None
    if row_stats is not None and "frame" in reader.metadata:
        frames = reader.metadata["frame"].to_numpy()[rows]
    for start in range(0, len(rows), batch_size):
        x = reader.read(rows[start : start + batch_size], layers=[layer])[:, 0]
        kept = None
        if row_stats is not None:
            at = None if frames is None else frames[start : start + batch_size]
            kept, offset = row_stats.layer_rows(x, at, row_stats.layers.index(layer))
            x = x if offset is None else x - offset
        z = sae.encode(torch.from_numpy(x).to(param.device, param.dtype))
        if kept is not None and not kept.all():
            z = z * torch.from_numpy(kept).to(z.device, z.dtype)[:, None]
        stats.update(z)
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
        positives = np.bincount(y, minlength=k)
        precision, recall, f1 = detector_f1(fires_in, summary.fires, positives, summary.n_rows)
        key = top_cols * k + y[summary.top_positions[valid]]
        top_counts = np.bincount(key, minlength=summary.d_sae * k).reshape(summary.d_sae, k)
        labels[name] = LabelStats(list(values), positives, auroc, precision, recall, f1, top_counts)
    names = factor_names(meta.columns)
    factor_columns = [factor_column(n) for n in names]
    factors = meta[factor_columns].to_numpy(dtype=np.float64).reshape(len(meta), -1)
    pearson, spearman = factor_correlations(codes, factors, ranks)
    return Analysis(summary, labels, names, pearson, spearman)


def best_label_values(analysis: Analysis) -> tuple[np.ndarray, np.ndarray, list[str | None]]:
    """(d,) best F1 of each latent over every (label, value) pair, the AUROC of that pair, and the
    pair as "label=value"; NaN, NaN and None for a latent that never fires (or with no labels).
    Ties go to the higher AUROC, then to the label listed first."""
    d = analysis.summary.d_sae
    rows, dead = np.arange(d), analysis.summary.fires == 0
    best_f1, best_auroc = np.full(d, -np.inf), np.full(d, -np.inf)
    which: list[str | None] = [None] * d
    for name, st in analysis.labels.items():
        c = detector_order(st.f1, st.auroc)[:, 0]
        f1, auroc = st.f1[rows, c], np.nan_to_num(st.auroc[rows, c], nan=-np.inf)
        better = (f1 > best_f1) | ((f1 == best_f1) & (auroc > best_auroc))
        better &= ~np.isnan(f1) & ~dead
        best_f1[better], best_auroc[better] = f1[better], auroc[better]
        for j in np.flatnonzero(better):
            which[j] = f"{name}={st.values[c[j]]}"
    found = np.array([w is not None for w in which], dtype=bool)
    best_f1[~found], best_auroc[~found] = np.nan, np.nan
    best_auroc[np.isinf(best_auroc)] = np.nan
    return best_f1, best_auroc, which


def latent_order(analysis: Analysis) -> np.ndarray:
    """Latent ids by selectivity (best F1, then its AUROC), then fires, descending; dead last.
    The order in which the page's media budget is handed out."""
    f1, auroc, _ = best_label_values(analysis)
    fires = analysis.summary.fires.astype(np.float64)
    keys = [np.nan_to_num(-x, nan=np.inf) for x in (fires, auroc, f1)]
    order = np.lexsort(keys)
    return order[fires[order] > 0]
