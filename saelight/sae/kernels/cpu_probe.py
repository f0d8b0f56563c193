"""What this CPU does fast, measured once per process, with an environment override.

The sparse path's shortlist (bf16, int8 or none: `native_bf16.shortlist_dtype`) depends on
which matmuls the CPU runs natively, and flags alone can lie (`ONEDNN_MAX_CPU_ISA`, a VM), so
each choice is a small timed product; `SAELIGHT_*_SHORTLIST=on|off` skips the timing.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


def median_seconds(product: Callable[[], object], repeats: int = 5) -> float:
    """Median wall time of `product()` over `repeats` calls, after one warm-up call (the first
    picks and JIT-compiles a kernel)."""
    product()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        product()
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def overridable(env: str, measure: Callable[[], bool]) -> bool:
    """`env` = on/off if set so (case and spaces aside), else `measure()`; any other value is
    warned about and measured, like `auto` (the default)."""
    choice = os.environ.get(env, "auto").strip().lower()
    if choice in ("on", "off"):
        return choice == "on"
    if choice != "auto":
        log.warning("%s=%r is not one of auto, on, off: measuring", env, choice)
    faster = measure()
    log.debug("%s measured: %s", env, faster)
    return faster
