"""Cached activations as Lightning data."""

from saelight.data.datamodule import ActivationDataModule

__all__ = ["ActivationDataModule"]
