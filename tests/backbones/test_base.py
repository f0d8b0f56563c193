"""A user's own torch encoder is one `Backbone` subclass, and `ActivationCache` builds from it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

from saelight.audio import SyntheticSinging
from saelight.backbones import Backbone, HFBackbone, UntrainedBackbone, mean_pool, resolve_layers
from saelight.cache import ActivationCache


class ConvEncoder(Backbone):
    """Three conv layers, 16 kHz in, 50 Hz out: all a user writes to cache their own model."""

    def __init__(self, layers: list[int] | str = "all") -> None:
        torch.manual_seed(0)
        self.net = nn.ModuleList(
            [nn.Conv1d(1, 8, 400, stride=320), nn.Conv1d(8, 8, 3, padding=1), nn.Conv1d(8, 8, 1)]
        ).eval()
        self.layers = resolve_layers(layers, num_layers=2)
        self.hidden_size, self.sample_rate = 8, 16000
        self.min_samples, self.frame_rate_hz = 400, 50.0  # one 400-sample window, 320 hop

    def identity(self) -> dict[str, Any]:
        return {"model": "conv-encoder", "hidden_size": self.hidden_size}

    @torch.inference_mode()
    def extract(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        frames = [(len(w) - 400) // 320 + 1 for w in waves]
        hidden = {i: torch.zeros(len(waves), max(frames), 8) for i in self.layers}
        for b, wave in enumerate(waves):  # one clip at a time: no padding reaches the convs
            h = torch.from_numpy(wave).to(self.device)[None, None]
            for i, conv in enumerate(self.net):
                h = torch.relu(conv(h))
                if i in self.layers:
                    hidden[i][b, : frames[b]] = h[0].T.cpu()
        mask = torch.arange(max(frames)) < torch.tensor(frames)[:, None]
        return hidden, mask


def source() -> SyntheticSinging:
    return SyntheticSinging(
        clips_per_combo=1,
        duration_s=0.5,
        techniques=("straight", "vibrato"),
        vowels=("a",),
        n_singers=3,
        n_val_singers=1,
        n_test_singers=1,
    )


@pytest.mark.parametrize("pooling", ["clip", "frame"])
def test_own_encoder_builds_a_cache(tmp_path: Path, pooling: str) -> None:
    encoder, audio = ConvEncoder(layers=[2, 0]), source()
    cache = ActivationCache(str(tmp_path), audio, encoder, pooling=pooling, batch_size=4)  # type: ignore[arg-type]
    reader = cache.build(progress=False)
    clips = audio.clips()
    assert reader.manifest["backbone"] == encoder.identity()
    assert (reader.layers, reader.dim) == ([0, 2], 8)
    hidden, mask = encoder.extract([audio.load(c, 16000) for c in clips])
    if pooling == "clip":
        expected = np.stack([mean_pool(hidden[i], mask).numpy() for i in (0, 2)], axis=1)
    else:
        expected = np.stack([hidden[i][mask].numpy() for i in (0, 2)], axis=1)
        assert reader.metadata["end_s"].iloc[1] == pytest.approx(2 / encoder.frame_rate_hz)
    assert len(reader) == len(expected) and reader.metadata["clip_index"].nunique() == len(clips)
    np.testing.assert_array_equal(reader.read(np.arange(len(reader))), expected)


def test_device_move_moves_held_modules() -> None:
    encoder = ConvEncoder()
    assert encoder.device == torch.device("cpu")
    assert encoder.to("meta") is encoder and encoder.device == torch.device("meta")
    assert all(p.is_meta for p in encoder.net.parameters())


def test_hf_backbones_are_backbones() -> None:
    assert issubclass(HFBackbone, Backbone) and issubclass(UntrainedBackbone, Backbone)
    with pytest.raises(TypeError, match="abstract"):
        Backbone()  # type: ignore[abstract]
