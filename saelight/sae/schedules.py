"""Schedules: the sparsity knob (k, L1/L0 coefficient) and the learning-rate multiplier.

Plain classes with typed `__init__`, so LightningCLI builds them from `class_path`/`init_args`.
"""

from __future__ import annotations

from typing import Literal

ANNEAL_MODES = ("linear", "exponential")


class SparsityAnneal:
    """Moves a sparsity value from a start value to its target over `steps` optimiser steps.

    With v0 = start · target (relative) or start (absolute) and t = min(step / steps, 1):

        linear:       v(step) = v0 + (target - v0) · t
        exponential:  v(step) = v0 · (target / v0) ** t      (geometric; v0 and target > 0)

    so v(0) = v0 and v(step) = target for every step >= steps. Used for k (start e.g. 4 = from
    4·k down to k; the caller rounds) and for L1/L0 coefficient warm-up (start = 0, linear).

    Example:
        >>> SparsityAnneal(start=4.0, steps=100)(50, target=32)
        80.0
    """

    def __init__(
        self,
        start: float,
        steps: int,
        mode: Literal["linear", "exponential"] = "linear",
        relative: bool = True,
    ) -> None:
        """Configures the schedule.

        Args:
            start: the value at step 0, as a multiple of the target if `relative`, else absolute.
            steps: number of steps to reach the target; 0 means the target from the start.
            mode: "linear" or "exponential" (geometric) interpolation.
            relative: read `start` as a multiple of the target.
        """
        if mode not in ANNEAL_MODES:
            raise ValueError(f"mode must be one of {ANNEAL_MODES}, got {mode!r}")
        if steps < 0 or start < 0:
            raise ValueError(f"steps and start must be >= 0, got steps={steps}, start={start}")
        if mode == "exponential" and start == 0:
            raise ValueError("exponential annealing needs start > 0 (it interpolates logs)")
        self.start, self.steps, self.mode, self.relative = start, steps, mode, relative

    def __call__(self, step: int, target: float) -> float:
        """The value at optimiser step `step` (0-based) for the final value `target`."""
        if step >= self.steps:
            return target
        v0 = self.start * target if self.relative else self.start
        t = max(step, 0) / self.steps
        if self.mode == "linear":
            return v0 + (target - v0) * t
        if v0 <= 0 or target <= 0:
            raise ValueError(f"exponential annealing needs positive values, got {v0} -> {target}")
        return v0 * (target / v0) ** t


class WarmupDecay:
    """Learning-rate multiplier for `torch.optim.lr_scheduler.LambdaLR`.

        step < warmup_steps:            (step + 1) / warmup_steps        (linear warm-up)
        decay_start <= step:            1 - (1 - final_factor) · min(1, (step - decay_start)
                                                         / (total_steps - decay_start))
        otherwise:                      1

    The decay (linear to `final_factor` at `total_steps`, as Gao et al. and Anthropic do over the
    last 20% of training) is on only when both `decay_start` and `total_steps` are given.

    Example:
        >>> WarmupDecay(warmup_steps=10, decay_start=80, total_steps=100)(90)
        0.5
    """

    def __init__(
        self,
        warmup_steps: int = 0,
        decay_start: int | None = None,
        total_steps: int | None = None,
        final_factor: float = 0.0,
    ) -> None:
        """Configures the multiplier.

        Args:
            warmup_steps: steps of linear warm-up; 0 for none.
            decay_start: first step of the linear decay; None for no decay.
            total_steps: step at which the decay reaches `final_factor`.
            final_factor: multiplier at and after `total_steps`, in [0, 1].
        """
        if warmup_steps < 0 or not 0 <= final_factor <= 1:
            raise ValueError(
                f"need warmup_steps >= 0 and final_factor in [0, 1], got {warmup_steps}, "
                f"{final_factor}"
            )
        if (decay_start is None) != (total_steps is None):
            raise ValueError("give both decay_start and total_steps, or neither")
        if decay_start is not None and total_steps is not None and total_steps <= decay_start:
            raise ValueError(f"total_steps ({total_steps}) must exceed decay_start ({decay_start})")
        self.warmup_steps, self.final_factor = warmup_steps, final_factor
        self.decay_start, self.total_steps = decay_start, total_steps

    def __call__(self, step: int) -> float:
        """The multiplier of the base learning rate at optimiser step `step` (0-based)."""
        factor = 1.0
        if step < self.warmup_steps:
            factor = (step + 1) / self.warmup_steps
        if self.decay_start is not None and self.total_steps is not None:
            if step >= self.decay_start:
                t = min(1.0, (step - self.decay_start) / (self.total_steps - self.decay_start))
                factor *= 1 - (1 - self.final_factor) * t
        return factor
