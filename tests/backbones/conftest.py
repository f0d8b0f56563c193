"""Tiny saved models of every supported architecture, written once per session and loaded offline.

Each builder writes a random model with ``save_pretrained`` plus the feature extractor its real
checkpoints ship with, so tests go through the real ``from_pretrained`` path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import (
    ASTConfig,
    ASTFeatureExtractor,
    AutoModel,
    HubertConfig,
    PretrainedConfig,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
    WhisperConfig,
    WhisperFeatureExtractor,
)

SR = 16000
# Two clips of different lengths: 1.0 s and 0.55 s.
LENGTHS = (16000, 8800)
_CONV = {
    "conv_dim": (16,) * 7,
    "conv_kernel": (10, 3, 3, 3, 3, 2, 2),
    "conv_stride": (5, 2, 2, 2, 2, 2, 2),
}
_SMALL = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def _waveform(config_cls: type[PretrainedConfig], norm: str, attention_mask: bool) -> Callable:
    def build():
        config = config_cls(
            **_SMALL,
            **_CONV,
            feat_extract_norm=norm,
            do_stable_layer_norm=norm == "layer",
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,  # oneDNN's bf16 conv1d is wrong below 16 per group
        )
        extractor = Wav2Vec2FeatureExtractor(
            sampling_rate=SR, do_normalize=True, return_attention_mask=attention_mask
        )
        return config, extractor

    return build


def _ast():
    # The real 128-bin, 16x16-patch, stride-10 geometry, padded to 2.56 s instead of 10.24 s.
    config = ASTConfig(**_SMALL, patch_size=16, frequency_stride=10, time_stride=10, max_length=256)
    return config, ASTFeatureExtractor(
        num_mel_bins=config.num_mel_bins, max_length=config.max_length
    )


def _whisper():
    config = WhisperConfig(
        vocab_size=64,
        num_mel_bins=80,
        d_model=32,
        encoder_layers=2,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=64,
        decoder_ffn_dim=64,
        max_source_positions=100,  # 2 s windows instead of 30 s: 100 frames at 50 Hz
        max_target_positions=16,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        decoder_start_token_id=1,
    )
    return config, WhisperFeatureExtractor(feature_size=80, chunk_length=2)


# name -> (builder, expected model class); "wav2vec2" / "hubert" mirror the group-norm base
# checkpoints (no attention mask), "wav2vec2_lv60" / "wavlm" the layer-norm ones (attention mask).
BUILDERS: dict[str, tuple[Callable, str]] = {
    "wav2vec2": (_waveform(Wav2Vec2Config, "group", False), "Wav2Vec2Model"),
    "wav2vec2_lv60": (_waveform(Wav2Vec2Config, "layer", True), "Wav2Vec2Model"),
    "hubert": (_waveform(HubertConfig, "group", False), "HubertModel"),
    "wavlm": (_waveform(WavLMConfig, "layer", True), "WavLMModel"),
    "wavlm_base_plus": (_waveform(WavLMConfig, "group", True), "WavLMModel"),
    "ast": (_ast, "ASTModel"),
    "whisper": (_whisper, "WhisperModel"),
}


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: patch the constant too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    torch.set_num_threads(2)


@pytest.fixture(scope="session")
def model_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """{name: directory} of every tiny saved model in `BUILDERS`."""
    root = tmp_path_factory.mktemp("tiny_models")
    dirs = {}
    for name, (build, _) in BUILDERS.items():
        config, extractor = build()
        torch.manual_seed(0)
        model = AutoModel.from_config(config)
        dirs[name] = root / name
        model.save_pretrained(dirs[name])
        extractor.save_pretrained(dirs[name])
    return dirs


@pytest.fixture(scope="session")
def mert_like_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A local checkpoint shaped like m-a-p/MERT: custom model_type resolved through auto_map."""
    path = tmp_path_factory.mktemp("mert_like")
    config = HubertConfig(**_SMALL, **_CONV).to_dict()
    config.update(
        model_type="mert_model",
        architectures=["MERTModel"],
        auto_map={
            "AutoConfig": "configuration_MERT.MERTConfig",
            "AutoModel": "modeling_MERT.MERTModel",
        },
    )
    (path / "config.json").write_text(json.dumps(config))
    Wav2Vec2FeatureExtractor(sampling_rate=24000, return_attention_mask=True).save_pretrained(path)
    return path


@pytest.fixture
def waves() -> list[np.ndarray]:
    """Two clips (1.0 s, 0.55 s) of a chirp plus noise, float32 at 16 kHz."""
    rng = np.random.default_rng(0)
    out = []
    for n in LENGTHS:
        t = np.arange(n) / SR
        chirp = 0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)
        out.append((chirp + 0.05 * rng.standard_normal(n)).astype(np.float32))
    return out
