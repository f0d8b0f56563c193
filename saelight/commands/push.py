"""`saelight push RUN_DIR`: a run's exported SAEs and their model card, to the Hub or a folder."""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from saelight.io.atomic import remove_dead_temps
from saelight.io.errors import SaelightError

STAGING_PREFIX = "saelight-push-"
STAGING = re.compile(rf"{STAGING_PREFIX}(?P<pid>\d+)-\w+")
"""A push's staging folder in $TMPDIR: `saelight-push-<pid>-<random>`."""


def push(
    run: str,
    repo: str | None = None,
    local_dir: str | None = None,
    private: bool = False,
    revision: str | None = None,
) -> None:
    """Share a run's exported SAEs with a model card on the Hugging Face Hub (or in a folder).

    Args:
        run: the run directory (`trainer.default_root_dir`) holding `saes/` and `results/`.
        repo: Hub repo id ("org/name") to upload to; created when missing (needs a token).
        local_dir: write the folder that would be uploaded here instead; no network.
        private: create the repo private (only when `repo` does not exist yet).
        revision: the branch to upload to (created from the default branch when missing).
    """
    from saelight.report.push import HUB_ID, stage, upload, write_local

    if (repo is None) == (local_dir is None):
        raise SaelightError("give exactly one of --repo ORG/NAME and --local_dir DIR")
    if repo is not None and not HUB_ID.match(repo):
        raise SaelightError(f"--repo {repo!r} is not a Hub repo id (org/name)")
    # A killed push leaves its staging folder in $TMPDIR: the next push deletes those whose
    # pid is dead (the folder's name carries it).
    remove_dead_temps(tempfile.gettempdir(), STAGING)
    with tempfile.TemporaryDirectory(prefix=f"{STAGING_PREFIX}{os.getpid()}-") as tmp:
        staged = Path(tmp) / "repo"
        note = stage(run, staged, repo_id=repo, revision=revision)
        if note:
            print(f"saelight: note: {note}", file=sys.stderr)
        if local_dir is not None:
            write_local(staged, Path(local_dir))
        elif repo is not None:
            upload(staged, repo, private=private, revision=revision)
