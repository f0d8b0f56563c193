"""The input families of Hugging Face audio encoders, one small class each.

`HFBackbone` loads a checkpoint and `pick_family` tells from its feature extractor and config which
family it belongs to. The family holds what differs between them: the model inputs its feature
extractor makes, how many frames a clip of n samples yields, which frames are padding and which
clips may share one forward pass. Everything else (loading, batching, hidden states) is common.

* `WaveformInput` (wav2vec2, HuBERT, WavLM, MERT): raw samples through ``Wav2Vec2FeatureExtractor``.
  Clips of different lengths share a padded batch with an attention mask only where the checkpoint's
  extractor returns one and the conv front end normalises per frame (``feat_extract_norm ==
  "layer"``). Group-norm front ends (hubert-base, wav2vec2-base, wavlm-base-plus, MERT) normalise
  over time, padding included, and HF's guidance for them is zero padding without a mask, which
  attention then sees; so they only batch clips of equal length, and each clip gets its solo output.
  Valid frames come from the model's ``_get_feat_extract_output_lengths``.
* `ASTInput` (Audio Spectrogram Transformer): Kaldi-style fbank from ``ASTFeatureExtractor`` (its
  numpy path: torchaudio is not needed), always padded or cut to ``max_length`` frames (1024 =
  10.24 s). Tokens are ``[CLS, distillation, patches]``, patches frequency-major
  (``f * t_out + t``). The mask keeps CLS, distillation and each patch whose time span overlaps
  real audio; ``mask_padding=False`` keeps every token, as the paper's mean over all 1214 tokens
  did.
* `WhisperInput` (encoder of an encoder-decoder model): log-mel padded to 30 s, 1500 frames (50 Hz).
  Frames past the real audio are masked (``mask_padding=False`` keeps them); longer clips are cut.
  With ``window_s`` set, each clip is padded only to its own length rounded up to a multiple of
  ``window_s`` and the encoder runs on that many positions (see `WhisperInput`).
"""

from __future__ import annotations

import logging
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

_AST_WINDOW, _AST_HOP = 400, 160  # ASTFeatureExtractor's fbank frame and shift, in samples


