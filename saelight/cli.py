"""The `saelight` command: LightningCLI for fit/validate/test plus one table of typed subcommands.

One YAML drives everything: `saelight cache --config X.yaml` builds the activation cache that
`saelight fit --config X.yaml` would otherwise build itself before training. Every other
subcommand is a typed function in `COMMANDS`, parsed from its signature by jsonargparse (its
defaults and help live in that signature and its Google docstring, nowhere else).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import sys
import traceback
from argparse import ArgumentError
from collections.abc import Callable
from pathlib import Path
from typing import Any, get_type_hints

import yaml
from jsonargparse import ActionConfigFile, ActionYesNo, ArgumentParser, Namespace
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, WandbLogger

from saelight.cache.build import ActivationCache
from saelight.callbacks import (
    BestSAEExport,
    FeatureHistograms,
    GridSummary,
    LatentExplorer,
    LogProgress,
    SAEEvaluation,
)
from saelight.callbacks.config_log import LoggedConfig
from saelight.callbacks.loggers import wandb_loggers
from saelight.data.command import cache
from saelight.data.datamodule import ActivationDataModule
from saelight.evaluation.layer_sweep import layer_sweep_command
from saelight.evaluation.splice_command import splice_command
from saelight.explorer.command import inspect_command
from saelight.io.config_bases import expand_config_args
from saelight.io.errors import ConfigError, SaelightError
from saelight.io.layout import RunLayout
from saelight.io.progress import is_terminal
from saelight.module import SAEModule
from saelight.report.command import report_command
from saelight.report.push import push_command
from saelight.sae.native_bf16 import emulated_bf16_warning


class _DropTip(logging.Filter):
    """Lightning advertises its cloud logger ("💡 Tip: … litlogger") on every run; a saelight run
    logs to W&B and CSV already, so the line is noise in every log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "litlogger" not in record.getMessage()


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTip())

COMMANDS: dict[str, Callable[..., Any]] = {
    "cache": cache,
    "report": report_command,
    "inspect": inspect_command,
    "layer-sweep": layer_sweep_command,
    "push": push_command,
    "splice": splice_command,
}
"""Every subcommand beside LightningCLI's: name -> typed function (first docstring line = help)."""

TRAINER_COMMANDS = {
    "fit": "train the SAE grid (builds the activation cache first when it is missing)",
    "validate": "score a checkpoint's SAEs on the validation split",
    "test": "score a checkpoint's SAEs on the test split (and run the evaluation callbacks)",
}

# Top-level keys a run's config holds for LightningCLI; subcommands that read the same YAML accept
# and ignore the ones they do not use.
CONFIG_KEYS = ("seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler")
FIT_ONLY_KEYS = ("ckpt_path", "weights_only")


def standard_loggers(root: str) -> list[Namespace]:
    """W&B (offline unless WANDB_MODE says otherwise) and CSV, both saving under the run dir."""
    name = str(Path(root)).removeprefix("runs/").replace("/", "-") or "saelight"
    return [
        _spec(
            "lightning.pytorch.loggers.WandbLogger",
            WandbLogger,
            project="saelight",
            name=name,
            save_dir=root,
            offline=True,
        ),
        _spec("lightning.pytorch.loggers.CSVLogger", CSVLogger, save_dir=root, name="csv"),
    ]


def standard_callbacks(root: str) -> list[Namespace]:
    """Best exports, W&B histograms, held-out evaluation + report, explorer, last.ckpt."""
    checkpoints = str(RunLayout.of(root).checkpoints)
    return [
        _spec("saelight.callbacks.GridSummary", GridSummary),
        _spec("saelight.callbacks.BestSAEExport", BestSAEExport),
        _spec("saelight.callbacks.FeatureHistograms", FeatureHistograms),
        _spec("saelight.callbacks.SAEEvaluation", SAEEvaluation),
        _spec("saelight.callbacks.LatentExplorer", LatentExplorer),
        _spec(
            "lightning.pytorch.callbacks.ModelCheckpoint",
            ModelCheckpoint,
            dirpath=checkpoints,
            save_last=True,
            save_top_k=0,
        ),
    ]


def _spec(class_path: str, cls: type, **init_args: Any) -> Namespace:
    """A `class_path`/`init_args` entry, as a YAML config would give it (`cls` keeps the import
    of the class honest: a renamed class fails here, not in a user's run)."""
    assert cls.__name__ == class_path.rsplit(".", 1)[1]
    return Namespace(class_path=class_path, init_args=Namespace(**init_args))


def check_optimizer(spec: Namespace | None) -> None:
    """Build the configured optimizer on one dummy parameter, so a bad value (a negative lr)
    stops with the config field named before any model or audio is loaded."""
    if spec is None or not getattr(spec, "class_path", None):
        return
    import importlib

    import torch

    module, _, name = str(spec.class_path).rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    init_args = dict(vars(spec.init_args)) if getattr(spec, "init_args", None) else {}
    try:
        cls([torch.nn.Parameter(torch.zeros(1))], **init_args)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"model.optimizer ({spec.class_path}): {error}") from None


