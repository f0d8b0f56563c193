"""The `saelight` console script: a table of verbs, each imported only when it runs.

`fit`, `validate` and `test` are LightningCLI's (`saelight.commands.train`); every other verb is
a typed function in its own module of `saelight/commands/`, parsed from its signature
(`saelight.commands.parser`). `saelight --help` reads the verbs' help lines from their source, so
it prints without importing Lightning, transformers or wandb.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from saelight.commands import TRAINER_COMMANDS, unknown_verb_line

VERBS = {
    "cache": "saelight.commands.cache:cache",
    "report": "saelight.commands.report:report",
    "inspect": "saelight.commands.inspect:inspect",
    "layer-sweep": "saelight.commands.layer_sweep:layer_sweep",
    "push": "saelight.commands.push:push",
    "splice": "saelight.commands.splice:splice",
    "steer": "saelight.commands.steer:steer",
    "explain": "saelight.commands.explain:explain",
    "planted": "saelight.commands.planted:planted",
}
"""Every verb beside LightningCLI's: name -> "module:function" (first docstring line = help)."""


def verb_function(name: str) -> Callable[..., Any]:
    """The function of verb `name`, importing its module now."""
    module, _, function = VERBS[name].partition(":")
    return getattr(importlib.import_module(module), function)


def help_line(name: str) -> str:
    """The first docstring line of verb `name`, read from its source without importing it."""
    module, _, function = VERBS[name].partition(":")
    spec = importlib.util.find_spec(module)
    assert spec is not None and spec.origin is not None, module
    tree = ast.parse(Path(spec.origin).read_text())
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            return (ast.get_docstring(node) or "").strip().splitlines()[0]
    raise LookupError(f"{module} has no function {function}")


def usage() -> str:
    """`saelight --help`: every verb, one line each."""
    lines = ["usage: saelight [--debug] <command> [options]   (`saelight <command> --help`)", ""]
    lines += ["training (LightningCLI: --config X.yaml, --print_config, dotted overrides):"]
    lines += [f"  {n:<12} {h}" for n, h in TRAINER_COMMANDS.items()]
    lines += ["", "commands:"]
    lines += [f"  {n:<12} {help_line(n)}" for n in VERBS]
    lines += ["", "Bad input prints one line; --debug (or SAELIGHT_DEBUG=1) adds the traceback."]
    return "\n".join(lines)


def main(args: list[str] | None = None) -> None:
    """Entry point of the console script (`args=None`: read `sys.argv`)."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = os.environ.get("SAELIGHT_DEBUG", "") not in ("", "0")
    if argv[:1] == ["--debug"]:
        argv, debug = argv[1:], True
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    from saelight.io.failures import failure_line

    if args is None:  # the console script: a redirected log gets no colour codes
        from saelight.io.plain_output import plain_when_redirected

        plain_when_redirected()
    if not argv[0].startswith("-") and argv[0] not in (*TRAINER_COMMANDS, *VERBS):
        verbs = [*TRAINER_COMMANDS, *VERBS]  # a typo: one line, before anything heavy loads
        print(f"saelight: error: {unknown_verb_line(argv[0], verbs)}", file=sys.stderr)
        raise SystemExit(2)
    try:
        if argv[0] in VERBS:
            from saelight.commands.parser import run_command

            run_command(argv[0], verb_function(argv[0]), argv[1:])
        else:
            from saelight.commands.train import make_cli

            if args is None:  # the console script: LightningCLI reads sys.argv itself
                sys.argv = [sys.argv[0], *argv]
            make_cli(None if args is None else argv)
    except Exception as error:  # noqa: BLE001 (sorting user errors from bugs)
        line = None if debug else failure_line(error)
        if line is None:
            raise
        print(f"saelight: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
