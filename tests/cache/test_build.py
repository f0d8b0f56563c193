"""`ActivationCache.build` on a fake source and backbone (milliseconds): multi-process splits,
resumption after a crash or with another number of processes, and bad clips (skip or error)."""

import json
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

import saelight.cache.parts as parts_module
from saelight.audio.base import SPLITS, AudioSource, BadAudioError, Clip
from saelight.cache import ActivationCache, CacheMismatchError, CacheReader

SR = 1000


class FakeSource(AudioSource):
    """`n` clips of 0.2 s; the first sample of clip i is i / 1000, so the backbone can tell it."""

    def __init__(self, n: int = 11, not_audio: tuple[int, ...] = ()) -> None:
        self.n, self.not_audio = n, not_audio

    def clips(self) -> list[Clip]:
        return [
            Clip(f"c{i}", SPLITS[i % 3], {"parity": str(i % 2)}, {"index": float(i)}, f"c{i}.wav")
            for i in range(self.n)
        ]

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        i = int(clip.clip_id[1:])
        if i in self.not_audio:
            raise BadAudioError(f"{clip.path}: unreadable file or not audio (fake)")
        wave = np.sin(np.arange(200) * (0.1 + i / 50)).astype(np.float32)
        wave[0] = i / 1000
        return wave

    def fingerprint(self) -> dict[str, Any]:
        return {"class": "FakeSource", "n": self.n}


class FakeBackbone:
    """Two 4-wide "layers" of per-frame statistics; NaN for `nan_clips`, a crash at `crash_at`."""

    sample_rate, hidden_size, layers, min_samples, frame_rate_hz = SR, 4, [0, 1], 1, 10.0

    def __init__(self, nan_clips: tuple[int, ...] = (), crash_at: int | None = None) -> None:
        self.nan_clips, self.crash_at = nan_clips, crash_at
        self.seen: list[int] = []

    def identity(self) -> dict[str, Any]:
        return {"model": "fake", "hidden_size": self.hidden_size}

    def extract(self, waves: list[np.ndarray]) -> tuple[dict[int, torch.Tensor], torch.Tensor]:
        frames = np.stack([w.reshape(2, 100) for w in waves])  # (batch, 2 frames, 100)
        h = np.stack([frames.mean(2), frames.std(2), frames.max(2), frames.min(2)], axis=2)
        for b, w in enumerate(waves):
            index = round(float(w[0]) * 1000)
            if index == self.crash_at:
                raise RuntimeError(f"simulated crash at clip {index}")
            self.seen.append(index)
            if index in self.nan_clips:
                h[b] = np.nan
        hidden = torch.from_numpy(h.astype(np.float32))
        return {0: hidden, 1: 2 * hidden}, torch.ones(len(waves), 2, dtype=torch.bool)


def cache(directory: Path, backbone: FakeBackbone | None = None, **kwargs: Any) -> ActivationCache:
    source = kwargs.pop("source", FakeSource())
    kwargs.setdefault("clips_per_shard", 3)
    return ActivationCache(
        str(directory), source, backbone or FakeBackbone(), batch_size=2, **kwargs
    )  # type: ignore[arg-type]


def fake_ranks(monkeypatch: pytest.MonkeyPatch, rank: int, world: int) -> None:
    @contextmanager
    def group():  # noqa: ANN202
        yield rank, world, lambda ok: ok

    monkeypatch.setattr(parts_module, "process_group", group)


def assert_same_cache(a: CacheReader, b: CacheReader) -> None:
    rows = np.arange(len(b))
    assert len(a) == len(b)
    np.testing.assert_array_equal(a.read(rows), b.read(rows))
    pd.testing.assert_frame_equal(a.metadata, b.metadata)
    assert a.manifest["skipped"] == b.manifest["skipped"]


@pytest.fixture
def reference(tmp_path: Path) -> CacheReader:
    return cache(tmp_path / "reference").build(progress=False)


