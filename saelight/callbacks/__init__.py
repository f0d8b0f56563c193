"""Lightning callbacks: exports, evaluation and logging side concerns, one per file."""

from saelight.callbacks.best_export import BestSAEExport
from saelight.callbacks.evaluation import SAEEvaluation
from saelight.callbacks.explorer import LatentExplorer
from saelight.callbacks.histograms import FeatureHistograms

__all__ = ["BestSAEExport", "FeatureHistograms", "LatentExplorer", "SAEEvaluation"]
