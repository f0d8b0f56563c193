"""Lightning callbacks: exports, evaluation and logging side concerns, one per file."""

from saelight.callbacks.best_export import BestSAEExport

__all__ = ["BestSAEExport"]
