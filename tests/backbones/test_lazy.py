"""Backbones read only config and feature extractor at init; the weights load on first use.

`no_weights` makes every `from_pretrained` of a model raise, so a test that passes under it shows
that nothing on that path loaded weights (the feature extractor and config loaders stay free).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import AutoModel, PreTrainedModel

from saelight.audio.base import SPLITS, AudioSource, Clip
from saelight.backbones import HFBackbone, UntrainedBackbone
from saelight.backbones.untrained import SHA256_FILE
from saelight.cache import ActivationCache

from .tiny_models import BUILDERS, SR

pytestmark = pytest.mark.filterwarnings(
    "ignore:At least one mel filter has all zero values:UserWarning",  # AST's own 128-bin filters
    "ignore:Support for mismatched key_padding_mask:UserWarning",  # inside WavLM's attention
)


class WeightsLoaded(AssertionError):
    """Raised by the patched `from_pretrained`: something loaded model weights."""


def _refuse(cls: type, *args: Any, **kwargs: Any) -> None:
    raise WeightsLoaded(f"{cls.__name__}.from_pretrained{args} was called")


class NoWeights:
    """While on, `AutoModel.from_pretrained` and every model class's `from_pretrained` raise.

    Its own MonkeyPatch, so switching it off leaves conftest's offline patches in place.
    """

    def __init__(self) -> None:
        self._patch = pytest.MonkeyPatch()

    def on(self) -> None:
        self._patch.setattr(AutoModel, "from_pretrained", classmethod(_refuse))
        self._patch.setattr(PreTrainedModel, "from_pretrained", classmethod(_refuse))

    def off(self) -> None:
        self._patch.undo()


@pytest.fixture
def no_weights() -> Iterator[NoWeights]:
    guard = NoWeights()
    guard.on()
    yield guard
    guard.off()


def _attributes(backbone: HFBackbone) -> dict[str, Any]:
    return {
        "identity": backbone.identity(),
        "layers": backbone.layers,
        "hidden_size": backbone.hidden_size,
        "sample_rate": backbone.sample_rate,
        "min_samples": backbone.min_samples,
        "frame_rate_hz": backbone.frame_rate_hz,
        "kind": backbone.kind,
    }


@pytest.mark.parametrize("name", list(BUILDERS))
def test_init_reads_no_weights_and_extract_loads_them(
    model_dirs: dict[str, Path], waves: list[np.ndarray], no_weights: NoWeights, name: str
) -> None:
    lazy = HFBackbone(str(model_dirs[name]), layers=[0, 2])
    attributes = _attributes(lazy)
    assert not lazy.weights_loaded
    assert attributes["identity"]["class"] == BUILDERS[name][1]
    assert (lazy.hidden_size, lazy.num_layers, lazy.layers) == (32, 2, [0, 2])
    lazy.to("cpu")  # a device move before the load moves nothing and loads nothing
    with pytest.raises(WeightsLoaded):
        lazy.extract(waves)
    no_weights.off()
    hidden, mask = lazy.extract(waves)
    assert lazy.weights_loaded and not lazy.net.training
    assert all(p.device.type == "cpu" and not p.requires_grad for p in lazy.net.parameters())
    assert _attributes(lazy) == attributes  # loading changes none of what the cache recorded
    eager = HFBackbone(str(model_dirs[name]), layers=[0, 2])
    eager.load()
    assert _attributes(eager) == attributes
    expected, expected_mask = eager.extract(waves)
    assert torch.equal(mask, expected_mask)
    assert all(torch.equal(hidden[i], expected[i]) for i in (0, 2))


def test_config_errors_fire_at_init_without_weights(
    model_dirs: dict[str, Path], mert_like_dir: Path, tmp_path: Path, no_weights: NoWeights
) -> None:
    with pytest.raises(ValueError, match=r"valid range is 0\.\.2"):
        HFBackbone(str(model_dirs["hubert"]), layers=[3])
    with pytest.raises(ValueError, match="applies to Whisper only"):
        HFBackbone(str(model_dirs["ast"]), whisper_window_s=1.0)
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        HFBackbone(str(mert_like_dir))
    with pytest.raises(ValueError, match="neither an existing local model directory"):
        HFBackbone(str(tmp_path / "absent"))
    with pytest.raises(ValueError, match="config.json"):
        HFBackbone(str(tmp_path))


def test_neither_init_nor_the_later_load_draws_from_torch_rng(model_dirs: dict[str, Path]) -> None:
    # The load may come at any point of a seeded run (first extract, a splice): it must not shift
    # what the run draws afterwards.
    torch.manual_seed(0)
    state = torch.random.get_rng_state()
    backbone = HFBackbone(str(model_dirs["hubert"]))
    assert torch.equal(torch.random.get_rng_state(), state)
    backbone.load()
    assert torch.equal(torch.random.get_rng_state(), state)


def test_untrained_reuse_reads_only_config_and_recorded_checksum(
    tmp_path: Path, no_weights: NoWeights
) -> None:
    no_weights.off()
    kwargs = {"num_layers": 1, "hidden_size": 32, "save_dir": str(tmp_path)}
    built = UntrainedBackbone(**kwargs)  # builds, writes the checksum, loads nothing
    assert not built.weights_loaded
    record = Path(built.model_id) / SHA256_FILE
    assert record.read_text().strip() == built.weights_sha256
    wave = [np.sin(np.arange(8000, dtype=np.float32) / 10)]
    hidden, _ = built.extract(wave)  # the load checks the weights against the record
    no_weights.on()
    reused = UntrainedBackbone(**kwargs)
    assert not reused.weights_loaded and reused.identity() == built.identity()
    no_weights.off()
    assert torch.equal(reused.extract(wave)[0][1], hidden[1])


def test_untrained_folder_without_record_is_hashed_once(tmp_path: Path) -> None:
    kwargs = {"num_layers": 1, "hidden_size": 32, "save_dir": str(tmp_path)}
    record = Path(UntrainedBackbone(**kwargs).model_id) / SHA256_FILE
    digest = record.read_text()
    record.unlink()  # as a folder built before the record existed
    old = UntrainedBackbone(**kwargs)
    assert old.weights_loaded and record.read_text() == digest
    assert old.weights_sha256 == digest.strip()


def test_untrained_weights_that_differ_from_the_record_are_refused(tmp_path: Path) -> None:
    kwargs = {"num_layers": 1, "hidden_size": 32, "save_dir": str(tmp_path)}
    record = Path(UntrainedBackbone(**kwargs).model_id) / SHA256_FILE
    record.write_text("0" * 64 + "\n")
    changed = UntrainedBackbone(**kwargs)
    with pytest.raises(ValueError, match="recorded when it was built"):
        changed.extract([np.zeros(8000, np.float32)])
    assert not changed.weights_loaded


class ToneSource(AudioSource):
    """`n` half-second tones at 16 kHz, one per split in turn."""

    def __init__(self, n: int = 6) -> None:
        self.n = n

    def clips(self) -> list[Clip]:
        return [
            Clip(f"t{i}", SPLITS[i % 3], {"pitch": str(i % 2)}, {"f": float(i)}, f"t{i}.wav")
            for i in range(self.n)
        ]

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        i = int(clip.clip_id[1:])
        return np.sin(np.arange(SR // 2) * (0.02 + i / 100)).astype(np.float32)

    def fingerprint(self) -> dict[str, Any]:
        return {"class": "ToneSource", "n": self.n}


@pytest.mark.parametrize("kind", ["hf", "untrained"])
def test_complete_cache_opens_without_loading_weights(
    model_dirs: dict[str, Path], tmp_path: Path, no_weights: NoWeights, kind: str
) -> None:
    def backbone() -> HFBackbone:
        if kind == "hf":
            return HFBackbone(str(model_dirs["hubert"]), layers=[1, 2])
        return UntrainedBackbone(num_layers=1, hidden_size=32, save_dir=str(tmp_path / "models"))

    no_weights.off()
    first = ActivationCache(str(tmp_path / "cache"), ToneSource(), backbone(), clips_per_shard=4)
    built = first.build(progress=False)
    assert first.backbone.weights_loaded  # type: ignore[attr-defined]
    no_weights.on()
    again = ActivationCache(str(tmp_path / "cache"), ToneSource(), backbone(), clips_per_shard=4)
    reader = again.build(progress=False)
    assert not again.backbone.weights_loaded  # type: ignore[attr-defined]
    assert reader.manifest == built.manifest
