"""The README is a true quickstart: its Python runs, and CI runs exactly its test command."""

import re
from pathlib import Path

import pytest

from saelight.sae import TopKSAE

ROOT = Path(__file__).parents[1]
README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def test_quickstart_is_two_commands_and_ci_runs_the_test_command() -> None:
    quickstart = README.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quickstart, flags=re.S)
    assert len(commands) == 2
    setup, test = (c.strip() for c in commands)
    assert "torch==2.13.0" in setup and "saelight fit --config configs/quickstart.yaml" in setup
    assert test in (ROOT / ".ci" / "run").read_text().splitlines()


def test_python_blocks_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    TopKSAE(16, d_sae=64, k=4).save_pretrained(tmp_path / "runs/quickstart/saes/L04_topk_s90")
    for code in blocks("python"):
        exec(compile(code, "README.md", "exec"), {})
