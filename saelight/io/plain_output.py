"""Plain text where output is not a terminal: ANSI colour codes stripped from stdout/stderr.

wandb (and click, which it uses) colour their lines whether or not the stream is a terminal, so a
redirected run (`saelight fit > log 2>&1`, SLURM, CI) would hold `\\x1b[1;34mwandb\\x1b[0m:` in its
log. `plain_when_redirected` wraps each redirected stream so every line written through Python's
`sys.stdout`/`sys.stderr` arrives as plain text. (wandb 0.31's closing "You can sync this run" lines
still carry colour codes in a redirected log: they do not pass through these streams.)
"""

from __future__ import annotations

import re
import sys
from typing import Any, TextIO

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
"""CSI escape sequences: colours, bold, cursor moves."""


class PlainStream:
    """A text stream that writes to `stream` with ANSI escape sequences removed."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(ANSI.sub("", text))
        return len(text)

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, buffer, ...
        return getattr(self._stream, name)


def plain_when_redirected() -> None:
    """Wraps sys.stdout and sys.stderr in `PlainStream` where they are not terminals."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is not None and not isinstance(stream, PlainStream) and not stream.isatty():
            setattr(sys, name, PlainStream(stream))
