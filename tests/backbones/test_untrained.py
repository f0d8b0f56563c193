"""UntrainedBackbone: built once, atomically, bit-identical from the seed, loaded as checkpoints."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from jsonargparse import ArgumentParser
from safetensors.torch import load_file

from saelight.backbones import UntrainedBackbone
from saelight.backbones.untrained import _build, weights_sha256

# sha256 of the default model (hubert, 4 layers x 128, seed 0). It changes only if the builder,
# torch or transformers change what the seed produces: then bump _BUILD_VERSION.
DEFAULT_SHA256 = "9dc282acb2e841987e11ca9816b8b83fda0eb072ff99cae28e206e888ca1a6f5"


@pytest.fixture(scope="module")
def default(tmp_path_factory: pytest.TempPathFactory) -> UntrainedBackbone:
    return UntrainedBackbone(save_dir=str(tmp_path_factory.mktemp("untrained")))


def test_default_is_a_saved_hubert_with_pinned_weights(default: UntrainedBackbone) -> None:
    path = Path(default.model_id)
    assert {"config.json", "preprocessor_config.json", "model.safetensors"} <= {
        p.name for p in path.iterdir()
    }
    assert default.model_class == "HubertModel"
    assert (default.num_layers, default.hidden_size, default.sample_rate) == (4, 128, 16000)
    assert default.frame_rate_hz == 50 and default.min_samples == 400
    saved = load_file(path / "model.safetensors")
    assert weights_sha256(default.net) == _sha_of(saved) == DEFAULT_SHA256


def _sha_of(state: dict[str, torch.Tensor]) -> str:
    module = torch.nn.Module()
    module.state_dict = lambda: state  # type: ignore[method-assign]
    return weights_sha256(module)


def test_identity_marks_untrained(default: UntrainedBackbone) -> None:
    identity = default.identity()
    assert identity["untrained"] is True
    assert identity["model"] == "saelight-untrained/hubert-l4-h128-seed0-v1"
    assert identity["weights_sha256"] == DEFAULT_SHA256
    assert str(Path(default.model_id).parent) not in str(identity)  # no machine-specific path


def test_extracts_two_second_clip(default: UntrainedBackbone) -> None:
    hidden, mask = default.extract([np.zeros(32000, np.float32), np.ones(16000, np.float32)])
    assert sorted(hidden) == [0, 1, 2, 3, 4]
    assert hidden[4].shape == (2, 99, 128) and mask.sum(1).tolist() == [99, 49]


def test_reused_not_rebuilt_and_no_temp_dirs_left(tmp_path: Path) -> None:
    first = UntrainedBackbone(num_layers=1, hidden_size=32, save_dir=str(tmp_path))
    weights = Path(first.model_id) / "model.safetensors"
    stamp = weights.stat().st_mtime_ns
    again = UntrainedBackbone(num_layers=1, hidden_size=32, save_dir=str(tmp_path))
    assert weights.stat().st_mtime_ns == stamp and again.weights_sha256 == first.weights_sha256
    assert [p.name for p in tmp_path.iterdir()] == [Path(first.model_id).name]


def test_lost_rename_race_keeps_the_winner(tmp_path: Path) -> None:
    winner = tmp_path / "model"
    winner.mkdir()
    (winner / "config.json").write_text("{}")
    _build(winner, "hubert", 1, 32, 0)  # rename onto a non-empty dir fails: keep it, clean up
    assert [p.name for p in tmp_path.iterdir()] == ["model"]
    assert [p.name for p in winner.iterdir()] == ["config.json"]


@pytest.mark.parametrize(("arch", "cls"), [("wav2vec2", "Wav2Vec2Model"), ("wavlm", "WavLMModel")])
def test_seeded_and_deterministic_per_arch(tmp_path: Path, arch: str, cls: str) -> None:
    kwargs = {"arch": arch, "num_layers": 1, "hidden_size": 32}
    a = UntrainedBackbone(**kwargs, save_dir=str(tmp_path / "a"))
    b = UntrainedBackbone(**kwargs, save_dir=str(tmp_path / "b"))
    c = UntrainedBackbone(**kwargs, seed=1, save_dir=str(tmp_path / "a"))
    assert a.model_class == cls
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    wave = [np.sin(np.arange(8000, dtype=np.float32) / 10)]
    torch.testing.assert_close(a.extract(wave)[0][1], b.extract(wave)[0][1], rtol=0, atol=0)


def test_warns_that_it_is_untrained(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="saelight.backbones.untrained"):
        UntrainedBackbone(num_layers=1, hidden_size=32, save_dir=str(tmp_path))
    assert "RANDOMLY INITIALISED" in caplog.text


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="arch"):
        UntrainedBackbone(arch="bert", save_dir=str(tmp_path))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="hidden_size"):
        UntrainedBackbone(hidden_size=100, save_dir=str(tmp_path))
    with pytest.raises(ValueError, match="num_layers"):
        UntrainedBackbone(num_layers=0, save_dir=str(tmp_path))


def test_cli_signature_forwards_hfbackbone_options(tmp_path: Path) -> None:
    parser = ArgumentParser()
    parser.add_class_arguments(UntrainedBackbone, "backbone")
    keys = set(parser.get_defaults().backbone.keys())
    assert {"arch", "seed", "save_dir", "layers", "dtype", "device", "max_batch_seconds"} <= keys
    assert not {"model", "revision", "trust_remote_code"} & keys
    cfg = parser.parse_args(["--backbone.save_dir", str(tmp_path), "--backbone.layers", "[1, 2]"])
    assert cfg.backbone.layers == [1, 2]
