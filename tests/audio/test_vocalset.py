"""VocalSet parsing, filtering and splits on a small fake tree (saelight/audio/vocalset.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from saelight.audio import (
    SPLITS,
    VOCALSET_TECHNIQUES,
    BadAudioError,
    BadSourceError,
    Clip,
    VocalSet,
)
from saelight.audio.vocalset import choose_val_singers

SR = 44100
TEST_SINGERS = {"female2": "f2", "female8": "f8", "male3": "m3", "male5": "m5", "male10": "m10"}
ALL_SINGERS = {f"female{i}": f"f{i}" for i in range(1, 10)} | {
    f"male{i}": f"m{i}" for i in range(1, 12)
}  # real VocalSet naming: 9 female and 11 male singers, 5 of them the official test singers
TRAIN_POOL = {short for folder, short in ALL_SINGERS.items() if folder not in TEST_SINGERS}
KEPT = [  # (context, technique folder, stem suffix after "<singer>_"), all kept by the paper
    ("arpeggios", "belt", "arpeggios_belt_a"),
    ("arpeggios", "breathy", "arpeggios_breathy_e"),
    ("scales", "vocal_fry", "scales_vocal_fry_o"),
    ("long_tones", "straight", "long_straight_i"),
    ("long_tones", "vibrado", "long_vibrato_u"),
    ("excerpts", "spoken", "excerpts_spoken"),
    ("arpeggios", "lip_trill", "arpeggios_lip_trill_a"),
]
RARE = {  # techniques only two non-test singers have: val and train must each get one of them
    ("long_tones", "inhaled", "long_inhaled_a"): ("female1", "male4"),
    ("long_tones", "trillo", "long_trillo_e"): ("female3", "male7"),
    ("scales", "trill", "scales_trill_o"): ("female5", "male11"),
}
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
    for folder, short in ALL_SINGERS.items():
        for context, technique, suffix in KEPT + DROPPED_BY_VOWEL_FILTER + IGNORED:
            _write(root / "FULL" / folder / context / technique / f"{short}_{suffix}.wav")
    for (context, technique, suffix), folders in RARE.items():
        for folder in folders:
            short = ALL_SINGERS[folder]
            _write(root / "FULL" / folder / context / technique / f"{short}_{suffix}.wav")
    return root


def _singers_by_split(clips: list[Clip]) -> dict[str, set[str]]:
    return {s: {c.labels["singer"] for c in clips if c.split == s} for s in SPLITS}


def test_labels_and_filters(vocalset_root: Path) -> None:
    source = VocalSet(str(vocalset_root))
    clips = source.clips()
    n_rare = 2 * len(RARE)
    assert len(clips) == 20 * len(KEPT) + n_rare
    assert [c.clip_id for c in clips] == sorted(c.clip_id for c in clips)
    belt = next(c for c in clips if c.clip_id == "female2/arpeggios/belt/f2_arpeggios_belt_a")
    assert belt.labels == dict(singer="f2", context="arpeggios", technique="belt", vowel="a")
    assert Path(belt.path or "").is_file()
    techniques = Counter(c.labels["technique"] for c in clips)
    assert techniques["vibrato"] == 20 and "fast_forte" not in techniques  # vibrado -> vibrato
    assert set(techniques) == set(VOCALSET_TECHNIQUES)
    assert {c.labels["vowel"] for c in clips} == {"a", "e", "i", "o", "u", "spoken"}
    unfiltered = VocalSet(str(vocalset_root), paper_vowel_filter=False).clips()
    assert len(unfiltered) == 20 * (len(KEPT) + len(DROPPED_BY_VOWEL_FILTER)) + n_rare
    assert {c.labels["vowel"] for c in unfiltered} >= {"straight", "vibrato"}


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_val_is_whole_train_singers_covering_every_technique(
    vocalset_root: Path, seed: int
) -> None:
    source = VocalSet(str(vocalset_root), seed=seed)
    clips = source.clips()
    singers = _singers_by_split(clips)
    assert singers["test"] == set(TEST_SINGERS.values())  # the official test singers
    assert len(singers["val"]) == 3 and singers["val"] == set(source.chosen_val_singers)
    assert singers["train"] | singers["val"] == TRAIN_POOL
    assert not singers["train"] & singers["val"]  # singer-level: nobody in two splits
    assert {s[0] for s in singers["val"]} == {"f", "m"}  # both sexes held out
    for split in ("train", "val"):
        techniques = {c.labels["technique"] for c in clips if c.split == split}
        assert techniques == set(VOCALSET_TECHNIQUES), split
    assert clips == VocalSet(str(vocalset_root), seed=seed).clips()  # deterministic


def test_val_choice_follows_the_seed(vocalset_root: Path) -> None:
    chosen = {seed: VocalSet(str(vocalset_root), seed=seed).chosen_val_singers for seed in range(4)}
    assert len({tuple(v) for v in chosen.values()}) > 1
    clips = VocalSet(str(vocalset_root)).clips()
    assert clips == VocalSet(str(vocalset_root / "FULL")).clips()  # root may be FULL/ itself
    fingerprint = VocalSet(str(vocalset_root)).fingerprint()
    assert fingerprint["val_singers"] == VocalSet(str(vocalset_root)).chosen_val_singers


def test_custom_test_and_val_singers(vocalset_root: Path) -> None:
    clips = VocalSet(str(vocalset_root), test_singers=("m1",), n_val_singers=0).clips()
    assert _singers_by_split(clips)["test"] == {"m1"}
    assert not any(c.split == "val" for c in clips)
    named = VocalSet(str(vocalset_root), val_singers=("m4", "f1"))
    assert _singers_by_split(named.clips())["val"] == {"f1", "m4"} == set(named.chosen_val_singers)
    with pytest.raises(BadSourceError, match=r"test_singers: \['f99'\] not found"):
        VocalSet(str(vocalset_root), test_singers=("f99",))
    with pytest.raises(BadSourceError, match=r"val_singers: \['f2'\] are also test_singers"):
        VocalSet(str(vocalset_root), val_singers=("f2",))
    with pytest.raises(BadSourceError, match="would leave train no singer"):
        VocalSet(str(vocalset_root), n_val_singers=15)
    with pytest.raises(BadSourceError, match="n_val_singers must be >= 0"):
        VocalSet(str(vocalset_root), n_val_singers=-1)


def test_val_choice_keeps_a_technique_only_one_singer_has_in_train(
    caplog: pytest.LogCaptureFixture,
) -> None:
    techniques_of = {"f1": {"belt", "trill"}, "m1": {"belt"}, "f2": {"belt"}, "m2": {"belt"}}
    for seed in range(5):
        chosen = choose_val_singers(techniques_of, 1, seed)
        assert len(chosen) == 1 and chosen != ["f1"]  # f1 alone has trill: train keeps it
    assert "have no ['trill'] files" in caplog.text
    assert choose_val_singers(techniques_of, 0, 0) == []


def test_load_resamples(vocalset_root: Path) -> None:
    source = VocalSet(str(vocalset_root))
    wave = source.load(source.clips()[0], 16000)
    assert wave.dtype == np.float32 and abs(wave.size - int(0.2 * 16000)) <= 1
    assert source.native_rate(source.clips()[0]) == SR  # 44.1 kHz, the rate eGeMAPS is taken at


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
    source = VocalSet(str(tmp_path), test_singers=(), n_val_singers=0)
    with pytest.raises(BadAudioError, match=rf"m1_scales_trill_a\.wav.*{reason}"):
        source.load(source.clips()[0], 16000)
