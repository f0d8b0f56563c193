"""Atomic writes and what a killed writer leaves: temp names carry the pid, and only the entries
of dead pids are deleted by the next run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from saelight.io.atomic import (  # noqa: E402
    atomic_savefig,
    atomic_write_text,
    pid_alive,
    remove_dead_temps,
    replace_folder,
    staging_folder,
)


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_only_the_leftovers_of_dead_writers_are_removed(tmp_path: Path) -> None:
    dead, alive = dead_pid(), os.getpid()
    assert not pid_alive(dead) and pid_alive(alive)
    leftovers = [tmp_path / f".manifest.rank0.json.tmp{dead}", tmp_path / f".L01.old{dead}"]
    kept = [tmp_path / f".manifest.json.tmp{alive}", tmp_path / "manifest.json"]
    kept.append(tmp_path / "results.tmp123")  # not a name of ours: no leading dot
    for path in leftovers[:1] + kept:
        path.write_text("x")
    leftovers[1].mkdir()
    (leftovers[1] / "index.html").write_text("<html")
    removed = remove_dead_temps(tmp_path)
    assert sorted(removed) == sorted(leftovers)
    assert all(not p.exists() for p in leftovers) and all(p.exists() for p in kept)


def test_a_folder_is_swapped_in_whole(tmp_path: Path) -> None:
    target = tmp_path / "explorer" / "L01"
    target.mkdir(parents=True)
    (target / "index.html").write_text("old page")
    staged = staging_folder(target)
    assert staged.parent == target.parent and staged.name == f".L01.tmp{os.getpid()}"
    (staged / "index.html").write_text("new page")
    replace_folder(staged, target)
    assert (target / "index.html").read_text() == "new page"
    assert sorted(p.name for p in target.parent.iterdir()) == ["L01"]


def test_figures_and_text_leave_no_temp_file(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    atomic_savefig(fig, tmp_path / "fig.png", dpi=50)
    plt.close(fig)
    atomic_write_text(tmp_path / "a.md", "text")
    assert (tmp_path / "fig.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.md", "fig.png"]
