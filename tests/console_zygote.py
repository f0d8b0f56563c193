"""Runs the installed `saelight` console script many times from one warm interpreter.

Each run of the script costs ~6 s of imports (Lightning, torch, transformers) before it reads
its arguments; a suite of 80 bad inputs would spend most of its time there. This driver imports
every verb once, then for each job forks a child that executes the console script file itself
(`runpy.run_path`, `__main__`, with the job's argv, working directory and its own stdout and
stderr files) and exits as the interpreter would: `SystemExit`'s code, or 1 after printing the
traceback of an uncaught exception. The children start from the same untouched interpreter, so a
job sees what a fresh `saelight` process sees, minus the import time.

Protocol: one JSON job per stdin line ({"argv", "cwd", "stdout", "stderr"}); one JSON line
{"returncode"} per job on stdout.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import traceback


def preload() -> None:
    """Every module a verb imports, so that no child pays for it."""
    import saelight.cli as cli
    import saelight.commands.train  # noqa: F401 (LightningCLI, the backbones, wandb)

    for verb in cli.VERBS:
        cli.verb_function(verb)


def child(script: str, job: dict) -> int:
    """The console script's run in this (forked) process; returns its exit status."""
    os.chdir(job["cwd"])
    for fd, name in ((1, job["stdout"]), (2, job["stderr"])):
        target = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(target, fd)
        os.close(target)
    sys.argv = [script, *job["argv"]]
    try:
        runpy.run_path(script, run_name="__main__")
        code = 0
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            code = done.code or 0
        else:
            print(done.code, file=sys.stderr)
            code = 1
    except BaseException:  # noqa: BLE001 (what the interpreter does with an uncaught exception)
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    return code


def main() -> None:
    script = sys.argv[1]
    preload()
    for line in sys.stdin:
        job = json.loads(line)
        pid = os.fork()
        if pid == 0:
            os._exit(child(script, job))
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        print(json.dumps({"returncode": code}), flush=True)


if __name__ == "__main__":
    main()
