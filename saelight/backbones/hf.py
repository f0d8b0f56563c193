"""A frozen Hugging Face audio encoder, loaded by hub id or local dir, that returns hidden states.

Layer ``i`` is ``hidden_states[i]`` of the model run with ``output_hidden_states``: 0 is the input
of the first transformer layer (the "embeddings"), ``num_layers`` the output of the last one, as in
Mariotte et al. 2025 (arXiv:2509.24793). Each checkpoint loads with its own class through
``AutoModel`` (the paper's code loaded WavLM with the wav2vec2 class).

Three input families, told apart by the checkpoint's feature extractor and config:

* ``waveform`` (wav2vec2, HuBERT, WavLM, MERT): raw samples through ``Wav2Vec2FeatureExtractor``.
  Clips of different lengths share a padded batch with an attention mask only where the checkpoint's
  extractor returns one and the conv front end normalises per frame (``feat_extract_norm ==
  "layer"``). Group-norm front ends (hubert-base, wav2vec2-base, wavlm-base-plus, MERT) normalise
  over time, padding included, and HF's guidance for them is zero padding without a mask, which
  attention then sees; so they only batch clips of equal length, and each clip gets its solo output.
  Valid frames come from the model's ``_get_feat_extract_output_lengths``.
* ``ast`` (Audio Spectrogram Transformer): Kaldi-style fbank from ``ASTFeatureExtractor`` (its numpy
  path: torchaudio is not needed), always padded or cut to ``max_length`` frames (1024 = 10.24 s).
  Tokens are ``[CLS, distillation, patches]``, patches frequency-major (``f * t_out + t``). The mask
  keeps CLS, distillation and each patch whose time span overlaps real audio; ``mask_padding=False``
  keeps every token, as the paper's mean over all 1214 tokens did.
* ``whisper`` (encoder of an encoder-decoder model): log-mel padded to 30 s, 1500 frames (50 Hz).
  Frames past the real audio are masked (``mask_padding=False`` keeps them); longer clips are cut.
"""

from __future__ import annotations

import logging
import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from huggingface_hub import is_offline_mode
from transformers import AutoFeatureExtractor, AutoModel, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")
_AST_WINDOW, _AST_HOP = 400, 160  # ASTFeatureExtractor's fbank frame and shift, in samples


