"""The embedded offline default: a small randomly initialised encoder of a real architecture.

It lets the whole pipeline (cache, SAE training, metrics) run with no download, and doubles as the
random-network baseline SAE papers compare against. The model is written once with
``save_pretrained`` (plus a ``Wav2Vec2FeatureExtractor``), then loaded through the same `HFBackbone`
path as any checkpoint. Weights come from numpy's PCG64 stream through exact integer-to-float steps,
not from torch's ``normal_`` (whose vectorised kernels differ across CPUs), so every machine builds
the same bytes. Their checksum (part of the identity) is written beside them at build time, so a
complete cache opens reading only the config; the weights load, lazily, when something extracts.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize
from transformers import (
    AutoModel,
    HubertConfig,
    PretrainedConfig,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    WavLMConfig,
)

from saelight.backbones.hf import HFBackbone
from saelight.io.atomic import atomic_write_text
from saelight.io.defaults import DATA_SEED

log = logging.getLogger(__name__)

_CONFIGS: dict[str, type[PretrainedConfig]] = {
    "hubert": HubertConfig,
    "wav2vec2": Wav2Vec2Config,
    "wavlm": WavLMConfig,
}
# The real 400-sample, 320-stride conv stack (50 Hz at 16 kHz) with fewer channels.
_CONV_DIM = (64, 64, 64, 64, 64, 128, 128)
_CONV_KERNEL = (10, 3, 3, 3, 3, 2, 2)
_CONV_STRIDE = (5, 2, 2, 2, 2, 2, 2)
# Bump when the config or init changes, so a model built by older code is never reused.
_BUILD_VERSION = 1
# `weights_sha256` of the saved weights, written beside them so identity() needs no load.
SHA256_FILE = "saelight_weights_sha256.txt"


class UntrainedBackbone(HFBackbone):
    """A randomly initialised HuBERT / wav2vec2 / WavLM encoder, deterministic from `seed`.

    Its hidden states carry no learned knowledge: use it for offline smoke tests and as a
    random-network baseline, never for results about a foundation model.
    """

    def __init__(
        self,
        arch: Literal["hubert", "wav2vec2", "wavlm"] = "hubert",
        num_layers: int = 4,
        hidden_size: int = 128,
        seed: int = DATA_SEED,
        save_dir: str = "~/.cache/saelight/untrained",
        **kwargs: Any,
    ) -> None:
        """Build the random model once; afterwards read only its config and checksum.

        Args:
            arch: architecture of the random encoder.
            num_layers: number of transformer layers.
            hidden_size: width of the hidden states (a multiple of 32; 32-dim attention heads).
            seed: seed of the weights; the same seed gives the same bytes on every machine.
            save_dir: folder holding the built models, one sub-folder per (arch, size, seed).
            **kwargs: `HFBackbone` options (layers, dtype, device, max_batch_seconds, mask_padding).
        """
        if arch not in _CONFIGS:
            raise ValueError(f"arch={arch!r} is not supported; choose one of {sorted(_CONFIGS)}")
        if num_layers < 1:
            raise ValueError(f"num_layers={num_layers} must be >= 1")
        if hidden_size < 32 or hidden_size % 32:
            raise ValueError(f"hidden_size={hidden_size} must be a positive multiple of 32")
        self.arch, self.seed = arch, seed
        self.name = f"{arch}-l{num_layers}-h{hidden_size}-seed{seed}-v{_BUILD_VERSION}"
        path = Path(save_dir).expanduser() / self.name
        if not path.is_dir():
            _build(path, arch, num_layers, hidden_size, seed)
        log.warning(
            "UntrainedBackbone %s is RANDOMLY INITIALISED (no pretraining): its features are a "
            "random-network baseline for smoke tests, not a foundation model's",
            self.name,
        )
        super().__init__(
            str(path), revision=None, trust_remote_code=False, whisper_window_s=None, **kwargs
        )
        self.weights_sha256 = self._recorded_sha256(path / SHA256_FILE)

    def _recorded_sha256(self, record: Path) -> str:
        """The checksum written at build time; a folder built before it was written is hashed
        once (that loads the weights) and the record added, so later runs skip the load."""
        text = record.read_text().strip() if record.is_file() else ""
        if len(text) == 64 and all(c in "0123456789abcdef" for c in text):
            return text
        digest = weights_sha256(self.net)
        try:
            atomic_write_text(record, digest + "\n")
        except OSError as err:  # a read-only save_dir still works, it just hashes every time
            log.debug("cannot record %s: %s", record, err)
        return digest

    def load(self) -> nn.Module:
        """`HFBackbone.load`, checking the loaded weights against the recorded checksum.

        The identity (and so every cache keyed by it) was read from the record, not from the
        weights: a folder changed since it was built must not pass for the model it was.
        """
        if self.weights_loaded:
            return super().load()
        net = super().load()
        expected, actual = getattr(self, "weights_sha256", None), weights_sha256(net)
        if expected is not None and actual != expected:
            self._net = None  # never hand out weights the identity does not describe
            raise ValueError(
                f"{self.model_id} holds weights with sha256 {actual[:12]}..., not the "
                f"{expected[:12]}... recorded when it was built; delete that folder to rebuild it"
            )
        return net

    def identity(self) -> dict[str, Any]:
        """`HFBackbone.identity`, marked untrained, keyed by name and weight checksum, not path."""
        return {
            **super().identity(),
            "model": f"saelight-untrained/{self.name}",
            "revision": None,
            "untrained": True,
            "arch": self.arch,
            "seed": self.seed,
            "weights_sha256": self.weights_sha256,
        }


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 over the sorted state dict (names and float32 bytes): equal iff the weights are."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def untrained_config(arch: str, num_layers: int, hidden_size: int) -> PretrainedConfig:
    """Config of the random model; every size-relevant field is explicit, not a library default."""
    return _CONFIGS[arch](
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=hidden_size // 32,
        intermediate_size=4 * hidden_size,
        conv_dim=_CONV_DIM,
        conv_kernel=_CONV_KERNEL,
        conv_stride=_CONV_STRIDE,
        conv_bias=False,
        feat_extract_norm="group",
        num_conv_pos_embeddings=32,
        # 32 channels per group: oneDNN's bf16 grouped conv1d (torch 2.13 CPU) is wrong below 16.
        num_conv_pos_embedding_groups=hidden_size // 32,
        do_stable_layer_norm=False,
        hidden_act="gelu",
        feat_extract_activation="gelu",
        layer_norm_eps=1e-5,
    )


def _build(path: Path, arch: str, num_layers: int, hidden_size: int, seed: int) -> None:
    """Write model + feature extractor to a temp dir beside `path`, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng():  # building must not shift the caller's torch RNG stream
        model = AutoModel.from_config(untrained_config(arch, num_layers, hidden_size))
    _init_portable(model, seed)
    digest = weights_sha256(model)
    # group-norm extractor: trained without attention mask, so none is returned (as hubert-base).
    extractor = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=False,
    )
    tmp = tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        model.save_pretrained(tmp)
        extractor.save_pretrained(tmp)
        Path(tmp, SHA256_FILE).write_text(digest + "\n")  # inside tmp: renamed in with the model
        os.rename(tmp, path)
    except OSError:
        if not path.is_dir():  # another process may have won the rename race
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _uniform(
    rng: np.random.Generator, shape: tuple[int, ...], low: float, high: float
) -> torch.Tensor:
    """U(low, high) from 53-bit integers: exact float64 arithmetic, identical on every platform."""
    u = rng.random(shape, dtype=np.float64)
    return torch.from_numpy((low + (high - low) * u).astype(np.float32))


