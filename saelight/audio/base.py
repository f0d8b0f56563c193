"""The one interface every audio source implements: a deterministic list of clips plus a loader.

A source knows nothing about backbones or caches. It says which clips exist, which split each
belongs to (groups such as singers never straddle splits), their discrete labels and continuous
factors, and how to turn a clip into a mono float32 waveform at a requested sample rate.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from saelight.io.errors import SaelightError

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


class BadAudioError(SaelightError, ValueError):
    """Raised by `AudioSource.load` for a clip that cannot be used (unreadable, empty, silent, NaN).

    The message names the file or clip id and the reason; the cache builder decides whether to
    skip the clip or abort.
    """


class BadSourceError(SaelightError, ValueError):
    """A source's options or its manifest/folder cannot give a usable clip list.

    Raised while the source is built or validated, before any audio is decoded: a path that does
    not exist, an empty label cell, a column that is not in the manifest, an option that the
    chosen layout does not use, a split that would get no clips. The message names the file (and
    line and column) or the option, and what was expected.
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

    def native_rate(self, clip: Clip) -> int | None:
        """The rate `clip` is stored or generated at, in Hz; None = unknown (the default).

        The cache computes a clip's eGeMAPS factors on `load(clip, native_rate(clip))`, so they
        are the same whichever backbone (16 or 24 kHz) reads the clip, as the paper computes them
        on VocalSet's 44.1 kHz files. A source that returns None gets them at the backbone's rate.
        """
        return None

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this source's content; kept in the cache manifest to catch mismatches."""
        return {"class": type(self).__name__}

    def expected_splits(self) -> tuple[str, ...]:
        """The splits this source's options ask for; `validate` requires a clip in each.

        A source narrows this when an option turns a split off (a zero fraction, no test singers),
        so an explicit choice is not mistaken for a mistake.
        """
        return SPLITS

    def split_hint(self, split: str) -> str:
        """What to change when `split` gets no clips (names the option that decides it)."""
        return f"check {type(self).__name__}'s split options"

    def validate(self, splits: Sequence[str] | None = None) -> None:
        """Check the clip list without decoding any audio; raise `BadSourceError` on a problem.

        The built-in sources run this at the end of `__init__`. LightningCLI builds the source
        before the backbone, so a bad manifest or an empty split stops the run before a model is
        downloaded or a clip extracted; callers (the cache builder, the data module) may run it
        again with the splits they need.

        Args:
            splits: splits that must hold at least one clip; None = `expected_splits()`.

        Raises:
            BadSourceError: no clips, a duplicate clip id, a split name outside `SPLITS`, or a
                required split with no clips (naming the option that decides it).
        """
        name = type(self).__name__
        clips = self.clips()
        if not clips:
            raise BadSourceError(f"{name}: no clips", hint="check its root and filters")
        seen: set[str] = set()
        for clip in clips:
            if clip.clip_id in seen:
                raise BadSourceError(f"{name}: clip id {clip.clip_id!r} appears twice")
            seen.add(clip.clip_id)
        counts = Counter(clip.split for clip in clips)
        unknown = sorted(set(counts) - set(SPLITS))
        if unknown:
            raise BadSourceError(f"{name}: split names {unknown}; expected {list(SPLITS)}")
        sizes = ", ".join(f"{s} {counts[s]}" for s in SPLITS)
        for split in self.expected_splits() if splits is None else splits:
            if counts[split] == 0:
                raise BadSourceError(
                    f"{name}: split {split!r} would have no clips ({sizes})",
                    hint=self.split_hint(split),
                )


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
        BadSourceError: the value is not one of `SPLIT_ALIASES`.
    """
    split = SPLIT_ALIASES.get(str(value).strip().lower())
    if split is None:
        raise BadSourceError(
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
        BadSourceError: a fraction is outside [0, 1) or they sum to 1 or more.
    """
    for name, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise BadSourceError(f"{name} must lie in [0, 1), got {frac}")
    if val_fraction + test_fraction >= 1.0:
        raise BadSourceError(
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


def carve_val(splits: list[str], groups: list[str], *, val_fraction: float, seed: int) -> list[str]:
    """Move whole groups of train rows to val when a given split has train and test but no val.

    An official split often has no validation part; rather than ignore `val_fraction` (and fail
    after extraction for want of val rows), the train rows' distinct groups go through
    `assign_group_splits(val_fraction=val_fraction, test_fraction=0, seed=seed)`. So the result
    depends only on the set of train groups and the seed, a group never straddles train and val,
    and test rows are never touched. Splits that already hold a val row, or `val_fraction` 0, are
    returned unchanged.

    Args:
        splits: canonical split of every row.
        groups: group of every row (speaker, singer, or the row's own id).
        val_fraction: share of the train groups sent to val, in [0, 1).
        seed: seed of the permutation.

    Returns:
        The split of every row.
    """
    if "val" in splits or val_fraction == 0:
        return list(splits)
    train_groups = [g for g, s in zip(groups, splits, strict=True) if s == "train"]
    table = assign_group_splits(train_groups, val_fraction=val_fraction, test_fraction=0, seed=seed)
    return [table[g] if s == "train" else s for g, s in zip(groups, splits, strict=True)]


def fraction_splits(
    clips: list[Clip], split_column: str | None, val_fraction: float, test_fraction: float
) -> tuple[str, ...]:
    """The splits a source with a split column and/or val/test fractions must fill: train; val
    unless `val_fraction` is 0 and the column gives no val rows; test unless `test_fraction` is 0
    without a split column (a split column must give test rows)."""
    given_val = split_column is not None and any(c.split == "val" for c in clips)
    wanted = ["train"]
    if val_fraction > 0 or given_val:
        wanted.append("val")
    if split_column is not None or test_fraction > 0:
        wanted.append("test")
    return tuple(wanted)
