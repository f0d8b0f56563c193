"""The folders of one run directory (`trainer.default_root_dir`), named in one place.

Callbacks write into them and subcommands (`report`, `inspect`, `push`, …) read them, so a run
directory written by `saelight fit` is found again by every later command.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

BEST_FILE = "best.json"


@dataclass(frozen=True)
class RunLayout:
    """Paths inside one run directory.

    Args:
        root: the run directory (`trainer.default_root_dir`).
    """

    root: Path

    @classmethod
    def of(cls, root: str | Path) -> RunLayout:
        return cls(Path(root))

    @classmethod
    def of_trainer(cls, trainer: Any, override: str | Path | None = None) -> RunLayout:
        """The layout of a Lightning trainer's run (`override` replaces its default_root_dir)."""
        return cls(Path(override if override is not None else trainer.default_root_dir))

    @property
    def config(self) -> Path:
        """The resolved config `saelight fit` saved (it re-runs the run)."""
        return self.root / "config.yaml"

    @property
    def saes(self) -> Path:
        """One export folder per SAE: `saes/<key>/{cfg.json, sae_weights.safetensors}`."""
        return self.root / "saes"

    def sae(self, key: str) -> Path:
        return self.saes / key

    @property
    def best(self) -> Path:
        """`saes/best.json`: per SAE, the epoch and validation metrics of its export."""
        return self.saes / BEST_FILE

    def exported_saes(self) -> list[Path]:
        """Every export folder holding a cfg.json, sorted by name."""
        return sorted(p.parent for p in self.saes.glob("*/cfg.json"))

    @property
    def results(self) -> Path:
        return self.root / "results"

    @property
    def report(self) -> Path:
        return self.root / "report"

    @property
    def explorer(self) -> Path:
        return self.root / "explorer"

    @property
    def explain(self) -> Path:
        """`saelight explain` output: explain.html and explain.json."""
        return self.root / "explain"

    @property
    def splice(self) -> Path:
        """`saelight splice` output: splice.json and splice.png."""
        return self.root / "splice"

    @property
    def row_stats(self) -> Path:
        """The train rows' median norms and per-position means (`data.row_stats.RowStats`)."""
        return self.root / "row_stats.safetensors"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"
