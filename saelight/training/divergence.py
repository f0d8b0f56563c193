"""Divergence guard: one SAE of a grid whose loss jumps or turns NaN is caught as it happens.

A grid trains many SAEs in one step; one of them blowing up (Whisper-base layer 5: loss 3.8 ->
1098 within 40 steps) used to show only in the final report. The guard keeps, on the device,
each SAE's smoothed loss (an exponential moving average) and the lowest value it has reached,
and flags a step whose loss is not finite or whose smoothed loss exceeds `SPIKE_RATIO` × that
lowest level. The smoothing lets one hard batch pass; comparing with the lowest level rather
than the recent one catches a blow-up spread over tens of steps (planted data: a 2 -> 7000 climb
never jumped more than 8.5x above a 10-step average). Flags accumulate on the device and are
read back only at logging steps (one small transfer every `log_every_n_steps`), so training
adds no host sync.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from saelight.io.errors import SaelightError
from saelight.sae.base import SAE

log = logging.getLogger(__name__)

Policy = Literal["warn", "rollback", "stop"]
POLICIES: tuple[str, ...] = ("warn", "rollback", "stop")
SPIKE_RATIO = 10.0
"""A smoothed loss above this multiple of the lowest smoothed loss so far is a divergence."""
EMA_DECAY = 0.9
"""ema ← 0.9·ema + 0.1·loss: a memory of ~10 steps; one batch 10x harder moves it 1.9x."""
WARMUP_STEPS = 10
"""Steps before an SAE's lowest level is tracked and compared (non-finite: always flagged)."""


class TrainingDiverged(SaelightError):
    """Raised under `divergence: stop` when an SAE's loss spikes or stops being finite."""


@dataclass(frozen=True)
class Spike:
    """One SAE's divergence since the previous check.

    Attributes:
        key: the SAE's grid key, e.g. "L02_topk_s90".
        step: the first global step whose loss was flagged.
        before: the SAE's lowest smoothed loss before that step.
        after: the largest loss flagged since (inf/nan when not finite).
    """

    key: str
    step: int
    before: float
    after: float

    def line(self, action: str) -> str:
        """`L05_topk_s99 diverged at step 412: loss 3.8 -> 1098 (x289); rolled back to ...`."""
        ratio = self.after / self.before if self.before > 0 else float("inf")
        return (
            f"{self.key} diverged at step {self.step}: loss {self.before:.4g} -> "
            f"{self.after:.4g} (x{ratio:.3g}); {action}"
        )


