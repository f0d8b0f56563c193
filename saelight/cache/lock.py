"""One writer per cache directory: an exclusive `flock` on `<cache>/.lock` while extracting.

The kernel drops a `flock` when its holder dies, kill -9 included, so a crashed run never blocks
the next one: there is no stale lock to clean up. The file records the holder's pid and job so a
second process can say who holds it. The ranks of one torchrun/DDP job share the lock: rank 0
takes it, and the other ranks only check that the holder is their own job (they write their own
shards, which rank 0 merges).
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path
from typing import Literal

from saelight.io.errors import SaelightError

LOCK_FILE = ".lock"


class CacheLockedError(SaelightError):
    """Another process is writing this cache."""


def job_id() -> str:
    """The identity shared by the ranks of one distributed job (the pid for a single process)."""
    run = os.environ.get("TORCHELASTIC_RUN_ID")
    if run:
        return f"torchelastic:{run}"
    if "MASTER_PORT" in os.environ and "WORLD_SIZE" in os.environ:
        master = os.environ.get("MASTER_ADDR", "localhost")
        return f"ddp:{master}:{os.environ['MASTER_PORT']}:{os.environ['WORLD_SIZE']}"
    if "SLURM_JOB_ID" in os.environ:
        return f"slurm:{os.environ['SLURM_JOB_ID']}:{os.environ.get('SLURM_STEP_ID', '')}"
    return f"pid:{socket.gethostname()}:{os.getpid()}"


def process_rank() -> int:
    """This process's global rank: torch.distributed's when initialised, else the launcher's."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    for var in ("RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0


class CacheLock:
    """Context manager holding the cache directory's write lock.

    Args:
        directory: the cache directory (created if missing).
        rank: this process's rank in its job (only rank 0 takes the lock).
        on_locked: "wait" until the holder finishes, or "error" at once, naming its pid.
        poll_s: seconds between attempts while waiting.
        timeout_s: give up waiting after this long (None: wait as long as it takes).
    """

    def __init__(
        self,
        directory: str | Path,
        rank: int = 0,
        on_locked: Literal["wait", "error"] = "wait",
        poll_s: float = 1.0,
        timeout_s: float | None = None,
    ) -> None:
        if on_locked not in ("wait", "error"):
            raise SaelightError(f"cache.on_locked must be 'wait' or 'error', got {on_locked!r}")
        self.path = Path(directory) / LOCK_FILE
        self.rank, self.on_locked = rank, on_locked
        self.poll_s, self.timeout_s = poll_s, timeout_s
        self._fd: int | None = None

    def holder(self) -> dict[str, object]:
        """{"pid", "host", "job"} of the last process that took the lock ({} if unknown)."""
        try:
            return json.loads(self.path.read_text() or "{}")
        except (OSError, ValueError):
            return {}

    def _try(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        info = {"pid": os.getpid(), "host": socket.gethostname(), "job": job_id()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode())
        self._fd = fd
        return True

    def _held_by_my_job(self) -> bool:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:  # someone holds it exclusively: is it rank 0 of this job?
            return self.holder().get("job") == job_id()
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def _refuse(self) -> CacheLockedError:
        h = self.holder()
        who = f"pid {h.get('pid', '?')} on {h.get('host', '?')}" if h else "another process"
        return CacheLockedError(
            f"cache {self.path.parent} is being written by {who} ({self.path})",
            hint="wait for it to finish, or set cache.on_locked: wait",
        )

    def __enter__(self) -> CacheLock:
        return self.acquire()

    def acquire(self) -> CacheLock:
        """Take the lock (rank 0) or wait for this job's rank 0 to hold it (other ranks)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        start = time.monotonic()
        while True:
            ok = self._try() if self.rank == 0 else self._held_by_my_job()
            if ok:
                return self
            waited = time.monotonic() - start
            late = self.timeout_s is not None and waited >= self.timeout_s
            # Ranks > 0 wait for their rank 0 to take the lock; only rank 0 may refuse at once.
            if (self.on_locked == "error" and self.rank == 0) or late:
                raise self._refuse()
            time.sleep(self.poll_s)

    def __exit__(self, *exc: object) -> None:
        self.release()

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