def check_data(data: Namespace | None) -> None:
    """Run the data module's and the cache's own value checks on the parsed config, before
    jsonargparse builds the nested backbone (its model config, and later its weights)."""
    if data is None:
        return
    ActivationDataModule.check_args(**_plain(data))
    cache = data.get("cache")
    init = cache.get("init_args") if isinstance(cache, Namespace) else None
    if isinstance(init, Namespace):
        ActivationCache.check_args(**_plain(init))


def _plain(values: Namespace) -> dict[str, Any]:
    return {k: v for k, v in vars(values).items() if not isinstance(v, Namespace)}


def check_checkpoint(path: str | None) -> None:
    """A `--ckpt_path` file must be a complete checkpoint (a zip archive whose members all pass
    their CRC), else torch fails mid-load with `OSError: [Errno 22] Invalid argument`."""
    if not path or path in ("last", "best", "hpc", "registry") or not Path(path).is_file():
        return
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError) as error:
        raise ConfigError(
            f"ckpt_path {path} is not a complete checkpoint ({error}): truncated or not a "
            "Lightning .ckpt",
            hint="resume from another checkpoint, or drop --ckpt_path to start over",
        ) from None
    if bad is not None:
        raise ConfigError(f"ckpt_path {path} is corrupt: member {bad} fails its CRC check")


class SaelightCLI(LightningCLI):
    """Links the values the data knows (activation width, cached layers) into the model, and
    gives every run the standard loggers and callbacks (`standard_loggers`,
    `standard_callbacks`) when its config sets no `trainer.logger` / `trainer.callbacks`: a
    config states its run directory once, in `trainer.default_root_dir`.
    """

    def parse_arguments(self, parser: Any, args: Any) -> None:
        super().parse_arguments(parser, args)
        # Checked here: LightningCLI reads the checkpoint's hyperparameters right after parsing.
        subcommand = self.config.get("subcommand")
        if subcommand:
            check_checkpoint(self.config[subcommand].get("ckpt_path"))

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        warning = emulated_bf16_warning(config.trainer.precision, config.trainer.accelerator)
        if warning:
            logging.getLogger("saelight").warning(warning)
        check_optimizer(config.model.get("optimizer"))
        check_data(config.get("data"))
        root = str(config.trainer.default_root_dir or ".")
        if config.trainer.logger is None:
            config.trainer.logger = standard_loggers(root)
        if config.trainer.callbacks is None:
            config.trainer.callbacks = standard_callbacks(root)
        if config.trainer.enable_progress_bar is not False and not is_terminal():
            # A bar redrawn in place shows nothing in a log file: plain lines instead.
            bars = [c for c in config.trainer.callbacks if "Progress" in str(c.class_path)]
            if not bars:
                config.trainer.callbacks.append(
                    _spec("saelight.callbacks.LogProgress", LogProgress)
                )

    def instantiate_trainer(self, **kwargs: Any) -> Any:
        trainer = super().instantiate_trainer(**kwargs)
        for logger in wandb_loggers(trainer):
            # Lightning's WandbLogger passes `anonymous=None`, which wandb >= 0.2x warns about on
            # every run although nobody set it; drop the unset key before the run starts.
            if logger._wandb_init.get("anonymous", False) is None:
                del logger._wandb_init["anonymous"]
        return trainer

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        return {name: LightningCLI.subcommands()[name] for name in TRAINER_COMMANDS}

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 (LightningArgumentParser)
        parser.link_arguments("data.d_in", "model.d_in", apply_on="instantiate")
        parser.link_arguments("data.layers", "model.layers", apply_on="instantiate")


def make_cli(args: list[str] | None, run: bool = True) -> SaelightCLI:
    """The LightningCLI of saelight; `args=None` reads `sys.argv` (the console script).

    `--config` files with a `base:` key are merged over their base first (see `config_bases`).
    """
    # LightningCLI warns when it is handed `args` while sys.argv holds arguments too (a subcommand
    # such as `inspect` building a run's CLI): it sees only one of them at a time.
    argv = sys.argv
    if args is None:
        sys.argv = [argv[0], *expand_config_args(argv[1:])]
    else:
        args, sys.argv = expand_config_args(args), argv[:1]
    try:
        return SaelightCLI(
            SAEModule,
            ActivationDataModule,
            args=args,
            run=run,
            save_config_callback=LoggedConfig,
            save_config_kwargs={"overwrite": True},
            # A bad value raises (one line from `main`) instead of printing the whole usage.
            parser_kwargs={"parser_mode": "omegaconf", "exit_on_error": False},
        )
    finally:
        if args is not None:
            sys.argv = argv


