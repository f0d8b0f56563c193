"""The verdict of one claim (`saelight.report.claims`), and the number formats claims share."""

from __future__ import annotations

from typing import NamedTuple


class Claim(NamedTuple):
    """The verdict of one claim on one set of rows."""

    holds: bool | None
    """True / False, or None when the rows lack the numbers the check needs. True only when the
    point estimates and, where the rows allow one, the 95 % interval satisfy the rule."""
    explanation: str
    """The numbers behind the verdict."""
    rule: str = ""
    """The rule checked: thresholds, which rows, which baseline."""
    collapsed: tuple[str, ...] = ()
    """SAEs the claim used that `saelight.report.collapse` flags, with the reasons."""
    point: bool | None = None
    """The verdict of the point estimates alone (differs from `holds` when the interval is too
    wide to establish the claim)."""


def pct(value: float) -> str:
    """0.95 -> '95 %'."""
    return f"{round(100 * value, 2):g} %"


def points(value: float) -> str:
    """An accuracy difference in points: -0.0125 -> '-1.25'."""
    return f"{100 * value:+.2f}"
