"""SAEEvaluation: the paper's held-out evaluation of every SAE of a grid (+ fast probes in fit)."""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Literal

import lightning as L

from saelight.callbacks.generation import run_generation
from saelight.callbacks.loggers import activation_datamodule, wandb_run
from saelight.evaluation.held_out import (
    HeldOutSplits,
    cache_protocol,
    fast_probe_accuracies,
    grid_layer_rows,
    saes_by_layer,
    split_names,
)
from saelight.evaluation.layer import (
    EvalOptions,
    SplitData,
)
from saelight.evaluation.results import probe_acc_key, write_results
from saelight.io.defaults import MAX_ROWS
from saelight.io.generation import GENERATION
from saelight.io.layout import RunLayout
from saelight.module import SAEModule

log = logging.getLogger(__name__)


class SAEEvaluation(L.Callback):
    """Probe accuracy (dense vs SAE codes), reconstruction and disentanglement on held-out data.

    At fit end (and `saelight test`) every SAE is evaluated with its best exported weights (see
    `BestSAEExport`), falling back to the current ones: results go to
    `<run>/results/results.{json,csv}`, to every logger as `<layer>/<name>/test/<metric>`, to W&B
    as figures, and into `report.md`. With `splice`, a frame-level run is also spliced at fit end
    (`saelight splice`'s core, before the report, so `report.md` gets its "Causal evaluation"
    section): `<run>/splice/splice.{json,png}` and the `splice/*` W&B tables.
    Rank 0 computes (it reads the whole held-out split from the cache, so nothing needs gathering)
    while other ranks wait at a barrier.

    Args:
        probe: "paper" = linear layer, cross-entropy, Adam 1e-3, 120 epochs, best epoch by val loss;
            "logistic" = standardised scikit-learn logistic regression (fast).
        labels: labels to probe (default: every label with classes shared by train/val/test).
        k_sparse: also probe the k best single features per label (0 disables).
        disentanglement: Lasso R², completeness (paper's K, K-fair) and the width-independent
            effective dims per factor on the test split's factors.
        standard_scores: DCI, MIG, SAP and modularity too (needs `disentanglement`).
        factors: factor names to use (default: all `factor_*` columns of the cache).
        probe_train_crops: train probes on the first N random crops of each train file (0 = all).
        every_n_val_epochs: also run fast logistic probes every N validation epochs (0 = never).
        max_rows_per_split: subsample larger splits (frame-level caches) to this many rows.
        protocol: None (default) = the cache's own (`data.cache.protocol`, from its manifest).
            "saelight" scores the probes on whole test files and the Lasso R² on held-out test
            files; "paper" scores the probes on each test file's first `crop_seconds` (the
            cache's `test_head` rows; a cache built without them keeps whole files, with a log
            line) and fits and scores the R² on the same files (in-sample), as the original.
            Reconstruction and disentanglement use whole test files either way.
        bootstrap: refit each row's top-factor Lassos on this many resamples of the test clips,
            for an interval on claim 3 (0 = off; ~0.1 s per resample and representation).
        report: write `report.md` + figures at fit end (claim 1 on `labels`, default all).
        splice: at fit end, splice every SAE back into the backbone on held-out test clips
            (downstream fidelity, probe drops, latent ablations; docs/causal_evaluation.md).
            Off by default: it reruns the backbone ~2 + n_sae × (2 + 2 × label values) times per
            clip. Frame-level runs only; a clip-pooled run logs one line and skips it.
        splice_max_clips: splice a seeded subset of this many test clips (`seed`).
        seed: seed of probes, subsampling and held-out splits.
        dirpath: run directory (default: trainer.default_root_dir).

    The defaults of the fields `EvalOptions` shares live there (`evaluation.layer`).
    """

    def __init__(
        self,
        probe: Literal["paper", "logistic"] = EvalOptions.probe,
        labels: list[str] | None = None,
        k_sparse: int = EvalOptions.k_sparse,
        disentanglement: bool = EvalOptions.disentanglement,
        standard_scores: bool = EvalOptions.standard_scores,
        factors: list[str] | None = None,
        probe_train_crops: int = EvalOptions.probe_train_crops,
        every_n_val_epochs: int = 0,
        max_rows_per_split: int = MAX_ROWS,
        protocol: Literal["saelight", "paper"] | None = None,
        bootstrap: int = EvalOptions.bootstrap,
        report: bool = True,
        splice: bool = False,
        splice_max_clips: int = 40,
        seed: int = EvalOptions.seed,
        dirpath: str | None = None,
    ) -> None:
        if probe not in ("paper", "logistic"):
            raise ValueError(f"SAEEvaluation.probe must be 'paper' or 'logistic', got {probe!r}")
        if protocol not in (None, "saelight", "paper"):
            raise ValueError(
                f"SAEEvaluation.protocol must be 'saelight', 'paper' or null, got {protocol!r}"
            )
        self.protocol = protocol
        self.opts = EvalOptions(  # its protocol is resolved against the cache (`_options`)
            bootstrap=bootstrap,
            probe=probe,
            labels=labels,
            k_sparse=k_sparse,
            disentanglement=disentanglement,
            standard_scores=standard_scores and disentanglement,
            factors=factors,
            probe_train_crops=probe_train_crops,
            seed=seed,
        )
        self.every_n_val_epochs, self.max_rows = every_n_val_epochs, max_rows_per_split
        self.report, self.dirpath = report, dirpath
        self.splice, self.splice_max_clips = splice, splice_max_clips
        self._splits: HeldOutSplits | None = None

    def _options(self, trainer: L.Trainer) -> EvalOptions:
        """The options with the protocol resolved against the run's cache."""
        protocol = cache_protocol(trainer.datamodule.open_reader(), self.protocol)
        return dataclasses.replace(self.opts, protocol=protocol)  # type: ignore[arg-type]

    def _held_out(self, trainer: L.Trainer) -> HeldOutSplits:
        """The run's held-out splits (`evaluation.held_out`), read once per callback."""
        if self._splits is None:
            self._splits = HeldOutSplits(
                trainer.datamodule.open_reader(),
                split_names(trainer.datamodule.open_reader(), self.protocol),
                self.max_rows,
                self.opts.seed,
                drop_nonfinite=getattr(trainer.lightning_module, "nonfinite", "error") == "skip",
                row_stats=getattr(trainer.datamodule, "row_stats", None),
            )
        return self._splits

    def _layer_splits(self, trainer: L.Trainer, layer_pos: int) -> dict[str, SplitData]:
        return self._held_out(trainer).layer(layer_pos)

    def on_validation_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        n = self.every_n_val_epochs
        if not n or trainer.sanity_checking or (trainer.current_epoch + 1) % n:
            return
        if trainer.is_global_zero:
            metrics: dict[str, float] = {}
            for e in pl_module.grid:
                splits = self._layer_splits(trainer, e.layer_pos)
                accuracies = fast_probe_accuracies(
                    pl_module.sae(e), splits, self.opts.labels, self.opts.seed
                )
                for label, accuracy in accuracies.items():
                    metrics[f"{e.prefix}/val/{probe_acc_key(label)}"] = accuracy
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)
        trainer.strategy.barrier()

    def on_fit_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        self.evaluate(trainer, pl_module, best=True)

    def on_test_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        self.evaluate(trainer, pl_module, best=False)

    def evaluate(
        self, trainer: L.Trainer, pl_module: SAEModule, best: bool
    ) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        if trainer.is_global_zero and activation_datamodule(trainer, "SAEEvaluation") is not None:
            layout = RunLayout.of_trainer(trainer, self.dirpath)
            opts = self._options(trainer)
            reader = self._held_out(trainer).reader
            for layer_pos, layer in enumerate(pl_module.layers):
                splits = self._layer_splits(trainer, layer_pos)
                rows += grid_layer_rows(
                    layer, pl_module.grid, pl_module.saes, layout, best, splits, opts, reader
                )
            write_results(layout.root, rows, {**run_summary(trainer), "protocol": opts.protocol})
            self._log(trainer, rows)
            if self.splice and best:  # fit end only: `saelight test` re-evaluates, never splices
                self._splice(trainer, pl_module, layout)
            if self.report:
                from saelight.report.build import write_report

                write_report(
                    [layout.root],
                    layout.report,
                    wandb_run=wandb_run(trainer),
                    labels=self.opts.labels,
                )
        trainer.strategy.barrier()
        return rows

    def _splice(self, trainer: L.Trainer, pl_module: SAEModule, layout: RunLayout) -> None:
        """Splice every SAE of the grid (`evaluation.splice_run.splice_grid`) and log the
        tables and figure to the run's W&B run."""
        from saelight.evaluation.splice_run import splice_grid
        from saelight.report.splice_section import SPLICE_PNG, log_splice

        saes = saes_by_layer(
            pl_module.grid, {e.key: pl_module.sae(e) for e in pl_module.grid}, layout
        )
        dm = trainer.datamodule
        payload = splice_grid(
            dm, saes, layout, self.splice_max_clips, self.opts.labels, self.opts.seed
        )
        run = wandb_run(trainer)
        if payload is not None and run is not None:
            log_splice(run, payload, layout.splice / SPLICE_PNG)

    @staticmethod
    def _log(trainer: L.Trainer, rows: list[dict[str, Any]]) -> None:
        """The rows to every logger and W&B (`report.result_logging.log_rows`)."""
        from saelight.report.result_logging import log_rows

        log_rows(trainer.loggers, trainer.global_step, wandb_run(trainer), rows)


def run_summary(trainer: L.Trainer) -> dict[str, Any]:
    """The data of the run (see `ActivationDataModule.run_summary`), how long it trained, and
    the generation of the fit the evaluated weights come from (`saelight.io.generation`)."""
    summary = trainer.datamodule.run_summary()
    # seed_everything's seed: `saelight report` averages runs that differ only by it.
    seed = os.environ.get("PL_GLOBAL_SEED")
    return {
        **summary,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "seed": int(seed) if seed is not None else None,
        GENERATION: run_generation(trainer),
    }
