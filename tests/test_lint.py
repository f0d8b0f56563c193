"""The README's lint command passes: ruff check and ruff format --check on saelight and tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
RUFF = str(Path(sys.executable).with_name("ruff"))


def test_ruff_check_and_format_pass() -> None:
    for args in (["check", "saelight", "tests"], ["format", "--check", "saelight", "tests"]):
        done = subprocess.run([RUFF, *args], cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-1000:]
