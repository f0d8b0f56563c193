"""`saelight inspect`: the latent explorer of a run's exported SAEs (or of one SAE folder).

    saelight inspect --run RUN_DIR [--split test] [--top 10] [--out DIR] [--wandb]
    saelight inspect --sae SAE_DIR --config CONFIG.yaml [...]

`--run` reads `RUN_DIR/config.yaml` (the resolved config `saelight fit` saved) and every exported
SAE in `RUN_DIR/saes/<key>/`, and writes `<out>/<key>/` for each (default out: `RUN_DIR/explorer`).
`--sae` inspects one export; its folder defaults to `<run>/explorer/<key>/` when the export sits
in a run's `saes/`, else `SAE_DIR/explorer/`. The config supplies the activation cache and its
audio source; the cache must already exist.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import torch

from saelight.cache.build import ActivationCache
from saelight.explorer.explore import explore
from saelight.sae.base import CFG_FILE, SAE

log = logging.getLogger(__name__)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saelight inspect", description=__doc__.split("\n\n")[0])
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--run", type=Path, help="run directory of `saelight fit` (config.yaml, saes/)"
    )
    which.add_argument("--sae", type=Path, help="one exported SAE folder (cfg.json + weights)")
    p.add_argument("--config", type=Path, help="the run's config YAML (required with --sae)")
    p.add_argument("--split", default="test", help="split whose rows are inspected")
    p.add_argument("--top", type=int, default=10, help="top activating rows kept per latent")
    p.add_argument("--out", type=Path, help="output folder (see above for the default)")
    p.add_argument(
        "--frame-window",
        type=float,
        default=1.0,
        help="seconds of audio played around a frame row (frame pooling)",
    )
    p.add_argument("--no-audio", action="store_true", help="do not write audio snippets")
    p.add_argument("--batch-size", type=int, default=1024, help="rows per encode batch")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--wandb", action="store_true", help="also log tables to W&B (project saelight)")
    return p


def _targets(ns: argparse.Namespace) -> tuple[Path, list[tuple[Path, Path]]]:
    """(config, [(SAE folder, output folder)]) from the parsed arguments."""
    if ns.run is not None:
        saes = sorted(p.parent for p in (ns.run / "saes").glob(f"*/{CFG_FILE}"))
        if not saes:
            raise SystemExit(f"saelight inspect: no exported SAEs in {ns.run / 'saes'}")
        root = ns.out or ns.run / "explorer"
        config = ns.config or ns.run / "config.yaml"
        return config, [(sae, root / sae.name) for sae in saes]
    if ns.config is None:
        raise SystemExit("saelight inspect: --sae needs --config (the run's config.yaml)")
    if not (ns.sae / CFG_FILE).exists():
        raise SystemExit(f"saelight inspect: {ns.sae} holds no {CFG_FILE}")
    sae = ns.sae.resolve()
    default = (
        sae.parent.parent / "explorer" / sae.name if sae.parent.name == "saes" else sae / "explorer"
    )
    return ns.config, [(ns.sae, ns.out or default)]


def load_cache(config: Path) -> ActivationCache:
    """The `ActivationCache` of a (saved) run config, instantiated through the `saelight` CLI."""
    from saelight.cli import cli_from_saved_config

    return cli_from_saved_config(config).datamodule.cache


def main(args: list[str]) -> None:
    """Run `saelight inspect` with command-line `args` (without the subcommand)."""
    ns = parser().parse_args(args)
    if ns.top < 1:
        raise SystemExit(f"saelight inspect: --top must be >= 1, got {ns.top}")
    config, targets = _targets(ns)
    cache = load_cache(config)
    reader = cache.open()
    run = None
    if ns.wandb:
        import wandb

        where = targets[0][1].parent
        where.mkdir(parents=True, exist_ok=True)
        run = wandb.init(
            project="saelight",
            job_type="inspect",
            dir=str(where),
            config={"config": str(config), "split": ns.split, "top": ns.top},
        )
    try:
        for sae_dir, out in targets:
            cfg: dict[str, Any] = json.loads((sae_dir / CFG_FILE).read_text())
            layer = int(cfg.get("layer", reader.layers[0]))
            pooling = cfg.get("pooling")
            if pooling not in (None, "unknown", cache.pooling):
                log.warning(
                    "%s was trained on %s-pooled rows but the cache is %s-pooled",
                    sae_dir,
                    pooling,
                    cache.pooling,
                )
            sae = SAE.from_pretrained(sae_dir, device=ns.device).eval()
            info = {
                "architecture": cfg.get("architecture"),
                "pooling": cache.pooling,
                "sae_dir": str(sae_dir),
                "name": cfg.get("name"),
            }
            explore(
                sae,
                reader,
                layer,
                out,
                source=cache.source,
                split=ns.split,
                top_n=ns.top,
                title=sae_dir.name,
                info=info,
                audio=not ns.no_audio,
                frame_window_s=ns.frame_window,
                batch_size=ns.batch_size,
                wandb_run=run,
            )
            print(f"explorer {sae_dir.name}: {out / 'index.html'}")
    finally:
        if run is not None:
            run.finish()
