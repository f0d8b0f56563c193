"""The checkpoint's own output head, beside the encoder saelight extracts from.

Extraction runs the encoder alone (`AutoModel`). Splice and steer also ask what the *model* does
with an SAE in place, which needs the head the checkpoint was trained with: Whisper's decoder
(`WhisperForConditionalGeneration`), a CTC layer (`Wav2Vec2ForCTC`, `HubertForCTC`,
`WavLMForCTC`) or a classifier (`ASTForAudioClassification`, `*ForSequenceClassification`). The
head model is loaded from the same files (its class named by `config.architectures`), frozen;
its encoder layers are where an SAE is spliced in. A checkpoint without such a head (a plain
`HubertModel`) has none, and the callers say "no output head".
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
import transformers
from torch import nn

log = logging.getLogger(__name__)

HeadKind = Literal["seq2seq", "ctc", "classifier"]
HEAD_SUFFIXES: dict[str, HeadKind] = {
    "ForConditionalGeneration": "seq2seq",
    "ForCTC": "ctc",
    "ForAudioClassification": "classifier",
    "ForSequenceClassification": "classifier",
}
"""Class-name ending in `config.architectures` -> what the head outputs."""


@dataclass
class OutputHead:
    """A frozen head model and what splicing needs of it.

    Attributes:
        kind: "seq2seq" (token logits from a decoder), "ctc" (frame logits) or "classifier"
            (one logit vector per clip).
        architecture: the class name from `config.architectures`.
        model: the whole model (encoder + head), eval mode, no gradients.
        layers: its encoder's transformer layers (hidden_states[L] is the input of layers[L]).
        encoder: its encoder module (whose output is hidden_states[N]).
        tokenizer: the checkpoint's tokenizer, or None (transcripts then list token ids).
    """

    kind: HeadKind
    architecture: str
    model: nn.Module
    layers: nn.ModuleList
    encoder: nn.Module
    tokenizer: Any | None

    def decode_tokens(self, ids: list[int]) -> str:
        """Text of token ids (special tokens skipped), or the ids themselves without a
        tokenizer."""
        if self.tokenizer is None:
            return " ".join(str(i) for i in ids)
        return str(self.tokenizer.decode(ids, skip_special_tokens=True))


def head_architecture(config: Any) -> tuple[str, HeadKind] | None:
    """(class name, kind) of the first head class `config.architectures` names, else None."""
    for name in getattr(config, "architectures", None) or []:
        for suffix, kind in HEAD_SUFFIXES.items():
            if name.endswith(suffix) and hasattr(transformers, name):
                return name, kind
    return None


def load_head(
    config: Any,
    source: str,
    revision: str | None,
    trust_remote_code: bool,
    num_layers: int,
    device: torch.device,
) -> OutputHead | None:
    """The checkpoint's head model (see the module docstring), or None when it has none."""
    found = head_architecture(config)
    if found is None:
        return None
    name, kind = found
    cls = getattr(transformers, name)
    kwargs = {"revision": revision, "trust_remote_code": trust_remote_code}
    with torch.random.fork_rng(devices=[]):
        model = cls.from_pretrained(source, **kwargs)
    model = model.eval().requires_grad_(False).to(device)
    layers_name, layers = _encoder_layers(model, num_layers)
    encoder = model.get_submodule(layers_name.rsplit(".", 1)[0]) if "." in layers_name else model
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(source, **kwargs)
    except Exception as error:  # no tokenizer files: transcripts list token ids
        log.info("%s: no tokenizer (%s); transcripts list token ids", source, error)
        tokenizer = None
    return OutputHead(kind, name, model, layers, encoder, tokenizer)


def _encoder_layers(model: nn.Module, num_layers: int) -> tuple[str, nn.ModuleList]:
    """(qualified name, list) of the encoder's `num_layers` layers inside a head model."""
    for name, module in model.named_modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) == num_layers
            and "decoder" not in name
            and name.endswith(("layers", "layer"))
        ):
            return name, module
    raise ValueError(
        f"{type(model).__name__}: found no list of its {num_layers} encoder layers to splice"
    )
