"""One writer per run directory: an exclusive `flock` on `<run>/.run.lock` for a whole fit.

The cache's lock (`saelight.cache.lock.CacheLock`), on the run directory
(`trainer.default_root_dir`): the `fit`, `validate` or `test` that holds it is the only process
writing checkpoints, exports, results, the report and `config.yaml` there; a second one stops
at once with one line naming the holder's pid. The kernel drops the lock when its holder dies,
kill -9 included, so a killed run never blocks its resume. A file of its own (not the cache's
`.lock`): a cache inside the run directory is locked separately by the same process.
Only the launcher's rank 0 takes it: the other ranks of a job write nothing of the run's own.
Once it holds the lock, a run deletes the temp files a killed writer left in the run's folders.
"""

from __future__ import annotations

import os
from pathlib import Path

from saelight.cache.lock import CacheLock, CacheLockedError
from saelight.io.atomic import remove_dead_temps
from saelight.io.layout import RunLayout

RUN_LOCK_FILE = ".run.lock"


class RunLockedError(CacheLockedError):
    """Another process is writing this run directory."""


def launcher_rank() -> int:
    """This process's rank as its launcher set it (torchrun, srun, Lightning's DDP launcher)."""
    for var in ("RANK", "SLURM_PROCID", "LOCAL_RANK"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value):
            return int(value)
    return 0


class RunLock(CacheLock):
    """Context manager holding a run directory's write lock (error at once if held).

    Args:
        directory: the run directory (created if missing).
    """

    def __init__(self, directory: str | Path) -> None:
        super().__init__(directory, rank=0, on_locked="error")
        self.path = Path(directory) / RUN_LOCK_FILE

    def acquire(self) -> RunLock:
        """Take the lock, then delete what a killed writer of this run left: temp files and
        staging folders whose pid is dead (`saelight.io.atomic.remove_dead_temps`)."""
        super().acquire()
        layout = RunLayout.of(self.path.parent)
        folders = [layout.root, layout.saes, layout.results, layout.report, layout.explorer]
        folders += [layout.checkpoints, *layout.saes.glob("*/")]
        for folder in folders:
            remove_dead_temps(folder)
        return self

    def _refuse(self) -> RunLockedError:
        h = self.holder()
        who = f"pid {h.get('pid', '?')} on {h.get('host', '?')}" if h else "another process"
        return RunLockedError(
            f"run directory {self.path.parent} is being written by {who} ({self.path})",
            hint="wait for that run to finish (or stop it), or give this one another "
            "--trainer.default_root_dir",
        )
