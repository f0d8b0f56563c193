"""Seeds in the explorer (issue 26): each latent's best match in the other seeds of its SAE, a
"stable" badge the latent box can filter on, and the column in latents.parquet."""

from __future__ import annotations

import functools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch

from saelight.cache import CacheReader
from saelight.evaluation.seeds import STABLE_MIN, seed_columns
from saelight.explorer import explore
from saelight.module import SAEModule
from saelight.sae import TopKSAE


def test_a_latent_found_again_in_every_seed_is_stable() -> None:
    module = SAEModule([functools.partial(TopKSAE, d_sae=16)], [0.75], d_in=8, seeds=3)
    first, second, third = (module.sae(e) for e in module.grid)
    with torch.no_grad():  # seed 1 = seed 0's dictionary permuted and sign-flipped; seed 2 random
        second.W_dec.copy_(-first.W_dec[torch.randperm(16)])
        third.W_dec[:4] = first.W_dec[:4]
    columns = seed_columns(module.grid, dict(module.saes.items()))
    assert set(columns) == {e.key for e in module.grid}
    match = columns[module.grid[0].key]["seed_match"]
    assert np.allclose(match[:4], 1.0)  # in seed 1 (permuted) and seed 2 (copied)
    assert (match[4:] < STABLE_MIN).all()  # seed 2's random latents match nothing well
    assert columns[module.grid[0].key]["stable"].tolist() == [True] * 4 + [False] * 12
    assert not seed_columns(module.grid[:1], dict(module.saes.items()))  # one seed: no column


def test_the_page_and_parquet_carry_the_match(
    tmp_path: Path, clip_cache: CacheReader, kit: SimpleNamespace
) -> None:
    sae = kit.planted_sae()
    match = np.linspace(0.5, 1.0, sae.d_sae)
    columns = {"seed_match": match, "stable": match >= STABLE_MIN}
    out = explore(sae, clip_cache, kit.LAYER, tmp_path, audio=False, latent_columns=columns)
    frame = pd.read_parquet(out / "latents.parquet")
    np.testing.assert_allclose(frame["seed_match"], match)
    assert frame["stable"].tolist() == (match >= STABLE_MIN).tolist()
    page = kit.read_page(out / "index.html")
    assert page["columns"]["stable"] == (match >= STABLE_MIN).tolist()
    html = (out / "index.html").read_text()
    assert 'parts.push("stable")' in html and "seed match" in html
