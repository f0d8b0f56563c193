"""The splice outputs: `splice.json`, the fidelity figure and the table `saelight splice` prints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from saelight.io.atomic import atomic_write_text
from saelight.report.splice_section import SPLICE_JSON, SPLICE_PNG


def splice_figure(results: list[dict[str, Any]], title: str) -> Figure:
    """Fidelity recovered (per later layer) vs sparsity, one panel per spliced layer."""
    fig = Figure(figsize=(5 * len(results), 4), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_1d(fig.subplots(1, len(results), squeeze=False)[0])
    for ax, result in zip(axes, results, strict=True):
        rows = sorted(result["saes"].values(), key=lambda r: r.get("sparsity") or 0.0)
        x = [100 * (r.get("sparsity") or 0.0) for r in rows]
        for later in rows[0]["per_layer"] if rows else []:
            y = [r["per_layer"][later]["fidelity"] for r in rows]
            ax.plot(x, y, marker="o", label=f"L{later}")
        ax.axhline(1.0, color="grey", lw=0.5)
        ax.axhline(0.0, color="grey", lw=0.5, ls=":")
        ax.set_xlabel("sparsity (%)")
        ax.set_ylabel("fidelity recovered (1 = lossless, 0 = mean-ablation)")
        ax.set_title(f"{title}: SAE spliced at L{result['layer']}")
        ax.grid(alpha=0.3)
        ax.legend(title="later layer")
    return fig


def write_splice(folder: Path, payload: dict[str, Any], title: str) -> None:
    """`folder/splice.json` (atomic) and `folder/splice.png` (see `splice_figure`)."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / SPLICE_JSON, json.dumps(payload, indent=1, default=float))
    splice_figure(payload["layers"], title).savefig(folder / SPLICE_PNG, dpi=120)


def backbone_title(cache: Any) -> str:
    """The figure title: the backbone's model name (its last path component)."""
    return Path(str(cache.backbone.identity().get("model", ""))).name