def test_single_process_cache_has_every_clip_once(reference: CacheReader) -> None:
    assert reference.manifest["complete"] and len(reference) == 11
    assert reference.metadata["clip_index"].tolist() == list(range(11))
    assert [(s["clip_start"], s["clip_end"]) for s in reference.shards] == [
        (0, 3), (3, 6), (6, 9), (9, 11)
    ]  # fmt: skip
    assert reference.read(np.array([4]))[0, 1, 0] == pytest.approx(2 * reference.read([4])[0, 0, 0])
    assert not list(reference.directory.glob("manifest.rank*.json"))


def test_two_ranks_split_the_clips_and_rank_zero_merges(
    tmp_path: Path, reference: CacheReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    backbones = {r: FakeBackbone() for r in (0, 1)}
    fake_ranks(monkeypatch, 1, 2)
    with pytest.raises(FileNotFoundError, match="no complete activation cache"):
        cache(tmp_path / "two", backbones[1]).build(progress=False)  # rank 0 has not merged yet
    fake_ranks(monkeypatch, 0, 2)
    reader = cache(tmp_path / "two", backbones[0]).build(progress=False)
    assert sorted(backbones[0].seen) == [0, 1, 2, 6, 7, 8]  # blocks 0 and 2 of 3 clips
    assert sorted(backbones[1].seen) == [3, 4, 5, 9, 10]  # blocks 1 and 3
    assert_same_cache(reader, reference)
    assert CacheReader(tmp_path / "two", verify=True).manifest["n_rows"] == 11
    assert not list((tmp_path / "two").glob("manifest.rank*.json"))


def test_crash_mid_extraction_resumes_without_redoing_or_losing_a_clip(
    tmp_path: Path, reference: CacheReader
) -> None:
    with pytest.raises(RuntimeError, match="simulated crash at clip 7"):
        cache(tmp_path / "c", FakeBackbone(crash_at=7)).build(progress=False)
    part = (tmp_path / "c" / "manifest.rank0.json").read_text()
    assert '"clip_end": 6' in part and '"clip_end": 9' not in part
    again = FakeBackbone()
    reader = cache(tmp_path / "c", again).build(progress=False)
    assert again.seen == [6, 7, 8, 9, 10]
    assert_same_cache(reader, reference)


def test_resume_with_another_number_of_processes(
    tmp_path: Path, reference: CacheReader, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ranks(monkeypatch, 2, 3)  # of 3 processes only rank 2 (blocks 2 and 5) got through
    with pytest.raises(FileNotFoundError, match="no complete activation cache"):
        cache(tmp_path / "c").build(progress=False)
    fake_ranks(monkeypatch, 1, 2)  # a rerun with 2 processes: rank 1 has blocks 1 and 3
    first = FakeBackbone()
    with pytest.raises(FileNotFoundError):
        cache(tmp_path / "c", first).build(progress=False)
    assert first.seen == [3, 4, 5, 9, 10]
    fake_ranks(monkeypatch, 0, 2)  # rank 0: block 0; block 2 is done
    last = FakeBackbone()
    reader = cache(tmp_path / "c", last).build(progress=False)
    assert last.seen == [0, 1, 2]
    assert_same_cache(reader, reference)


def test_complete_cache_is_reused_and_another_recipe_refused(
    tmp_path: Path, reference: CacheReader
) -> None:
    idle = FakeBackbone()
    assert len(cache(reference.directory, idle).build(progress=False)) == 11 and not idle.seen
    with pytest.raises(CacheMismatchError, match="field 'source.n' is 11 in the cache but 5"):
        cache(reference.directory, source=FakeSource(n=5)).build(progress=False)


def test_nonfinite_activations_are_skipped_and_recorded(tmp_path: Path) -> None:
    reader = cache(tmp_path / "c", FakeBackbone(nan_clips=(4,))).build(progress=False)
    assert 4 not in reader.metadata["clip_index"].tolist() and len(reader) == 10
    assert reader.manifest["skipped"] == [
        {"clip_index": 4, "clip_id": "c4", "path": "c4.wav", "reason": "non-finite activations"}
    ]
    assert np.isfinite(reader.read(np.arange(10))).all()


@pytest.mark.parametrize("bad", [3, 4])  # first or second clip of its backbone batch
def test_nonfinite_activations_stop_the_build_keeping_the_clips_before(
    tmp_path: Path, bad: int
) -> None:
    with pytest.raises(BadAudioError, match=f"c{bad}.wav: non-finite activations.*on_bad_input"):
        cache(tmp_path / "c", FakeBackbone(nan_clips=(bad,)), on_bad_input="error").build(
            progress=False
        )
    reader = cache(tmp_path / "c", FakeBackbone(nan_clips=(bad,))).build(progress=False)
    assert reader.metadata["clip_index"].tolist() == [i for i in range(11) if i != bad]


@pytest.mark.parametrize("bad", [2, 3])
def test_a_file_that_is_not_audio_is_skipped_or_stops_the_build(tmp_path: Path, bad: int) -> None:
    source = FakeSource(not_audio=(bad,))
    reader = cache(tmp_path / "skip", source=source).build(progress=False)
    reason = f"c{bad}.wav: unreadable file or not audio (fake)"
    assert [s["reason"] for s in reader.manifest["skipped"]] == [reason] and len(reader) == 10
    with pytest.raises(BadAudioError, match=f"c{bad}.wav: .*not audio.*on_bad_input: skip"):
        cache(tmp_path / "error", source=source, on_bad_input="error").build(progress=False)
    # Every clip before the bad one was kept: a rerun that skips it extracts only the rest.
    rest = FakeBackbone()
    reader = cache(tmp_path / "error", rest, source=source).build(progress=False)
    assert rest.seen == list(range(bad + 1, 11))
    assert reader.metadata["clip_index"].tolist() == [i for i in range(11) if i != bad]


def test_bad_options_are_refused() -> None:
    with pytest.raises(ValueError, match="on_bad_input must be 'skip' or 'error'"):
        cache(Path("unused"), on_bad_input="ignore")
    with pytest.raises(ValueError, match="pooling must be 'clip' or 'frame'"):
        cache(Path("unused"), pooling="token")


def test_shards_listed_in_an_unfinished_manifest_are_kept(
    tmp_path: Path, reference: CacheReader
) -> None:
    """An extraction begun by an older saelight (it listed shards in manifest.json) resumes."""
    shutil.copytree(reference.directory, tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    kept = manifest["shards"][:2]
    for shard in manifest["shards"][2:]:
        for rel in shard["files"]:
            (tmp_path / "c" / rel).unlink()
    n_rows = sum(s["rows"] for s in kept)
    (tmp_path / "c" / "manifest.json").write_text(
        json.dumps({**manifest, "complete": False, "shards": kept, "n_rows": n_rows})
    )
    rest = FakeBackbone()
    reader = cache(tmp_path / "c", rest).build(progress=False)
    assert rest.seen == [6, 7, 8, 9, 10]
    assert_same_cache(reader, reference)


def test_a_killed_writers_temp_files_are_removed_by_the_next_run(
    tmp_path: Path, reference: CacheReader
) -> None:
    """What a SIGKILL between write and rename leaves (`.<name>.tmp<pid>`) goes on the next
    build; a live process's temp file (this one's) is kept."""
    with pytest.raises(RuntimeError, match="simulated crash"):
        cache(tmp_path / "c", FakeBackbone(crash_at=7)).build(progress=False)
    gone = subprocess.Popen(["true"])
    gone.wait()
    directory = tmp_path / "c"
    dead = [directory / f".manifest.rank0.json.tmp{gone.pid}"]
    dead.append(directory / "layer_00" / f".shard_00006.npy.tmp{gone.pid}")
    alive = directory / f".notes.txt.tmp{os.getpid()}"
    for path in [*dead, alive]:
        path.write_bytes(b"half a file")
    assert_same_cache(cache(directory).build(progress=False), reference)
    assert not any(p.exists() for p in dead) and alive.exists()
