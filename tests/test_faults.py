"""Faults of `saelight cache` on the tiny config: SIGKILL mid-extraction, disk full, read-only
directory, corrupt or truncated files. Each gives a clear error; nothing committed is lost or reused
unchecked, and a rerun finishes with every clip exactly once."""

import contextlib
import copy
import errno
import json
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import saelight.io.atomic as atomic
from saelight.cache import ActivationCache, CacheCorruptError, CacheReader
from saelight.cli import main
from saelight.commands.train import make_cli

CONFIG = Path(__file__).parent / "data" / "tiny_csv.yaml"


def shared_args(base: Path) -> list[str]:
    return [
        "--config", str(CONFIG), "--trainer.default_root_dir", str(base),
        "--data.cache.directory", str(base / "tiny_cache"),
        "--data.cache.backbone.init_args.save_dir", str(base / "tiny_models"),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> ActivationCache:
    """The tiny config's ActivationCache, its cache built once per session (shared, read-only)."""
    args = shared_args(tmp_path_factory.getbasetemp())
    main(["cache", *args])
    return make_cli(args, run=False).datamodule.cache


def elsewhere(recipe: ActivationCache, directory: Path, **changes: object) -> ActivationCache:
    cache = copy.copy(recipe)
    cache.directory = directory
    cache.__dict__.update(changes)
    return cache


def assert_every_clip_once_and_same_rows(ours: CacheReader, reference: CacheReader) -> None:
    assert ours.metadata["clip_index"].tolist() == list(range(24))
    pd.testing.assert_frame_equal(ours.metadata, reference.metadata)
    rows = np.arange(len(reference))  # 1e-6: the killed processes ran with other thread counts
    np.testing.assert_allclose(ours.read(rows), reference.read(rows), rtol=1e-5, atol=1e-6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_cache_killed_mid_extraction_resumes_every_clip_once(
    recipe: ActivationCache, tmp_path: Path
) -> None:
    """Two processes (torchrun's environment contract) are SIGKILLed together once a shard is
    committed; one process then finishes the cache."""
    base = Path(recipe.directory).parent
    args = [*shared_args(base), "--data.cache.directory", str(tmp_path / "c")]
    args += ["--data.cache.clips_per_shard", "1"]  # not part of the recipe: same cache
    env = {**os.environ, "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1"}
    env["MASTER_PORT"] = str(free_port())
    cmd = shlex.join([sys.executable, "-m", "saelight.cli", "cache", *args])
    ranks = " & ".join(f"RANK={r} LOCAL_RANK={r} {cmd}" for r in (0, 1))
    job = subprocess.Popen(  # one process group, as a node or job that dies at once
        ["sh", "-c", f"{ranks} & wait"],
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    try:
        while not any(_committed(p) for p in (tmp_path / "c").glob("manifest.rank*.json")):
            assert time.monotonic() < deadline and job.poll() is None
            time.sleep(0.002)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL
    assert not json.loads((tmp_path / "c" / "manifest.json").read_text())["complete"]

    resumed = elsewhere(recipe, tmp_path / "c", clips_per_shard=1).build(progress=False)
    assert_every_clip_once_and_same_rows(resumed, CacheReader(recipe.directory))


def _committed(part: Path) -> bool:
    try:
        return bool(json.loads(part.read_text())["shards"])
    except (json.JSONDecodeError, OSError):
        return False


def test_disk_full_keeps_committed_shards_and_a_rerun_finishes(
    recipe: ActivationCache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = [0]
    real_fsync = os.fsync

    def fill_up(fd: int) -> None:
        calls[0] += 1
        if calls[0] > 5:  # header, then shard 0's 3 files and its part manifest, then full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(atomic.os, "fsync", fill_up)
    cache = elsewhere(recipe, tmp_path / "c")
    with pytest.raises(OSError, match=r"clips \[5, 10\) .*No space left on device.*kept.*rerun"):
        cache.build(progress=False)
    part = json.loads((tmp_path / "c" / "manifest.rank0.json").read_text())
    assert [s["clip_end"] for s in part["shards"]] == [5]
    assert not [p for p in (tmp_path / "c").rglob(".*tmp*")]
    monkeypatch.undo()
    assert_every_clip_once_and_same_rows(cache.build(progress=False), CacheReader(recipe.directory))


def _read_only(path: Path) -> list[str]:
    """Make `path` unwritable, even for root (chattr +i); the command that undoes it."""
    if os.geteuid() != 0:
        path.chmod(stat.S_IRUSR | stat.S_IXUSR)
        return ["chmod", "u+w", str(path)]
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
        pytest.skip("running as root without chattr: cannot make a read-only directory")
    return ["chattr", "-i", str(path)]


def test_read_only_directory(recipe: ActivationCache, tmp_path: Path) -> None:
    shutil.copytree(recipe.directory, tmp_path / "done")
    (tmp_path / "new").mkdir()
    undo = [_read_only(tmp_path / "done"), _read_only(tmp_path / "new")]
    try:
        reader = elsewhere(recipe, tmp_path / "done").build(progress=False)
        assert len(reader) == 24  # a complete cache is still read
        message = r"cannot write the activation cache in .*new: .*; point data.cache.directory"
        with pytest.raises(PermissionError, match=message):
            elsewhere(recipe, tmp_path / "new").build(progress=False)
    finally:
        for command in undo:
            subprocess.run(command, check=True)


def test_corrupt_or_missing_shards_are_refused(recipe: ActivationCache, tmp_path: Path) -> None:
    cache = elsewhere(recipe, tmp_path / "c")
    shutil.copytree(recipe.directory, cache.directory)
    shard = cache.directory / "layer_02" / "shard_00005.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # one flipped bit of one activation
    shard.write_bytes(bytes(data))
    with pytest.raises(CacheCorruptError, match="layer_02/shard_00005.npy fails its sha256"):
        cache.open(verify=True)
    dm = make_cli(shared_args(Path(recipe.directory).parent), run=False).datamodule
    dm.cache = cache
    with pytest.raises(CacheCorruptError, match="shard_00005.npy fails its sha256"):
        dm.setup("fit")  # data.verify_checksums is on by default
    shard.write_bytes(bytes(data[:100]))  # truncated
    with pytest.raises(CacheCorruptError, match="shard_00005.npy is truncated or not a .npy"):
        cache.open().read(np.arange(24))
    shard.unlink()
    with pytest.raises(
        CacheCorruptError, match="shard_00005.npy listed in the manifest is missing"
    ):
        cache.open()


@pytest.mark.parametrize("name", ["manifest.json", "manifest.rank0.json"])
def test_truncated_manifest_is_an_error_and_nothing_is_overwritten(
    recipe: ActivationCache, tmp_path: Path, name: str
) -> None:
    cache = elsewhere(recipe, tmp_path / "c")
    shutil.copytree(recipe.directory, cache.directory)
    manifest = cache.directory / "manifest.json"
    if name != "manifest.json":  # an interrupted extraction: the part is what resumes it
        text = json.loads(manifest.read_text())
        manifest.write_text(json.dumps({**text, "complete": False, "shards": []}))
    (cache.directory / name).write_text('{"format_version": 1, "backbone": {"mo')
    before = {p: p.read_bytes() for p in cache.directory.rglob("*") if p.is_file()}
    with pytest.raises(CacheCorruptError, match=f"{name} is not valid JSON.*truncated or corrupt"):
        cache.build(progress=False)
    assert {p: p.read_bytes() for p in cache.directory.rglob("*") if p.is_file()} == before
