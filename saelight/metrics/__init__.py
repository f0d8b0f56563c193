"""Pure metric code: torchmetrics ``Metric`` classes and functions, each formula in its docstring.

Depends only on torch, torchmetrics, numpy, scipy and scikit-learn (no other saelight package).
"""

from saelight.metrics.classification import accuracy, confusion_matrix, macro_f1
from saelight.metrics.disentanglement import (
    LassoCompleteness,
    LassoFit,
    fit_lasso,
    lasso_completeness,
    normalized_entropy,
    r2_columns,
    split_rows,
)
from saelight.metrics.disentanglement_dci import DCIResult, dci
from saelight.metrics.disentanglement_info import (
    InfoResult,
    information_scores,
    mig,
    modularity,
    quantile_bins,
    sap,
)
from saelight.metrics.probe import (
    ProbeResult,
    class_separation,
    k_sparse_probe,
    linear_probe,
    logistic_probe,
)
from saelight.metrics.reconstruction import FVU, MSE, CosineSimilarity, cosine_similarity, fvu, mse
from saelight.metrics.sparsity import (
    L0,
    FeatureDensity,
    feature_density,
    l0,
    l0_histogram,
    log10_density,
)

__all__ = [
    "FVU",
    "L0",
    "MSE",
    "CosineSimilarity",
    "DCIResult",
    "FeatureDensity",
    "InfoResult",
    "LassoCompleteness",
    "LassoFit",
    "ProbeResult",
    "accuracy",
    "class_separation",
    "confusion_matrix",
    "cosine_similarity",
    "dci",
    "feature_density",
    "fit_lasso",
    "fvu",
    "information_scores",
    "k_sparse_probe",
    "l0",
    "l0_histogram",
    "lasso_completeness",
    "linear_probe",
    "log10_density",
    "logistic_probe",
    "macro_f1",
    "mig",
    "modularity",
    "mse",
    "normalized_entropy",
    "quantile_bins",
    "r2_columns",
    "sap",
    "split_rows",
]
