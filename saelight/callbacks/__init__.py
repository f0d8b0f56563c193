"""Lightning callbacks: exports, evaluation and logging side concerns, one per file."""

from saelight.callbacks.best_export import BestSAEExport
from saelight.callbacks.checkpointing import RunCheckpoint
from saelight.callbacks.evaluation import SAEEvaluation
from saelight.callbacks.explorer import LatentExplorer
from saelight.callbacks.histograms import FeatureHistograms
from saelight.callbacks.preemption import Preemption
from saelight.callbacks.progress import LogProgress
from saelight.callbacks.summary import GridSummary

__all__ = [
    "BestSAEExport",
    "FeatureHistograms",
    "GridSummary",
    "LatentExplorer",
    "LogProgress",
    "Preemption",
    "RunCheckpoint",
    "SAEEvaluation",
]