class HFBackbone:
    """A frozen HF transformers audio encoder (eval mode, no gradients, ``torch.inference_mode``).

    Attributes:
        sample_rate: sample rate of the waves `extract` takes (from the feature extractor).
        hidden_size: width D of every hidden state.
        num_layers: number of transformer layers; valid layer indices are 0..num_layers.
        min_samples: shortest wave (in samples) that yields at least one frame.
        frame_rate_hz: hidden-state frames per second of audio (for AST: time patches per second).
    """

    def __init__(
        self,
        model: str,
        layers: list[int] | Literal["all"] = "all",
        revision: str | None = None,
        trust_remote_code: bool = False,
        dtype: Literal["float32", "bfloat16"] = "float32",
        device: str = "cpu",
        max_batch_seconds: float = 160.0,
        mask_padding: bool = True,
    ) -> None:
        """Load the feature extractor and model and freeze the model.

        Args:
            model: Hugging Face hub id (e.g. "facebook/hubert-base-ls960") or a local directory
                written by ``save_pretrained`` (config, weights, ``preprocessor_config.json``).
            layers: hidden-state indices to return (0 = embeddings, num_layers = last layer) or
                "all"; kept sorted and unique in the `layers` attribute.
            revision: hub branch, tag or commit to load; None takes the default branch.
            trust_remote_code: run modelling code shipped with the checkpoint (MERT needs it).
                Only set it for repositories you trust.
            dtype: "bfloat16" runs the forward pass under bf16 autocast (weights stay float32);
                outputs are float32 either way.
            device: torch device that runs the model, e.g. "cpu" or "cuda:0" (outputs come back on
                the CPU, ready for the cache writer).
            max_batch_seconds: cap on the padded audio in one forward pass (clips x longest clip,
                in seconds; AST and Whisper count their fixed input length); bigger batches split.
            mask_padding: mark frames that only hold the feature extractor's fixed-length padding
                (AST, Whisper) invalid. False keeps them, reproducing the paper's AST pooling.
                Batch padding of waveform models is always masked.
        """
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' or 'bfloat16'")
        if not max_batch_seconds > 0:
            raise ValueError(f"max_batch_seconds={max_batch_seconds} must be > 0")
        try:
            self.device = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"device={device!r} is not a torch device (e.g. 'cpu', 'cuda:0')"
            ) from err
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} but CUDA is not available here; use 'cpu'")
        self.model_id, self.revision = model, revision
        self.dtype, self.mask_padding = dtype, mask_padding
        self.max_batch_seconds = max_batch_seconds
        self.feature_extractor, net = _load(model, revision, trust_remote_code)
        self.model_class = type(net).__name__
        self._commit = getattr(net.config, "_commit_hash", None)
        self.kind = _kind(model, self.feature_extractor, net)
        if self.kind == "whisper":
            net = net.get_encoder()
        self.net = net.eval().requires_grad_(False).to(self.device)
        config = net.config
        self.sample_rate = int(self.feature_extractor.sampling_rate)
        self.hidden_size = int(config.hidden_size)
        self.num_layers = int(config.num_hidden_layers)
        self.layers = _resolve_layers(layers, self.num_layers)
        self._use_attention_mask = self.kind == "waveform" and bool(
            getattr(self.feature_extractor, "return_attention_mask", False)
        )
        # Group norm in the first conv normalises over time, padding included.
        group_norm = getattr(config, "feat_extract_norm", "group") == "group"
        self._exact = self.kind == "waveform" and (group_norm or not self._use_attention_mask)
        self._setup_geometry()

    def _setup_geometry(self) -> None:
        """Frame counts per input length, shortest usable wave and frame rate for this family."""
        fe, sr = self.feature_extractor, self.sample_rate
        # Input samples and output frames of the fixed-length families (AST, Whisper).
        self._fixed_samples: int | None = None
        self._fixed_frames: int | None = None
        if self.kind == "waveform":
            self.min_samples = _first_positive(lambda n: self._num_frames([n])[0])
            span = 10 * sr
            self.frame_rate_hz = (
                self._num_frames([2 * span])[0] - self._num_frames([span])[0]
            ) / 10
            return
        if self.kind == "whisper":
            self.min_samples = 1
            self._fixed_samples = int(fe.n_samples)
            self._fixed_frames = self._num_frames([fe.n_samples])[0]
            self.frame_rate_hz = self._fixed_frames * sr / fe.n_samples
            return
        cfg = self.net.config
        if (cfg.num_mel_bins, cfg.max_length) != (fe.num_mel_bins, fe.max_length):
            raise ValueError(
                f"model={self.model_id!r}: feature extractor (num_mel_bins, max_length) = "
                f"{(fe.num_mel_bins, fe.max_length)} differs from the model config's "
                f"{(cfg.num_mel_bins, cfg.max_length)}"
            )
        self._f_out = (cfg.num_mel_bins - cfg.patch_size) // cfg.frequency_stride + 1
        self._t_out = (cfg.max_length - cfg.patch_size) // cfg.time_stride + 1
        self.min_samples = _AST_WINDOW
        self._fixed_samples = (fe.max_length - 1) * _AST_HOP + _AST_WINDOW
        self._fixed_frames = 2 + self._f_out * self._t_out  # CLS, distillation, patches
        self.frame_rate_hz = sr / _AST_HOP / cfg.time_stride

    def identity(self) -> dict[str, Any]:
        """What identifies this backbone's outputs, stored in the cache manifest."""
        return {
            "model": self.model_id,
            "revision": self._commit or self.revision,
            "class": self.model_class,
            "sample_rate": self.sample_rate,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dtype": self.dtype,
            "mask_padding": self.mask_padding,
        }

    def extract(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """Hidden states of the selected layers for a list of clips.

        Clips are batched (split by `max_batch_seconds`), padded where the model allows it, and put
        back in input order. Padding frames are zero in the returned tensors.

        Args:
            waves: 1-D float32 mono waves at `sample_rate`, possibly of different lengths, each
                at least `min_samples` long.

        Returns:
            ``({layer: (B, T, hidden_size) float32}, mask (B, T) bool)``, CPU tensors; mask marks
            the valid, non-padding frames (tokens for AST). T is the longest clip's frame count,
            or the fixed output length of AST and Whisper.
        """
        waves = self._check_waves(waves)
        lengths = [len(w) for w in waves]
        total = self._fixed_frames or self._num_frames([max(lengths)])[0]
        mask = torch.zeros(len(waves), total, dtype=torch.bool)
        hidden = {layer: torch.zeros(len(waves), total, self.hidden_size) for layer in self.layers}
        for chunk in self._plan(lengths):
            with torch.inference_mode():
                states, chunk_mask = self._forward([waves[i] for i in chunk])
                index, t = torch.tensor(chunk), chunk_mask.shape[1]
                mask[index, :t] = chunk_mask.cpu()
                for layer, h in states.items():
                    hidden[layer][index, :t] = (h.float() * chunk_mask.unsqueeze(-1)).cpu()
        return hidden, mask

    def _forward(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """One forward pass over clips that may share a batch: ({layer: (b, t, D)}, mask (b, t))."""
        kwargs: dict[str, Any] = {"sampling_rate": self.sample_rate, "return_tensors": "pt"}
        if self._use_attention_mask:
            kwargs.update(padding=True, return_attention_mask=True)
        features = self.feature_extractor(waves, **kwargs)
        names = ["input_values", "input_features"] + ["attention_mask"] * self._use_attention_mask
        inputs = {k: v.to(self.device) for k, v in features.items() if k in names}
        # Models built on transformers' output capturing keep only the requested hidden states.
        request = list(self.layers) if getattr(self.net, "_can_record_outputs", None) else True
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.dtype == "bfloat16"):
            out = self.net(**inputs, output_hidden_states=request)
        states = getattr(out, "hidden_states", None)
        if states is None or len(states) != self.num_layers + 1:
            got = "none" if states is None else f"{len(states)}"
            raise ValueError(
                f"model={self.model_id!r} ({self.model_class}) returned {got} hidden_states with "
                f"output_hidden_states; saelight needs num_layers + 1 = {self.num_layers + 1}"
            )
        t = states[self.layers[0]].shape[1]
        return {i: states[i] for i in self.layers}, self._frame_mask([len(w) for w in waves], t)

    def _num_frames(self, lengths: list[int]) -> list[int]:
        """Valid frames per clip length (waveform, Whisper); time patches with real audio (AST)."""
        if self.kind == "waveform":
            out = self.net._get_feat_extract_output_lengths(torch.tensor(lengths))
            return [int(n) for n in torch.as_tensor(out).clamp(min=0)]
        if self.kind == "whisper":
            hop, limit = self.feature_extractor.hop_length, self.feature_extractor.nb_max_frames
            mel = torch.tensor([min(math.ceil(n / hop), limit) for n in lengths])
            return [int(n) for n in self.net._get_feat_extract_output_lengths(mel)]
        cfg, max_frames = self.net.config, self.feature_extractor.max_length
        fbank = [
            min(max_frames, 1 + (n - _AST_WINDOW) // _AST_HOP) if n >= _AST_WINDOW else 0
            for n in lengths
        ]
        return [min(self._t_out, math.ceil(f / cfg.time_stride)) for f in fbank]

    def _frame_mask(self, lengths: list[int], t: int) -> torch.Tensor:
        """(b, t) bool: True on frames (tokens) that hold real audio."""
        if self.kind != "waveform" and not self.mask_padding:
            return torch.ones(len(lengths), t, dtype=torch.bool, device=self.device)
        frames = torch.tensor(self._num_frames(lengths), device=self.device).unsqueeze(1)
        if self.kind != "ast":
            return torch.arange(t, device=self.device) < frames
        time_ok = torch.arange(self._t_out, device=self.device) < frames  # (b, t_out)
        special = torch.ones(len(lengths), 2, dtype=torch.bool, device=self.device)
        return torch.cat([special, time_ok.repeat(1, self._f_out)], dim=1)

    def _plan(self, lengths: list[int]) -> list[list[int]]:
        """Split clip indices into forward passes: longest first, at most `max_batch_seconds` each.

        Waveform models that pad inexactly (group norm, no attention mask) only batch equal lengths.
        """
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        fixed, exact = self._fixed_samples, self._exact
        chunks: list[list[int]] = []
        for i in order:
            last = chunks[-1] if chunks else None
            if last is not None and not (exact and lengths[last[0]] != lengths[i]):
                seconds = (len(last) + 1) * (fixed or lengths[last[0]]) / self.sample_rate
                if seconds <= self.max_batch_seconds:
                    last.append(i)
                    continue
            chunks.append([i])
        return chunks

    def _check_waves(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """`waves` as 1-D float32 arrays; ValueError if empty, not 1-D or below min_samples."""
        if len(waves) == 0:
            raise ValueError("waves is empty; pass at least one 1-D waveform")
        out = []
        for i, wave in enumerate(waves):
            wave = np.asarray(wave, dtype=np.float32)
            if wave.ndim != 1:
                raise ValueError(f"waves[{i}] has shape {wave.shape}; expected a 1-D mono waveform")
            if len(wave) < self.min_samples:
                raise ValueError(
                    f"waves[{i}] has {len(wave)} samples; {self.model_class} needs at least "
                    f"min_samples={self.min_samples} at {self.sample_rate} Hz to yield one frame"
                )
            out.append(wave)
        fixed = self._fixed_samples
        if fixed is not None and (n := sum(len(w) > fixed for w in out)):
            log.warning(
                "%d clip(s) longer than %.2f s are truncated by %s's feature extractor",
                n,
                fixed / self.sample_rate,
                self.model_class,
            )
        return out


def _resolve_layers(layers: list[int] | str, num_layers: int) -> list[int]:
    """Sorted unique layer indices; ValueError outside 0..num_layers."""
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


def _first_positive(frames: Any, upper: int = 1 << 22) -> int:
    """Smallest n in [1, upper] with frames(n) >= 1 (frames is non-decreasing)."""
    lo, hi = 1, upper
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if frames(mid) >= 1 else (mid + 1, hi)
    return lo


def _resolve_source(model: str) -> str:
    """`model` as an existing local directory or a well-formed hub id; ValueError otherwise."""
    path = Path(model).expanduser()
    if path.is_dir():
        return str(path)
    if path.exists() or not _HUB_ID.fullmatch(model):
        raise ValueError(
            f"model={model!r} is neither an existing local model directory nor a hub id like "
            f"'facebook/hubert-base-ls960'"
        )
    return model


def _load(model: str, revision: str | None, trust_remote_code: bool) -> tuple[Any, Any]:
    """(feature extractor, model) through `from_pretrained`; a ValueError saying why on failure."""
    source = _resolve_source(model)
    try:
        config, _ = PretrainedConfig.get_config_dict(source, revision=revision)
    except OSError as err:
        if Path(source).is_dir():
            raise ValueError(
                f"model={model!r} is a local directory without a loadable config.json (write "
                f"one with save_pretrained): {err}"
            ) from err
        hint = (
            "HF_HUB_OFFLINE is set, so only hub models already in the local HF cache load"
            if is_offline_mode()
            else "check the id and the network, or set HF_HUB_OFFLINE=1 to use the local HF cache"
        )
        raise ValueError(
            f"model={model!r} is neither a local directory nor a reachable Hugging Face hub id "
            f"({hint}): {err}"
        ) from err
    if (
        "auto_map" in config
        and config.get("model_type") not in CONFIG_MAPPING
        and not trust_remote_code
    ):
        raise ValueError(
            f"model={model!r} (model_type {config.get('model_type')!r}, e.g. MERT) ships its own "
            "modelling code (auto_map in config.json); pass trust_remote_code=True to run it, "
            "only for a repository you trust"
        )
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    try:
        feature_extractor = AutoFeatureExtractor.from_pretrained(source, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"model={model!r} has no loadable audio feature extractor "
            f"(preprocessor_config.json): {err}"
        ) from err
    net, info = AutoModel.from_pretrained(source, output_loading_info=True, **kwargs)
    # A weight missing from the checkpoint is silently random (how the paper's WavLM-as-wav2vec2
    # load went wrong); masked_spec_embed only serves training-time masking.
    missing = sorted(k for k in info["missing_keys"] if "masked_spec_embed" not in k)
    if missing:
        raise ValueError(
            f"model={model!r} loaded as {type(net).__name__}, but {len(missing)} of its weights "
            f"are missing from the checkpoint (e.g. {missing[:3]}) and would be random"
        )
    return feature_extractor, net


def _kind(model: str, feature_extractor: Any, net: Any) -> Literal["waveform", "ast", "whisper"]:
    """Which input family `net` belongs to; ValueError for unsupported models."""
    if getattr(net.config, "is_encoder_decoder", False) and hasattr(feature_extractor, "n_samples"):
        return "whisper"
    if type(feature_extractor).__name__ == "ASTFeatureExtractor":
        return "ast"
    takes_waves = "input_values" in getattr(feature_extractor, "model_input_names", [])
    if takes_waves and hasattr(net, "_get_feat_extract_output_lengths"):
        return "waveform"
    raise ValueError(
        f"model={model!r} ({type(net).__name__}, {type(feature_extractor).__name__}) is not a "
        "supported audio encoder: saelight handles raw-waveform encoders (wav2vec2, HuBERT, WavLM, "
        "MERT), AST and Whisper-style encoder-decoders"
    )
