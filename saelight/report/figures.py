"""The report's figures, drawn from result rows with matplotlib's Agg canvas (no pyplot state).

`make_figures(rows)` is shared by `saelight report` (PNG files) and the evaluation callback (W&B
images), so both show the same plots. Each SAE line is one (model, layer); the dense activations
of that layer are a dashed horizontal line of the same colour.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from saelight.evaluation.results import (
    EFFECTIVE_DIMS,
    GroupKey,
    Row,
    completeness_key,
    group_rows,
    probe_acc_key,
    probe_classes_key,
    probe_confusion_key,
    probed_labels,
    where,
)

# eGeMAPSv02 functional names (and the synthetic source's factor names) -> factor family. The first
# matching pattern wins: "F1amplitudeLogRelF0" is a formant and "logRelF0-H1-H2" voice quality,
# although both mention F0.
FACTOR_GROUPS: tuple[tuple[str, str], ...] = (
    ("formants", r"(?:^|_)F[1-3](?:frequency|bandwidth|amplitude|_)"),
    ("voice quality", r"(?i)jitter|shimmer|hnr|h1-|noise|open_quotient"),
    ("temporal", r"(?i)persec|segmentlength|voiced_fraction"),
    ("MFCC", r"(?i)mfcc"),
    ("spectral", r"(?i)alpha|hammarberg|slope|spectral|tilt|flux"),
    ("loudness", r"(?i)loudness|level|am_depth"),
    ("pitch", r"(?i)f0|pitch|semitone|vibrato|trill"),
)


def factor_group(name: str) -> str:
    """Family of a factor name, e.g. 'F0semitoneFrom27.5Hz_sma3nz_amean' -> 'pitch'."""
    for group, pattern in FACTOR_GROUPS:
        if re.search(pattern, name):
            return group
    return "other"


def _figure(ncols: int = 1, width: float = 6.0) -> tuple[Figure, list[Axes]]:
    fig = Figure(figsize=(width * ncols, 4.0), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, ncols, squeeze=False)[0]
    return fig, list(axes)


def _lines(
    ax: Axes, groups: dict[GroupKey, tuple[Row | None, list[Row]]], key: str, scale: float = 1.0
) -> bool:
    """One line per layer (SAE `key` vs sparsity %), the dense value dashed; True if any drawn."""
    drawn = False
    for i, (group, (dense, saes)) in enumerate(groups.items()):
        color = f"C{i % 10}"
        points = [
            (100 * float(r["sparsity"]), scale * float(r[key]))
            for r in saes
            if r.get("sparsity") is not None and r.get(key) is not None
        ]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", color=color, label=where(group))
            drawn = True
        if dense is not None and dense.get(key) is not None:
            ax.axhline(
                scale * float(dense[key]),
                color=color,
                linestyle="--",
                linewidth=1,
                label=f"{where(group)} dense",
            )
            drawn = True
    if drawn:
        ax.set_xlabel("sparsity (% of latents zeroed)")
        ax.legend(fontsize="small")
        ax.grid(alpha=0.3)
    return drawn


def accuracy_figure(rows: list[Row], label: str) -> Figure | None:
    """Test accuracy of the `label` probe vs sparsity, per layer, dense dashed."""
    fig, (ax,) = _figure()
    if not _lines(ax, group_rows(rows), probe_acc_key(label), scale=100.0):
        return None
    ax.set_ylabel(f"{label} probe accuracy (%)")
    ax.set_title(f"Probe accuracy: {label}")
    return fig


def reconstruction_figure(rows: list[Row]) -> Figure | None:
    """MSE and FVU vs sparsity on a log scale, per layer (SAE rows only)."""
    saes_only = {k: (None, saes) for k, (_, saes) in group_rows(rows).items()}
    fig, axes = _figure(2)
    drawn = False
    for ax, key in zip(axes, ("mse", "fvu"), strict=True):
        if _lines(ax, saes_only, key):
            drawn = True
            ax.set_yscale("log")
            ax.set_ylabel(f"test {key.upper()} (log scale)")
            ax.set_title(f"Reconstruction: {key.upper()}")
    return fig if drawn else None


def completeness_figure(rows: list[Row]) -> Figure | None:
    """Effective dims per factor (K-independent, claim 3) and completeness (paper's K, K-fair)
    vs sparsity, per layer, dense dashed."""
    fig, axes = _figure(3)
    drawn = False
    groups = group_rows(rows)
    panels = (
        (EFFECTIVE_DIMS, "effective dims per factor, exp(H)", "Effective dims (K-independent)"),
        (
            completeness_key("paper"),
            "completeness, top-10 factors by R²",
            "Completeness (paper's K)",
        ),
        (completeness_key("kfair"), "completeness, top-10 factors by R²", "Completeness (K-fair)"),
    )
    for ax, (key, ylabel, title) in zip(axes, panels, strict=True):
        if _lines(ax, groups, key):
            drawn = True
            ax.set_ylabel(ylabel)
            ax.set_title(title)
    return fig if drawn else None


def top_factor_figure(rows: list[Row]) -> Figure | None:
    """Which factor families fill the top-10 by R², per layer (mean count over dense + SAE rows)."""
    counts: dict[str, Counter] = {}
    for group, (dense, saes) in group_rows(rows).items():
        lists = [
            r["top_factors"] for r in ([dense] if dense else []) + saes if r.get("top_factors")
        ]
        if lists:
            c: Counter = Counter()
            for names in lists:
                c.update(factor_group(n) for n in names)
            counts[where(group)] = Counter({g: n / len(lists) for g, n in c.items()})
    if not counts:
        return None
    families = sorted({g for c in counts.values() for g in c})
    layers = list(counts)
    values = [[counts[layer].get(g, 0.0) for layer in layers] for g in families]
    top = max(max(row) for row in values)
    fig, (ax,) = _figure(width=max(4.0, 1.2 * len(layers) + 2))
    image = ax.imshow(values, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(layers)), layers, rotation=30, ha="right")
    ax.set_yticks(range(len(families)), families)
    for i, row in enumerate(values):
        for j, v in enumerate(row):
            ax.text(
                j,
                i,
                f"{v:.1f}",
                ha="center",
                va="center",
                color="w" if v < 0.6 * top else "k",
                fontsize="small",
            )
    fig.colorbar(image, ax=ax, label="factors in the top 10 by R² (mean over rows)")
    ax.set_title("Top-10 factors by family, per layer")
    return fig


def figure_rgba(fig: Figure) -> np.ndarray:
    """The rendered figure as an (height, width, 4) uint8 array (what `wandb.Image` takes; it only
    accepts Figure objects when pyplot is imported)."""
    fig.canvas.draw()
    return np.asarray(fig.canvas.buffer_rgba()).copy()


def make_figures(rows: list[Row]) -> dict[str, Figure]:
    """All figures the rows allow: `accuracy_<label>`, `reconstruction`, `completeness` (with the
    effective dims), `top_factors` (absent when the rows lack their keys)."""
    figures: dict[str, Figure | None] = {
        f"accuracy_{label}": accuracy_figure(rows, label) for label in probed_labels(rows)
    }
    figures["reconstruction"] = reconstruction_figure(rows)
    figures["completeness"] = completeness_figure(rows)
    figures["top_factors"] = top_factor_figure(rows)
    return {name: fig for name, fig in figures.items() if fig is not None}


def confusion_figure(row: Row, label: str) -> Figure | None:
    """Row-normalised test confusion matrix of the `label` probe of one result row."""
    counts, classes = row.get(probe_confusion_key(label)), row.get(probe_classes_key(label))
    if counts is None or classes is None:
        return None
    m = np.asarray(counts, dtype=float)
    m = m / np.maximum(m.sum(1, keepdims=True), 1)
    fig, (ax,) = _figure(width=1.2 + 0.45 * len(classes))
    ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=7)
    ax.set_yticks(range(len(classes)), classes, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(
        f"L{row['layer']} {row['name']}: {label} ({100 * row[probe_acc_key(label)]:.1f} %)"
    )
    return fig
