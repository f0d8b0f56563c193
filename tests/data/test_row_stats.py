"""Outlier rows and position-centring (issue 24 item 3) on a planted frame cache: rows 20x the
median norm at fixed frames, and a per-position offset, as real encoders have them."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from saelight.cache import CacheReader
from saelight.cache.format import FORMAT_VERSION, part_name
from saelight.cache.parts import merge
from saelight.cache.writer import ShardWriter
from saelight.data import ActivationDataModule
from saelight.data.row_stats import RowStats, measure
from saelight.evaluation.layer import SplitData, reconstruction_scores
from saelight.explorer.analysis import encode_split
from saelight.sae import TopKSAE
from saelight.training.rows import batch_rows

FRAMES, DIM, MASSIVE_AT = 8, 4, 6
LAYERS = [2, 5]


class Prebuilt:
    """The part of `ActivationCache` the datamodule uses, over a cache written here."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.dim, self.layers = directory, DIM, LAYERS

    def build(self, progress: bool = True) -> CacheReader:
        return CacheReader(self.directory)

    def open(self, verify: bool = False) -> CacheReader:
        return CacheReader(self.directory, verify=verify)


def planted(n_clips: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(clips · FRAMES, 2, DIM) rows: unit noise + a per-frame offset; layer 5 (only) has rows
    ~20x the median norm at frame MASSIVE_AT. Returns rows and their frame index."""
    rng = np.random.default_rng(seed)
    offset = np.random.default_rng(99).normal(0, 3, (FRAMES, 2, DIM))
    frames = np.tile(np.arange(FRAMES), n_clips)
    x = rng.normal(0, 1, (len(frames), 2, DIM)) + offset[frames]
    x[frames == MASSIVE_AT, 1, 0] += 20 * np.median(np.linalg.norm(x[:, 1], axis=-1))
    return x.astype(np.float32), frames


def write_frames(directory: Path, splits: list[str], pooling_frames: bool = True) -> Prebuilt:
    """One clip per entry of `splits`, FRAMES rows each (frame -1 everywhere when not frames)."""
    header = {
        "format_version": FORMAT_VERSION,
        **{"backbone": {}, "source": {}, "extraction": {"storage_dtype": "float32"}},
        **{"layers": LAYERS, "dim": DIM, "n_rows": 0, "shards": [], "skipped": []},
    }
    x, frames = planted(len(splits))
    writer = ShardWriter(directory, {**header, "shards": [], "skipped": []}, part_name(0))
    for clip, split in enumerate(splits):
        at = slice(clip * FRAMES, (clip + 1) * FRAMES)
        meta = [
            {"clip_index": clip, "split": split, "frame": int(f) if pooling_frames else -1}
            for f in frames[at]
        ]
        writer.begin(clip)
        writer.add({2: x[at, 0], 5: x[at, 1]}, meta)
        writer.commit(clip + 1)
    merge(directory, header, [(part_name(0), writer.part)], len(splits))
    return Prebuilt(directory)


SPLITS = ["train"] * 12 + ["val"] * 3 + ["test"] * 3


def test_position_means_are_the_train_rows_per_frame_means_and_centring_removes_them(
    tmp_path: Path,
) -> None:
    reader = write_frames(tmp_path, SPLITS).open()
    train = reader.split_rows("train")
    stats = measure(reader, train, report_multiple=10, centre_positions=True)
    x = reader.read(train)
    frames = reader.metadata["frame"].to_numpy()[train]
    expected = pd.DataFrame(x[:, 1, :]).groupby(frames).mean().to_numpy()  # independent mean
    assert stats.position_mean is not None and stats.position_mean.shape == (FRAMES, 2, DIM)
    np.testing.assert_allclose(stats.position_mean[:, 1], expected, rtol=1e-5, atol=1e-5)
    centred = stats.centre(x, frames)
    per_frame = pd.DataFrame(centred.reshape(len(x), -1)).groupby(frames).mean().to_numpy()
    np.testing.assert_allclose(per_frame, 0, atol=1e-5)  # the planted offset is gone exactly
    path = tmp_path / "run" / "row_stats.safetensors"
    stats.save(path)
    back = RowStats.load(path)
    assert back.layers == LAYERS and back.max_norm_multiple is None
    np.testing.assert_array_equal(back.position_mean, stats.position_mean)


def test_outliers_are_counted_per_layer_with_their_frames_and_left_out_when_asked(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = write_frames(tmp_path, SPLITS)
    dm = ActivationDataModule(cache, batch_size=8, max_norm_multiple=10)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="saelight.data.datamodule"):
        dm.setup("fit")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1, lines  # layer 2 has no outliers; layer 5 one frame per clip
    assert lines[0].startswith("layer 5: 12 of 96 train rows above 10x the median norm (frame 6)")
    assert "left out" in lines[0]
    batch = next(iter(dm.val_dataloader()))
    batch = dm.on_after_batch_transfer(batch, 0)
    frames = dm.open_reader().metadata["frame"].to_numpy()[batch["row"].numpy()]
    np.testing.assert_array_equal(batch["keep"][:, 1].numpy(), frames != MASSIVE_AT)
    assert bool(batch["keep"][:, 0].all())
    rows = batch_rows(batch, drop_nonfinite=False)
    x5, offset = rows.layer(1)
    assert offset is None and len(x5) == int((frames != MASSIVE_AT).sum())


def test_the_default_keeps_every_row_and_says_how_to_leave_outliers_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    dm = ActivationDataModule(write_frames(tmp_path, SPLITS), batch_size=8)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="saelight.data.datamodule"):
        dm.setup("fit")
    (line,) = [r.getMessage() for r in caplog.records]
    assert "kept; data.max_norm_multiple leaves them out" in line
    batch = dm.on_after_batch_transfer(next(iter(dm.train_dataloader())), 0)
    assert "keep" not in batch and "offset" not in batch


def test_centred_batches_reach_the_sae_and_are_scored_in_the_original_space(
    tmp_path: Path,
) -> None:
    dm = ActivationDataModule(write_frames(tmp_path, SPLITS), batch_size=8, centre_positions=True)  # type: ignore[arg-type]
    dm.setup("fit")
    raw = next(iter(dm.val_dataloader()))
    batch = dm.on_after_batch_transfer(dict(raw), 0)
    rows = batch_rows(batch, drop_nonfinite=False)
    frames = dm.open_reader().metadata["frame"].to_numpy()[raw["row"].numpy()]
    assert dm.row_stats is not None and dm.row_stats.position_mean is not None
    expect = raw["x"].numpy() - dm.row_stats.position_mean[frames]
    np.testing.assert_allclose(rows.x.numpy(), expect, rtol=1e-6, atol=1e-6)
    # Scored in x's space: an SAE that reconstructs the centred rows exactly scores FVU 0 on
    # the raw rows, and the FVU denominator is the raw rows' variance (offsets included).
    sae = TopKSAE(d_in=DIM, d_sae=2 * DIM, k=DIM)
    with torch.no_grad():  # decode([relu(c), relu(-c)]) = c exactly
        sae.W_dec.copy_(torch.cat([torch.eye(DIM), -torch.eye(DIM)]))
        sae.b_dec.zero_()
    split = SplitData(raw["x"][:, 0].numpy(), pd.DataFrame({"frame": frames}))
    kept, split.offset = dm.row_stats.layer_rows(split.x, frames, 0)
    assert kept.all() and split.offset is not None
    c = split.sae_input()
    z = np.concatenate([np.maximum(c, 0), np.maximum(-c, 0)], axis=1)
    scores = reconstruction_scores(sae, split.x, z, split.offset)
    assert scores["fvu"] < 1e-10 and scores["cosine"] > 1 - 1e-6
    uncentred = reconstruction_scores(sae, split.x, z)  # the offsets left out: far off
    assert uncentred["fvu"] > 0.1
    assert scores["fvu"] < 1e-10


def test_centring_a_clip_level_cache_names_the_option(tmp_path: Path) -> None:
    cache = write_frames(tmp_path, SPLITS, pooling_frames=False)
    dm = ActivationDataModule(cache, centre_positions=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="data.centre_positions needs a frame-level cache"):
        dm.setup("fit")


def test_the_explorer_applies_the_rule_as_training_does(tmp_path: Path) -> None:
    reader = write_frames(tmp_path, SPLITS).open()
    stats = measure(reader, reader.split_rows("train"), 10, max_norm_multiple=10)
    rows = reader.split_rows("test")
    sae = TopKSAE(d_in=DIM, d_sae=8, k=2)
    plain = encode_split(sae, reader, 5, rows, top_n=3)
    ruled = encode_split(sae, reader, 5, rows, top_n=3, row_stats=stats)
    frames = reader.metadata["frame"].to_numpy()[rows]
    massive = np.flatnonzero(frames == MASSIVE_AT)
    on_massive = np.isin(plain.top_positions[plain.top_values > 0], massive)
    assert on_massive.any()  # the massive rows top some latents when nothing is left out
    top = ruled.top_positions[ruled.top_values > 0]
    assert not np.isin(top, massive).any()  # left out: they never fire
