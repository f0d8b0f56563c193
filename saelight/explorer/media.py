"""What the page embeds besides the numbers: each top row's audio and spectrogram thumbnail, and
for frame-level SAEs the latent's activation over the frames around its top frame.

The page is one file, so its size is capped (`max_bytes`, from `explore(max_page_mb=...)`): the
latent data always goes in; of the room left, thumbnails (and activation curves) may take up to
`THUMBNAIL_SHARE` and audio takes the rest, including whatever the thumbnails leave. Both are
handed out round-robin by rank: every latent's best row (latents in `order`, best selectivity
first) before any latent's second-best row, so a cap leaves each latent at least one clip before
it gives a better latent a second one; the rows drawn from activation quantiles (`quantiles`)
come after every top row. A row already embedded for another latent costs nothing
again. The first item that does not fit closes its kind, so what is left out is always the tail:
the lower ranks, of the lower-ranked latents first. `PageMedia.summary` says how much was
dropped; `cap_note` words it for the page's note and the log.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from saelight.explorer.audio import ClipLoader, Codec, cut, encode, snippet_span
from saelight.explorer.spectrogram import thumbnail_png

log = logging.getLogger(__name__)

THUMBNAIL_SHARE = 0.25
ENTRY_OVERHEAD = 24  # bytes of JSON around one embedded base64 string ("123":"...",)


def b64_size(n: int) -> int:
    """Length of the base64 text of `n` bytes, plus the JSON around it."""
    return 4 * ((n + 2) // 3) + ENTRY_OVERHEAD


@dataclass
class PageMedia:
    """Media embedded in the page, by cache row (curves by (latent, cache row)).

    Attributes:
        codec: "flac" or "opus".
        audio: encoded snippet of each row.
        spectrogram: PNG thumbnail of each row's snippet.
        window: (snippet start, snippet end, clip length) in seconds of each loaded row.
        curves: interleaved uint8 (x, y) points: x = frame centre over the snippet window (0-255),
            y = the latent's code / its maximum over the split (0-255).
        top_rows: distinct rows among every latent's top activations.
        drawn: rows on the cards only as quantile examples (`quantiles`), no latent's top row.
        unavailable: rows whose audio could not be loaded.
    """

    codec: str = "flac"
    audio: dict[int, bytes] = field(default_factory=dict)
    spectrogram: dict[int, bytes] = field(default_factory=dict)
    window: dict[int, tuple[float, float, float]] = field(default_factory=dict)
    curves: dict[tuple[int, int], bytes] = field(default_factory=dict)
    top_rows: int = 0
    drawn: set[int] = field(default_factory=set)
    unavailable: int = 0

    def summary(self) -> dict[str, Any]:
        """JSON-able counts for the page header and latents.json."""
        return {
            "codec": self.codec,
            "top_rows": self.top_rows,
            "audio_rows": len(self.audio.keys() - self.drawn),
            "spectrogram_rows": len(self.spectrogram.keys() - self.drawn),
            "quantile_rows": len(self.drawn),
            "quantile_audio_rows": len(self.audio.keys() & self.drawn),
            "quantile_spectrogram_rows": len(self.spectrogram.keys() & self.drawn),
            "curves": len(self.curves),
            "unavailable": self.unavailable,
            "audio_bytes": sum(len(v) for v in self.audio.values()),
            "spectrogram_bytes": sum(len(v) for v in self.spectrogram.values()),
        }


class _Budget:
    """Bytes left for one kind of media; closed for good by the first item that does not fit."""

    def __init__(self, room: float) -> None:
        self.left, self.open = room, room > 0

    def take(self, data: bytes) -> bool:
        if self.open and b64_size(len(data)) <= self.left:
            self.left -= b64_size(len(data))
            return True
        self.open = False
        return False


def _column(codes: sp.csc_matrix, j: int, positions: np.ndarray) -> np.ndarray:
    """codes[positions, j] as a dense float array, without densifying the column (the CSC
    matrix of `LatentStats.finish` is canonical: row indices sorted within each column)."""
    lo, hi = codes.indptr[j], codes.indptr[j + 1]
    rows, data = codes.indices[lo:hi], codes.data[lo:hi]
    out = np.zeros(len(positions))
    if len(rows):
        at = np.minimum(np.searchsorted(rows, positions), len(rows) - 1)
        hit = rows[at] == positions
        out[hit] = data[at[hit]]
    return out


def activation_curve(
    codes: sp.csc_matrix,
    j: int,
    frames: np.ndarray,
    centres: np.ndarray,
    window: tuple[float, float],
    peak: float,
) -> bytes:
    """Latent j's code on the frames of one clip whose centre lies in `window`, as interleaved
    uint8 (x, y): x = (centre - start) / (end - start) and y = code / `peak`, both scaled to 255.

    Args:
        codes: (n, d) CSC codes of the split.
        j: the latent.
        frames: stream positions of the clip's frame rows.
        centres: (len(frames),) their centre times in seconds.
        window: (start, end) seconds of the snippet.
        peak: the latent's largest code over the split.
    """
    start, end = window
    inside = (centres >= start) & (centres <= end)
    x = (centres[inside] - start) / max(end - start, 1e-9)
    y = _column(codes, j, frames[inside]) / max(peak, 1e-12)
    points = np.stack([x, y], 1).clip(0.0, 1.0) * 255.0
    return points.round().astype(np.uint8).tobytes()


def embed_media(
    order: np.ndarray,
    top_positions: np.ndarray,
    top_values: np.ndarray,
    meta: pd.DataFrame,
    codes: sp.csc_matrix,
    peaks: np.ndarray,
    loader: ClipLoader,
    max_bytes: float | None,
    codec: Codec = "flac",
    frame_window_s: float = 1.0,
    drawn: tuple[np.ndarray, np.ndarray] | None = None,
) -> PageMedia:
    """Load, cut, encode and thumbnail the top rows of the latents in `order` within `max_bytes`,
    then their `drawn` (quantile) rows, the same way, in what room is left.

    Args:
        order: latent ids, best first.
        top_positions: (N, d) stream positions of each latent's top rows (`CodeSummary`).
        top_values: (N, d) their codes; rows with code 0 are not top rows.
        meta: the split's metadata, row i = stream position i (row, clip_id, path, start_s,
            end_s, frame).
        codes: (n, d) CSC codes of the split, for the frame-level activation curves.
        peaks: (d,) each latent's largest code.
        loader: loads clips by id.
        max_bytes: room in the page for media (None: no cap).
        codec: "flac" or "opus".
        frame_window_s: seconds of audio around a frame row.
        drawn: (S, d) stream positions and codes of rows drawn from each latent's activation
            quantiles (`QuantileSamples`), ranked after every top row (code 0: no row).
    """
    media = PageMedia(codec=codec)
    top = np.unique(top_positions[top_values > 0])
    media.top_rows = len(top)
    if drawn is not None:
        extra = np.setdiff1d(drawn[0][drawn[1] > 0], top)
        media.drawn = set(meta["row"].to_numpy()[extra].tolist())
        top_positions = np.vstack([top_positions, drawn[0]])
        top_values = np.vstack([top_values, drawn[1]])
    room = float("inf") if max_bytes is None else float(max_bytes)
    thumbs, sounds = _Budget(room * THUMBNAIL_SHARE), _Budget(room * (1.0 - THUMBNAIL_SHARE))
    rows, clip_ids = meta["row"].to_numpy(), meta["clip_id"].astype(str).to_numpy()
    frames = _frames_by_clip(meta) if (meta["frame"].to_numpy() >= 0).any() else {}
    tried: set[int] = set()
    for j, p in _pairs(order, top_positions, top_values):
        if not (thumbs.open or sounds.open):
            break
        row = int(rows[p])
        if row not in tried:
            tried.add(row)
            _embed_row(media, row, meta.iloc[p], loader, thumbs, sounds, codec, frame_window_s)
        if frames and row in media.spectrogram and thumbs.open:
            clip_frames, centres = frames[clip_ids[p]]
            window = media.window[row][:2]
            curve = activation_curve(codes, j, clip_frames, centres, window, peaks[j])
            if thumbs.take(curve):
                media.curves[(j, row)] = curve
    if sounds.open or not 0 < thumbs.left < float("inf"):
        return media
    # the thumbnails are done: the room they left goes to the audio, from the first row refused
    sounds.left, sounds.open = sounds.left + thumbs.left, True
    done = _Budget(0)
    for _, p in _pairs(order, top_positions, top_values):
        row = int(rows[p])
        if not sounds.open:
            break
        if row not in media.audio and (row in media.window or row not in tried):
            tried.add(row)
            _embed_row(media, row, meta.iloc[p], loader, done, sounds, codec, frame_window_s)
    return media


def _pairs(
    order: np.ndarray, top_positions: np.ndarray, top_values: np.ndarray
) -> Iterator[tuple[int, int]]:
    """(latent, stream position) of every row, round-robin by rank: each latent's best row,
    latents in `order`, then each latent's second-best row, and so on, so that under a cap
    every latent gets one clip before any latent gets a second."""
    order = np.asarray(order, dtype=np.int64)
    for rank in range(top_positions.shape[0]):
        for j in order[top_values[rank, order] > 0]:
            yield int(j), int(top_positions[rank, j])


def cap_note(summary: dict[str, Any], max_page_mb: float) -> str:
    """What the page cap left out, in words ("" when nothing was), for the page note and the log.

    Example:
        >>> s = {"top_rows": 365, "unavailable": 0, "audio_rows": 171, "spectrogram_rows": 365}
        >>> cap_note(s, 20)
        'audio of 194 rows (of 365) left out to stay under 20 MB (--max_page_mb)'
    """
    total = summary["top_rows"] - summary["unavailable"]
    parts = [
        f"{kind} of {total - summary[key]} rows (of {total})"
        for kind, key in (("audio", "audio_rows"), ("spectrograms", "spectrogram_rows"))
        if summary[key] < total
    ]
    if not parts:
        return ""
    return f"{' and '.join(parts)} left out to stay under {max_page_mb:g} MB (--max_page_mb)"


def _embed_row(
    media: PageMedia,
    row: int,
    info: pd.Series,
    loader: ClipLoader,
    thumbs: _Budget,
    sounds: _Budget,
    codec: Codec,
    frame_window_s: float,
) -> None:
    """Load row `row`'s clip, note its window, and add its thumbnail / audio where they fit."""
    if not (thumbs.open or sounds.open):
        return
    wave = loader.load(str(info["clip_id"]), str(info["path"] or ""))
    if wave is None:
        media.unavailable += 1
        return
    rate = loader.sample_rate
    start, end = snippet_span(info["start_s"], info["end_s"], int(info["frame"]), frame_window_s)
    length = len(wave) / rate
    media.window[row] = (round(start, 4), round(min(end, length), 4), round(length, 4))
    snippet = cut(wave, start, end, rate)
    if thumbs.open:
        png = thumbnail_png(snippet, rate)
        if thumbs.take(png):
            media.spectrogram[row] = png
    if sounds.open:
        data = encode(snippet, rate, codec)
        if sounds.take(data):
            media.audio[row] = data


def _frames_by_clip(meta: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{clip_id: (stream positions of its frame rows, their centre times)}, in time order."""
    centres = ((meta["start_s"] + meta["end_s"]) / 2.0).to_numpy()
    out = {}
    for clip_id, positions in meta.groupby("clip_id", sort=False).indices.items():
        positions = positions[np.argsort(centres[positions], kind="stable")]
        out[str(clip_id)] = (positions, centres[positions])
    return out
