"""The generation check of `push` and `report`: one fit's files pass, two fits' files are refused
naming them, files from before generation ids pass with a note."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from saelight.evaluation.results import write_results
from saelight.io.generation import GENERATION, config_generation, config_header, new_generation
from saelight.report.generations import MixedGenerationsError, check_generations, run_generations
from saelight.sae import TopKSAE

KEYS = ("L01_topk_s75", "L01_topk_s90")


def make_run(root: Path, generation: str | None) -> None:
    """config.yaml, best.json, two exports and results.json, all of one fit."""
    stamp = {GENERATION: generation} if generation else {}
    torch.manual_seed(0)
    for key in KEYS:
        TopKSAE(8, d_sae=16, k=2).save_pretrained(root / "saes" / key, layer=1, **stamp)
    best = {key: {"layer": 1, "epoch": 0, **stamp} for key in KEYS}
    (root / "saes" / "best.json").write_text(json.dumps(best))
    (root / "config.yaml").write_text(config_header(generation) + "seed_everything: 0\n")
    write_results(root, [{"layer": 1, "name": "dense", "kind": "dense"}], dict(stamp))


def test_one_fit_passes_and_every_file_names_it(tmp_path: Path) -> None:
    generation = new_generation()
    make_run(tmp_path, generation)
    found = run_generations(tmp_path)
    assert set(found) == {
        "config.yaml",
        "saes/best.json",
        *(f"saes/{k}/cfg.json" for k in KEYS),
        "results/results.json",
    }
    assert set(found.values()) == {generation}
    assert check_generations(tmp_path) is None
    assert config_generation(tmp_path / "config.yaml") == generation


def test_two_fits_are_refused_naming_the_files_of_each(tmp_path: Path) -> None:
    make_run(tmp_path, "20260101T000000Z-aaaaaaaa")
    write_results(tmp_path, [], {GENERATION: "20260202T000000Z-bbbbbbbb"})
    with pytest.raises(MixedGenerationsError) as refused:
        check_generations(tmp_path)
    line = str(refused.value)
    assert "\n" not in line and "2 fits" in line
    assert "results/results.json are from fit 20260202T000000Z-bbbbbbbb" in line
    assert "config.yaml" in line and "20260101T000000Z-aaaaaaaa" in line


def test_files_without_an_id_pass_with_a_note(tmp_path: Path) -> None:
    make_run(tmp_path, None)
    assert set(run_generations(tmp_path).values()) == {None}
    assert check_generations(tmp_path) is None  # an older run: nothing to compare
    write_results(tmp_path, [], {GENERATION: new_generation()})  # a newer `saelight test`
    note = check_generations(tmp_path)
    assert note is not None and "config.yaml" in note and "carry no generation id" in note
