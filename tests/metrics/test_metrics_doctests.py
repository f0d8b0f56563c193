"""Every docstring ``Example:`` in saelight.metrics runs and prints what it claims."""

import doctest
import importlib

import pytest

MODULES = [
    "saelight.metrics.reconstruction",
    "saelight.metrics.sparsity",
    "saelight.metrics.classification",
    "saelight.metrics.probe",
    "saelight.metrics.disentanglement",
    "saelight.metrics.disentanglement_dci",
    "saelight.metrics.disentanglement_info",
    "saelight.metrics.uncertainty",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
