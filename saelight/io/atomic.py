"""Atomic file replacement: write a temp file beside the target, fsync, rename.

Readers (and a process killed mid-write) never see half a file, so every stage that writes a file a
later stage reads (cache shards, manifests, exports, results, reports, figures, explorer folders)
goes through here. Temp names end with the writer's pid (`.<name>.tmp<pid>`), so the next run
removes what a killed writer left (`remove_dead_temps`).
"""

from __future__ import annotations

import io
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

TMP_MARK = ".tmp"
OLD_MARK = ".old"
LEFTOVER = re.compile(r"\..+(?:\.tmp|\.old)(?P<pid>\d+)")
"""The name of a temp file or folder of this module: `.<name>.tmp<pid>` or `.<name>.old<pid>`."""


def atomic_write(path: str | Path, write: Callable[[BinaryIO], Any]) -> None:
    """Replace `path` atomically with what `write(file)` writes (a temp file beside it, flushed,
    fsynced, renamed; removed if anything fails), creating parent folders."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}{TMP_MARK}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` atomically, creating parent folders."""
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: str | Path, text: str) -> None:
    """`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def atomic_savefig(fig: Any, path: str | Path, **kwargs: Any) -> None:
    """`fig.savefig(path, **kwargs)` atomically (a matplotlib Figure; format from the suffix)."""
    path = Path(path)
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".") or "png", **kwargs)
    atomic_write_bytes(path, buffer.getvalue())


def staging_folder(target: str | Path) -> Path:
    """A new, empty folder beside `target` (same file system, so `replace_folder` is a rename),
    named after this process so that a later run can tell a dead writer's leftovers."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staged = target.with_name(f".{target.name}{TMP_MARK}{os.getpid()}")
    shutil.rmtree(staged, ignore_errors=True)
    staged.mkdir()
    return staged


def replace_folder(staged: Path, target: Path) -> None:
    """Puts the finished `staged` folder at `target`: readers see the old folder or the new one,
    never a half-written mix (the old one is moved aside, then deleted)."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}{OLD_MARK}{os.getpid()}")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
    staged.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this machine (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_dead_temps(folder: str | Path, pattern: re.Pattern[str] = LEFTOVER) -> list[Path]:
    """Deletes the entries of `folder` (files or folders) whose name matches `pattern` and whose
    writer (the pid the name ends with, group `pid`) no longer runs: what a killed process left
    behind. Only for folders whose writers all run on this machine: a pid is checked locally."""
    folder = Path(folder)
    removed = []
    for entry in folder.iterdir() if folder.is_dir() else ():
        found = pattern.fullmatch(entry.name)
        if found is None or pid_alive(int(found["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
