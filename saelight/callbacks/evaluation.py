"""SAEEvaluation: the paper's held-out evaluation of every SAE of a grid (+ fast probes in fit)."""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from typing import Any, Literal

import lightning as L
import numpy as np

from saelight.cache.format import TEST_HEAD
from saelight.cache.reader import CacheReader
from saelight.callbacks.loggers import activation_datamodule, wandb_run
from saelight.evaluation.layer import (
    SPLIT_NAMES,
    EvalOptions,
    SplitData,
    encode,
    evaluate_layer,
    label_arrays,
    probe_labels,
    run_probe,
)
from saelight.evaluation.results import confusion_labels, probe_acc_key, write_results
from saelight.io.defaults import EVAL_SEED, K_ABLATE, MAX_ROWS, SPLICE_SPLIT
from saelight.io.layout import RunLayout
from saelight.module import SAEModule
from saelight.sae.base import SAE

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
    """

    def __init__(
        self,
        probe: Literal["paper", "logistic"] = "paper",
        labels: list[str] | None = None,
        k_sparse: int = 8,
        disentanglement: bool = True,
        standard_scores: bool = True,
        factors: list[str] | None = None,
        probe_train_crops: int = 1,
        every_n_val_epochs: int = 0,
        max_rows_per_split: int = MAX_ROWS,
        protocol: Literal["saelight", "paper"] | None = None,
        bootstrap: int = 0,
        report: bool = True,
        splice: bool = False,
        splice_max_clips: int = 40,
        seed: int = EVAL_SEED,
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
        self._splits: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def _protocol(self, reader: CacheReader) -> Literal["saelight", "paper"]:
        """`protocol`, or the one the cache was built with (caches before it: "saelight")."""
        return self.protocol or reader.manifest["extraction"].get("protocol", "saelight")

    def _options(self, trainer: L.Trainer) -> EvalOptions:
        """The options with the protocol resolved against the run's cache."""
        protocol = self._protocol(trainer.datamodule.open_reader())
        return dataclasses.replace(self.opts, protocol=protocol)

    def _split_names(self, reader: CacheReader) -> tuple[str, ...]:
        """train, val, test, and `TEST_HEAD` (the paper's probe rows) under protocol "paper"."""
        if self._protocol(reader) != "paper":
            return SPLIT_NAMES
        if len(reader.split_rows(TEST_HEAD)):
            return (*SPLIT_NAMES, TEST_HEAD)
        log.info(
            "SAEEvaluation(protocol=paper): cache %s holds no test_head rows (built without "
            "data.cache.protocol: paper), so the probes are scored on whole test files",
            reader.directory,
        )
        return SPLIT_NAMES

    def _load_splits(self, trainer: L.Trainer) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """(rows, activations (n, n_layers, dim)) per split (`_split_names`), read once, kept."""
        if self._splits is None:
            reader = trainer.datamodule.open_reader()
            rng = np.random.default_rng(self.opts.seed)
            self._splits = {}
            for split in self._split_names(reader):
                rows = reader.split_rows(split)
                if len(rows) > self.max_rows:
                    rows = np.sort(rng.choice(rows, self.max_rows, replace=False))
                x = reader.read(rows)
                finite = np.isfinite(x).reshape(len(x), -1).all(1)
                if not finite.all():
                    bad = int((~finite).sum())
                    if getattr(trainer.lightning_module, "nonfinite", "error") == "error":
                        raise ValueError(
                            f"{bad} cached {split} rows hold NaN/Inf activations; set "
                            "model.nonfinite: skip to leave them out of the evaluation"
                        )
                    log.warning(
                        "evaluation: %d %s rows with NaN/Inf activations left out", bad, split
                    )
                    rows, x = rows[finite], x[finite]
                self._splits[split] = (rows, x)
        return self._splits

    def _layer_splits(self, trainer: L.Trainer, layer_pos: int) -> dict[str, SplitData]:
        meta = trainer.datamodule.open_reader().metadata
        return {
            s: SplitData(x[:, layer_pos], meta.iloc[rows].reset_index(drop=True))
            for s, (rows, x) in self._load_splits(trainer).items()
        }

    def on_validation_end(self, trainer: L.Trainer, pl_module: SAEModule) -> None:
        n = self.every_n_val_epochs
        if not n or trainer.sanity_checking or (trainer.current_epoch + 1) % n:
            return
        if trainer.is_global_zero:
            metrics: dict[str, float] = {}
            for e in pl_module.grid:
                splits = self._layer_splits(trainer, e.layer_pos)
                labels = probe_labels(splits, self.opts.labels)
                codes = {s: encode(pl_module.sae(e), splits[s].x) for s in SPLIT_NAMES}
                for label in labels:
                    y = label_arrays(splits, label)
                    result = run_probe("logistic", codes, y, self.opts.seed)
                    metrics[f"{e.prefix}/val/{probe_acc_key(label)}"] = result.val_accuracy
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
            for layer_pos, layer in enumerate(pl_module.layers):
                saes, sparsities = self._layer_saes(pl_module, layer_pos, layout, best)
                splits = self._layer_splits(trainer, layer_pos)
                layer_rows = evaluate_layer(layer, splits, saes, opts)
                for row in layer_rows[1:]:
                    if sparsities.get(row["name"]) is not None:
                        row["sparsity"] = sparsities[row["name"]]
                rows.extend(layer_rows)
            write_results(layout.root, rows, {**run_summary(trainer), "protocol": opts.protocol})
            self._log(trainer, rows)
            self._log_confusions(trainer, rows)
            self._flag_collapsed(trainer, rows)
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
        """Splice every SAE of the grid (best exports when present, named by their export key as
        `saelight splice` names them) and log the tables and figure to the run's W&B run."""
        from saelight.evaluation.splice_run import splice_run
        from saelight.report.splice_figure import backbone_title, write_splice
        from saelight.report.splice_section import SPLICE_PNG, log_splice

        dm = trainer.datamodule
        if dm.pooling != "frame":
            log.info(
                "SAEEvaluation(splice=True): skipped, a clip-pooled run (data.cache.pooling: %s) "
                "cannot be spliced back frame by frame",
                dm.pooling,
            )
            return
        saes: dict[int, dict[str, tuple[SAE, float | None]]] = {}
        for e in pl_module.grid:
            path = layout.sae(e.key)
            if (path / "cfg.json").exists():
                sae = SAE.from_pretrained(path)
            else:
                sae = copy.deepcopy(pl_module.sae(e)).float()
            saes.setdefault(e.layer, {})[e.key] = (sae, e.sparsity)
        # `saelight splice`'s defaults, so both paths write the same splice.json.
        payload = splice_run(
            dm.cache,
            saes,
            SPLICE_SPLIT,
            self.splice_max_clips,
            self.opts.labels,
            K_ABLATE,
            self.opts.seed,
        )
        payload = {"run": str(layout.root.resolve()), **payload}
        folder = layout.splice
        write_splice(folder, payload, backbone_title(dm.cache))
        log.info("SAEEvaluation: spliced %d clip(s), wrote %s", payload["n_clips"], folder)
        run = wandb_run(trainer)
        if run is not None:
            log_splice(run, payload, folder / SPLICE_PNG)

    @staticmethod
    def _layer_saes(
        pl_module: SAEModule, layer_pos: int, layout: RunLayout, best: bool
    ) -> tuple[dict[str, SAE], dict[str, float | None]]:
        """The layer's SAEs by name (best exports when present), one entry per
        `SAE.eval_variants` (a HierarchicalTopK SAE: `<name>@k<k>` per k of its ladder, one run,
        a whole sparsity axis), with the sparsity each reports."""
        saes: dict[str, SAE] = {}
        sparsities: dict[str, float | None] = {}
        for e in (e for e in pl_module.grid if e.layer_pos == layer_pos):
            path = layout.sae(e.key)
            if best and (path / "cfg.json").exists():
                sae = SAE.from_pretrained(path)
            else:
                sae = copy.deepcopy(pl_module.sae(e)).cpu().float()
            for suffix, variant in sae.eval_variants().items():
                name = e.name + suffix
                saes[name] = variant
                sparsities[name] = e.sparsity if not suffix else variant.target_sparsity
        return saes, sparsities

    @staticmethod
    def _log_confusions(trainer: L.Trainer, rows: list[dict[str, Any]]) -> None:
        run = wandb_run(trainer)
        if run is None:
            return
        import wandb

        from saelight.report.figures import confusion_figure, figure_rgba

        images = {}
        for row in rows:
            for label in confusion_labels(row):
                fig = confusion_figure(row, label)
                if fig is not None:
                    name = f"L{row['layer']}/{row['name']}/test/confusion_{label}"
                    images[name] = wandb.Image(figure_rgba(fig))
        run.log(images)

    @staticmethod
    def _flag_collapsed(trainer: L.Trainer, rows: list[dict[str, Any]]) -> None:
        """W&B summary `L<layer>/<name>/collapsed` (bool) and `.../collapse_reasons` per SAE,
        by the one rule of `saelight.report.collapse`, so a sweep's table can filter on it."""
        from saelight.report.collapse import collapse_reasons

        run = wandb_run(trainer)
        for row in rows:
            if row["kind"] == "dense":
                continue
            reasons = collapse_reasons(row)
            if reasons:
                log.warning("L%s %s collapsed: %s", row["layer"], row["name"], "; ".join(reasons))
            if run is not None:
                prefix = f"L{row['layer']}/{row['name']}"
                run.summary[f"{prefix}/collapsed"] = bool(reasons)
                run.summary[f"{prefix}/collapse_reasons"] = "; ".join(reasons)

    @staticmethod
    def _log(trainer: L.Trainer, rows: list[dict[str, Any]]) -> None:
        metrics = {
            f"L{r['layer']}/{r['name']}/test/{k}": float(v)
            for r in rows
            for k, v in r.items()
            if isinstance(v, (int, float))
            and not isinstance(v, bool)
            and k not in ("layer", "d_sae", "k")
        }
        for logger in trainer.loggers:
            logger.log_metrics(metrics, step=trainer.global_step)
            logger.save()


def run_summary(trainer: L.Trainer) -> dict[str, Any]:
    """The data of the run (see `ActivationDataModule.run_summary`) and how long it trained."""
    summary = trainer.datamodule.run_summary()
    # seed_everything's seed: `saelight report` averages runs that differ only by it.
    seed = os.environ.get("PL_GLOBAL_SEED")
    return {
        **summary,
        "epochs": trainer.current_epoch,
        "steps": trainer.global_step,
        "seed": int(seed) if seed is not None else None,
    }
