"""One writer per cache directory: the lock, its refusal message, a killed holder, and two
`saelight cache` processes started on one cache."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from saelight.cache.lock import CacheLock, CacheLockedError

ROOT = Path(__file__).parents[2]
TINY = ROOT / "tests" / "data" / "tiny.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
HOLD = "from saelight.cache.lock import CacheLock; import sys, time\n"
HOLD += "CacheLock(sys.argv[1]).acquire(); print('held', flush=True); time.sleep(600)\n"


def test_a_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    with CacheLock(tmp_path):
        with pytest.raises(CacheLockedError, match=rf"written by pid {os.getpid()} on "):
            CacheLock(tmp_path, on_locked="error").acquire()
        with pytest.raises(CacheLockedError, match="on_locked: wait"):
            CacheLock(tmp_path, poll_s=0.05, timeout_s=0.2).acquire()
    with CacheLock(tmp_path, on_locked="error") as lock:  # released: free again
        assert lock.holder()["pid"] == os.getpid()


def test_a_killed_holder_does_not_block_the_next_run(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE)
    assert holder.stdout is not None and holder.stdout.readline().strip() == b"held"
    with pytest.raises(CacheLockedError, match=f"pid {holder.pid}"):
        CacheLock(tmp_path, on_locked="error").acquire()
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    with CacheLock(tmp_path, on_locked="error", timeout_s=5):  # no stale lock left behind
        pass


def test_ranks_of_one_job_share_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-1")
    with CacheLock(tmp_path, rank=0):
        with CacheLock(tmp_path, rank=1, timeout_s=1):  # rank 1 of the same job goes ahead
            pass
        monkeypatch.setenv("TORCHELASTIC_RUN_ID", "job-2")
        with pytest.raises(CacheLockedError):
            CacheLock(tmp_path, rank=1, poll_s=0.05, timeout_s=0.3).acquire()


def _cache(cache: Path, models: Path) -> subprocess.Popen:
    args = ["--config", str(TINY), "--data.cache.directory", str(cache)]
    args += ["--data.cache.backbone.init_args.save_dir", str(models)]
    return subprocess.Popen(
        [SAELIGHT, "cache", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_two_cache_processes_on_one_directory_extract_once(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    held = CacheLock(cache).acquire()  # both start while a third party writes
    runs = [_cache(cache, tmp_path / f"models{i}") for i in range(2)]
    time.sleep(3)
    assert all(r.poll() is None for r in runs)  # both wait
    held.release()
    outs = [r.communicate(timeout=600) for r in runs]
    assert [r.returncode for r in runs] == [0, 0], [e[-2000:] for _, e in outs]
    extracted = [err for _, err in outs if "extracting clips into" in err]
    assert len(extracted) == 1  # the other one found the cache complete
    single = _cache(tmp_path / "single", tmp_path / "models_single")
    assert single.wait(timeout=600) == 0
    ours, theirs = (
        json.loads((d / "manifest.json").read_text()) for d in (cache, tmp_path / "single")
    )
    assert ours["n_rows"] == theirs["n_rows"] and ours["complete"]
    assert [s["files"] for s in ours["shards"]] == [s["files"] for s in theirs["shards"]]
