"""What keeps a grid's training healthy beyond the loss: the divergence guard."""

from saelight.training.divergence import DivergenceGuard, Spike, TrainingDiverged

__all__ = ["DivergenceGuard", "Spike", "TrainingDiverged"]
