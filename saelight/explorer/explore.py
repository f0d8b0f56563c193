"""`explore`: one SAE over one split of the cache -> per-latent tables, a label ranking and a page.

The pipeline reads top to bottom: stream the split through `sae.encode` into `LatentStats`
(`analysis.encode_split`), compute selectivity from the sparse codes (`analysis.analyse`), turn
that into records (`records`: with each latent's nearest latents, `neighbours`, and rows drawn
from its activation quantiles, `quantiles`), embed the top rows' audio and spectrograms, then
the quantile rows', within the page's size cap (`media.embed_media`) and write `latents.json`,
`latents.parquet`, `labels.json` and `index.html`. Every latent also gets its acoustic name,
score and positional flag (`naming`), from the cache's stored descriptors when the descriptor
pass has run. The page is the unit: it holds the audio, there is no `audio/` folder.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from saelight.audio.base import AudioSource
from saelight.cache.descriptors import read_descriptors
from saelight.cache.reader import CacheReader
from saelight.data.row_stats import RowStats
from saelight.explorer.analysis import analyse, encode_split, latent_order
from saelight.explorer.audio import ClipLoader, Codec
from saelight.explorer.html import render_page, write_page
from saelight.explorer.media import PageMedia, embed_media
from saelight.explorer.naming import latent_names
from saelight.explorer.neighbours import coactivation_neighbours, decoder_neighbours
from saelight.explorer.options import ExplorerOptions
from saelight.explorer.quantiles import quantile_samples
from saelight.explorer.records import label_ranking, latent_frame, latent_records, row_info
from saelight.sae.base import SAE

log = logging.getLogger(__name__)

PAGE_SLACK = 16_384  # bytes kept free under the cap for the header's media summary and flags


def explore(
    sae: SAE,
    reader: CacheReader,
    layer: int,
    out: str | Path,
    source: AudioSource | None = None,
    split: str = ExplorerOptions.split,
    top_n: int = ExplorerOptions.top_n,
    title: str = "sae",
    info: dict[str, Any] | None = None,
    audio: bool = True,
    frame_window_s: float = 1.0,
    batch_size: int = 1024,
    wandb_run: Any = None,
    max_page_mb: float = ExplorerOptions.max_page_mb,
    codec: Codec = ExplorerOptions.codec,
    row_stats: RowStats | None = None,
    latent_columns: dict[str, np.ndarray] | None = None,
) -> Path:
    """Inspect one SAE on one split and write the explorer folder.

    Args:
        sae: the SAE (on any device; codes are gathered on the CPU).
        reader: the activation cache.
        layer: the backbone layer the SAE reads.
        out: output folder (index.html, latents.json/.parquet, labels.json).
        source: the cache's audio source, to re-load the top rows' audio (None: files by path).
        split: which split's rows to inspect.
        top_n: top activating rows kept per latent.
        title: name shown on the page (e.g. the SAE key).
        info: extra facts shown on the page and stored in the JSON (cfg.json fields).
        audio: embed the top rows' audio and spectrogram thumbnails (False: numbers only).
        frame_window_s: seconds of audio played around a frame row (frame pooling).
        batch_size: rows per encode batch.
        wandb_run: a wandb run to log a table with audio cells to.
        max_page_mb: cap on index.html in MB (10^6 bytes); past it the audio, then the
            thumbnails, of the lower-ranked latents' rows are left out (`media`).
        codec: "flac" (lossless) or "opus" (about a third of FLAC's size, so more rows fit).
        row_stats: the run's data options (position-centring, outlier rows), applied as in
            training (`analysis.encode_split`).
        latent_columns: extra per-latent (d_sae,) columns for the records, the page and the
            parquet (`SEED_COLUMNS`: the best match of each latent in the other seeds).

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
    summary = encode_split(sae, reader, layer, rows, top_n, batch_size, row_stats)
    analysis = analyse(summary, meta)
    s = analysis.summary
    drawn = quantile_samples(s.codes, s.top_positions, s.top_values)
    shown = np.r_[s.top_positions[s.top_values > 0], drawn.positions[drawn.values > 0]]
    positions = np.unique(shown)
    w_dec = sae.W_dec.detach().float().cpu().numpy()
    records = latent_records(
        analysis,
        row_info(meta, positions),
        cosine=decoder_neighbours(w_dec),
        coactivation=coactivation_neighbours(s.codes),
        quantiles=drawn,
    )
    descriptors = read_descriptors(reader.directory)
    if descriptors is not None:
        descriptors = descriptors.iloc[rows].reset_index(drop=True)
    for record, names in zip(records, latent_names(s.codes, meta, descriptors), strict=True):
        record.update(names)
    for key, column in (latent_columns or {}).items():
        for record, value in zip(records, column.tolist(), strict=True):
            record[key] = value
    ranking = label_ranking(analysis)
    header: dict[str, Any] = {
        "title": title,
        "split": split,
        "layer": layer,
        "n_rows": s.n_rows,
        "top_n": top_n,
        "d_sae": s.d_sae,
        "dead": int((s.fires == 0).sum()),
        "quantile_bands": drawn.n_bands,
        **(info or {}),
    }
    cap = int(max_page_mb * 1e6)
    media = PageMedia(codec=codec)
    if audio:
        room = cap - len(render_page(header, records, ranking).encode()) - PAGE_SLACK
        if room <= 0:
            log.warning("explorer %s: the latent data alone fills the %g MB", title, max_page_mb)
        media = embed_media(
            latent_order(analysis),
            s.top_positions,
            s.top_values,
            meta,
            s.codes,
            s.max,
            ClipLoader(source),
            max(room, 0),
            codec,
            frame_window_s,
            drawn=(drawn.positions, drawn.values),
        )
    header["media"] = {**media.summary(), "embedded": audio, "max_page_mb": max_page_mb}
    _flag(records, media)
    (out / "latents.json").write_text(json.dumps({**header, "latents": records}))
    (out / "labels.json").write_text(json.dumps(ranking, indent=1))
    latent_frame(records, analysis).to_parquet(out / "latents.parquet", index=False)
    page = render_page(header, records, ranking, media)
    write_page(out / "index.html", page)
    _report(title, header["media"], len(page.encode()), cap)
    if wandb_run is not None:
        from saelight.explorer.wandb_table import log_explorer

        log_explorer(wandb_run, title, records, media.audio)
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


def _flag(records: list[dict[str, Any]], media: PageMedia) -> None:
    """Mark each top and quantile row of latents.json with whether the page holds its audio /
    thumbnail."""
    for r in records:
        for t in (*r["top"], *r.get("quantiles", ())):
            t["audio"] = t["row"] in media.audio
            t["spectrogram"] = t["row"] in media.spectrogram


def _report(title: str, summary: dict[str, Any], size: int, cap: int) -> None:
    """Log what the page cap left out (the page shows the same note)."""
    total, got = summary["top_rows"] - summary["unavailable"], summary["audio_rows"]
    if summary["embedded"] and (got < total or summary["spectrogram_rows"] < total):
        log.warning(
            "explorer %s: index.html is capped at %g MB (max_page_mb): audio embedded for %d and "
            "spectrograms for %d of %d top rows; the lower-ranked latents' rows were left out",
            title,
            cap / 1e6,
            got,
            summary["spectrogram_rows"],
            total,
        )
    if size > cap:
        log.warning("explorer %s: index.html is %.1f MB, over its cap", title, size / 1e6)
