"""`Backbone`: the one interface `ActivationCache` reads a frozen encoder through.

The cache needs seven things of an encoder, so the interface holds those and nothing else: which
hidden states it returns (`layers`) and how wide they are (`hidden_size`), the `sample_rate` it
takes, the shortest clip that yields a frame (`min_samples`, checked before a clip is queued), the
`frame_rate_hz` (times of per-frame rows), an `identity` that keys the cache manifest (so a cache
is never reused with another model), `extract` and a device move (`to`: each DDP process runs on
its own GPU). Hugging Face checkpoints are one implementation (`saelight.backbones.HFBackbone`);
your own torch encoder is one subclass::

    class MyEncoder(Backbone):
        def __init__(self, checkpoint: str, layers: list[int] | Literal["all"] = "all") -> None:
            self.checkpoint, self.net = checkpoint, load_my_net(checkpoint).eval()
            self.layers = resolve_layers(layers, num_layers=len(self.net.blocks))
            self.hidden_size, self.sample_rate = 256, 16000
            self.min_samples, self.frame_rate_hz = 400, 50.0

        def identity(self) -> dict[str, Any]:
            return {"model": "my-encoder", "weights": sha256_of(self.checkpoint)}

        def extract(self, waves): ...  # ({layer: (B, T, D)}, mask (B, T)), see `Backbone.extract`

YAML picks it like any class: ``backbone: {class_path: mypackage.MyEncoder, init_args: {...}}``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn


class Backbone(ABC):
    """A frozen audio encoder that turns waveforms into per-layer hidden states.

    Subclasses set these attributes in ``__init__`` (plain attributes, not properties, so one
    line each):

    Attributes:
        layers: sorted hidden-state indices that `extract` returns (the cached layers).
        hidden_size: width D of every returned hidden state.
        sample_rate: sample rate (Hz) of the waves `extract` takes; the cache resamples to it.
        min_samples: shortest wave (in samples) that yields at least one frame; shorter clips are
            skipped (or stop the build) before they reach `extract`.
        frame_rate_hz: hidden-state frames per second of audio, for the start and end times of
            per-frame rows.
        device: torch device the encoder runs on (CPU unless the subclass says otherwise).
    """

    layers: list[int]
    hidden_size: int
    sample_rate: int
    min_samples: int
    frame_rate_hz: float
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def identity(self) -> dict[str, Any]:
        """JSON-able fields that identify this encoder's outputs, stored in the cache manifest.

        A cache is reused only when every field matches, so include whatever changes the
        activations (model name, weights revision or checksum, preprocessing options) and nothing
        machine-specific (absolute paths), or the same cache is refused on another machine.
        """

    @abstractmethod
    def extract(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """Hidden states of `layers` for a list of clips, in input order.

        Args:
            waves: 1-D float32 mono waves at `sample_rate`, possibly of different lengths, each at
                least `min_samples` long.

        Returns:
            ``({layer: (B, T, hidden_size) float32}, mask (B, T) bool)``, CPU tensors. The mask
            marks each clip's valid frames; the cache mean-pools over them (clip pooling) or
            keeps exactly them as rows (frame pooling), so padding never reaches the cache.
        """

    def to(self, device: str | torch.device) -> Backbone:
        """Run on `device` from now on; moves every `torch.nn.Module` held as an attribute.

        The cache calls it to put each DDP process on its own GPU. Override it if your encoder
        keeps modules elsewhere (in a list, a dict).
        """
        self.device = torch.device(device)
        for value in vars(self).values():
            if isinstance(value, nn.Module):
                value.to(self.device)
        return self


def resolve_layers(layers: list[int] | str, num_layers: int) -> list[int]:
    """Sorted unique hidden-state indices; "all" is 0..num_layers. ValueError outside that range.

    Index 0 is the input of the first transformer layer (the "embeddings") and `num_layers` the
    output of the last one, the ``output_hidden_states`` convention.
    """
    if layers == "all":
        return list(range(num_layers + 1))
    if isinstance(layers, str) or not layers:
        raise ValueError(f"layers={layers!r} must be 'all' or a non-empty list of ints")
    bad = [i for i in layers if not 0 <= int(i) <= num_layers]
    if bad:
        raise ValueError(
            f"layers={list(layers)}: {bad} beyond the model's depth; valid range is "
            f"0..{num_layers} (0 = embeddings, {num_layers} = last layer)"
        )
    return sorted({int(i) for i in layers})


def check_waves(
    waves: list[np.ndarray], min_samples: int, sample_rate: int, who: str
) -> list[np.ndarray]:
    """`waves` as 1-D float32 arrays; ValueError if empty, not 1-D or below `min_samples`.

    Args:
        waves: the clips given to `Backbone.extract`.
        min_samples: the backbone's shortest usable wave.
        sample_rate: the backbone's sample rate, for the error message.
        who: the encoder's name, for the error message.
    """
    if len(waves) == 0:
        raise ValueError("waves is empty; pass at least one 1-D waveform")
    out = []
    for i, wave in enumerate(waves):
        wave = np.asarray(wave, dtype=np.float32)
        if wave.ndim != 1:
            raise ValueError(f"waves[{i}] has shape {wave.shape}; expected a 1-D mono waveform")
        if len(wave) < min_samples:
            raise ValueError(
                f"waves[{i}] has {len(wave)} samples; {who} needs at least "
                f"min_samples={min_samples} at {sample_rate} Hz to yield one frame"
            )
        out.append(wave)
    return out
