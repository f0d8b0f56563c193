"""`saelight planted`: a cache of synthetic activations with a known dictionary (ground truth)."""

from __future__ import annotations


def planted(
    out: str,
    d_in: int = 32,
    n_features: int = 64,
    frequency_low: float = 0.02,
    frequency_high: float = 0.2,
    magnitude_mean: float = 1.0,
    magnitude_std: float = 0.25,
    n_correlated_pairs: int = 4,
    correlation: float = 0.8,
    n_hierarchical_pairs: int = 4,
    noise_std: float = 0.02,
    clips: int = 400,
    frames_per_clip: int = 25,
    val_fraction: float = 0.1,
    test_fraction: float = 0.2,
    layers: list[int] | None = None,
    pooling: str = "frame",
    label_features: int = 3,
    factor_features: int = 8,
    storage_dtype: str = "float32",
    seed: int = 0,
) -> None:
    """Write a cache of synthetic activations with a planted, known dictionary (ground truth).

    Each row is x = Σ_j a_j f_j + ε: `n_features` unit directions f_j in `d_in` dimensions, each
    firing with its own probability (log-uniform in [frequency_low, frequency_high]) at a
    magnitude |N(magnitude_mean, magnitude_std²)|, correlated and parent -> child pairs, and
    Gaussian noise ε. Rows come in pseudo-clips of `frames_per_clip` frames with a train/val/test
    split per clip, a `class` label per clip and one factor per feature j < `factor_features`
    (its true coefficient), written as a normal cache: `saelight fit` trains on it with
    configs/planted.yaml, and its results and report gain ground-truth MCC, precision, recall,
    F1, uniqueness and shrinkage (docs/planted_ground_truth.md). The ground truth (directions,
    frequencies, pairs, every row's coefficients and noise) is in OUT/planted.safetensors.
    Run again with the same options, it verifies the cache and leaves it as it is.

    Args:
        out: the cache directory to write (new or empty; `data.cache.directory` of the config).
        d_in: activation width.
        n_features: planted features (more than d_in: superposition).
        frequency_low: lowest firing probability of a feature.
        frequency_high: highest firing probability of a feature.
        magnitude_mean: mean of a firing feature's magnitude.
        magnitude_std: its standard deviation.
        n_correlated_pairs: feature pairs whose firing is correlated (Gaussian copula).
        correlation: the copula's correlation within a pair.
        n_hierarchical_pairs: parent -> child pairs (a child fires only where its parent does).
        noise_std: standard deviation of the Gaussian noise of each row (each layer its own).
        clips: pseudo-clips.
        frames_per_clip: frames (rows, with pooling frame) per clip.
        val_fraction: share of the clips in the val split.
        test_fraction: share of the clips in the test split.
        layers: layer indices to cache (each holds the same coefficients, with its own noise);
            default [0].
        pooling: "frame" (a row per frame) or "clip" (a row per clip, the mean of its frames).
        label_features: classes of the `class` label, each a feature on in every frame of the
            clips of its class (0: no label).
        factor_features: features whose coefficient is a factor column (`factor_f<j>`).
        storage_dtype: float32, float16 or bfloat16 on disk.
        seed: seeds the dictionary, the rows, the noise and the splits.
    """
    from saelight.cache.planted import PlantedRecipe, split_counts
    from saelight.evaluation.planted_cache import write_planted

    recipe = PlantedRecipe(
        d_in=d_in,
        n_features=n_features,
        frequency_low=frequency_low,
        frequency_high=frequency_high,
        magnitude_mean=magnitude_mean,
        magnitude_std=magnitude_std,
        n_correlated_pairs=n_correlated_pairs,
        correlation=correlation,
        n_hierarchical_pairs=n_hierarchical_pairs,
        noise_std=noise_std,
        clips=clips,
        frames_per_clip=frames_per_clip,
        val_fraction=val_fraction,
        test_fraction=test_fraction,
        layers=tuple(layers if layers is not None else PlantedRecipe.layers),
        pooling=pooling,
        label_features=label_features,
        factor_features=factor_features,
        storage_dtype=storage_dtype,
        seed=seed,
    )
    reader, reused = write_planted(out, recipe)
    splits = ", ".join(f"{k} {v}" for k, v in split_counts(recipe).items())
    what = "already written with these options, every file verified" if reused else "written"
    print(
        f"planted cache {reader.directory}: {what}; {len(reader)} rows ({splits} clips), "
        f"{n_features} features in {d_in} dims, layers {reader.layers}"
    )