@torch.no_grad()
def _init_portable(model: nn.Module, seed: int) -> None:
    """Overwrite every parameter in module order from one PCG64 stream.

    Linear, conv and embedding weights ~ U(+-sqrt(3 / fan_in)) (variance 1 / fan_in), biases 0, norm
    scales 1; a weight-normed conv gets g = ||v|| so its weight equals v. Remaining parameters
    (masked_spec_embed, WavLM's gru_rel_pos_const) keep constant inits or get U(0, 1).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    done: set[int] = set()
    for module in model.modules():
        if isinstance(module, nn.Linear | nn.Conv1d | nn.Embedding):
            normed = parametrize.is_parametrized(module, "weight")
            weight = module.parametrizations.weight.original1 if normed else module.weight
            fan_in = weight.shape[1] * int(np.prod(weight.shape[2:]))
            bound = float(np.sqrt(3.0 / fan_in))
            weight.copy_(_uniform(rng, tuple(weight.shape), -bound, bound))
            done.add(id(weight))
            if normed:
                g = module.parametrizations.weight.original0
                dim = next(d for d, n in enumerate(g.shape) if n > 1)
                g.copy_(torch.norm_except_dim(weight, 2, dim))
                done.add(id(g))
            if getattr(module, "bias", None) is not None:
                module.bias.zero_()
                done.add(id(module.bias))
        elif isinstance(module, nn.LayerNorm | nn.GroupNorm) and module.weight is not None:
            module.weight.fill_(1.0)
            module.bias.zero_()
            done.update({id(module.weight), id(module.bias)})
    for param in model.parameters():
        if id(param) in done:
            continue
        flat = param.flatten()
        if not bool((flat == flat[0]).all()):
            param.copy_(_uniform(rng, tuple(param.shape), 0.0, 1.0))
