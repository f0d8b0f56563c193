"""The `saelight` command: LightningCLI for fit/validate/test plus `cache` and `report`.

One YAML drives everything: `saelight cache --config X.yaml` builds the activation cache that
`saelight fit --config X.yaml` would otherwise build itself before training.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import yaml
from lightning.pytorch.cli import LightningCLI

from saelight.data.datamodule import ActivationDataModule
from saelight.module import SAEModule


class SaelightCLI(LightningCLI):
    """Links the values the data knows (activation width, cached layers) into the model."""

    def add_arguments_to_parser(self, parser) -> None:  # noqa: ANN001 (LightningArgumentParser)
        parser.link_arguments("data.d_in", "model.d_in", apply_on="instantiate")
        parser.link_arguments("data.layers", "model.layers", apply_on="instantiate")


def make_cli(args: list[str], run: bool = True) -> SaelightCLI:
    return SaelightCLI(
        SAEModule,
        ActivationDataModule,
        args=args,
        run=run,
        save_config_kwargs={"overwrite": True},
        parser_kwargs={"parser_mode": "omegaconf"},
    )


# Top-level keys a run's saved config.yaml shares with the subcommand-less parser (it also holds
# fit's own `ckpt_path`/`weights_only`, which that parser refuses).
CONFIG_KEYS = ("seed_everything", "trainer", "model", "data", "optimizer", "lr_scheduler")


def cli_from_saved_config(path: str | Path) -> SaelightCLI:
    """Instantiate (without running) the run a saved or hand-written config describes."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"saelight: config {path} not found")
    values = yaml.safe_load(path.read_text()) or {}
    kept = {k: v for k, v in values.items() if k in CONFIG_KEYS}
    return make_cli(["--config", yaml.safe_dump(kept)], run=False)


def cache_command(args: list[str]) -> None:
    """`saelight cache --config X.yaml`: extract (or resume extracting) the activation cache."""
    cli = make_cli(args, run=False)
    reader = cli.datamodule.cache.build()
    print(f"cache {reader.directory}: {len(reader)} rows, layers {reader.layers}, dim {reader.dim}")


def report_command(args: list[str]) -> None:
    from saelight.report.build import main as report_main

    report_main(args)


def layer_sweep_command(args: list[str]) -> None:
    from saelight.evaluation.layer_sweep import main as layer_sweep_main

    layer_sweep_main(args)


COMMANDS: dict[str, Callable[[list[str]], None]] = {
    "layer-sweep": layer_sweep_command,
    "cache": cache_command,
    "report": report_command,
}


def main(args: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if args is None else args)
    if argv and argv[0] in COMMANDS:
        COMMANDS[argv[0]](argv[1:])
        return
    make_cli(argv)


if __name__ == "__main__":
    main()
