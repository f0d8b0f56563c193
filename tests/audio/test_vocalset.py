"""VocalSet parsing, filtering and splits on a small fake tree (saelight/audio/vocalset.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.audio import BadAudioError, VocalSet

SR = 44100
TRAIN_SINGERS = {"female1": "f1", "male1": "m1", "male2": "m2"}
TEST_SINGERS = {"female2": "f2", "female8": "f8", "male3": "m3", "male5": "m5", "male10": "m10"}
KEPT = [  # (context, technique folder, stem suffix after "<singer>_"), all kept by the paper
    ("arpeggios", "belt", "arpeggios_belt_a"),
    ("arpeggios", "breathy", "arpeggios_breathy_e"),
    ("scales", "vocal_fry", "scales_vocal_fry_o"),
    ("long_tones", "straight", "long_straight_i"),
    ("long_tones", "vibrado", "long_vibrato_u"),
    ("excerpts", "spoken", "excerpts_spoken"),
    ("arpeggios", "lip_trill", "arpeggios_lip_trill_a"),
]
DROPPED_BY_VOWEL_FILTER = [
    ("excerpts", "straight", "row_straight"),
    ("excerpts", "vibrato", "caro_vibrato"),
]
IGNORED = [("arpeggios", "fast_forte", "arpeggios_fast_forte_a")]  # not one of the 10 classes


def _write(path: Path, seconds: float = 0.2, amp: float = 0.3) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SR * seconds)) / SR
    sf.write(path, amp * np.sin(2 * np.pi * 330 * t), SR)


@pytest.fixture(scope="module")
def vocalset_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vocalset")
    for folder, short in {**TRAIN_SINGERS, **TEST_SINGERS}.items():
        for context, technique, suffix in KEPT + DROPPED_BY_VOWEL_FILTER + IGNORED:
            _write(root / "FULL" / folder / context / technique / f"{short}_{suffix}.wav")
    return root


def test_labels_and_filters(vocalset_root: Path) -> None:
    source = VocalSet(str(vocalset_root))
    clips = source.clips()
    assert len(clips) == 8 * len(KEPT)
    assert [c.clip_id for c in clips] == sorted(c.clip_id for c in clips)
    belt = next(c for c in clips if c.clip_id == "female2/arpeggios/belt/f2_arpeggios_belt_a")
    assert belt.labels == dict(singer="f2", context="arpeggios", technique="belt", vowel="a")
    assert Path(belt.path or "").is_file()
    techniques = Counter(c.labels["technique"] for c in clips)
    assert techniques["vibrato"] == 8 and "fast_forte" not in techniques  # vibrado -> vibrato
    assert {c.labels["vowel"] for c in clips} == {"a", "e", "i", "o", "u", "spoken"}
    unfiltered = VocalSet(str(vocalset_root), paper_vowel_filter=False).clips()
    assert len(unfiltered) == 8 * (len(KEPT) + len(DROPPED_BY_VOWEL_FILTER))
    assert {c.labels["vowel"] for c in unfiltered} >= {"straight", "vibrato"}


def test_splits_follow_singers_and_are_deterministic(vocalset_root: Path) -> None:
    clips = VocalSet(str(vocalset_root)).clips()
    by_split = {s: {c.labels["singer"] for c in clips if c.split == s} for s in ("train", "val")}
    test = {c.labels["singer"] for c in clips if c.split == "test"}
    assert test == set(TEST_SINGERS.values())
    assert (by_split["train"] | by_split["val"]) == set(TRAIN_SINGERS.values())
    n_train_files = 3 * len(KEPT)
    assert sum(c.split == "val" for c in clips) == round(0.2 * n_train_files)
    assert clips == VocalSet(str(vocalset_root / "FULL")).clips()  # root may be FULL/ itself
    reseeded = VocalSet(str(vocalset_root), seed=0).clips()
    assert [c.split for c in reseeded] != [c.split for c in clips]
    assert [c.split == "test" for c in reseeded] == [c.split == "test" for c in clips]


def test_custom_test_singers(vocalset_root: Path) -> None:
    clips = VocalSet(str(vocalset_root), test_singers=("m1",), val_fraction=0.0).clips()
    assert {c.labels["singer"] for c in clips if c.split == "test"} == {"m1"}
    assert not any(c.split == "val" for c in clips)
    with pytest.raises(ValueError, match=r"test_singers: \['f99'\]"):
        VocalSet(str(vocalset_root), test_singers=("f99",))


def test_load_resamples(vocalset_root: Path) -> None:
    source = VocalSet(str(vocalset_root))
    wave = source.load(source.clips()[0], 16000)
    assert wave.dtype == np.float32 and abs(wave.size - int(0.2 * 16000)) <= 1


def test_bad_root_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nowhere"):
        VocalSet(str(tmp_path / "nowhere"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty"):
        VocalSet(str(tmp_path / "empty"))


@pytest.mark.parametrize(
    ("write", "reason"),
    [
        (lambda p: p.write_bytes(b"RIFF not really"), "unreadable"),
        (lambda p: _write(p, amp=0.0), "silent"),
        (lambda p: _write(p, seconds=0.01), "too short"),
    ],
)
def test_bad_files_raise_bad_audio(tmp_path: Path, write, reason: str) -> None:
    path = tmp_path / "FULL" / "male1" / "scales" / "trill" / "m1_scales_trill_a.wav"
    path.parent.mkdir(parents=True)
    write(path)
    source = VocalSet(str(tmp_path), test_singers=())
    with pytest.raises(BadAudioError, match=rf"m1_scales_trill_a\.wav.*{reason}"):
        source.load(source.clips()[0], 16000)
