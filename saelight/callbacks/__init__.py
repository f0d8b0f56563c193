"""Lightning callbacks: exports, evaluation and logging side concerns, one per file."""

from saelight.callbacks.best_export import BestSAEExport
from saelight.callbacks.evaluation import SAEEvaluation
from saelight.callbacks.explorer import LatentExplorer

__all__ = ["BestSAEExport", "LatentExplorer", "SAEEvaluation"]
