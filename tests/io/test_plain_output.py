"""Redirected output without ANSI colour codes (`io.plain_output`)."""

import io
import sys

import pytest

from saelight.io.plain_output import PlainStream, plain_when_redirected


def test_colour_codes_are_stripped_and_the_rest_kept() -> None:
    target = io.StringIO()
    stream = PlainStream(target)  # type: ignore[arg-type]
    text = "\x1b[1;34mwandb\x1b[0m: \x1b[1mwandb sync x\x1b[0m\n"
    assert stream.write(text) == len(text)  # what was asked, as a stream reports it
    assert target.getvalue() == "wandb: wandb sync x\n"
    assert not stream.isatty() and stream.getvalue() == target.getvalue()  # delegated


def test_only_redirected_streams_are_wrapped(monkeypatch: pytest.MonkeyPatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdout", Terminal())
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    plain_when_redirected()
    assert isinstance(sys.stderr, PlainStream) and not isinstance(sys.stdout, PlainStream)
    plain_when_redirected()  # idempotent
    assert not isinstance(sys.stderr._stream, PlainStream)  # type: ignore[attr-defined]
