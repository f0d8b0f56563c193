"""A verb's command line, built from its function's typed signature and Google docstring.

Each command in `saelight/commands/` is one typed function: its defaults and help live in that
signature and docstring, nowhere else. jsonargparse reads them here.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Callable
from typing import Any, get_type_hints

from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser

from saelight.io.config_bases import CONFIG_KEYS, FIT_ONLY_KEYS, expand_config_args


def docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(description, {parameter: help}) from a Google docstring."""
    from docstring_parser import parse

    doc = parse(inspect.getdoc(fn) or "")
    text = "\n\n".join(t for t in (doc.short_description, doc.long_description) if t)
    return text, {p.arg_name: p.description or "" for p in doc.params}


def _is_datamodule(hint: Any) -> bool:
    """A LightningDataModule class (only possible once its module imported Lightning)."""
    lightning = sys.modules.get("lightning.pytorch")
    return (
        lightning is not None
        and isinstance(hint, type)
        and issubclass(hint, lightning.LightningDataModule)
    )


def command_parser(name: str, fn: Callable[..., Any]) -> ArgumentParser:
    """The parser of one subcommand, built from `fn`'s signature.

    A `list` parameter without a default is positional (one or more values); other parameters
    are `--name value` options (required when they have no default); `bool` ones are `--x` /
    `--no_x` flags; a LightningDataModule parameter takes the `data:` section of a config
    (`--config X.yaml`, `--data.…` overrides), the other sections of the same YAML are accepted
    and ignored.
    """
    description, helps = docstring(fn)
    parser = ArgumentParser(
        prog=f"saelight {name}",
        description=description,
        parser_mode="omegaconf",
        exit_on_error=False,  # a bad option raises: one line from `main`, not the whole usage
    )
    hints = get_type_hints(fn)
    special: set[str] = set()
    for pname, param in inspect.signature(fn).parameters.items():
        hint, text = hints.get(pname), helps.get(pname, "")
        if _is_datamodule(hint):
            parser.add_argument("--config", action=ActionConfigFile, help="a saelight YAML config")
            parser.add_class_arguments(hint, pname)
            for key in (*CONFIG_KEYS, *FIT_ONLY_KEYS):
                if key != pname:
                    parser.add_argument(f"--{key}", type=Any, default=None, help="read by fit only")
        elif param.default is inspect.Parameter.empty and getattr(hint, "__origin__", None) is list:
            parser.add_argument(pname, nargs="+", type=str, help=text)
        elif hint is bool:
            parser.add_argument(f"--{pname}", action=ActionYesNo, default=param.default, help=text)
        else:
            continue
        special.add(pname)
    parser.add_function_arguments(fn, skip=special, fail_untyped=True)
    return parser


def run_command(name: str, fn: Callable[..., Any], argv: list[str]) -> Any:
    """Parse `argv` for verb `name` and call its function `fn`."""
    parser = command_parser(name, fn)
    cfg = parser.parse_args(expand_config_args(argv))
    if cfg.get("data") is not None:
        from saelight.commands.train import check_data

        check_data(cfg.get("data"))  # before the nested backbone is built
    init = parser.instantiate_classes(cfg)
    params = inspect.signature(fn).parameters
    return fn(**{k: init[k] for k in params})
