"""Who extracts which clips (`todo`), and the merge that checks the shards tile the clips once."""

import itertools
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from saelight.cache import CacheCorruptError, CacheReader
from saelight.cache.format import part_name
from saelight.cache.parts import covered, merge, todo


def test_covered_merges_touching_and_overlapping_runs() -> None:
    shards = [[{"clip_start": 4, "clip_end": 6}], [{"clip_start": 0, "clip_end": 2}]]
    shards.append([{"clip_start": 2, "clip_end": 3}, {"clip_start": 5, "clip_end": 9}])
    assert covered(shards) == [(0, 3), (4, 9)]


@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_ranks_split_what_is_left_exactly_once(world: int) -> None:
    rng = np.random.default_rng(world)
    for _ in range(20):
        cuts = sorted(rng.choice(np.arange(1, 23), size=4, replace=False).tolist())
        done = [(a, b) for a, b in itertools.pairwise([0, *cuts, 23])][::2]
        runs = [r for rank in range(world) for r in todo(23, 5, rank, world, done)]
        clips = [c for a, b in runs + done for c in range(a, b)]
        assert sorted(clips) == list(range(23))
        assert all(a // 5 == (b - 1) // 5 for a, b in runs)  # a run never crosses a block
    assert todo(23, 5, 1, 2, []) == [(5, 10), (15, 20)]


def test_merge_numbers_rows_across_parts(tmp_path: Path, kit: SimpleNamespace) -> None:
    one = kit.write_part(tmp_path, 1, [(3, 6)], 8)
    zero = kit.write_part(tmp_path, 0, [(0, 3), (6, 8)], 8)
    parts = [(part_name(0), zero), (part_name(1), one)]
    manifest = merge(tmp_path, kit.header(8), parts, 8)
    assert [s["clip_start"] for s in manifest["shards"]] == [0, 3, 6]
    assert not list(tmp_path.glob("manifest.rank*"))
    reader = CacheReader(tmp_path, verify=True)  # renumbered tables carry new checksums
    expected = np.concatenate([kit.rows_of(c) for c in range(8)])
    np.testing.assert_array_equal(reader.read(np.arange(len(reader)))[:, 0], expected)
    np.testing.assert_array_equal(reader.read(np.arange(len(reader)))[:, 1], -expected)
    assert reader.metadata["clip_index"].tolist() == [c for c in range(8) for _ in range(c % 3)]


@pytest.mark.parametrize(
    ("runs", "message"),
    [
        ([(0, 3), (4, 8)], "shards gap at clip 3"),
        ([(0, 4), (3, 8)], "shards overlap at clip 3"),
        ([(0, 3), (3, 6)], r"cover clips \[0, 6\) but the source has 8"),
    ],
)
def test_merge_refuses_shards_that_do_not_tile_the_clips(
    tmp_path: Path, kit: SimpleNamespace, runs: list[tuple[int, int]], message: str
) -> None:
    parts = [(part_name(i), kit.write_part(tmp_path, i, [run], 8)) for i, run in enumerate(runs)]
    with pytest.raises(CacheCorruptError, match=message):
        merge(tmp_path, kit.header(8), parts, 8)
    assert not (tmp_path / "manifest.json").exists()
