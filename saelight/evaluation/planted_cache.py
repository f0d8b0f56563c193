"""Draws a planted recipe (`saelight.cache.planted.PlantedRecipe`) and writes it as a cache.

The dictionary is `PlantedDictionary(seed=recipe.seed)`, the frames `sample(clips × frames,
seed=recipe.seed + SAMPLE_SEED_OFFSET)` (noise-free), and each layer's noise
`N(0, noise_std²)` from `numpy.random.default_rng([seed, 1, layer])`, so a layer's rows do not
depend on which other layers are cached. The label features are then replanted clip by clip
(`plant_labels`): each clip's class is one label feature, on in all its frames. Clip pooling
averages the frames of a clip (rows, coefficients and noise alike). See `saelight.cache.planted`
for the clips, label and factors.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from saelight.cache.planted import PlantedRecipe, feature_name
from saelight.cache.planted_files import PlantedArrays, noise_key, write_planted_cache
from saelight.cache.reader import CacheReader
from saelight.evaluation.planted_truth import PlantedDictionary

SAMPLE_SEED_OFFSET = 1_000_003
"""The frames' seed is the recipe's plus this (the dictionary's is the recipe's own)."""


def planted_dictionary(recipe: PlantedRecipe) -> PlantedDictionary:
    """The recipe's dictionary (noise is drawn per layer by `draw_planted`)."""
    return PlantedDictionary(
        d_in=recipe.d_in,
        n_features=recipe.n_features,
        frequency_range=(recipe.frequency_low, recipe.frequency_high),
        magnitude_mean=recipe.magnitude_mean,
        magnitude_std=recipe.magnitude_std,
        n_correlated_pairs=recipe.n_correlated_pairs,
        correlation=recipe.correlation,
        n_hierarchical_pairs=recipe.n_hierarchical_pairs,
        noise_std=0.0,
        seed=recipe.seed,
    )


def label_features(dictionary: PlantedDictionary, recipe: PlantedRecipe) -> np.ndarray:
    """The `label_features` features that carry the clips' classes: the first features in no
    pair (correlated or hierarchical; `PlantedRecipe.check` makes sure there are enough)."""
    free = ((dictionary.partner < 0) & (dictionary.parent < 0)).numpy()
    free[dictionary.parent[dictionary.parent >= 0].numpy()] = False
    return np.flatnonzero(free)[: recipe.label_features]


def plant_labels(
    frames: np.ndarray, features: np.ndarray, recipe: PlantedRecipe
) -> np.ndarray | None:
    """Give each clip one class and make `frames` (frames, n_features) carry it, in place.

    Clip c gets class ``classes[c]`` (uniform, from `[seed, 2]`); label feature
    ``features[classes[c]]`` fires in every frame of the clip at a magnitude
    ``|N(magnitude_mean, magnitude_std²)|`` drawn per frame, and the other label features stay
    off. Returns the (clips,) label values `f<j>`; None without label features.
    """
    if len(features) == 0:
        return None
    rng = np.random.default_rng([recipe.seed, 2])
    classes = rng.integers(0, len(features), size=recipe.clips)
    magnitude = rng.normal(recipe.magnitude_mean, recipe.magnitude_std, size=len(frames))
    frames[:, features] = 0.0
    chosen = features[np.repeat(classes, recipe.frames_per_clip)]
    frames[np.arange(len(frames)), chosen] = np.abs(magnitude)
    return np.array([feature_name(int(j)) for j in features])[classes]


def draw_planted(recipe: PlantedRecipe) -> PlantedArrays:
    """The rows, labels and ground truth of `recipe` (module doc)."""
    dictionary = planted_dictionary(recipe)
    n_frames = recipe.clips * recipe.frames_per_clip
    _, sampled = dictionary.sample(n_frames, seed=recipe.seed + SAMPLE_SEED_OFFSET)
    frames = sampled.numpy().astype(np.float64)
    labelled = label_features(dictionary, recipe)
    labels = plant_labels(frames, labelled, recipe)
    frequencies = dictionary.frequencies.numpy().astype(np.float64)
    frequencies[labelled] = 1.0 / max(len(labelled), 1)
    noise = {
        layer: recipe.noise_std
        * np.random.default_rng([recipe.seed, 1, layer]).standard_normal((n_frames, recipe.d_in))
        for layer in recipe.layers
    }
    if recipe.pooling == "clip":
        frames = _clip_means(frames, recipe)
        noise = {layer: _clip_means(e, recipe) for layer, e in noise.items()}
    a = frames.astype(np.float32)
    directions = dictionary.directions.numpy().astype(np.float32)
    stored_noise = {layer: e.astype(np.float32) for layer, e in noise.items()}
    clean = a.astype(np.float64) @ directions.astype(np.float64)
    rows = {
        layer: (clean + e.astype(np.float64)).astype(np.float32)
        for layer, e in stored_noise.items()
    }
    truth = {
        "directions": directions,
        "frequencies": frequencies,
        "partner": dictionary.partner.numpy().astype(np.int64),
        "parent": dictionary.parent.numpy().astype(np.int64),
        "activations": a,
        "label_features": labelled.astype(np.int64),
        **{noise_key(layer): e for layer, e in stored_noise.items()},
    }
    return PlantedArrays(truth, rows, labels)


def _clip_means(values: np.ndarray, recipe: PlantedRecipe) -> np.ndarray:
    return values.reshape(recipe.clips, recipe.frames_per_clip, -1).mean(1)


def write_planted(directory: str | Path, recipe: PlantedRecipe) -> tuple[CacheReader, bool]:
    """Write (or reuse) the planted cache of `recipe` in `directory`; (its reader, reused)."""
    return write_planted_cache(directory, recipe, lambda: draw_planted(recipe))
