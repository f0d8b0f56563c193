"""The one interface every audio source implements: a deterministic list of clips plus a loader.

A source knows nothing about backbones or caches. It says which clips exist, which split each
belongs to (groups such as singers never straddle splits), their discrete labels and continuous
factors, and how to turn a clip into a mono float32 waveform at a requested sample rate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

Split = Literal["train", "val", "test"]
SPLITS: tuple[str, ...] = ("train", "val", "test")
VOCALSET_TECHNIQUES: tuple[str, ...] = (
    "belt",
    "breathy",
    "inhaled",
    "lip_trill",
    "spoken",
    "straight",
    "trill",
    "trillo",
    "vibrato",
    "vocal_fry",
)
"""The paper's 10 VocalSet technique classes, in the paper's (and the probe's label) order."""


class BadAudioError(ValueError):
    """Raised by `AudioSource.load` for a clip that cannot be used (unreadable, empty, silent, NaN).

    The message names the file or clip id and the reason; the cache builder decides whether to
    skip the clip or abort.
    """


@dataclass(frozen=True)
class Clip:
    """One audio file (or generated clip) and everything known about it.

    Attributes:
        clip_id: unique, stable identifier (used in the cache metadata and to resume extraction).
        split: "train", "val" or "test".
        labels: discrete labels, e.g. {"technique": "vibrato", "singer": "f2", "vowel": "a"}.
        factors: continuous ground-truth factors, e.g. {"f0_mean_hz": 220.0}.
        path: the audio file, or None for generated audio.
    """

    clip_id: str
    split: str
    labels: dict[str, str] = field(default_factory=dict)
    factors: dict[str, float] = field(default_factory=dict)
    path: str | None = None


class AudioSource(ABC):
    """A labelled audio collection. Subclasses take their options as typed `__init__` arguments."""

    @abstractmethod
    def clips(self) -> list[Clip]:
        """All clips, in a deterministic order (the same on every call and every machine)."""

    @abstractmethod
    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """The clip as a 1-D float32 mono waveform at `sample_rate`; raises `BadAudioError`."""

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this source's content; kept in the cache manifest to catch mismatches."""
        return {"class": type(self).__name__}


SPLIT_ALIASES: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
"""Split names accepted in manifests and split columns, mapped to the canonical `SPLITS`."""


def canonical_split(value: object, where: str) -> str:
    """Map a split value from user data ("validation", "dev", ...) to one of `SPLITS`.

    Args:
        value: the value found in the data.
        where: what holds the value (file, column), named in the error.

    Raises:
        ValueError: the value is not one of `SPLIT_ALIASES`.
    """
    split = SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise ValueError(
            f"{where}: unknown split {value!r}; expected one of {sorted(SPLIT_ALIASES)}"
        )
    return split


def assign_group_splits(
    groups: list[str], *, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, str]:
    """Put each distinct group (speaker, singer, file) in exactly one split, deterministically.

    The distinct groups are sorted, permuted with `numpy.random.default_rng(seed)`, and the first
    `round(test_fraction * G)` go to test, the next `round(val_fraction * G)` to val and the rest to
    train. A non-zero fraction always gets at least one group when G >= 3, and train always keeps
    at least one. The result depends only on the set of groups and the seed, never on row order.

    Args:
        groups: group name of every row (repeats allowed).
        val_fraction: share of the groups sent to val, in [0, 1).
        test_fraction: share of the groups sent to test, in [0, 1).
        seed: seed of the permutation.

    Returns:
        {group: split}.

    Raises:
        ValueError: a fraction is outside [0, 1) or they sum to 1 or more.
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise ValueError(f"{name} must lie in [0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(
            f"val_fraction + test_fraction must be < 1, got {val_fraction} + {test_fraction}"
        )
    distinct = sorted(set(groups))
    n = len(distinct)
    order = [distinct[i] for i in np.random.default_rng(seed).permutation(n)]
    n_test = round(test_fraction * n)
    n_val = round(val_fraction * n)
    if n >= 3:
        n_test = max(n_test, int(test_fraction > 0))
        n_val = max(n_val, int(val_fraction > 0))
    n_test = min(n_test, max(n - 1, 0))
    n_val = min(n_val, max(n - 1 - n_test, 0))
    splits = ["test"] * n_test + ["val"] * n_val + ["train"] * (n - n_test - n_val)
    return dict(zip(order, splits, strict=True))
