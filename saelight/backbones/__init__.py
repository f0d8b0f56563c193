"""Frozen audio encoders that turn waveforms into per-layer hidden states.

`Backbone` is the interface the activation cache uses; `HFBackbone` covers Hugging Face
checkpoints (waveform encoders, AST, Whisper) and `UntrainedBackbone` its random offline default.
"""

from saelight.backbones.base import Backbone, check_waves, resolve_layers
from saelight.backbones.hf import HFBackbone
from saelight.backbones.pooling import mean_pool
from saelight.backbones.untrained import UntrainedBackbone

__all__ = [
    "Backbone",
    "HFBackbone",
    "UntrainedBackbone",
    "check_waves",
    "mean_pool",
    "resolve_layers",
]
