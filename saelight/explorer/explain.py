"""`saelight explain`: which of a run's latents fire, and when, on any audio file.

The file runs through the run's backbone and SAEs as the cache's rows did: a frame-level run
(`pooling: frame`) gives one code vector per backbone frame; a clip-level run's SAEs read
mean-pooled crops, so the file is cut into windows of the run's `crop_seconds` (the whole file
when there is none or it is shorter) every quarter window, each window runs through the backbone
and is mean-pooled like a cache row, and its codes stand at the window's centre.

Per SAE the `top` latents are those whose peak over the file is largest relative to their
largest activation on the explorer's split (`max_activation` in latents.parquet), so a latent
firing at its usual strength outranks a loud one at a tenth of its usual; each comes with its
name (`naming`) and the relative path of its card in the run's explorer page (`#q=<latent>`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from saelight.audio.decode import crop_or_pad, load_audio, validate_waveform
from saelight.backbones.base import Backbone
from saelight.backbones.pooling import mean_pool
from saelight.explorer.records import num
from saelight.sae.base import SAE

WINDOW_HOPS = 4
"""Windows per window length (a clip-level run's windows overlap by three quarters)."""
CARD_FIELDS = ("name", "name_family", "name_score", "positional_flag", "best_label")
"""What the explain page shows of each latent's explorer record."""


def load_file(path: str | Path, sample_rate: int, min_samples: int) -> np.ndarray:
    """The file as a mono wave at `sample_rate`; `BadAudioError` (one line naming it) when it is
    missing, unreadable, silent or shorter than the backbone needs."""
    wave = load_audio(path, sample_rate)
    return validate_waveform(wave, sample_rate, min_samples=min_samples, where=str(path))


def windows(n: int, window: int) -> list[int]:
    """Start samples of the windows over a wave of `n` samples (at least one; the last one ends
    at the wave's end).

    Example:
        >>> windows(16000, 8000), windows(5000, 8000)
        ([0, 2000, 4000, 6000, 8000], [0])
    """
    if window >= n:
        return [0]
    hop = max(1, window // WINDOW_HOPS)
    starts = list(range(0, n - window + 1, hop))
    return starts if starts[-1] == n - window else [*starts, n - window]


@torch.no_grad()
def codes_over_time(
    backbone: Backbone,
    saes: dict[str, tuple[SAE, int]],
    wave: np.ndarray,
    pooling: str,
    window_s: float | None,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """((T,) times in seconds, {key: (T, d_sae) codes}) of `wave` for every SAE (see module doc).

    Args:
        backbone: the run's backbone.
        saes: {key: (SAE, the layer it reads)}.
        wave: the file at the backbone's rate.
        pooling: the run's cache pooling, "frame" or "clip".
        window_s: a clip-level run's crop length in seconds (None: the whole file).
    """
    sr = backbone.sample_rate
    if pooling == "frame":
        hidden, mask = backbone.extract([wave])
        valid = mask[0].bool()
        rows = {layer: h[0][valid] for layer, h in hidden.items()}
        times = (np.flatnonzero(valid.numpy()) + 0.5) / backbone.frame_rate_hz
    else:
        size = len(wave) if window_s is None else min(len(wave), round(window_s * sr))
        starts = windows(len(wave), size)
        hidden, mask = backbone.extract([crop_or_pad(wave, size, s) for s in starts])
        rows = {layer: mean_pool(h, mask) for layer, h in hidden.items()}
        times = (np.array(starts) + size / 2) / sr
    codes = {}
    for key, (sae, layer) in saes.items():
        param = next(sae.parameters())
        z = sae.encode(rows[layer].to(param.device, param.dtype))
        codes[key] = z.float().clamp_min(0).cpu().numpy()
    return times, codes


def top_latents(
    codes: np.ndarray, cards: pd.DataFrame, top: int, link: str
) -> list[dict[str, Any]]:
    """The `top` latents of one SAE on one file (see module doc), each with its activation over
    time, its explorer fields (`CARD_FIELDS`) and `link` + "#q=<latent>" to its card."""
    peak = codes.max(0)
    usual = cards["max_activation"].to_numpy(np.float64)
    relative = np.divide(peak, usual, out=peak.astype(np.float64), where=usual > 0)
    order = [int(j) for j in np.argsort(-relative, kind="stable")[:top] if peak[j] > 0]
    out = []
    for j in order:
        fields = {k: _plain(cards[k].iloc[j]) for k in CARD_FIELDS if k in cards}
        out.append(
            {
                "latent": j,
                **fields,
                "peak": num(peak[j]),
                "relative": num(relative[j]),
                "link": f"{link}#q={j}",
                "activation": [num(a) for a in codes[:, j]],
            }
        )
    return out


def _plain(x: Any) -> Any:
    """A parquet cell as JSON: numpy scalars to Python, NaN and None to None."""
    if x is None or (isinstance(x, float) and np.isnan(x)):
        return None
    return x.item() if hasattr(x, "item") else x


def explain_file(
    path: str | Path,
    wave: np.ndarray,
    backbone: Backbone,
    saes: dict[str, tuple[SAE, int]],
    cards: dict[str, pd.DataFrame],
    pages: dict[str, Path],
    out: Path,
    pooling: str,
    window_s: float | None,
    top: int,
) -> dict[str, Any]:
    """The explain record of one file: its duration, times and each SAE's top latents.

    Args:
        path: the file (as named on the page).
        wave: the file at the backbone's rate (`load_file`).
        backbone: the run's backbone.
        saes: {key: (SAE, layer)}.
        cards: {key: that SAE's latents.parquet}.
        pages: {key: that SAE's explorer index.html}.
        out: the folder the page is written to (links are relative to it).
        pooling: the run's cache pooling.
        window_s: a clip-level run's crop length (see `codes_over_time`).
        top: latents shown per SAE.
    """
    times, codes = codes_over_time(backbone, saes, wave, pooling, window_s)
    found = []
    for key, (_, layer) in saes.items():
        link = Path(os.path.relpath(pages[key].resolve(), out.resolve())).as_posix()
        found.append(
            {"key": key, "layer": layer, "top": top_latents(codes[key], cards[key], top, link)}
        )
    return {
        "path": str(path),
        "duration_s": len(wave) / backbone.sample_rate,
        "pooling": pooling,
        "window_s": window_s if pooling == "clip" else None,
        "times": [num(t, 6) for t in times],
        "saes": found,
    }
