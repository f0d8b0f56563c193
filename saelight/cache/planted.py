"""Planted ground truth as a normal cache: the recipe, and the source and backbone a config names.

`saelight planted --out DIR` (`saelight.evaluation.planted_cache.write_planted`) writes
synthetic activations with a known dictionary (`saelight.evaluation.planted_truth`) as an
ordinary activation cache, so `saelight fit | cache | inspect | report` read it unchanged::

    DIR/manifest.json, layer_<LL>/shard_*.npy, meta/shard_*.parquet   the cache (cache/format.py)
    DIR/planted.json          the recipe (`PlantedRecipe`), also the manifest's `source`
    DIR/planted.safetensors   the ground truth (`PLANTED_TENSORS`; cache/planted_files.py)

Rows come in pseudo-clips of `frames_per_clip` frames (50 frames/s): a clip's split (train, val,
test) is drawn once per clip (`clip_splits`), so no clip straddles two splits. `pooling: frame`
keeps one row per frame; `pooling: clip` one row per clip, the mean of its frames (and its true
coefficients the mean of the frames' coefficients, so a row still equals Σ_j a_j f_j + noise).
Every cached layer holds the same coefficients with its own noise draw.

Label `class` (one per clip): ``label_features`` features (the first ones in no pair) carry
the classes: each clip draws one, ``f<j>``, and that feature fires in every frame of the clip
(magnitude drawn per frame) while the other label features stay off, so a label feature's firing
probability is 1 / label_features (`planted.safetensors` stores that as its frequency). Factors
`f<j>` (``j < factor_features``): each row's true coefficient ``a_j``.

A config reads such a cache through `PlantedSource` and `PlantedBackbone` (both read
`planted.json`): the recipe identifies it as a source fingerprint does, so a fit refuses a
directory rewritten with another recipe, naming the field.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from saelight.audio.base import AudioSource, BadSourceError, Clip
from saelight.backbones.base import Backbone
from saelight.cache.format import STORAGE_DTYPES, CacheMismatchError
from saelight.io.errors import ConfigError, SaelightError

PLANTED_RECIPE = "planted.json"
PLANTED_TENSORS = "planted.safetensors"
SAMPLE_RATE = 16_000
"""Rate of the sonified clips (`PlantedSource.load`) and the backbone's nominal rate."""
FRAME_RATE_HZ = 50.0
"""Frames per second of a pseudo-clip (its rows' `start_s` / `end_s`)."""
LABEL = "class"
"""The label column (`label_class`): the label feature each clip carries, `f<j>`."""


def feature_name(j: int) -> str:
    """`f<j>`: feature j as a label value and a factor name (`factor_f<j>`)."""
    return f"f{j}"


