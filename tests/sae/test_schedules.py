"""Sparsity annealing and the learning-rate multiplier reach their end values on time."""

from __future__ import annotations

import math

import pytest
import torch

from saelight.sae.schedules import SparsityAnneal, WarmupDecay


def test_linear_relative_anneal_of_k() -> None:
    anneal = SparsityAnneal(start=4.0, steps=10)
    assert anneal(0, 32) == 128
    assert anneal(5, 32) == 80
    assert anneal(9, 32) > 32 and anneal(10, 32) == 32 and anneal(10_000, 32) == 32


def test_exponential_absolute_anneal() -> None:
    anneal = SparsityAnneal(start=256, steps=4, mode="exponential", relative=False)
    assert [anneal(s, 16) for s in range(6)] == pytest.approx([256, 128, 64, 32, 16, 16])


def test_coefficient_warmup_from_zero() -> None:
    warm = SparsityAnneal(start=0.0, steps=100)
    assert warm(0, 5e-3) == 0 and warm(50, 5e-3) == pytest.approx(2.5e-3)
    assert warm(100, 5e-3) == 5e-3
    assert SparsityAnneal(start=0.0, steps=0)(0, 5e-3) == 5e-3


@pytest.mark.parametrize(
    "kwargs",
    [
        {"start": 1.0, "steps": 5, "mode": "cosine"},
        {"start": 1.0, "steps": -1},
        {"start": 0.0, "steps": 5, "mode": "exponential"},
    ],
)
def test_anneal_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        SparsityAnneal(**kwargs)


def test_warmup_decay() -> None:
    lr = WarmupDecay(warmup_steps=4, decay_start=10, total_steps=20, final_factor=0.1)
    assert [lr(s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    assert lr(10) == 1.0 and lr(15) == pytest.approx(0.55)
    assert lr(20) == pytest.approx(0.1) and lr(50) == pytest.approx(0.1)
    assert WarmupDecay()(0) == 1.0 and WarmupDecay()(10**6) == 1.0


def test_warmup_decay_drives_lambda_lr() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, WarmupDecay(warmup_steps=2, decay_start=3, total_steps=5)
    )
    seen = []
    for _ in range(6):
        seen.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert seen == pytest.approx([0.5, 1.0, 1.0, 1.0, 0.5, 0.0])
    assert not math.isnan(seen[-1])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"decay_start": 5},
        {"total_steps": 5},
        {"decay_start": 5, "total_steps": 5},
        {"final_factor": 2.0},
        {"warmup_steps": -1},
    ],
)
def test_warmup_decay_validation(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        WarmupDecay(**kwargs)