class DivergenceGuard(nn.Module):
    """Per-SAE loss averages and spike flags, as non-persistent buffers (they follow the device;
    a resumed run rebuilds them in `WARMUP_STEPS`, and checkpoints keep their keys).

    Args:
        keys: the grid keys, in the order of the losses given to `update`.
    """

    def __init__(self, keys: list[str]) -> None:
        super().__init__()
        self.keys = list(keys)
        n = len(keys)
        for name in ("ema", "best", "before", "worst"):
            self.register_buffer(name, torch.zeros(n, dtype=torch.float32), persistent=False)
        self.register_buffer("seen", torch.zeros(n, dtype=torch.long), persistent=False)
        self.register_buffer("first", torch.zeros(n, dtype=torch.long), persistent=False)
        self.register_buffer("flagged", torch.zeros(n, dtype=torch.bool), persistent=False)
        self.register_buffer("active", torch.ones(n, dtype=torch.bool), persistent=False)
        self.levels: list[tuple[float, float]] = [(0.0, 0.0)] * n
        """(ema, best) per SAE as of the last `spikes()`, on the host."""

    @torch.no_grad()
    def update(self, losses: Tensor, step: int) -> None:
        """losses: (n,) this step's loss per SAE; all on the device, no read-back.

        ema ← EMA_DECAY·ema + (1 − EMA_DECAY)·loss (finite losses only; the first one seeds it),
        spike = active ∧ (¬finite(loss) ∨ (seen ≥ WARMUP_STEPS ∧ ema > SPIKE_RATIO·best)),
        best = min(ema) over the warm, unflagged steps (frozen from a flagged SAE's first spike
        until the check resets it).
        """
        losses = losses.detach().float()
        finite = torch.isfinite(losses)
        ema = torch.where(self.seen == 0, losses, EMA_DECAY * self.ema + (1 - EMA_DECAY) * losses)
        self.ema.copy_(torch.where(finite, ema, self.ema))
        self.seen += finite.long()
        warm = self.seen > WARMUP_STEPS
        self.best.copy_(torch.where(warm & (self.seen == WARMUP_STEPS + 1), self.ema, self.best))
        spike = self.active & (~finite | (warm & (self.ema > SPIKE_RATIO * self.best)))
        new = spike & ~self.flagged
        self.first.copy_(torch.where(new, step, self.first))
        self.before.copy_(torch.where(new, self.best, self.before))
        # NaN would poison the max: a non-finite loss is recorded as +inf.
        size = torch.where(finite, losses, torch.full_like(losses, float("inf")))
        self.worst.copy_(torch.where(spike, torch.maximum(self.worst, size), self.worst))
        self.flagged |= spike
        lower = warm & ~self.flagged
        self.best.copy_(torch.where(lower, torch.minimum(self.best, self.ema), self.best))

    @torch.no_grad()
    def spikes(self) -> list[Spike]:
        """The SAEs flagged since the last check (one device -> host read, which also fills
        `levels`; under DDP one all-reduce first, so every rank takes the same action)."""
        stats = torch.stack(
            [self.flagged.float(), -self.first.float(), self.before, self.worst.nan_to_num(0.0)]
        )
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(stats, op=dist.ReduceOp.MAX)
        stats = torch.cat([stats, torch.stack([self.ema, self.best])])
        flagged, first, before, worst, ema, best = stats.cpu().tolist()
        self.levels = list(zip(ema, best, strict=True))
        return [
            Spike(key, int(-first[i]), before[i], worst[i])
            for i, key in enumerate(self.keys)
            if flagged[i] > 0
        ]

    @torch.no_grad()
    def reset(self, i: int, level: tuple[float, float] | None, active: bool = True) -> None:
        """Clears SAE i's flag; (ema, best) restart from `level` (None: the current ema is the
        new reference, so a warned SAE is reported again only on a further jump)."""
        self.flagged[i] = False
        self.worst[i] = 0.0
        self.active[i] = active
        if level is None:
            self.best[i] = self.ema[i]
        else:
            self.ema[i], self.best[i] = level


@dataclass
class Snapshot:
    """The last state of one SAE that passed a check: its tensors, its optimiser state, its
    guard's (ema, best). Copies on the SAE's device: weights + Adam's two moments = 3x the SAE."""

    sae: dict[str, Tensor]
    optimizer: list[dict[str, Any] | None]
    level: tuple[float, float]
    step: int


def _clone(value: Any) -> Any:
    return value.detach().clone() if isinstance(value, Tensor) else value


@torch.no_grad()
def take_snapshot(
    sae: SAE, optimizer: torch.optim.Optimizer | None, level: tuple[float, float], step: int
) -> Snapshot:
    """Copies `sae`'s state_dict and, per parameter in `sae.parameters()` order, the optimiser's
    state of that parameter (None where it has none yet)."""
    state = optimizer.state if optimizer is not None else {}
    return Snapshot(
        {k: v.detach().clone() for k, v in sae.state_dict().items()},
        [
            {k: _clone(v) for k, v in state[p].items()} if p in state else None
            for p in sae.parameters()
        ],
        level,
        step,
    )


@torch.no_grad()
def restore_snapshot(sae: SAE, optimizer: torch.optim.Optimizer | None, snap: Snapshot) -> None:
    """Puts `snap` back into `sae` and into the optimiser's state of its parameters only (the
    grid's other SAEs keep theirs); gradients of `sae` are dropped."""
    sae.load_state_dict(snap.sae)
    for p, saved in zip(sae.parameters(), snap.optimizer, strict=True):
        p.grad = None
        if optimizer is None:
            continue
        if saved is None:
            optimizer.state.pop(p, None)
            continue
        current = optimizer.state.get(p, {})
        optimizer.state[p] = {
            k: current[k].copy_(v)
            if isinstance(v, Tensor) and isinstance(current.get(k), Tensor)
            else _clone(v)
            for k, v in saved.items()
        }