@dataclass(frozen=True)
class PlantedRecipe:
    """What `saelight planted` draws (defaults shared with its command line; docs in its help)."""

    d_in: int = 32
    n_features: int = 64
    frequency_low: float = 0.02
    frequency_high: float = 0.2
    magnitude_mean: float = 1.0
    magnitude_std: float = 0.25
    n_correlated_pairs: int = 4
    correlation: float = 0.8
    n_hierarchical_pairs: int = 4
    noise_std: float = 0.02
    clips: int = 400
    frames_per_clip: int = 25
    val_fraction: float = 0.1
    test_fraction: float = 0.2
    layers: tuple[int, ...] = (0,)
    pooling: str = "frame"
    label_features: int = 3
    factor_features: int = 8
    storage_dtype: str = "float32"
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(int(x) for x in self.layers))
        self.check()

    def check(self) -> None:
        """Raise `ConfigError` naming the first field out of range."""
        for name in ("d_in", "n_features", "clips", "frames_per_clip"):
            _need(getattr(self, name) >= 1, name, ">= 1", getattr(self, name))
        for name in ("n_correlated_pairs", "n_hierarchical_pairs", "magnitude_std", "noise_std"):
            _need(getattr(self, name) >= 0, name, ">= 0", getattr(self, name))
        _need(0 < self.frequency_low <= 1, "frequency_low", "in (0, 1]", self.frequency_low)
        high = self.frequency_high
        _need(self.frequency_low <= high <= 1, "frequency_high", "in [frequency_low, 1]", high)
        _need(self.magnitude_mean > 0, "magnitude_mean", "> 0", self.magnitude_mean)
        _need(-1 < self.correlation < 1, "correlation", "in (-1, 1)", self.correlation)
        paired = 2 * (self.n_correlated_pairs + self.n_hierarchical_pairs)
        _need(
            paired <= self.n_features,
            "n_correlated_pairs + n_hierarchical_pairs",
            f"<= n_features / 2 = {self.n_features // 2} (each pair takes 2 features)",
            paired // 2,
        )
        free = self.n_features - paired
        labels = self.label_features
        _need(labels != 1, "label_features", "0 (no label) or >= 2 (classes)", labels)
        _need(0 <= labels <= free, "label_features", f"in [0, {free}] (in no pair)", labels)
        value = self.factor_features
        _need(0 <= value <= self.n_features, "factor_features", f"in [0, {self.n_features}]", value)
        for name in ("val_fraction", "test_fraction"):
            _need(0 < getattr(self, name) < 1, name, "in (0, 1)", getattr(self, name))
        total = self.val_fraction + self.test_fraction
        _need(total < 1, "val_fraction + test_fraction", "< 1", total)
        counts = split_counts(self)
        _need(min(counts.values()) >= 1, "clips", f"enough for every split ({counts})", self.clips)
        _need(bool(self.layers) and min(self.layers) >= 0, "layers", "non-empty, >= 0", self.layers)
        _need(len(set(self.layers)) == len(self.layers), "layers", "distinct", self.layers)
        _need(self.pooling in ("clip", "frame"), "pooling", "'clip' or 'frame'", self.pooling)
        dtype = self.storage_dtype
        _need(dtype in STORAGE_DTYPES, "storage_dtype", f"one of {STORAGE_DTYPES}", dtype)

    @property
    def rows_per_clip(self) -> int:
        return 1 if self.pooling == "clip" else self.frames_per_clip

    @property
    def n_rows(self) -> int:
        return self.clips * self.rows_per_clip

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "layers": list(self.layers)}

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> PlantedRecipe:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ConfigError(f"planted recipe: unknown field(s) {unknown}; known: {sorted(names)}")
        return cls(**values)


def _need(ok: bool, field: str, expected: Any, got: Any) -> None:
    if not ok:
        raise ConfigError(f"planted recipe: {field} must be {expected}, got {got!r}")


def split_counts(recipe: PlantedRecipe) -> dict[str, int]:
    """Clips per split: round(fraction × clips) for val and test, the rest train."""
    val = round(recipe.val_fraction * recipe.clips)
    test = round(recipe.test_fraction * recipe.clips)
    return {"train": recipe.clips - val - test, "val": val, "test": test}


def clip_splits(recipe: PlantedRecipe) -> np.ndarray:
    """(clips,) split of each pseudo-clip: `split_counts` shuffled by `[seed, 3]`."""
    counts = split_counts(recipe)
    names = np.repeat(np.array(list(counts)), list(counts.values()))
    return np.random.default_rng([recipe.seed, 3]).permutation(names)


def clip_id(index: int) -> str:
    return f"planted_{index:06d}"


def read_recipe(directory: str | Path) -> PlantedRecipe:
    """The recipe of the planted cache in `directory`; `BadSourceError` when there is none."""
    path = Path(directory) / PLANTED_RECIPE
    if not path.is_file():
        raise BadSourceError(
            f"{directory} holds no planted cache (no {PLANTED_RECIPE})",
            hint=f"write it first with `saelight planted --out {directory}`",
        )
    try:
        return PlantedRecipe.from_json(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, AttributeError) as err:
        raise BadSourceError(f"{path} is not a planted recipe ({err})") from None


def check_same_recipe(found: dict[str, Any], expected: PlantedRecipe, where: Path) -> None:
    """Raise `CacheMismatchError` naming the first recipe field of `found` (a manifest's
    `source`) that differs from `expected`."""
    wanted = fingerprint(expected)
    for key in wanted:
        if found.get(key) != wanted[key]:
            raise CacheMismatchError(
                f"{where} holds a planted cache with {key}={found.get(key)!r}, not "
                f"{wanted[key]!r}; point --out at a new directory or delete this one"
            )


def fingerprint(recipe: PlantedRecipe) -> dict[str, Any]:
    """The manifest's `source`: the class and every recipe field."""
    return {"class": PlantedSource.__name__, **recipe.to_json()}


