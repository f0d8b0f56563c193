"""VocalSet (Wilkins et al., ISMIR 2018; Zenodo 1442513, CC BY 4.0) from its extracted folder.

Layout: `FULL/<female1..female9|male1..male11>/<arpeggios|scales|long_tones|excerpts>/<technique>/
<stem>.wav`, stems like `f2_arpeggios_belt_a` whose last `_` token is the vowel (or 'spoken', or
something else for uncut recordings and excerpts).

What is kept, following the paper (Mariotte et al. 2025) and its authors' code:

- Only the 10 technique folders of `VOCALSET_TECHNIQUES`; files in any other folder (fast_forte,
  messa, pp, ...) are ignored. The misspelt folder `vibrado` counts as `vibrato` (the authors'
  code meant to do this, but its rename overwrites whole rows, so it drops those files instead).
- With `paper_vowel_filter` (default), only stems whose last token is a, e, i, o, u or 'spoken'
  (plus 'c' and 'f', which the authors' filter also lists). This drops excerpts/straight and
  excerpts/vibrato (their stems end in the technique, not a vowel) and the uncut recordings.
- Test = the dataset's own test singers (f2, f8, m3, m5, m10).
- Val = whole singers, never single files: `n_val_singers` (default 3) of the other singers, so
  the validation loss measures generalisation to unseen singers, as the test split does. Every
  set of that many non-test singers is a candidate; they are visited in an order fixed by `seed`
  (`itertools.combinations` of the sorted singers permuted with `numpy.random.default_rng(seed)`,
  at most `MAX_CANDIDATES`), and the first best one is kept, best meaning, in this order: (1) the
  train singers left still have every technique the non-test singers have, (2) val has as many
  techniques as possible, (3) val has a female and a male singer (when it has two or more).
  Real VocalSet has 15 non-test singers (f1 f3-f7 f9, m1 m2 m4 m6-m9 m11), so the default holds
  out 3 of them, about 20 % of their files like the paper's file-level 20 %, with every technique
  in train and val when the folders allow it (a warning names any technique val lacks).
  `val_singers` names them instead. The authors' code split train/val at file level (an unsorted
  glob shuffled with Python's `random`), so the same singer was in both.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
from pathlib import Path
from typing import Any

import numpy as np

from saelight.audio.base import VOCALSET_TECHNIQUES, AudioSource, BadSourceError, Clip
from saelight.audio.decode import file_rate, load_audio, validate_waveform

log = logging.getLogger(__name__)

MAX_CANDIDATES = 100_000
"""Most val-singer sets scored: C(15, 3) = 455 on VocalSet; the cap only bounds odd custom trees."""
PAPER_VOWELS = frozenset({"a", "e", "i", "o", "u", "spoken", "c", "f"})
CONTEXTS = ("arpeggios", "scales", "long_tones", "excerpts")
_SINGER_DIR = re.compile(r"^(female|male)(\d+)$")
_TECHNIQUE_ALIASES = {"vibrado": "vibrato"}

PAPER_SPLIT_SEED = 42
"""The seed of the original code's val-singer choice (a data seed, kept at the paper's value)."""


class VocalSet(AudioSource):
    """The VocalSet singing-technique dataset, labelled with singer, context, technique and vowel.

    Clip ids are the paths relative to FULL/ without extension, e.g.
    `female2/arpeggios/belt/f2_arpeggios_belt_a`; labels look like
    `{"singer": "f2", "context": "arpeggios", "technique": "belt", "vowel": "a"}`.
    """

    def __init__(
        self,
        root: str,
        test_singers: tuple[str, ...] = ("f2", "f8", "m3", "m5", "m10"),
        n_val_singers: int = 3,
        val_singers: tuple[str, ...] | None = None,
        seed: int = PAPER_SPLIT_SEED,
        paper_vowel_filter: bool = True,
        min_duration_s: float = 0.1,
    ) -> None:
        """Scan the folder tree and choose the val singers (no audio is read here).

        Args:
            root: the folder that contains FULL/, or FULL/ itself.
            test_singers: singers (f2/m5 style) that form the test split; the default is the
                dataset's own `test_singers_technique.txt`.
            n_val_singers: non-test singers whose files form val, chosen as the module doc says;
                0 = no val split.
            val_singers: the val singers by name instead (then `n_val_singers` is unused).
            seed: seed of the val-singer choice (the paper uses 42).
            paper_vowel_filter: keep only stems ending in a vowel or 'spoken' (see module doc).
            min_duration_s: shorter files raise `BadAudioError` in `load`.

        Raises:
            BadSourceError: no VocalSet files under root, unknown or overlapping singers, or too
                many val singers to leave one for train.
        """
        self.root = self._find_full(Path(root))
        self.test_singers = list(test_singers)
        if n_val_singers < 0:
            raise BadSourceError(f"n_val_singers must be >= 0, got {n_val_singers}")
        self.n_val_singers = n_val_singers
        self.val_singers = None if val_singers is None else list(val_singers)
        self.seed = seed
        self.paper_vowel_filter = paper_vowel_filter
        self.min_duration_s = min_duration_s
        rows = self._scan()
        # The val singers in use (given or chosen), sorted; kept in the fingerprint.
        self.chosen_val_singers = self._choose_val({lab["singer"] for _, lab, _ in rows}, rows)
        self._clips = [
            Clip(clip_id, self._split_of(labels["singer"]), labels, path=path)
            for clip_id, labels, path in rows
        ]
        self.validate()

    @staticmethod
    def _find_full(root: Path) -> Path:
        if not root.is_dir():
            raise BadSourceError(
                f"root: {str(root)!r} is not a directory; expected VocalSet's folder"
            )
        if (root / "FULL").is_dir():
            return root / "FULL"
        if any(_SINGER_DIR.match(p.name) for p in root.iterdir() if p.is_dir()):
            return root
        raise BadSourceError(
            f"root: {str(root)!r} holds neither FULL/ nor female*/male* singer folders; "
            "expected the extracted VocalSet folder or its FULL/ folder"
        )

    def _scan(self) -> list[tuple[str, dict[str, str], str]]:
        """(clip id, labels, path) of every kept file, sorted by relative path."""
        rows: list[tuple[str, dict[str, str], str]] = []
        for path in sorted(self.root.rglob("*")):
            rel = path.relative_to(self.root)
            # Like the authors' code: context and technique are the file's two parent folders.
            if path.suffix.lower() != ".wav" or path.name.startswith("._") or len(rel.parts) < 4:
                continue
            context, folder = rel.parts[-3], rel.parts[-2]
            match = _SINGER_DIR.match(rel.parts[0])
            technique = _TECHNIQUE_ALIASES.get(folder, folder)
            if match is None or technique not in VOCALSET_TECHNIQUES:
                continue
            vowel = path.stem.split("_")[-1]
            if self.paper_vowel_filter and vowel not in PAPER_VOWELS:
                continue
            singer = ("f" if match.group(1) == "female" else "m") + match.group(2)
            labels = dict(singer=singer, context=context, technique=technique, vowel=vowel)
            rows.append((rel.with_suffix("").as_posix(), labels, str(path)))
        if not rows:
            raise BadSourceError(
                f"root: no VocalSet files of the 10 techniques under {str(self.root)!r}; expected "
                "<female1|male1|...>/<context>/<technique>/<stem>.wav"
            )
        return rows

    def _choose_val(
        self, singers: set[str], rows: list[tuple[str, dict[str, str], str]]
    ) -> list[str]:
        for option, named in (
            ("test_singers", self.test_singers),
            ("val_singers", self.val_singers),
        ):
            unknown = sorted(set(named or ()) - singers)
            if unknown:
                raise BadSourceError(f"{option}: {unknown} not found; singers: {sorted(singers)}")
        pool = sorted(singers - set(self.test_singers))
        if self.val_singers is not None:
            both = sorted(set(self.val_singers) & set(self.test_singers))
            if both:
                raise BadSourceError(f"val_singers: {both} are also test_singers")
            chosen = sorted(set(self.val_singers))
        else:
            chosen = choose_val_singers(
                {s: {lab["technique"] for _, lab, _ in rows if lab["singer"] == s} for s in pool},
                self.n_val_singers,
                self.seed,
            )
        if chosen and len(chosen) >= len(pool):
            raise BadSourceError(
                f"val singers {chosen} would leave train no singer; non-test singers: {pool}",
                hint="lower n_val_singers, or name fewer val_singers or test_singers",
            )
        return chosen

    def _split_of(self, singer: str) -> str:
        if singer in self.test_singers:
            return "test"
        return "val" if singer in self.chosen_val_singers else "train"

    def expected_splits(self) -> tuple[str, ...]:
        """Train, plus val and test unless no val or no test singers were asked for."""
        wanted = ["train"]
        if self.chosen_val_singers or (self.val_singers is None and self.n_val_singers > 0):
            wanted.append("val")
        if self.test_singers:
            wanted.append("test")
        return tuple(wanted)

    def split_hint(self, split: str) -> str:
        """Names the singer options, which alone decide the splits."""
        return "check test_singers, n_val_singers and val_singers against the singer folders"

    def clips(self) -> list[Clip]:
        """All kept files, sorted by relative path."""
        return list(self._clips)

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        """Decode, mix down and resample the file; raises `BadAudioError` naming it."""
        if clip.path is None:
            raise ValueError(f"clip {clip.clip_id!r} has no path; expected a VocalSet clip")
        wave = load_audio(clip.path, sample_rate)
        min_samples = max(1, round(self.min_duration_s * sample_rate))
        return validate_waveform(wave, sample_rate, min_samples=min_samples, where=clip.path)

    def native_rate(self, clip: Clip) -> int | None:
        """The file's own sample rate (VocalSet's 44.1 kHz), from its header."""
        return None if clip.path is None else file_rate(clip.path)

    def fingerprint(self) -> dict[str, Any]:
        """Class, every option, the number of clips and a hash of their ids and splits.

        The root path is left out, so moving the dataset does not invalidate a cache.
        """
        ids = "\n".join(f"{c.clip_id}\t{c.split}" for c in self._clips)
        return {
            "class": type(self).__name__,
            "test_singers": self.test_singers,
            "val_singers": self.chosen_val_singers,
            "seed": self.seed,
            "paper_vowel_filter": self.paper_vowel_filter,
            "min_duration_s": self.min_duration_s,
            "n_clips": len(self._clips),
            "clips_sha1": hashlib.sha1(ids.encode()).hexdigest(),
        }


def choose_val_singers(techniques_of: dict[str, set[str]], n: int, seed: int) -> list[str]:
    """The `n` val singers the module doc describes, sorted.

    Args:
        techniques_of: {non-test singer: techniques they have files of}.
        n: how many to choose (0 = none).
        seed: seed of the order in which candidate sets are visited.

    Returns:
        The chosen singers, sorted: none when `n` is 0, all when `n` >= their number (which
        the caller refuses).
    """
    pool = sorted(techniques_of)
    if n == 0:
        return []
    if n >= len(pool):
        return pool  # the caller refuses it: train would keep no singer
    order = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    every = set().union(*techniques_of.values())
    best: tuple[bool, int, int] | None = None
    chosen: tuple[str, ...] = ()
    for combo in itertools.islice(itertools.combinations(order, n), MAX_CANDIDATES):
        train = set().union(*(techniques_of[s] for s in pool if s not in combo))
        val = set().union(*(techniques_of[s] for s in combo))
        score = (train == every, len(val), len({s[0] for s in combo}))
        if best is None or score > best:
            best, chosen = score, combo
            if score == (True, len(every), min(n, 2)):
                break
    missing = sorted(every - set().union(*(techniques_of[s] for s in chosen)))
    if missing:
        log.warning("VocalSet: val singers %s have no %s files", sorted(chosen), missing)
    return sorted(chosen)