class InputFamily(ABC):
    """How one family of HF audio encoders takes its input and lays out its output frames.

    Attributes:
        kind: the family's name ("waveform", "ast", "whisper"), kept as `HFBackbone.kind`.
        min_samples: shortest wave (in samples) that yields at least one frame.
        max_samples: the feature extractor cuts longer clips (None: no limit).
        frame_rate_hz: hidden-state frames per second of audio (for AST: time patches per second).
    """

    kind: ClassVar[str]
    min_samples: int
    max_samples: int | None = None
    frame_rate_hz: float

    def __init__(self, feature_extractor: Any, net: nn.Module, mask_padding: bool) -> None:
        """Keep the feature extractor and the encoder (as `encoder` returned it).

        `HFBackbone` passes a weightless skeleton (meta device) and swaps in the loaded encoder
        before the first forward pass, so ``__init__`` and `matches` read only the config and
        the frame arithmetic (``_get_feat_extract_output_lengths``), never the weights.
        """
        self.feature_extractor, self.net, self.mask_padding = feature_extractor, net, mask_padding
        self.sample_rate = int(feature_extractor.sampling_rate)

    @classmethod
    @abstractmethod
    def matches(cls, feature_extractor: Any, net: nn.Module) -> bool:
        """Whether a checkpoint with this extractor and model belongs to the family."""

    @staticmethod
    def encoder(net: nn.Module) -> nn.Module:
        """The module that produces the hidden states (the whole model, but for Whisper)."""
        return net

    @abstractmethod
    def features(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        """The model's keyword inputs for clips that share one forward pass (CPU tensors)."""

    @abstractmethod
    def num_frames(self, lengths: list[int]) -> list[int]:
        """Valid output frames per clip length in samples (AST: time patches with real audio)."""

    def output_frames(self, longest: int) -> int:
        """Frames T of the hidden states of a batch whose longest clip has `longest` samples."""
        return self.num_frames([longest])[0]

    def batch_samples(self, length: int) -> int:
        """Input samples a clip of `length` occupies in a padded batch (for max_batch_seconds)."""
        return length

    def can_share(self, a: int, b: int) -> bool:
        """Whether clips of `a` and `b` samples may share a pass without changing their outputs."""
        return True

    def frame_mask(self, lengths: list[int], t: int, device: torch.device) -> torch.Tensor:
        """(b, t) bool: True on frames (tokens) that hold real audio."""
        frames = torch.tensor(self.num_frames(lengths), device=device).unsqueeze(1)
        return torch.arange(t, device=device) < frames

    def forward(self, inputs: dict[str, torch.Tensor], request: list[int] | bool) -> Any:
        """The model's output with hidden states (`request`: which ones, or True for all)."""
        return self.net(**inputs, output_hidden_states=request)


class WaveformInput(InputFamily):
    """Raw-waveform encoders with a conv front end (wav2vec2, HuBERT, WavLM, MERT)."""

    kind = "waveform"

    def __init__(self, feature_extractor: Any, net: nn.Module, mask_padding: bool) -> None:
        super().__init__(feature_extractor, net, mask_padding)
        self.attention_mask = bool(getattr(feature_extractor, "return_attention_mask", False))
        # Group norm in the first conv normalises over time, padding included.
        group_norm = getattr(net.config, "feat_extract_norm", "group") == "group"
        self.exact = group_norm or not self.attention_mask
        self.min_samples = _first_positive(lambda n: self.num_frames([n])[0])
        span = 10 * self.sample_rate
        self.frame_rate_hz = (self.num_frames([2 * span])[0] - self.num_frames([span])[0]) / 10

    @classmethod
    def matches(cls, feature_extractor: Any, net: nn.Module) -> bool:
        takes_waves = "input_values" in getattr(feature_extractor, "model_input_names", [])
        return takes_waves and hasattr(net, "_get_feat_extract_output_lengths")

    def features(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        kwargs: dict[str, Any] = {"sampling_rate": self.sample_rate, "return_tensors": "pt"}
        names = ["input_values"]
        if self.attention_mask:
            kwargs.update(padding=True, return_attention_mask=True)
            names.append("attention_mask")
        return _keep(self.feature_extractor(waves, **kwargs), names)

    def num_frames(self, lengths: list[int]) -> list[int]:
        out = self.net._get_feat_extract_output_lengths(torch.tensor(lengths))  # type: ignore[operator]
        return [int(n) for n in torch.as_tensor(out).clamp(min=0)]

    def can_share(self, a: int, b: int) -> bool:
        return not self.exact or a == b


class ASTInput(InputFamily):
    """Audio Spectrogram Transformer: a fixed-length fbank cut into 2-D patches."""

    kind = "ast"

    def __init__(self, feature_extractor: Any, net: nn.Module, mask_padding: bool) -> None:
        super().__init__(feature_extractor, net, mask_padding)
        fe, cfg = feature_extractor, net.config
        if (cfg.num_mel_bins, cfg.max_length) != (fe.num_mel_bins, fe.max_length):
            raise ValueError(
                f"feature extractor (num_mel_bins, max_length) = "
                f"{(fe.num_mel_bins, fe.max_length)} differs from the model config's "
                f"{(cfg.num_mel_bins, cfg.max_length)}"
            )
        self.f_out = (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1
        self.t_out = (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1
        self.min_samples = _AST_WINDOW
        self.max_samples = (fe.max_length - 1) * _AST_HOP + _AST_WINDOW
        self.tokens = 2 + self.f_out * self.t_out  # CLS, distillation, patches
        self.frame_rate_hz = self.sample_rate / _AST_HOP / cfg.time_stride

    @classmethod
    def matches(cls, feature_extractor: Any, net: nn.Module) -> bool:
        return type(feature_extractor).__name__ == "ASTFeatureExtractor"

    def features(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        out = self.feature_extractor(waves, sampling_rate=self.sample_rate, return_tensors="pt")
        return _keep(out, ["input_values"])

    def num_frames(self, lengths: list[int]) -> list[int]:
        stride, max_frames = self.net.config.time_stride, self.feature_extractor.max_length
        fbank = [
            min(max_frames, 1 + (n - _AST_WINDOW) // _AST_HOP) if n >= _AST_WINDOW else 0
            for n in lengths
        ]
        return [min(self.t_out, math.ceil(f / stride)) for f in fbank]

    def output_frames(self, longest: int) -> int:
        return self.tokens

    def batch_samples(self, length: int) -> int:
        return self.max_samples  # type: ignore[return-value]

    def frame_mask(self, lengths: list[int], t: int, device: torch.device) -> torch.Tensor:
        if not self.mask_padding:
            return torch.ones(len(lengths), t, dtype=torch.bool, device=device)
        frames = torch.tensor(self.num_frames(lengths), device=device).unsqueeze(1)
        time_ok = torch.arange(self.t_out, device=device) < frames  # (b, t_out)
        special = torch.ones(len(lengths), 2, dtype=torch.bool, device=device)
        return torch.cat([special, time_ok.repeat(1, self.f_out)], dim=1)


class WhisperInput(InputFamily):
    """Whisper's encoder: log-mel padded to a 30 s window (1500 positions at 50 Hz).

    With `window_s` set, a clip of n samples runs on ``P = ceil((frames(n) + 1) / q) * q``
    positions (``q = round(window_s * 50)``, at most the full 1500): the log-mel is padded to
    ``2 P`` frames and the encoder adds only its first ``P`` position embeddings. Compute falls at
    least in proportion to the window (attention with its square), but Whisper was only trained
    on full windows: the clip's frames attend to less silence, so every layer after the embeddings
    changes. Rounding lets clips of similar length share a shape, so they batch (only clips with
    the same window share a pass, which keeps a clip's output independent of its neighbours).
    """

    kind = "whisper"

    def __init__(
        self,
        feature_extractor: Any,
        net: nn.Module,
        mask_padding: bool,
        window_s: float | None = None,
    ) -> None:
        super().__init__(feature_extractor, net, mask_padding)
        fe = feature_extractor
        self.min_samples = 1
        self.max_samples = int(fe.n_samples)
        self.positions = self.num_frames([fe.n_samples])[0]
        self.frame_rate_hz = self.positions * self.sample_rate / fe.n_samples
        self.window_s = window_s
        if window_s is None:
            return
        self._step = max(1, round(window_s * self.frame_rate_hz))
        self._position_samples = self.max_samples // self.positions
        log.warning(
            "whisper_window_s=%s: Whisper's encoder runs on each clip's own length (rounded up "
            "to a multiple of %d positions = %.2f s) instead of its %.0f s training window; its "
            "representations change (every layer after the embeddings), so they are not "
            "comparable with those of a full-window run",
            window_s,
            self._step,
            self._step / self.frame_rate_hz,
            self.max_samples / self.sample_rate,
        )

    @classmethod
    def matches(cls, feature_extractor: Any, net: nn.Module) -> bool:
        encoder_decoder = getattr(net.config, "is_encoder_decoder", False)
        return encoder_decoder and hasattr(feature_extractor, "n_samples")

    @staticmethod
    def encoder(net: nn.Module) -> nn.Module:
        return net.get_encoder()  # type: ignore[operator]

    def window(self, length: int) -> int:
        """Encoder positions a clip of `length` samples runs on.

        One position more than the clip's frames: the convs then see the same log-mel silence
        past the clip's last frame as in the full window, so the embeddings (layer 0) match it.
        """
        if self.window_s is None:
            return self.positions
        steps = math.ceil((self.num_frames([length])[0] + 1) / self._step)
        return min(self.positions, steps * self._step)

    def features(self, waves: list[np.ndarray]) -> dict[str, torch.Tensor]:
        kwargs: dict[str, Any] = {"sampling_rate": self.sample_rate, "return_tensors": "pt"}
        if self.window_s is not None:
            longest = max(len(w) for w in waves)
            kwargs["max_length"] = self.window(longest) * self._position_samples
        return _keep(self.feature_extractor(waves, **kwargs), ["input_features"])

    def num_frames(self, lengths: list[int]) -> list[int]:
        hop, limit = self.feature_extractor.hop_length, self.feature_extractor.nb_max_frames
        mel = torch.tensor([min(math.ceil(n / hop), limit) for n in lengths])
        return [int(n) for n in self.net._get_feat_extract_output_lengths(mel)]  # type: ignore[operator]

    def output_frames(self, longest: int) -> int:
        return self.window(longest)

    def batch_samples(self, length: int) -> int:
        if self.window_s is None:
            return self.max_samples  # type: ignore[return-value]
        return self.window(length) * self._position_samples

    def can_share(self, a: int, b: int) -> bool:
        return self.window(a) == self.window(b)

    def frame_mask(self, lengths: list[int], t: int, device: torch.device) -> torch.Tensor:
        if not self.mask_padding:
            return torch.ones(len(lengths), t, dtype=torch.bool, device=device)
        return super().frame_mask(lengths, t, device)

    def forward(self, inputs: dict[str, torch.Tensor], request: list[int] | bool) -> Any:
        if self.window_s is None:
            return super().forward(inputs, request)
        strides = self.net.conv1.stride[0] * self.net.conv2.stride[0]  # type: ignore[union-attr]
        positions = inputs["input_features"].shape[-1] // strides
        with _first_positions(self.net, positions):
            out = super().forward(inputs, request)
        if out.last_hidden_state.shape[1] != positions:
            raise RuntimeError(
                f"whisper_window_s: the encoder returned {out.last_hidden_state.shape[1]} frames "
                f"for a {positions}-position window; this transformers version slices its "
                "position embeddings differently, so run without whisper_window_s"
            )
        return out


FAMILIES: tuple[type[InputFamily], ...] = (WhisperInput, ASTInput, WaveformInput)
"""Checked in this order: Whisper's extractor would also pass a looser test."""


def pick_family(model: str, feature_extractor: Any, net: nn.Module) -> type[InputFamily]:
    """The family `net` belongs to; ValueError for unsupported models."""
    for family in FAMILIES:
        if family.matches(feature_extractor, net):
            return family
    raise ValueError(
        f"model={model!r} ({type(net).__name__}, {type(feature_extractor).__name__}) is not a "
        "supported audio encoder: saelight handles raw-waveform encoders (wav2vec2, HuBERT, WavLM, "
        "MERT), AST and Whisper-style encoder-decoders"
    )


@contextmanager
def _first_positions(encoder: Any, positions: int) -> Iterator[None]:
    """Make HF's WhisperEncoder expect `positions` frames and add its first `positions` embeddings.

    Its forward checks the mel length against ``config.max_source_positions`` and looks up
    ``arange(embed_positions.num_embeddings)``; both are restored afterwards, the weights untouched.
    """
    table, config = encoder.embed_positions, encoder.config
    saved = table.num_embeddings, config.max_source_positions
    table.num_embeddings = config.max_source_positions = positions
    try:
        yield
    finally:
        table.num_embeddings, config.max_source_positions = saved


def _keep(features: Any, names: list[str]) -> dict[str, torch.Tensor]:
    """The named entries of a feature extractor's output."""
    return {k: v for k, v in features.items() if k in names}


def _first_positive(frames: Callable[[int], int], upper: int = 1 << 22) -> int:
    """Smallest n in [1, upper] with frames(n) >= 1 (frames is non-decreasing)."""
    lo, hi = 1, upper
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if frames(mid) >= 1 else (mid + 1, hi)
    return lo
