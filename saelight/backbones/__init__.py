"""Frozen audio foundation models that turn waveforms into per-layer hidden states."""

from saelight.backbones.hf import HFBackbone
from saelight.backbones.pooling import mean_pool
from saelight.backbones.untrained import UntrainedBackbone

__all__ = ["HFBackbone", "UntrainedBackbone", "mean_pool"]
