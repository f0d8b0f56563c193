"""`whisper_window_s`: Whisper's encoder on each clip's own (rounded) length instead of 30 s.

The tiny model keeps the real geometry (80 mel bins, 30 s = 1500 positions at 50 Hz, sinusoidal
position embeddings) with 2 layers of width 32, and the clips are 3-5 s like the paper's crops.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import WhisperFeatureExtractor, WhisperModel

from saelight.backbones import HFBackbone

from .tiny_models import SR, whisper_config

# Relative error ||h_window - h_full|| / ||h_full|| of a transformer layer over a clip's valid
# frames, measured on this seeded model for 1 and 5 s windows: 0.8-0.9% after layer 1 and 1.3-1.4%
# after layer 2 (the embeddings match to 1e-8). The 5% bound leaves headroom yet catches a broken
# window: position embeddings shifted by one frame give 29% in every layer. The lower bound shows
# the representations really change, so the warning is due. A trained Whisper may move more than
# this random one: measure on the real checkpoint before relying on windowed features.
pytestmark = pytest.mark.filterwarnings(
    "ignore:At least one mel filter has all zero values:UserWarning",  # AST's, built by model_dirs
)
MAX_RELATIVE_ERROR, MIN_RELATIVE_ERROR = 0.05, 1e-3
LENGTHS_S = (3.0, 3.2, 4.5)


@pytest.fixture(scope="module")
def whisper_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    config = whisper_config(1500)  # the real 30 s window
    path = tmp_path_factory.mktemp("whisper_30s")
    torch.manual_seed(0)
    WhisperModel(config).save_pretrained(path)
    WhisperFeatureExtractor(feature_size=80, chunk_length=30).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def clips() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for seconds in LENGTHS_S:
        t = np.arange(int(seconds * SR)) / SR
        chirp = 0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)
        out.append((chirp + 0.05 * rng.standard_normal(len(t))).astype(np.float32))
    return out


@pytest.fixture(scope="module")
def full(whisper_dir: str, clips: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
    return HFBackbone(whisper_dir).extract(clips)


def relative_errors(window: dict[int, torch.Tensor], mask: torch.Tensor, full: tuple) -> list:
    """Per layer, per clip: relative error of the windowed run's valid frames."""
    hidden, full_mask = full
    t = mask.shape[1]
    assert torch.equal(mask, full_mask[:, :t])  # the same first frames are valid
    errors = []
    for layer in sorted(window):
        diff, ref = window[layer] - hidden[layer][:, :t], hidden[layer][:, :t]
        errors.append([float(diff[b, m].norm() / ref[b, m].norm()) for b, m in enumerate(mask)])
    return errors


@pytest.mark.parametrize("window_s", [1.0, 5.0])
def test_window_changes_representations_boundedly_and_warns(
    whisper_dir: str,
    clips: list[np.ndarray],
    full: tuple,
    window_s: float,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        backbone = HFBackbone(whisper_dir, whisper_window_s=window_s)
    assert "representations change" in caplog.text and f"whisper_window_s={window_s}" in caplog.text
    hidden, mask = backbone.extract(clips)
    assert mask.shape[1] == 250 < 1500  # 4.5 s + one frame, rounded up to whole windows
    embeddings, *layers = relative_errors(hidden, mask, full)
    assert max(embeddings) < 1e-6  # same log-mel, convs and first position embeddings
    for errors in layers:
        assert MIN_RELATIVE_ERROR < max(errors) < MAX_RELATIVE_ERROR


def test_clips_of_similar_length_share_a_pass_without_changing_outputs(
    whisper_dir: str, clips: list[np.ndarray]
) -> None:
    backbone = HFBackbone(whisper_dir, whisper_window_s=1.0)
    lengths = [len(c) for c in clips]
    assert [backbone.family.window(n) for n in lengths] == [200, 200, 250]  # positions at 50 Hz
    assert backbone.plan_batches(lengths) == [[2], [1, 0]]
    together, mask = backbone.extract(clips[:2])
    alone, alone_mask = backbone.extract(clips[:1])
    valid = alone_mask[0]
    assert torch.equal(mask[0], valid)
    for layer in backbone.layers:
        torch.testing.assert_close(together[layer][0, valid], alone[layer][0, valid])


def test_window_of_the_whole_30_s_is_the_full_run(
    whisper_dir: str, clips: list[np.ndarray], full: tuple
) -> None:
    hidden, mask = HFBackbone(whisper_dir, whisper_window_s=30.0).extract(clips)
    assert torch.equal(mask, full[1])
    assert all(torch.equal(hidden[layer], full[0][layer]) for layer in hidden)


def test_window_is_recorded_in_identity_and_default_is_unchanged(whisper_dir: str) -> None:
    assert "whisper_window_s" not in HFBackbone(whisper_dir).identity()  # old caches stay valid
    assert HFBackbone(whisper_dir, whisper_window_s=1.0).identity()["whisper_window_s"] == 1.0


def test_bad_window_and_non_whisper_models_are_refused(
    whisper_dir: str, model_dirs: dict[str, Path]
) -> None:
    with pytest.raises(ValueError, match="whisper_window_s=0.*> 0"):
        HFBackbone(whisper_dir, whisper_window_s=0)
    with pytest.raises(ValueError, match="Whisper only"):
        HFBackbone(str(model_dirs["hubert"]), whisper_window_s=1.0)
