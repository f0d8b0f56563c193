"""The layering rules of docs/architecture.md, checked on the source: who may import whom, file
sizes, and which modules sit at the top of the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parents[1] / "saelight"
TOP_LEVEL = {"__init__.py", "cli.py", "module.py", "grid.py"}
UPPER = {"audio", "backbones", "cache", "data", "callbacks", "cli", "evaluation", "report"}
UPPER |= {"explorer", "module", "grid"}
FORBIDDEN = {
    "sae": UPPER,
    "metrics": UPPER | {"sae"},
    "io": UPPER | {"sae", "metrics"},
    "audio": {"sae", "module", "grid", "callbacks", "evaluation", "report", "explorer", "cli"},
    "cache": {"sae", "module", "grid", "callbacks", "evaluation", "report", "explorer", "cli"},
}


def saelight_imports(path: Path) -> set[str]:
    """First component under `saelight.` of every import in a file (function-level ones too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
        found |= {n.split(".")[1] for n in names if n.startswith("saelight.")}
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_lower_packages_import_nothing_above_them(package: str) -> None:
    bad = {
        str(path.relative_to(PACKAGE)): sorted(saelight_imports(path) & FORBIDDEN[package])
        for path in (PACKAGE / package).rglob("*.py")
    }
    assert not {k: v for k, v in bad.items() if v}


def test_no_file_over_400_lines() -> None:
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 400
    }
    assert not long


def test_only_the_entry_points_sit_at_the_top() -> None:
    assert {p.name for p in PACKAGE.glob("*.py")} <= TOP_LEVEL
