"""Group-to-split assignment and split-name aliases (saelight/audio/base.py)."""

from __future__ import annotations

import pytest

from saelight.audio import SPLITS, VOCALSET_TECHNIQUES, assign_group_splits, carve_val
from saelight.audio.base import canonical_split


def test_group_assignment_is_deterministic_and_order_free() -> None:
    groups = [f"spk{i % 10}" for i in range(100)]
    first = assign_group_splits(groups, val_fraction=0.1, test_fraction=0.2, seed=3)
    again = assign_group_splits(groups[::-1], val_fraction=0.1, test_fraction=0.2, seed=3)
    assert first == again
    assert sorted(first) == sorted(set(groups))
    counts = {s: sum(v == s for v in first.values()) for s in SPLITS}
    assert counts == {"train": 7, "val": 1, "test": 2}


def test_group_assignment_depends_on_seed() -> None:
    groups = [str(i) for i in range(50)]
    a = assign_group_splits(groups, val_fraction=0.2, test_fraction=0.2, seed=0)
    b = assign_group_splits(groups, val_fraction=0.2, test_fraction=0.2, seed=1)
    assert a != b


def test_small_group_counts_keep_every_requested_split() -> None:
    splits = assign_group_splits(["a", "b", "c"], val_fraction=0.1, test_fraction=0.1, seed=0)
    assert sorted(splits.values()) == ["test", "train", "val"]
    alone = assign_group_splits(["a"], val_fraction=0.1, test_fraction=0.2, seed=0)
    assert alone == {"a": "train"}


@pytest.mark.parametrize(("val", "test"), [(-0.1, 0.2), (0.5, 0.5), (0.1, 1.0)])
def test_bad_fractions_raise(val: float, test: float) -> None:
    with pytest.raises(ValueError, match="fraction"):
        assign_group_splits(["a", "b"], val_fraction=val, test_fraction=test, seed=0)


def test_canonical_split_aliases() -> None:
    assert [canonical_split(v, "col") for v in ("Train", "validation", "dev", " test ")] == [
        "train",
        "val",
        "val",
        "test",
    ]
    with pytest.raises(ValueError, match="col: unknown split 'holdout'"):
        canonical_split("holdout", "col")


def test_paper_technique_order() -> None:
    assert VOCALSET_TECHNIQUES[0] == "belt" and VOCALSET_TECHNIQUES[-1] == "vocal_fry"
    assert len(VOCALSET_TECHNIQUES) == 10
    assert list(VOCALSET_TECHNIQUES) == sorted(VOCALSET_TECHNIQUES)


def test_carve_val_moves_whole_train_groups_only() -> None:
    splits = ["train"] * 12 + ["test"] * 3
    groups = [f"g{i % 6}" for i in range(12)] + ["g0", "t1", "t2"]
    carved = carve_val(splits, groups, val_fraction=0.34, seed=0)
    assert carved[12:] == ["test"] * 3  # test rows are never touched, even g0's
    by_group: dict[str, set[str]] = {}
    for group, split in zip(groups[:12], carved[:12], strict=True):
        by_group.setdefault(group, set()).add(split)
    assert all(len(s) == 1 for s in by_group.values())
    assert sum(s == {"val"} for s in by_group.values()) == 2  # round(0.34 x 6)
    assert carved == carve_val(splits[::-1], groups[::-1], val_fraction=0.34, seed=0)[::-1]


def test_carve_val_keeps_given_val_and_zero_fraction() -> None:
    given = ["train", "val", "test", "train"]
    assert carve_val(given, list("abcd"), val_fraction=0.5, seed=0) == given
    assert carve_val(["train", "test"], ["a", "b"], val_fraction=0.0, seed=0) == ["train", "test"]
