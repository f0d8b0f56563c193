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
- Test = the dataset's own test singers (f2, f8, m3, m5, m10). The other singers' files are split
  train/val at file level: the relative paths are sorted, permuted with
  `numpy.random.default_rng(seed)` and the first `round(val_fraction * n)` go to val. Unlike the
  original (an unsorted glob shuffled with Python's `random`), this is the same on every machine,
  and no test singer can reach train or val.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from saelight.audio.base import VOCALSET_TECHNIQUES, AudioSource, Clip
from saelight.audio.decode import load_audio, validate_waveform

PAPER_VOWELS = frozenset({"a", "e", "i", "o", "u", "spoken", "c", "f"})
CONTEXTS = ("arpeggios", "scales", "long_tones", "excerpts")
_SINGER_DIR = re.compile(r"^(female|male)(\d+)$")
_TECHNIQUE_ALIASES = {"vibrado": "vibrato"}


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
        val_fraction: float = 0.2,
        seed: int = 42,
        paper_vowel_filter: bool = True,
        min_duration_s: float = 0.1,
    ) -> None:
        """Scan the folder tree (no audio is read here).

        Args:
            root: the folder that contains FULL/, or FULL/ itself.
            test_singers: singers (f2/m5 style) that form the test split; the default is the
                dataset's own `test_singers_technique.txt`.
            val_fraction: share of the other singers' files sent to val, in [0, 1).
            seed: seed of the train/val permutation (the paper uses 42).
            paper_vowel_filter: keep only stems ending in a vowel or 'spoken' (see module doc).
            min_duration_s: shorter files raise `BadAudioError` in `load`.
        """
        self.root = self._find_full(Path(root))
        self.test_singers = list(test_singers)
        if not 0.0 <= val_fraction < 1.0:
            raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
        self.val_fraction = val_fraction
        self.seed = seed
        self.paper_vowel_filter = paper_vowel_filter
        self.min_duration_s = min_duration_s
        self._clips = self._scan()

    @staticmethod
    def _find_full(root: Path) -> Path:
        if not root.is_dir():
            raise ValueError(f"root: {str(root)!r} is not a directory; expected VocalSet's folder")
        if (root / "FULL").is_dir():
            return root / "FULL"
        if any(_SINGER_DIR.match(p.name) for p in root.iterdir() if p.is_dir()):
            return root
        raise ValueError(
            f"root: {str(root)!r} holds neither FULL/ nor female*/male* singer folders; "
            "expected the extracted VocalSet folder or its FULL/ folder"
        )

    def _scan(self) -> list[Clip]:
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
            raise ValueError(
                f"root: no VocalSet files of the 10 techniques under {str(self.root)!r}; expected "
                "<female1|male1|...>/<context>/<technique>/<stem>.wav"
            )
        singers = {labels["singer"] for _, labels, _ in rows}
        unknown = sorted(set(self.test_singers) - singers)
        if unknown:
            raise ValueError(f"test_singers: {unknown} not found; singers: {sorted(singers)}")
        train_ids = [cid for cid, lab, _ in rows if lab["singer"] not in self.test_singers]
        order = np.random.default_rng(self.seed).permutation(len(train_ids))
        val_ids = {train_ids[i] for i in order[: round(self.val_fraction * len(train_ids))]}
        clips = []
        for clip_id, labels, path in rows:
            if labels["singer"] in self.test_singers:
                split = "test"
            else:
                split = "val" if clip_id in val_ids else "train"
            clips.append(Clip(clip_id, split, labels, path=path))
        return clips

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

    def fingerprint(self) -> dict[str, Any]:
        """Class, every option, the number of clips and a hash of their ids and splits.

        The root path is left out, so moving the dataset does not invalidate a cache.
        """
        ids = "\n".join(f"{c.clip_id}\t{c.split}" for c in self._clips)
        return {
            "class": type(self).__name__,
            "test_singers": self.test_singers,
            "val_fraction": self.val_fraction,
            "seed": self.seed,
            "paper_vowel_filter": self.paper_vowel_filter,
            "min_duration_s": self.min_duration_s,
            "n_clips": len(self._clips),
            "clips_sha1": hashlib.sha1(ids.encode()).hexdigest(),
        }
