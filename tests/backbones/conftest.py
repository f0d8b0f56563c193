"""Tiny saved models of every supported architecture, written once per session, loaded offline."""

from __future__ import annotations

import json
from pathlib import Path

import huggingface_hub.constants
import numpy as np
import pytest
import torch
from transformers import AutoModel, HubertConfig, Wav2Vec2FeatureExtractor

from .tiny_models import BUILDERS, CONV, LENGTHS, SMALL, SR


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE once, at import: patch the constant too.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


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
    config = HubertConfig(**SMALL, **CONV).to_dict()
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