class PlantedSource(AudioSource):
    """The pseudo-clips of a planted cache (written by `saelight planted`), for configs.

    `load` sonifies a clip (no audio was ever recorded): planted feature j is a sine at
    ``110 · 2^(6 j / n_features)`` Hz (six octaves from 110 Hz), each frame sounds the features
    firing in it at their true magnitudes, so the explorer's snippets let one hear which
    features a latent's top rows hold. A clip-pooled cache sounds its clip's mean coefficients.

    Args:
        directory: the planted cache (the same as `data.cache.directory`).
    """

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.recipe = read_recipe(directory)
        self._tone_rate: int | None = None
        self._tone_table = np.zeros((0, 0, 0), np.float32)

    def fingerprint(self) -> dict[str, Any]:
        return fingerprint(self.recipe)

    def clips(self) -> list[Clip]:
        return [
            Clip(clip_id(i), str(split), labels={}, factors={})
            for i, split in enumerate(clip_splits(self.recipe))
        ]

    def native_rate(self, clip: Clip) -> int | None:
        return SAMPLE_RATE

    @cached_property
    def _activations(self) -> np.ndarray:
        from safetensors.numpy import load_file

        return load_file(self.directory / PLANTED_TENSORS)["activations"]

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        r = self.recipe
        index = int(clip.clip_id.rsplit("_", 1)[1])
        rows = self._activations[index * r.rows_per_clip : (index + 1) * r.rows_per_clip]
        amps = np.repeat(rows, r.frames_per_clip // len(rows), axis=0)
        wave = np.einsum("fsj,fj->fs", self._tones(sample_rate), amps).ravel()
        peak = np.abs(wave).max()
        return (0.5 * wave / peak if peak > 0 else wave).astype(np.float32)

    def _tones(self, sample_rate: int) -> np.ndarray:
        """(frames, samples per frame, n_features) the features' sines over one clip."""
        if self._tone_rate != sample_rate:
            r, per_frame = self.recipe, round(sample_rate / FRAME_RATE_HZ)
            t = np.arange(r.frames_per_clip * per_frame) / sample_rate
            pitch = 110.0 * 2.0 ** (6.0 * np.arange(r.n_features) / r.n_features)
            pitch = np.minimum(pitch, 0.45 * sample_rate)
            tones = np.sin(2 * np.pi * t[:, None] * pitch).astype(np.float32)
            self._tone_table = tones.reshape(r.frames_per_clip, per_frame, r.n_features)
            self._tone_rate = sample_rate
        return self._tone_table


class PlantedBackbone(Backbone):
    """Stands in for the encoder of a planted cache: its layers and width, for configs.

    It extracts nothing (the rows were drawn, not computed from audio): `saelight splice`,
    `explain` and `steer`, which rerun the backbone, stop with one line (`NoBackboneError`).

    Args:
        directory: the planted cache (the same as `data.cache.directory`).
    """

    def __init__(self, directory: str) -> None:
        self.recipe = read_recipe(directory)
        self.layers = list(self.recipe.layers)
        self.hidden_size = self.recipe.d_in
        self.sample_rate, self.min_samples, self.frame_rate_hz = SAMPLE_RATE, 1, FRAME_RATE_HZ

    def identity(self) -> dict[str, Any]:
        r = self.recipe
        return {"model": f"planted-d{r.d_in}-f{r.n_features}", "seed": r.seed}

    def extract(self, waves: list[np.ndarray]) -> Any:
        raise NoBackboneError(NO_BACKBONE, hint=NO_BACKBONE_HINT)

    def __getattr__(self, name: str) -> Any:
        """What splice, explain and steer ask of a real encoder (`prepare_waves`,
        `output_head`, ...): one line saying there is none (an `AttributeError` too, so
        `hasattr` and `getattr(..., default)` still answer)."""
        if name.startswith("__"):
            raise AttributeError(name)
        raise NoBackboneError(f"{NO_BACKBONE} (no `{name}`)", hint=NO_BACKBONE_HINT)


NO_BACKBONE = (
    "a planted cache has no backbone to run: its rows were drawn from a known dictionary, not "
    "computed from audio"
)
NO_BACKBONE_HINT = "splice, explain and steer need a cache of a real backbone"


class NoBackboneError(SaelightError, AttributeError):
    """A command asked the stand-in backbone of a planted cache to run."""
