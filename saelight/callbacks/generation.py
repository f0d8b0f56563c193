"""The generation of the run a trainer writes: made once per fit, kept across resumes.

`RunGeneration` (added to every `fit`, `validate` and `test` by the CLI) holds the id that every
writer of the run (exports, best.json, results, report, explorer, config.yaml) stamps on its
artefact (`saelight.io.generation`). It lives in the checkpoint, so a fit resumed from
`last.ckpt` (or `saelight test --ckpt_path` of a finished run) keeps the id of the fit that wrote
the checkpoint, and its files still agree with those written before the kill; a fresh fit, or a
test without a checkpoint, gets a new one. The id is made on first use, after Lightning has
restored callback states, so a resumed run never mints one of its own first.
"""

from __future__ import annotations

from typing import Any

import lightning as L

from saelight.io.generation import GENERATION, new_generation


class RunGeneration(L.Callback):
    """The run's generation id, saved in and restored from checkpoints (rank 0's is the one
    that counts: only rank 0 writes artefacts)."""

    def __init__(self) -> None:
        self._generation: str | None = None

    @property
    def generation(self) -> str:
        if self._generation is None:
            self._generation = new_generation()
        return self._generation

    def state_dict(self) -> dict[str, Any]:
        return {GENERATION: self.generation}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        value = state_dict.get(GENERATION)
        if isinstance(value, str) and value:
            self._generation = value


def run_generation(trainer: L.Trainer) -> str | None:
    """The trainer's generation id, or None for a trainer built without `RunGeneration` (a
    Trainer made by hand: its artefacts carry no id, as those of saelight before ids)."""
    for callback in getattr(trainer, "callbacks", ()):  # a hand-built trainer may have none
        if isinstance(callback, RunGeneration):
            return callback.generation
    return None
