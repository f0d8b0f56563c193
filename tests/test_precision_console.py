"""A bf16 `trainer.precision` on a CPU without native bf16 is called out before anything runs.

The CPU is told what it has through `SAELIGHT_BF16_SHORTLIST` (off = an AVX2-only CPU such as
AMD EPYC Rome/Milan, on = AMX or AVX512-BF16), so the test means the same on every machine. The
run stops right after on a bad `data.batch_size`, before any model is built.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = Path(__file__).parent / "data" / "tiny_csv.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def fit_stderr(tmp_path: Path, cpu: str, *args: str) -> str:
    done = subprocess.run(
        [SAELIGHT, "fit", "--config", str(TINY), "--data.batch_size", "0", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "WANDB_MODE": "offline", "SAELIGHT_BF16_SHORTLIST": cpu},
    )
    assert done.returncode == 2 and "data.batch_size" in done.stderr, done.stderr[-2000:]
    return done.stderr


@pytest.mark.parametrize("precision", ["bf16-mixed", "bf16-true"])
def test_bf16_without_native_bf16_warns_in_one_line(tmp_path: Path, precision: str) -> None:
    stderr = fit_stderr(tmp_path, "off", "--trainer.precision", precision)
    (line,) = [ln for ln in stderr.splitlines() if "without native bf16" in ln]
    assert f"trainer.precision {precision}" in line and "32-true" in line


@pytest.mark.parametrize(
    ("cpu", "args"),
    [
        ("on", ["--trainer.precision", "bf16-mixed"]),
        ("off", []),
        ("off", ["--trainer.precision", "32-true"]),
    ],
    ids=["native_bf16", "default_precision", "fp32"],
)
def test_no_warning_where_nothing_is_emulated(tmp_path: Path, cpu: str, args: list[str]) -> None:
    assert "without native bf16" not in fit_stderr(tmp_path, cpu, *args)
