"""The base class of the errors a user can fix: bad config values, bad manifests, bad audio.

A `SaelightError` says in one line which file or field is wrong and what was expected, so the CLI
can print it without a traceback (a traceback is for bugs, not for a typo in a CSV). Subclasses
that stand for bad values also derive from `ValueError`, so code written against the older
`ValueError`s keeps catching them.
"""

from __future__ import annotations

import functools
from typing import Any


class SaelightError(Exception):
    """A problem in the user's input, stated in one line.

    Attributes:
        message: what is wrong and where (file, row, column or config field).
        hint: what to change, or None; `str(err)` appends it after "; ".
    """

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        self.message, self.hint = message, hint
        super().__init__(message)

    def __str__(self) -> str:
        return self.message if self.hint is None else f"{self.message}; {self.hint}"

    def __reduce__(self) -> tuple[Any, ...]:
        # Keeps the hint when the error crosses a process boundary (DataLoader workers, DDP spawn).
        return functools.partial(type(self), hint=self.hint), (self.message,)


class ConfigError(SaelightError, ValueError):
    """A config value out of range, found before anything is loaded or extracted."""
