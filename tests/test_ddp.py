"""DDP on 2 CPU processes (gloo) through the real CLI: the ranks split the cache extraction and the
training rows, and the run (dead-latent resampling included) matches a 1-process run with the same
global batch (4 = 2 ranks x 2)."""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import pandas as pd
import pytest
import torch

from saelight.cache import CacheReader
from saelight.cli import main
from saelight.commands.train import make_cli

TESTS = Path(__file__).parent
CONFIG = TESTS / "data" / "tiny_csv.yaml"
CLUSTER = TESTS.parent / "configs" / "cluster"
RECORD = json.dumps({"class_path": "test_ddp.RecordRows"})


class RecordRows(L.Callback):
    """Writes [epoch, [cache rows]] of each training batch of this rank to rows.rank<R>.json."""

    def __init__(self) -> None:
        self.batches: list[list[Any]] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: Any, batch: Any, i: int) -> None:
        self.batches.append([trainer.current_epoch, batch["row"].tolist()])

    def on_fit_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        path = Path(trainer.default_root_dir) / f"rows.rank{trainer.global_rank}.json"
        path.write_text(json.dumps(self.batches))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 2-process DDP fit (batch 2 per rank, its cache built by both ranks), a 1-process fit
    (batch 4) on that same cache, and a cache built by 1 process to compare the extraction with.

    Both fits read one cache: the two extractions agree only up to float32 summation order, and
    that noise can flip a top-k choice of a freshly resampled latent."""
    base = tmp_path_factory.getbasetemp()
    models = ["--data.cache.backbone.init_args.save_dir", str(base / "tiny_models")]
    cache = ["--data.cache.directory", str(base / "tiny_cache"), *models]
    # A window of 8 rows (2 global batches): latents die and are resampled on the global batch,
    # which every rank must gather alike for the runs to match.
    resample = ["--model.dead_after_samples", "8"]
    common = ["--config", str(CONFIG), f"--trainer.callbacks+={RECORD}", *resample]
    main(["cache", "--config", str(CONFIG), "--trainer.default_root_dir", str(base), *cache])
    single, ddp = tmp_path_factory.mktemp("single"), tmp_path_factory.mktemp("ddp")
    cmd = [
        sys.executable, "-m", "saelight.cli", "fit", *common, "--trainer.default_root_dir", ".",
        "--data.cache.directory", "cache", *models, "--data.batch_size", "2",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu",
    ]  # fmt: skip
    path = os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(cmd, cwd=ddp, env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr[-4000:]
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(single)
        mp.syspath_prepend(str(TESTS))
        ddp_cache = ["--data.cache.directory", str(ddp / "cache"), *models]
        main(["fit", *common, "--trainer.default_root_dir", ".", *ddp_cache])
    return {"single": single, "ddp": ddp, "single_cache": base / "tiny_cache"}


def test_ranks_split_the_extraction_into_the_same_cache(runs: dict[str, Path]) -> None:
    ours, theirs = (
        CacheReader(runs["ddp"] / "cache", verify=True),
        CacheReader(runs["single_cache"]),
    )
    assert [(s["clip_start"], s["clip_end"]) for s in ours.shards] == [
        (s["clip_start"], s["clip_end"]) for s in theirs.shards
    ]
    rows = np.arange(len(theirs))
    assert len(ours) == len(theirs) == 24
    # Equal up to float32 summation order: Lightning gives each CPU rank 1 of the 2 threads.
    np.testing.assert_allclose(ours.read(rows), theirs.read(rows), rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(ours.metadata, theirs.metadata)
    assert not list((runs["ddp"] / "cache").glob("manifest.rank*.json"))


def test_ddp_global_batches_are_the_single_process_batches(runs: dict[str, Path]) -> None:
    single = json.loads((runs["single"] / "rows.rank0.json").read_text())
    rank0, rank1 = (json.loads((runs["ddp"] / f"rows.rank{r}.json").read_text()) for r in (0, 1))
    assert len(single) == len(rank0) == len(rank1) == 9  # 3 epochs x 3 steps: same samples seen
    train = set(CacheReader(runs["single_cache"]).split_rows("train").tolist())
    for epoch in range(3):
        seen = [r for e, rows in rank0 + rank1 if e == epoch for r in rows]
        assert len(seen) == len(set(seen)) == len(train) and set(seen) == train
    for (e, rows), (e0, rows0), (e1, rows1) in zip(single, rank0, rank1, strict=True):
        assert e == e0 == e1 and len(rows0) == len(rows1) == 2
        assert rows == rows0 + rows1


def _val_metrics(run: Path) -> pd.DataFrame:
    metrics = pd.read_csv(run / "csv" / "version_0" / "metrics.csv")
    cols = sorted(c for c in metrics.columns if "/val/" in c)
    return metrics[cols].dropna().reset_index(drop=True)


def test_ddp_metrics_and_weights_match_single_process(runs: dict[str, Path]) -> None:
    """Same choices, same numbers up to Adam's amplification of float32 noise.

    The all-reduce sums gradients in another order (1e-7). Most latents of this 24-row cache are
    dead (4 rows per batch reseed at most 4 of them per step); their AuxK gradients are ~0, and
    Adam turns a ~0 gradient's noise into an lr-sized step, so weights part by ~1e-3 relative
    and a rare top-k choice flips; nearly every latent fires, dies and is reseeded alike.
    """
    ours, theirs = _val_metrics(runs["ddp"]), _val_metrics(runs["single"])
    assert ours.shape == theirs.shape == (3, 28)
    np.testing.assert_allclose(ours.to_numpy(), theirs.to_numpy(), rtol=1e-3, atol=1e-5)
    ca, cb = (
        torch.load(runs[r] / "checkpoints" / "last.ckpt", weights_only=True)
        for r in ("ddp", "single")
    )
    assert ca["global_step"] == cb["global_step"] == 9
    for key, value in cb["state_dict"].items():
        if not value.is_floating_point():  # since_fired counters: the same latents, same steps
            assert (ca["state_dict"][key] == value).float().mean() >= 0.95, key
        else:
            assert float((ca["state_dict"][key] - value).norm()) <= 0.1 * float(value.norm()), key


def test_rank_zero_alone_evaluates_and_writes(runs: dict[str, Path]) -> None:
    assert [p.name for p in (runs["ddp"] / "csv").iterdir()] == ["version_0"]
    ours = json.loads((runs["ddp"] / "results" / "results.json").read_text())["rows"]
    theirs = json.loads((runs["single"] / "results" / "results.json").read_text())["rows"]
    assert len(ours) == len(theirs) == 6
    for a, b in zip(ours, theirs, strict=True):
        assert (a["layer"], a["name"]) == (b["layer"], b["name"])
        assert a["probe_vowel_acc"] == pytest.approx(b["probe_vowel_acc"], abs=1e-6)
    best_ours = json.loads((runs["ddp"] / "saes" / "best.json").read_text())
    best_theirs = json.loads((runs["single"] / "saes" / "best.json").read_text())
    assert {k: v["epoch"] for k, v in best_ours.items()} == {
        k: v["epoch"] for k, v in best_theirs.items()
    }


def test_cluster_examples_parse(runs: dict[str, Path]) -> None:
    models = str(runs["single_cache"].parent / "tiny_models")
    cli = make_cli(["--config", str(CONFIG), "--data.cache.backbone.init_args.save_dir", models],
                   run=False)  # fmt: skip
    quickstart = TESTS.parent / "configs" / "quickstart.yaml"
    alone = cli.parser.parse_args(["--config", str(quickstart)])
    cfg = cli.parser.parse_args(
        ["--config", str(quickstart), "--config", str(CLUSTER / "slurm_ddp.yaml")]
    )
    assert (cfg.trainer.devices, cfg.trainer.num_nodes, cfg.trainer.strategy) == (4, 2, "ddp")
    assert cfg.model == alone.model and cfg.data == alone.data  # the overlay only adds hardware
    for script in CLUSTER.glob("*.sh"):
        assert subprocess.run(["bash", "-n", str(script)]).returncode == 0, script
