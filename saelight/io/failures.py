"""The one place that turns an exception into the one line the console script prints.

A user's mistake (a bad value, a missing or unreadable file, a full or read-only disk, a YAML
typo, a checkpoint of another grid) gets one line naming the file or field and exit status 2;
anything else is a bug and keeps its traceback. `--debug` (or SAELIGHT_DEBUG=1) always shows it.
Exception classes of Lightning, omegaconf and torch are recognised by name, so this module
imports none of them.
"""

from __future__ import annotations

import errno
import os
import re
import traceback
from argparse import ArgumentError
from pathlib import Path

from saelight.io.errors import SaelightError

PACKAGE = Path(__file__).resolve().parents[1]
"""saelight's source folder: a ValueError raised in it is a checked value, not a bug."""

_OS_REASONS = {
    errno.ENOSPC: "no space left on the device",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.ENOENT: "no such file or directory",
    errno.EISDIR: "is a directory, expected a file",
    errno.ENOTDIR: "a path component is a file, expected a directory",
    errno.EEXIST: "already exists",
    errno.EDQUOT: "disk quota exceeded",
}


def failure_line(error: BaseException) -> str | None:
    """The one line for a user's error, or None for a bug (the caller re-raises it)."""
    if isinstance(error, SaelightError):
        return str(error)
    if isinstance(error, ArgumentError):
        return argument_error_line(error)
    if isinstance(error, OSError) and error.errno in _OS_REASONS:
        return os_error_line(error)
    names = {f"{c.__module__}.{c.__name__}" for c in type(error).__mro__}
    if any(n.startswith("omegaconf.") for n in names):
        return f"config interpolation: {_first_line(error)}"
    if any(n.startswith("yaml.") for n in names):
        return f"YAML syntax error: {_first_line(error)}"
    if any(n.endswith(".MisconfigurationException") for n in names):
        return f"trainer configuration: {_first_line(error)}"
    if "_pickle.UnpicklingError" in names or "pickle.UnpicklingError" in names:
        return (
            "the checkpoint holds pickled objects that a weights-only load refuses (not a "
            "saelight checkpoint, or an unsafe one): its code was not run"
        )
    if isinstance(error, RuntimeError) and "loading state_dict" in str(error):
        return (
            "the checkpoint does not match this config's SAE grid "
            f"({_state_dict_reason(str(error))}); resume with the config it was trained with"
        )
    if isinstance(error, ValueError) and _raised_in_saelight(error):
        return str(error)
    return None


def argument_error_line(error: ArgumentError) -> str:
    """jsonargparse's nested message ('Parser key "data.cache": ... Parser key "protocol": ...
    Expected ...') as one line: the dotted field, then the last line's reason."""
    message = str(error)
    keys = re.findall(r'Parser key "([^"]+)"', message)
    lines = [line for line in message.splitlines() if line.strip()]
    last = lines[-1] if lines else message
    reason = re.sub(r'Parser key "[^"]+":\s*', "", last).strip()
    return f"{'.'.join(keys)}: {reason}" if keys else reason


def os_error_line(error: OSError) -> str:
    """'<path>: <reason> (errno N)', the path being the file the system call was given; an
    error saelight re-raised with its own message and no path keeps that message."""
    code = errno.errorcode[error.errno]
    if error.filename is None and error.strerror and error.strerror != os.strerror(error.errno):
        return f"{error.strerror} ({code})"
    where = error.filename if error.filename is not None else "?"
    if error.filename2 is not None:
        where = f"{where} -> {error.filename2}"
    return f"{where}: {_OS_REASONS[error.errno]} ({code})"


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return "; ".join(lines[:2]) if lines else type(error).__name__


def _state_dict_reason(message: str) -> str:
    found = re.findall(
        r"(size mismatch for [\w.]+|Unexpected key\(s\)[^.]*|Missing key\(s\))", message
    )
    return found[0] if found else "its tensors differ"


def _raised_in_saelight(error: BaseException) -> bool:
    if error.__traceback__ is None:
        return False
    origin = traceback.extract_tb(error.__traceback__)[-1].filename
    return Path(origin).resolve().is_relative_to(PACKAGE)
