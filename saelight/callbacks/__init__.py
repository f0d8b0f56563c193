"""Lightning callbacks: exports, evaluation and logging side concerns, one per file."""

from saelight.callbacks.best_export import BestSAEExport
from saelight.callbacks.evaluation import SAEEvaluation

__all__ = ["BestSAEExport", "SAEEvaluation"]
