"""Progress that reads well on a terminal and in a log file.

On a TTY it is a tqdm bar. Redirected (`saelight cache > log 2>&1`, SLURM, CI) a bar prints
nothing useful until it ends, so `Progress` writes a plain line every `interval_s` seconds and
at the end instead: `extract clips: 120/800 (15 %), 8.3 clips/s, ETA 1m22s`.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


def is_terminal(stream: TextIO | None = None) -> bool:
    stream = stream or sys.stderr
    return bool(getattr(stream, "isatty", lambda: False)())


def format_seconds(seconds: float) -> str:
    """`1h02m`, `3m05s`, `42s`."""
    seconds = max(0, int(round(seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}h{m:02d}m" if h else (f"{m}m{s:02d}s" if m else f"{s}s")


class PlainProgress:
    """tqdm's `update`/`close` interface, printing periodic plain lines (no carriage returns).

    Args:
        total: units to do.
        desc: what is counted, e.g. "extract clips".
        unit: unit name for the rate, e.g. "clip".
        interval_s: seconds between lines.
        stream: where lines go (default stderr).
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "it",
        interval_s: float = 10.0,
        stream: TextIO | None = None,
    ) -> None:
        self.total, self.desc, self.unit, self.interval_s = total, desc, unit, interval_s
        self.stream = stream or sys.stderr
        self.n, self.start = 0, time.perf_counter()
        self.last = self.start

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        eta = format_seconds((self.total - self.n) / rate) if rate > 0 and self.total else "?"
        return f"{self.desc}: {self.n}/{self.total}{pct}, {rate:.1f} {self.unit}/s, ETA {eta}"

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if now - self.last >= self.interval_s:
            self.last = now
            print(self.line(), file=self.stream, flush=True)

    def close(self) -> None:
        elapsed = format_seconds(time.perf_counter() - self.start)
        print(f"{self.desc}: {self.n}/{self.total} done in {elapsed}", file=self.stream, flush=True)


def progress(total: int, desc: str, unit: str, enabled: bool = True) -> Any:
    """A tqdm bar on a terminal, `PlainProgress` lines otherwise; a silent bar when disabled."""
    from tqdm.auto import tqdm

    if enabled and not is_terminal():
        return PlainProgress(total, desc, unit)
    return tqdm(total=total, unit=unit, desc=desc, disable=not enabled)
