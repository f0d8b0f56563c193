"""A frozen Hugging Face audio encoder, loaded by hub id or local dir, that returns hidden states.

Layer ``i`` is ``hidden_states[i]`` of the model run with ``output_hidden_states``: 0 is the input
of the first transformer layer (the "embeddings"), ``num_layers`` the output of the last one, as in
Mariotte et al. 2025 (arXiv:2509.24793). Each checkpoint loads with its own class through
``AutoModel`` (the paper's code loaded WavLM with the wav2vec2 class).

What differs between waveform encoders, AST and Whisper (inputs, frame geometry, padding, which
clips may share a batch) lives in one small class per family in `saelight.backbones.families`,
picked from the checkpoint's feature extractor and config; this module loads, batches and runs.

The weights load on first use (`extract`, `net`), not in ``__init__``: everything the cache recipe
and the CLI read (identity, layers, sizes, rates) comes from the config and the feature extractor,
so re-running on a complete cache, ``saelight inspect`` or a config load never pays the model load
(minutes for real checkpoints). Init still raises every error the config alone can tell.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from huggingface_hub import is_offline_mode
from torch import nn
from transformers import AutoConfig, AutoFeatureExtractor, AutoModel, PretrainedConfig
from transformers.models.auto.configuration_auto import CONFIG_MAPPING

from saelight.backbones.base import Backbone, check_waves, resolve_layers
from saelight.backbones.families import InputFamily, WhisperInput, pick_family
from saelight.backbones.heads import OutputHead, load_head
from saelight.io.errors import SaelightError

log = logging.getLogger(__name__)

_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")


class HFBackbone(Backbone):
    """A frozen HF transformers audio encoder (eval mode, no gradients, ``torch.inference_mode``).

    Attributes:
        sample_rate: sample rate of the waves `extract` takes (from the feature extractor).
        hidden_size: width D of every hidden state.
        num_layers: number of transformer layers; valid layer indices are 0..num_layers.
        min_samples: shortest wave (in samples) that yields at least one frame.
        frame_rate_hz: hidden-state frames per second of audio (for AST: time patches per second).
        family: the checkpoint's input family (`saelight.backbones.families`); `kind` is its name.
        net: the frozen encoder on `device`, loaded from the checkpoint on first access.
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
        whisper_window_s: float | None = None,
    ) -> None:
        """Read the config and feature extractor; the weights load on first use (see `net`).

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
                in seconds; AST and Whisper count their fixed input length, or Whisper's window);
                bigger batches split.
            mask_padding: mark frames that only hold the feature extractor's fixed-length padding
                (AST, Whisper) invalid. False keeps them, reproducing the paper's AST pooling.
                Batch padding of waveform models is always masked.
            whisper_window_s: Whisper only, opt-in. None pads every clip to the checkpoint's 30 s
                window, as Whisper was trained. A number w pads each clip only to its own length
                rounded up to a multiple of w seconds (at most 30 s) and runs the encoder on that
                many positions. With w = 1 a 3-5 s clip runs on 4-6 s instead of 30 s (several
                times the clips/s, see benchmarks/extraction.py), but the representations change
                (a warning says so; a tiny-model test bounds the change) and the cache records w,
                so it never mixes with a full-window cache. Clips with the same rounded window
                share a forward pass.
        """
        if dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype={dtype!r} is not supported; use 'float32' or 'bfloat16'")
        if not max_batch_seconds > 0:
            raise ValueError(f"max_batch_seconds={max_batch_seconds} must be > 0")
        if whisper_window_s is not None and not whisper_window_s > 0:
            raise ValueError(f"whisper_window_s={whisper_window_s} must be > 0 seconds, or null")
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
        self.max_batch_seconds, self.whisper_window_s = max_batch_seconds, whisper_window_s
        self._source, self._trust_remote_code = _resolve_source(model), trust_remote_code
        fe, config = _load_config(model, self._source, revision, trust_remote_code)
        self.feature_extractor = fe
        self._commit = getattr(config, "_commit_hash", None)
        # A weightless (meta) instance of the class from_pretrained will build: its type, config
        # and frame arithmetic are all the family needs until the weights load.
        skeleton = _skeleton(config, trust_remote_code)
        eager = skeleton is None  # modelling code that cannot be built without weights: load now
        if skeleton is None:
            skeleton = self._load_model()
        self.model_class = type(skeleton).__name__
        family = pick_family(model, self.feature_extractor, skeleton)
        encoder = family.encoder(skeleton)
        self.family = self._family(family, encoder)
        self._net: nn.Module | None = self._freeze(encoder) if eager else None
        self.kind = self.family.kind
        self.sample_rate = self.family.sample_rate
        self.hidden_size = int(encoder.config.hidden_size)
        self.num_layers = int(encoder.config.num_hidden_layers)
        self.layers = resolve_layers(layers, self.num_layers)
        self.min_samples = self.family.min_samples
        self.frame_rate_hz = self.family.frame_rate_hz

    @property
    def net(self) -> nn.Module:
        """The frozen encoder on `device`; the first access loads the weights (see `load`)."""
        return self.load()

    def load(self) -> nn.Module:
        """Load the checkpoint's weights now, if not yet done, and return the frozen encoder.

        `extract` and `net` call it; call it yourself to pay the load up front.
        """
        if self._net is None:
            encoder = self._freeze(self.family.encoder(self._load_model()))
            self.family.net = encoder  # the family ran on the weightless skeleton until now
            self._net = encoder
        return self._net

    def output_head(self) -> OutputHead | None:
        """The checkpoint's own head model (Whisper's decoder, CTC, a classifier), loaded from
        the same files beside the encoder, or None when the checkpoint has none (see
        `backbones.heads`). Extraction never calls it."""
        if self.whisper_window_s is not None:
            raise SaelightError(
                "output heads run Whisper on its 30 s window, as it was trained; this backbone "
                "sets whisper_window_s: leave it null to score the decoder"
            )
        config = self.family.net.config
        return load_head(
            config, self._source, self.revision, self._trust_remote_code, self.num_layers,
            self.device,
        )  # fmt: skip

    @property
    def weights_loaded(self) -> bool:
        """Whether the weights are in memory (False until `extract` or `net` needs them)."""
        return self._net is not None

    def _load_model(self) -> nn.Module:
        """The full model with its checkpoint weights, through `from_pretrained`.

        Torch's RNG stream is left as it was: when the load happens (first `extract`, a splice)
        must not change what a seeded run draws afterwards.
        """
        with torch.random.fork_rng(devices=[]):
            return _load_model(self.model_id, self._source, self.revision, self._trust_remote_code)

    def _freeze(self, encoder: nn.Module) -> nn.Module:
        """`encoder` in eval mode, without gradients, on `device`."""
        return encoder.eval().requires_grad_(False).to(self.device)

    def _family(self, family: type[InputFamily], net: nn.Module) -> InputFamily:
        """The family object; ValueError naming the model if the checkpoint does not fit it."""
        fe, mask_padding = self.feature_extractor, self.mask_padding
        try:
            if family is WhisperInput:
                return WhisperInput(fe, net, mask_padding, window_s=self.whisper_window_s)
            if self.whisper_window_s is not None:
                raise ValueError(
                    f"whisper_window_s={self.whisper_window_s} applies to Whisper only; this is a "
                    f"{family.kind} model ({self.model_class}): leave it null"
                )
            return family(fe, net, mask_padding)
        except ValueError as err:
            raise ValueError(f"model={self.model_id!r}: {err}") from err

    def identity(self) -> dict[str, Any]:
        """What identifies this backbone's outputs, stored in the cache manifest."""
        identity = {
            "model": self.model_id,
            "revision": self._commit or self.revision,
            "class": self.model_class,
            "sample_rate": self.sample_rate,
            "hidden_size": self.hidden_size,
            "num_layers": self.num_layers,
            "dtype": self.dtype,
            "mask_padding": self.mask_padding,
        }
        if self.whisper_window_s is not None:  # absent by default: older caches stay valid
            identity["whisper_window_s"] = self.whisper_window_s
        return identity

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
            or the fixed output length of AST and Whisper (with `whisper_window_s`: the longest
            clip's window).
        """
        waves = self.prepare_waves(waves)
        self.load()  # from here on the family runs on the real weights
        lengths = [len(w) for w in waves]
        total = self.family.output_frames(max(lengths))
        mask = torch.zeros(len(waves), total, dtype=torch.bool)
        hidden = {layer: torch.zeros(len(waves), total, self.hidden_size) for layer in self.layers}
        for chunk in self.plan_batches(lengths):
            with torch.inference_mode():
                states, chunk_mask = self.forward_hidden([waves[i] for i in chunk])
                index, t = torch.tensor(chunk), chunk_mask.shape[1]
                mask[index, :t] = chunk_mask.cpu()
                for layer, h in states.items():
                    hidden[layer][index, :t] = (h.float() * chunk_mask.unsqueeze(-1)).cpu()
        return hidden, mask

    def forward_hidden(
        self, waves: list[np.ndarray]
    ) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        """One forward pass over clips that may share a batch: ({layer: (b, t, D)}, mask (b, t))."""
        inputs = {k: v.to(self.device) for k, v in self.family.features(waves).items()}
        # Models built on transformers' output capturing keep only the requested hidden states.
        request = list(self.layers) if getattr(self.net, "_can_record_outputs", None) else True
        with torch.autocast(self.device.type, torch.bfloat16, enabled=self.dtype == "bfloat16"):
            out = self.family.forward(inputs, request)
        states = getattr(out, "hidden_states", None)
        if states is None or len(states) != self.num_layers + 1:
            got = "none" if states is None else f"{len(states)}"
            raise ValueError(
                f"model={self.model_id!r} ({self.model_class}) returned {got} hidden_states with "
                f"output_hidden_states; saelight needs num_layers + 1 = {self.num_layers + 1}"
            )
        t = states[self.layers[0]].shape[1]
        lengths = [len(w) for w in waves]
        return {i: states[i] for i in self.layers}, self.family.frame_mask(lengths, t, self.device)

    def plan_batches(self, lengths: list[int]) -> list[list[int]]:
        """Split clip indices into forward passes: longest first, at most `max_batch_seconds` each.

        Only clips the family lets share a pass go together (waveform models that pad inexactly:
        equal lengths; windowed Whisper: equal windows).
        """
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        chunks: list[list[int]] = []
        for i in order:
            last = chunks[-1] if chunks else None
            if last is not None and self.family.can_share(lengths[last[0]], lengths[i]):
                seconds = (len(last) + 1) * self.family.batch_samples(lengths[last[0]])
                if seconds / self.sample_rate <= self.max_batch_seconds:
                    last.append(i)
                    continue
            chunks.append([i])
        return chunks

    def prepare_waves(self, waves: list[np.ndarray]) -> list[np.ndarray]:
        """`waves` as 1-D float32 arrays (see `check_waves`); warns about clips that are cut."""
        out = check_waves(waves, self.min_samples, self.sample_rate, self.model_class)
        limit = self.family.max_samples
        if limit is not None and (n := sum(len(w) > limit for w in out)):
            log.warning(
                "%d clip(s) longer than %.2f s are truncated by %s's feature extractor",
                n,
                limit / self.sample_rate,
                self.model_class,
            )
        return out


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


def _load_config(
    model: str, source: str, revision: str | None, trust_remote_code: bool
) -> tuple[Any, PretrainedConfig]:
    """(feature extractor, config): the cheap files; a ValueError saying why on failure."""
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
    return feature_extractor, AutoConfig.from_pretrained(source, **kwargs)


def _skeleton(config: PretrainedConfig, trust_remote_code: bool) -> nn.Module | None:
    """The model `AutoModel` builds for `config`, on the meta device (no weights, no memory).

    None if its modelling code cannot be built that way (some remote code computes on its
    weights in ``__init__``); the caller then loads the real model. Torch's RNG is left as it was
    (a few HF modules draw CPU tensors in ``__init__`` whatever the device).
    """
    try:
        with torch.random.fork_rng(devices=[]), torch.device("meta"):
            return AutoModel.from_config(config, trust_remote_code=trust_remote_code)
    except Exception as err:  # any failure here only means: load the real model now
        log.debug("cannot build %s on the meta device (%s); loading it", type(config).__name__, err)
        return None


def _load_model(model: str, source: str, revision: str | None, trust_remote_code: bool) -> Any:
    """The model through `from_pretrained`; ValueError if any of its weights would be random."""
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    net, info = AutoModel.from_pretrained(source, output_loading_info=True, **kwargs)
    # A weight missing from the checkpoint is silently random (how the paper's WavLM-as-wav2vec2
    # load went wrong); masked_spec_embed only serves training-time masking.
    missing = sorted(k for k in info["missing_keys"] if "masked_spec_embed" not in k)
    if missing:
        raise ValueError(
            f"model={model!r} loaded as {type(net).__name__}, but {len(missing)} of its weights "
            f"are missing from the checkpoint (e.g. {missing[:3]}) and would be random"
        )
    return net
