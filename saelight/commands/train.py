"""`saelight fit | validate | test`: LightningCLI, with the standard loggers and callbacks.

One YAML drives everything: `saelight cache --config X.yaml` builds the activation cache that
`saelight fit --config X.yaml` would otherwise build itself before training. This module is
imported only when a training verb (or a command reading a saved run) runs: it is where
Lightning, transformers and wandb get loaded.
"""

from __future__ import annotations

import logging
import signal
import sys
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.cli import LightningCLI
from lightning.pytorch.loggers import CSVLogger, WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from saelight.cache.build import ActivationCache
from saelight.callbacks import (
    BestSAEExport,
    FeatureHistograms,
    GridSummary,
    LatentExplorer,
    LogProgress,
    SAEEvaluation,
)
from saelight.callbacks.checkpointing import RunCheckpoint, use_atomic_checkpoints
from saelight.callbacks.config_log import LoggedConfig
from saelight.callbacks.generation import RunGeneration
from saelight.callbacks.loggers import wandb_loggers
from saelight.callbacks.preemption import Preempted, Preemption
from saelight.callbacks.run_lock import RunLock, launcher_rank
from saelight.commands import TRAINER_COMMANDS
from saelight.data.datamodule import ActivationDataModule
from saelight.io.config_bases import expand_config_args
from saelight.io.errors import ConfigError
from saelight.io.layout import RunLayout
from saelight.io.progress import is_terminal
from saelight.io.wandb_run import WANDB_PROJECT
from saelight.module import SAEModule
from saelight.sae.kernels import emulated_bf16_warning


class _DropTip(logging.Filter):
    """Lightning advertises its cloud logger ("💡 Tip: … litlogger") and notes that GridSummary
    replaces its ModelSummary on every run: noise in every log file."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        # GridSummary *is* the run's ModelSummary; Lightning says so on every fit.
        return (
            "litlogger" not in message
            and "Skipping setting a default `ModelSummary`" not in message
        )


logging.getLogger("lightning.pytorch.utilities.rank_zero").addFilter(_DropTip())


def standard_loggers(root: str) -> list[Namespace]:
    """W&B (offline unless WANDB_MODE says otherwise) and CSV, both saving under the run dir."""
    name = str(Path(root)).removeprefix("runs/").replace("/", "-") or "saelight"
    return [
        _spec(
            "lightning.pytorch.loggers.WandbLogger",
            WandbLogger,
            project=WANDB_PROJECT,
            name=name,
            save_dir=root,
            offline=True,
        ),
        _spec("lightning.pytorch.loggers.CSVLogger", CSVLogger, save_dir=root, name="csv"),
    ]


def standard_callbacks(root: str) -> list[Namespace]:
    """Best exports, W&B histograms, held-out evaluation + report, explorer, and `last.ckpt`
    every `RunCheckpoint.every_minutes` of training and at its end."""
    checkpoints = str(RunLayout.of(root).checkpoints)
    return [
        _spec("saelight.callbacks.GridSummary", GridSummary),
        _spec("saelight.callbacks.BestSAEExport", BestSAEExport),
        _spec("saelight.callbacks.FeatureHistograms", FeatureHistograms),
        _spec("saelight.callbacks.SAEEvaluation", SAEEvaluation),
        _spec("saelight.callbacks.LatentExplorer", LatentExplorer),
        _spec("saelight.callbacks.RunCheckpoint", RunCheckpoint, dirpath=checkpoints),
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
    if not path or path in ("last", "best", "hpc", "registry") or "://" in str(path):
        return
    if Path(path).is_dir():
        raise ConfigError(f"ckpt_path {path} is a directory, expected a .ckpt file")
    if not Path(path).is_file():
        raise ConfigError(
            f"ckpt_path {path} does not exist",
            hint="give a checkpoint file, or `last` for the run's own last.ckpt",
        )
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            names = archive.namelist()
    except (zipfile.BadZipFile, OSError) as error:
        raise ConfigError(
            f"ckpt_path {path} is not a complete checkpoint ({error}): truncated or not a "
            "Lightning .ckpt",
            hint="resume from another checkpoint, or drop --ckpt_path to start over",
        ) from None
    if bad is not None:
        raise ConfigError(f"ckpt_path {path} is corrupt: member {bad} fails its CRC check")
    # torch.save's archive: <name>/data.pkl and <name>/version (else torch fails on a record).
    if not {n.rsplit("/", 1)[-1] for n in names} >= {"data.pkl", "version"}:
        raise ConfigError(
            f"ckpt_path {path} is a zip archive but not a torch checkpoint (no data.pkl and "
            "version records)"
        )


class SaelightCLI(LightningCLI):
    """Links the values the data knows (activation width, cached layers) into the model, and
    gives every run the standard loggers and callbacks (`standard_loggers`,
    `standard_callbacks`) when its config sets no `trainer.logger` / `trainer.callbacks`: a
    config states its run directory once, in `trainer.default_root_dir`.

    A run (`fit`, `validate`, `test`) holds its run directory's lock (`RunLock`) from its
    start-up checks to its end; every checkpoint is written atomically; `fit` saves `last.ckpt`
    and exits 128 + signal on SIGTERM / SIGUSR1 (`Preemption`); every artefact it writes carries
    the fit's generation id (`RunGeneration`).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._run_lock: RunLock | None = None
        try:
            super().__init__(*args, **kwargs)  # with run=True, the whole run happens in here
        except SIGTERMException:  # Lightning's own stop on SIGTERM exits 0: a job reads success
            raise Preempted(signal.SIGTERM) from None
        finally:
            if self._run_lock is not None:
                self._run_lock.release()
                self._run_lock = None

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
        if self.subcommand and launcher_rank() == 0:  # a run (not a saved config read back)
            self._run_lock = RunLock(root).acquire()
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
        use_atomic_checkpoints(trainer)
        if self.subcommand and self.config[self.subcommand].get("ckpt_path") == "last":
            for callback in trainer.checkpoint_callbacks:  # the files `last` may resolve to
                name = f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"
                if callback.dirpath and (Path(callback.dirpath) / name).is_file():
                    check_checkpoint(str(Path(callback.dirpath) / name))
        has_preemption = any(isinstance(c, Preemption) for c in trainer.callbacks)
        if self.subcommand == "fit" and not has_preemption:
            trainer.callbacks.append(Preemption())
        if not any(isinstance(c, RunGeneration) for c in trainer.callbacks):
            trainer.callbacks.append(RunGeneration())  # every artefact of the run carries its id
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
