"""Ground-truth scores of a grid's SAEs on a planted cache: the `gt_*` result columns.

On a cache written by `saelight planted` (`saelight.cache.planted`) the true coefficients of every
row are known, so each SAE of a layer is scored on the test rows the evaluation read (the same
seeded subset, with the run's row options applied) by
`saelight.metrics.dictionary_match.ground_truth_scores`: its effective decoder rows against the
planted directions, its codes on those rows against the stored coefficients. Any other cache is
left as it is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from saelight.cache.planted_files import PlantedTruth, is_planted, read_truth
from saelight.cache.reader import CacheReader
from saelight.evaluation.layer import SplitData, encode
from saelight.evaluation.results import GROUND_TRUTH, ground_truth_key
from saelight.metrics.dictionary_match import ground_truth_scores
from saelight.sae.base import SAE


def decoder_directions(sae: SAE) -> torch.Tensor:
    """(d_sae, d_in) what one unit of each latent adds to x_hat: `decode(e_i) − decode(0)`, so
    an input scale or decoder bias of any architecture is accounted for."""
    with torch.no_grad():
        eye = torch.eye(sae.d_sae, dtype=torch.float32)
        return (sae.decode(eye) - sae.decode(torch.zeros(1, sae.d_sae))).double()


def ground_truth_row(sae: SAE, x: np.ndarray, truth: np.ndarray, directions: np.ndarray) -> dict:
    """The `gt_*` scores of `sae` on rows `x` whose true coefficients are `truth`."""
    z = torch.from_numpy(encode(sae, x))
    scores = ground_truth_scores(
        decoder_directions(sae), torch.from_numpy(directions), z, torch.from_numpy(truth)
    ).summary()
    return {ground_truth_key(k): scores[k] for k in GROUND_TRUTH}


def planted_truth(reader: CacheReader) -> PlantedTruth | None:
    """The ground truth of the reader's cache (files verified), or None for any other cache."""
    return read_truth(reader.directory, verify=True) if is_planted(reader.manifest) else None


def add_planted_scores(
    rows: list[dict[str, Any]], saes: dict[str, SAE], test: SplitData, reader: CacheReader
) -> None:
    """Add the `gt_*` scores to the rows of `saes` (by row name) when the cache is planted.

    Args:
        rows: one layer's result rows (`evaluate_layer`).
        saes: the layer's SAEs by row name.
        test: the test rows the rows were scored on (their metadata holds the cache `row`).
        reader: the run's cache.
    """
    truth = planted_truth(reader)
    if truth is None:
        return
    coefficients = truth.activations[test.meta["row"].to_numpy()]
    x = test.sae_input()
    for row in rows:
        sae = saes.get(row.get("name", ""))
        if sae is not None:
            row.update(ground_truth_row(sae, x, coefficients, truth.directions))