def cli_from_saved_config(path: str | Path) -> SaelightCLI:
    """Instantiate (without running) the run a saved or hand-written config describes."""
    path = Path(path)
    if not path.is_file():
        raise SaelightError(f"config {path} does not exist", hint="pass the run's config.yaml")
    values = yaml.safe_load(path.read_text()) or {}
    kept = {k: v for k, v in values.items() if k in CONFIG_KEYS}
    return make_cli(["--config", yaml.safe_dump(kept)], run=False)


def _docstring(fn: Callable[..., Any]) -> tuple[str, dict[str, str]]:
    """(description, {parameter: help}) from a Google docstring."""
    from docstring_parser import parse

    doc = parse(inspect.getdoc(fn) or "")
    text = "\n\n".join(t for t in (doc.short_description, doc.long_description) if t)
    return text, {p.arg_name: p.description or "" for p in doc.params}


def command_parser(name: str, fn: Callable[..., Any]) -> ArgumentParser:
    """The parser of one subcommand, built from `fn`'s signature.

    A `list` parameter without a default is positional (one or more values); other parameters
    are `--name value` options (required when they have no default); `bool` ones are `--x` /
    `--no_x` flags; a LightningDataModule parameter takes the `data:` section of a config
    (`--config X.yaml`, `--data.…` overrides), the other sections of the same YAML are accepted
    and ignored.
    """
    description, helps = _docstring(fn)
    parser = ArgumentParser(
        prog=f"saelight {name}", description=description, parser_mode="omegaconf"
    )
    hints = get_type_hints(fn)
    special: set[str] = set()
    for pname, param in inspect.signature(fn).parameters.items():
        hint, text = hints.get(pname), helps.get(pname, "")
        if isinstance(hint, type) and issubclass(hint, ActivationDataModule):
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


def run_command(name: str, argv: list[str]) -> Any:
    """Parse `argv` for subcommand `name` and call its function."""
    fn = COMMANDS[name]
    parser = command_parser(name, fn)
    cfg = parser.parse_args(expand_config_args(argv))
    check_data(cfg.get("data"))  # before the nested backbone is built
    init = parser.instantiate_classes(cfg)
    params = inspect.signature(fn).parameters
    return fn(**{k: init[k] for k in params})


def usage() -> str:
    """`saelight --help`: every subcommand, one line each."""
    lines = ["usage: saelight [--debug] <command> [options]   (`saelight <command> --help`)", ""]
    lines += ["training (LightningCLI: --config X.yaml, --print_config, dotted overrides):"]
    lines += [f"  {n:<12} {h}" for n, h in TRAINER_COMMANDS.items()]
    lines += ["", "commands:"]
    lines += [f"  {n:<12} {_docstring(fn)[0].splitlines()[0]}" for n, fn in COMMANDS.items()]
    lines += ["", "Bad input prints one line; --debug (or SAELIGHT_DEBUG=1) adds the traceback."]
    return "\n".join(lines)


def _argument_error_line(error: ArgumentError) -> str:
    """jsonargparse's nested message ('Parser key "data.cache": ... Parser key "protocol": ...
    Expected ...') as one line: the dotted field, then the last line's reason."""
    message = str(error)
    keys = re.findall(r'Parser key "([^"]+)"', message)
    last = [line for line in message.splitlines() if line.strip()][-1]
    reason = re.sub(r'Parser key "[^"]+":\s*', "", last).strip()
    return f"{'.'.join(keys)}: {reason}" if keys else reason


def _is_user_error(error: BaseException) -> bool:
    """saelight's own errors, a value the parser rejects, and ValueErrors raised by saelight code
    (its check of a config value): printed as one line. Anything else is a bug and keeps its
    traceback."""
    if isinstance(error, SaelightError | ArgumentError):
        return True
    if not isinstance(error, ValueError) or error.__traceback__ is None:
        return False
    origin = traceback.extract_tb(error.__traceback__)[-1].filename
    return Path(origin).resolve().is_relative_to(Path(__file__).resolve().parent)


def main(args: list[str] | None = None) -> None:
    """Entry point of the console script (`args=None`: read `sys.argv`)."""
    argv = list(sys.argv[1:] if args is None else args)
    debug = os.environ.get("SAELIGHT_DEBUG", "") not in ("", "0")
    if argv[:1] == ["--debug"]:
        argv, debug = argv[1:], True
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return
    try:
        if argv[0] in COMMANDS:
            run_command(argv[0], argv[1:])
        else:
            if args is None:  # the console script: LightningCLI reads sys.argv itself
                sys.argv = [sys.argv[0], *argv]
            make_cli(None if args is None else argv)
    except Exception as error:  # noqa: BLE001 (sorting user errors from bugs)
        if debug or not _is_user_error(error):
            raise
        line = _argument_error_line(error) if isinstance(error, ArgumentError) else error
        print(f"saelight: error: {line}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
