"""A finished run's saved config, read back for the commands that need its cache or backbone.

`saelight fit` saves the resolved config as `<run>/config.yaml`; `inspect`, `splice` and the other
commands instantiate its `data:` section through the same LightningCLI (so a saved config
re-reads exactly as it trained), without running anything.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from saelight.io.config_bases import CONFIG_KEYS
from saelight.io.errors import SaelightError


def cli_from_saved_config(path: str | Path) -> Any:
    """The instantiated (not run) `SaelightCLI` of a saved or hand-written config."""
    from saelight.commands.train import make_cli

    path = Path(path)
    if not path.is_file():
        raise SaelightError(f"config {path} does not exist", hint="pass the run's config.yaml")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        where = getattr(error, "problem_mark", None)
        line = f", line {where.line + 1}" if where is not None else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise SaelightError(f"config {path}{line}: {problem}") from None
    if not isinstance(values, dict):
        raise SaelightError(f"config {path}: expected a mapping of sections, got {type(values)}")
    kept = {k: v for k, v in values.items() if k in CONFIG_KEYS}
    return make_cli(["--config", yaml.safe_dump(kept)], run=False)


def load_cache(config: str | Path) -> Any:
    """The `ActivationCache` of a (saved) run config."""
    return cli_from_saved_config(config).datamodule.cache


def open_cache(config: str | Path) -> tuple[Any, Any]:
    """(`ActivationCache`, its reader) of a (saved) run config, opened as `fit` opens it: every
    file checked against its sha256 unless the config sets `data.verify_checksums: false`."""
    datamodule = cli_from_saved_config(config).datamodule
    return datamodule.cache, datamodule.cache.open(verify=datamodule.verify_checksums)
