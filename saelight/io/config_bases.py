"""`base:` in a saelight YAML: a config that states only how it differs from another one.

    # configs/paper/hubert.yaml
    base: base.yaml            # relative to this file; a base may name its own base
    trainer: {default_root_dir: runs/paper/hubert}

`expand_config_args` replaces each `--config FILE` whose YAML has `base:` by one `--config` of
the merged YAML text (mappings merge key by key, lists and other values are replaced, a new
`class_path` replaces its whole mapping — as when LightningCLI merges several `--config` files),
so interpolations such as
`${trainer.default_root_dir}/cache` may refer to keys of the base.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from saelight.io.errors import SaelightError

BASE_KEY = "base"
CONFIG_KEYS = ("seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler")
"""Top-level keys of a run's config for LightningCLI; commands that read the same YAML accept
and ignore the ones they do not use."""
FIT_ONLY_KEYS = ("ckpt_path", "weights_only")


def load_with_bases(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The YAML of `path` merged over its chain of bases (the nearest base last)."""
    path = path.resolve()
    if path in seen:
        raise SaelightError(f"config {path}: `base:` chain loops ({' -> '.join(map(str, seen))})")
    if not path.is_file():
        raise SaelightError(f"config {path} does not exist")
    values = read_config(path)
    base = values.pop(BASE_KEY, None)
    if base is None:
        return values
    if not isinstance(base, str):
        raise SaelightError(f"config {path}: `base:` must be a file name, got {base!r}")
    return merge_configs(load_with_bases(path.parent / base, (*seen, path)), values)


def read_config(path: Path) -> dict[str, Any]:
    """The mapping a YAML config file holds; a syntax error, an empty file or a file that is
    not a mapping of sections is one line naming the file (and the line)."""
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise SaelightError(f"config {path}{where}: YAML syntax error ({problem})") from None
    except UnicodeDecodeError as error:
        raise SaelightError(f"config {path}: not UTF-8 text ({error.reason})") from None
    if values is None:
        raise SaelightError(
            f"config {path} is empty", hint=f"a config maps sections ({', '.join(CONFIG_KEYS)})"
        )
    if not isinstance(values, dict):
        raise SaelightError(
            f"config {path}: expected a mapping of sections ({', '.join(CONFIG_KEYS)}), got a "
            f"{type(values).__name__}"
        )
    return values


def merge_configs(base: Any, overlay: Any) -> Any:
    """`overlay` over `base`: mappings merge key by key, anything else is replaced — and so is a
    mapping whose `class_path` differs from the base's (another class: the base's `init_args`
    would not fit it), as LightningCLI does for a class given anew."""
    if not (isinstance(base, dict) and isinstance(overlay, dict)):
        return overlay
    if "class_path" in overlay and overlay["class_path"] != base.get("class_path"):
        return overlay
    merged = dict(base)
    for key, value in overlay.items():
        merged[key] = merge_configs(base[key], value) if key in base else value
    return merged


def expand_config_args(argv: list[str]) -> list[str]:
    """`argv` with every `--config FILE` (or `--config=FILE`) that has a `base:` merged inline."""
    out: list[str] = []
    i = 0
    while i < len(argv):
        arg = argv[i]
        value = None
        if arg == "--config" and i + 1 < len(argv):
            value, i = argv[i + 1], i + 2
        elif arg.startswith("--config="):
            value, i = arg.split("=", 1)[1], i + 1
        else:
            out.append(arg)
            i += 1
            continue
        path = Path(value)
        if "\n" not in value and _is_dir(path):  # a value with newlines is inline YAML
            raise SaelightError(f"--config {path} is a directory, expected a YAML file")
        if path.suffix in (".yaml", ".yml") and path.is_file():
            values = read_config(path)  # checked here: jsonargparse names neither file nor line
            if BASE_KEY in values:
                value = yaml.safe_dump(load_with_bases(path), sort_keys=False)
        out += ["--config", value]
    return out


def _is_dir(path: Path) -> bool:
    try:
        return path.is_dir()
    except OSError:  # a name too long for a path: inline YAML, not a directory
        return False
