"""The layer sweep's table and figure: dense probe accuracy vs layer (`saelight layer-sweep`)."""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure


def sweep_figure(results: list[dict[str, Any]], label: str, title: str) -> Figure:
    """Test and val accuracy (%) vs layer."""
    fig = Figure(figsize=(6, 4), layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    layers = [r["layer"] for r in results]
    ax.plot(layers, [100 * r["accuracy"] for r in results], marker="o", label="test")
    ax.plot(
        layers, [100 * r["val_accuracy"] for r in results], marker=".", linestyle=":", label="val"
    )
    ax.set_xticks(layers)
    ax.set_xlabel("layer (0 = embeddings)")
    ax.set_ylabel(f"{label} probe accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def format_table(results: list[dict[str, Any]]) -> str:
    """A Markdown table: layer, test accuracy (%), macro-F1, val accuracy (%)."""
    lines = ["| layer | test acc (%) | macro-F1 | val acc (%) |", "|---|---:|---:|---:|"]
    lines += [
        f"| L{r['layer']} | {100 * r['accuracy']:.2f} | {r['macro_f1']:.3f} | "
        f"{100 * r['val_accuracy']:.2f} |"
        for r in results
    ]
    return "\n".join(lines)
