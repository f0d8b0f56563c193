"""mean_pool against a per-clip loop, its doctest, and its errors."""

from __future__ import annotations

import doctest

import pytest
import torch

from saelight.backbones import pooling
from saelight.backbones.pooling import mean_pool


def test_matches_per_clip_mean_of_valid_frames() -> None:
    hidden = torch.randn(3, 7, 5)
    lengths = [7, 3, 1]
    mask = torch.arange(7) < torch.tensor(lengths).unsqueeze(1)
    expected = torch.stack([hidden[b, :n].mean(0) for b, n in enumerate(lengths)])
    torch.testing.assert_close(mean_pool(hidden, mask), expected)
    torch.testing.assert_close(mean_pool(hidden, mask.float()), expected)


def test_padding_values_are_ignored() -> None:
    hidden = torch.randn(1, 6, 4)
    mask = torch.tensor([[True, False, True, True, False, False]])
    noisy = hidden.clone()
    noisy[~mask] = 1e6
    torch.testing.assert_close(mean_pool(noisy, mask), mean_pool(hidden, mask))


def test_doctest() -> None:
    assert doctest.testmod(pooling, raise_on_error=True).attempted >= 1


def test_errors() -> None:
    with pytest.raises(ValueError, match="no valid frame"):
        mean_pool(torch.randn(2, 3, 4), torch.tensor([[True] * 3, [False] * 3]))
    with pytest.raises(ValueError, match="disagree"):
        mean_pool(torch.randn(2, 3, 4), torch.ones(2, 4, dtype=torch.bool))
