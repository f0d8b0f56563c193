"""A tiny activation cache with planted structure, written file by file.

Rows come from real `SyntheticSinging` clips (so the explorer can re-synthesise their audio), but
the activations are made up: x ~ N(0, I_16) plus 4 on dim 0 for vibrato clips and
3·zscore(f0_mean_hz) on dim 1. `planted_sae` builds a TopK SAE whose latent `VIBRATO` reads dim 0
(fires for vibrato) and latent `PITCH` reads dim 1 (tracks f0); the other latents are random.
Clip pooling writes `CROPS` half-second crops per clip, frame pooling `frames` frames per clip.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import torch

from saelight.audio import SyntheticSinging
from saelight.audio.base import Clip
from saelight.cache.format import (
    FORMAT_VERSION,
    atomic_write_bytes,
    layer_dir,
    npy_bytes,
    sha256_bytes,
    shard_name,
    write_manifest,
)
from saelight.cache.reader import CacheReader
from saelight.sae import TopKSAE

D_IN, D_SAE, LAYER = 16, 32, 3
VIBRATO, PITCH = 7, 19
FRAME_S = 0.02
CROPS, CROP_S = 4, 0.5


def tiny_source() -> SyntheticSinging:
    return SyntheticSinging(
        clips_per_combo=2,
        duration_s=1.0,
        techniques=("straight", "vibrato", "breathy"),
        vowels=("a", "i"),
        n_singers=4,
        n_val_singers=1,
        n_test_singers=1,
    )


def _activations(clips: list[Clip], rows_per_clip: int, seed: int = 0) -> np.ndarray:
    f0 = np.array([c.factors["f0_mean_hz"] for c in clips])
    f0 = (f0 - f0.mean()) / f0.std()
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(len(clips), rows_per_clip, D_IN))
    x[:, :, 0] += 4.0 * np.array([c.labels["technique"] == "vibrato" for c in clips])[:, None]
    x[:, :, 1] += 3.0 * f0[:, None]
    return x.reshape(-1, D_IN).astype(np.float32)


def write_cache(
    directory: Path, clips: list[Clip], pooling: str = "clip", frames: int = 4
) -> CacheReader:
    """A complete one-shard cache of `clips`: `CROPS` crop rows per clip, or `frames` frames.

    Written file by file as `saelight.cache.format` lays it out (npy shard, parquet metadata,
    manifest), so the test does not depend on the extraction machinery.
    """
    meta = []
    for index, clip in enumerate(clips):
        base = {
            "clip_index": index,
            "clip_id": clip.clip_id,
            "path": "",
            "split": clip.split,
            "crop": 0,
            "frame": -1,
            **{f"label_{k}": v for k, v in clip.labels.items()},
            **{f"factor_{k}": float(v) for k, v in clip.factors.items()},
        }
        if pooling == "clip":
            meta += [
                {**base, "crop": c, "start_s": c * 0.125, "end_s": c * 0.125 + CROP_S}
                for c in range(CROPS)
            ]
        else:
            meta += [
                {**base, "frame": f, "start_s": 0.3 + f * FRAME_S, "end_s": 0.3 + (f + 1) * FRAME_S}
                for f in range(frames)
            ]
    table = pd.DataFrame(meta)
    table.insert(0, "row", np.arange(len(table)))
    buffer = io.BytesIO()
    table.to_parquet(buffer, index=False)
    x = _activations(clips, CROPS if pooling == "clip" else frames)
    files = {
        f"{layer_dir(LAYER)}/{shard_name(0, '.npy')}": npy_bytes(x),
        f"meta/{shard_name(0, '.parquet')}": buffer.getvalue(),
    }
    for rel, data in files.items():
        atomic_write_bytes(directory / rel, data)
    shard = {"index": 0, "clip_start": 0, "clip_end": len(clips), "rows": len(x), "row_start": 0}
    shard["files"] = {rel: sha256_bytes(data) for rel, data in files.items()}
    manifest = {
        "format_version": FORMAT_VERSION,
        "backbone": {"model": "planted"},
        "source": {"class": "test"},
        "extraction": {"pooling": pooling, "storage_dtype": "float32", "sample_rate": 16000},
        "layers": [LAYER],
        "dim": D_IN,
        "complete": True,
        "n_rows": len(x),
        "shards": [shard],
        "skipped": [],
    }
    write_manifest(directory, manifest)
    return CacheReader(directory)


def planted_sae(seed: int = 0) -> TopKSAE:
    """Latent VIBRATO = ReLU(3·x0 - 3), latent PITCH = ReLU(3·x1 + 9); the rest small, random."""
    torch.manual_seed(seed)
    sae = TopKSAE(d_in=D_IN, d_sae=D_SAE, k=8, decoder_bias=False)
    with torch.no_grad():
        sae.W_enc.normal_(0.0, 0.3)
        sae.b_enc.zero_()
        for latent, dim, bias in ((VIBRATO, 0, -3.0), (PITCH, 1, 9.0)):
            sae.W_enc[:, latent] = 0.0
            sae.W_enc[dim, latent] = 3.0
            sae.b_enc[latent] = bias
    return sae.eval()


def read_page(page: Path) -> dict:
    """The data block of an explorer `index.html`."""
    block = re.search(r'id="explorer-data">(.*?)</script>', page.read_text(encoding="utf-8"), re.S)
    assert block is not None
    return json.loads(block.group(1))


@pytest.fixture(scope="session")
def source() -> SyntheticSinging:
    return tiny_source()


@pytest.fixture(scope="session")
def clip_cache(tmp_path_factory: pytest.TempPathFactory, source: SyntheticSinging) -> CacheReader:
    return write_cache(tmp_path_factory.mktemp("cache") / "clip", source.clips())


@pytest.fixture(scope="session")
def explored(
    tmp_path_factory: pytest.TempPathFactory, clip_cache: CacheReader, source: SyntheticSinging
) -> Path:
    """The explorer folder of the planted SAE on the clip cache's test split (with audio)."""
    from saelight.explorer import explore

    out = tmp_path_factory.mktemp("explorer") / "L03_planted"
    return explore(
        planted_sae(),
        clip_cache,
        LAYER,
        out,
        source=source,
        top_n=5,
        title="L03_planted",
        info={"architecture": "topk"},
    )


@pytest.fixture(scope="session")
def kit() -> SimpleNamespace:
    """This module's helpers and constants, for the test files."""
    return SimpleNamespace(
        write_cache=write_cache,
        planted_sae=planted_sae,
        tiny_source=tiny_source,
        read_page=read_page,
        D_IN=D_IN,
        D_SAE=D_SAE,
        LAYER=LAYER,
        VIBRATO=VIBRATO,
        PITCH=PITCH,
        CROPS=CROPS,
        CROP_S=CROP_S,
        FRAME_S=FRAME_S,
    )
