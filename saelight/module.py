"""SAEModule: trains a grid of SAEs (layers × specs × sparsities) on each cached batch at once."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lightning.pytorch.cli import OptimizerCallable
from torch import Tensor, nn

from saelight.grid import GridEntry, build_grid
from saelight.metrics.reconstruction import FVU, MSE, CosineSimilarity
from saelight.metrics.sparsity import L0, FeatureDensity
from saelight.sae.base import SAE
from saelight.sae.dead_latents import dead_window
from saelight.sae.resample import resample_dead_latents
from saelight.sae.schedules import SparsityAnneal, WarmupDecay
from saelight.training.divergence import (
    POLICIES,
    DivergenceGuard,
    Snapshot,
    Spike,
    TrainingDiverged,
    log,
    restore_snapshot,
    take_snapshot,
)
from saelight.training.rows import BatchRows, batch_rows

# Lightning 2.6's own pytree helper calls `isinstance(treespec, LeafSpec)`, which torch >= 2.10
# deprecates, on every step: the user can do nothing about it (fixed upstream in Lightning).
warnings.filterwarnings("ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated")


def prefer_fused(optimizer: torch.optim.Optimizer) -> torch.optim.Optimizer:
    """Adam/AdamW built without `foreach`/`fused` -> the same optimiser with `fused=True`.

    Same update rule, one kernel per tensor: on the 2-core CPU of benchmarks/README.md the fused
    step is ~4x faster than the default for-loop (~6 vs ~29 ms for a 6144 x 768 TopK SAE), which
    is ~15% of a sparse training step. Anything else, or a device without fused kernels, is kept.
    """
    if type(optimizer) not in (torch.optim.Adam, torch.optim.AdamW):
        return optimizer
    defaults = optimizer.defaults
    if defaults.get("fused") is not None or defaults.get("foreach") is not None:
        return optimizer
    if defaults.get("differentiable") or optimizer.state:
        return optimizer
    try:
        groups = [{**g, "fused": True} for g in optimizer.param_groups]
        return type(optimizer)(groups, **{**defaults, "fused": True})
    except RuntimeError:  # e.g. parameters on a device without fused kernels
        return optimizer


class SAEModule(L.LightningModule):
    """Every SAE of the grid sees every batch; each has its own parameters, optimiser state
    (its own Adam param group), sparsity schedule, dead-latent counter and metrics.

    The training loss is Σ_SAE [MSE(x̂, x) + aux], a sum rather than the paper's mean over SAEs, so
    an SAE trains the same alone or in a grid (Adam is invariant to the 1/N factor up to eps).

    Args:
        saes: SAE specs (class_path + init_args); each is built once per cache layer and sparsity.
        sparsities: if set, each spec is built once per sparsity s, which its class maps to its
            own knob (`SAE.sparsity_init_args`; TopK family: k = int((1 - s) * d_sae)); a class
            without one (ReLU, JumpReLU, HierarchicalTopK) is refused, naming the field to set.
        d_in: activation width; linked from the data, never set by hand.
        layers: backbone layers of the cache rows; linked from the data.
        optimizer: optimiser factory (torch.optim.Adam at lr 1e-3 is the paper's).
        lr_schedule: optional LR multiplier per step (warm-up + decay).
        sparsity_schedule: optional anneal of each SAE's sparsity knob (k, or the L1/L0 coefficient)
            from a start value to its configured target.
        dead_after_samples: a latent that has not fired for this many training rows counts as dead
            (feeds the AuxK loss and the logged `train/dead_fraction`). None: per SAE, the rows
            in which a latent used at the SAE's average rate fires `DEAD_AFTER_FIRINGS` times
            (`dead_window`), so the window follows k/d_sae instead of a fixed count that a
            clip-level run of a few thousand rows never reaches (AuxK would never start).
        resample_dead_until: for this fraction of the training steps, a latent that misses its
            dead window is re-initialised on a residual of the batch (`resample_dead_latents`)
            and gets a new window; afterwards latents may die. 0 turns resampling off.
        nonfinite: "error" stops on a NaN/Inf batch; "skip" drops such rows (counted in the logs).
        divergence: what to do when one SAE's loss is not finite or jumps above 10x its recent
            average (`saelight.training.divergence`; checked at each logging step): "warn" logs
            one WARNING line; "rollback" also puts that SAE back to its state (weights and
            optimiser state) at the last check that passed, while the other SAEs train on;
            "stop" raises. Every policy logs `<layer>/<name>/train/divergences`. "warn" is the
            default: rollback keeps 3x each SAE in memory (weights, Adam moments) and cannot cure
            a recurring cause (planted data, the former resampler: 37 rollbacks, FVU 80 vs 34).
        baselines: random baselines trained beside every SAE at its width and k, through the
            same batches, evaluation and report (`saelight.sae.baselines.BASELINES`:
            frozen_decoder, frozen_encoder, random); the report judges each claim against them.
        seeds: copies of every SAE, each from its own random init, trained on the same batches;
            the report gives mean ± std over them and each SAE's seed stability (mean pairwise
            MCC of its decoders).
    """

    def __init__(
        self,
        saes: list[Callable[..., SAE]],
        sparsities: list[float] | None = None,
        d_in: int = 0,
        layers: list[int] | None = None,
        optimizer: OptimizerCallable = torch.optim.Adam,
        lr_schedule: WarmupDecay | None = None,
        sparsity_schedule: SparsityAnneal | None = None,
        dead_after_samples: int | None = None,
        resample_dead_until: float = 0.8,
        nonfinite: str = "error",
        divergence: Literal["warn", "rollback", "stop"] = "warn",
        baselines: list[str] | None = None,
        seeds: int = 1,
    ) -> None:
        super().__init__()
        if nonfinite not in ("error", "skip"):
            raise ValueError(f"model.nonfinite must be 'error' or 'skip', got {nonfinite!r}")
        if divergence not in POLICIES:
            raise ValueError(f"model.divergence must be one of {POLICIES}, got {divergence!r}")
        if not 0 <= resample_dead_until <= 1:
            raise ValueError(
                f"model.resample_dead_until must be in [0, 1], got {resample_dead_until}"
            )
        self.resample_dead_until = resample_dead_until
        self._resample_before_step = 0.0  # the step resampling stops at; set when training starts
        self._last_batch: Tensor | None = None
        self.layers = list(layers) if layers else [0]
        self.saes, self.grid = build_grid(saes, sparsities, d_in, self.layers, baselines, seeds)
        self.d_in = d_in
        self.optimizer_factory, self.lr_schedule = optimizer, lr_schedule
        self.sparsity_schedule = sparsity_schedule
        self.nonfinite = nonfinite
        self.divergence = divergence
        self.divergence_guard = DivergenceGuard([e.key for e in self.grid])
        self.divergences = {e.key: 0 for e in self.grid}
        # Rollback: per SAE the state at the last check it passed, and those to restore after
        # this step's optimiser step (not before: the backward still needs their graphs).
        self._snapshots: dict[str, Snapshot] = {}
        self._restore: list[str] = []
        self.targets = {e.key: self.sae(e).sparsity_knob for e in self.grid}
        self.dead_windows = {e.key: dead_window(self.sae(e), dead_after_samples) for e in self.grid}
        for e in self.grid:
            self.register_buffer(
                f"since_fired_{e.key}", torch.zeros(self.saes[e.key].d_sae, dtype=torch.long)
            )
        self.register_buffer("nonfinite_rows", torch.zeros((), dtype=torch.long))
        # Per SAE, the last validation epoch's (per-latent firing density, per-row L0 counts),
        # synced across ranks by their metrics; read by the FeatureHistograms callback.
        self.val_distributions: dict[str, tuple[Tensor, Tensor]] = {}
        self.val_metrics = nn.ModuleDict(
            {e.key: self._metric_set(self.saes[e.key]) for e in self.grid}
        )
        # A buffer, so a resumed run does not re-initialise b_dec / input scales from a new batch.
        self.register_buffer("data_initialized", torch.zeros((), dtype=torch.bool))

    @staticmethod
    def _metric_set(sae: SAE) -> nn.ModuleDict:
        return nn.ModuleDict(
            {
                "mse": MSE(),
                "fvu": FVU(),
                "cosine": CosineSimilarity(),
                "l0": L0(sae.d_sae),
                "density": FeatureDensity(sae.d_sae),
            }
        )

    def sae(self, entry: GridEntry) -> SAE:
        return self.saes[entry.key]  # type: ignore[return-value]

    def since_fired(self, entry: GridEntry) -> Tensor:
        return getattr(self, f"since_fired_{entry.key}")

    def configure_optimizers(self):  # noqa: ANN201 (Lightning's union of return types)
        groups = [{"params": list(self.sae(e).parameters()), "name": e.key} for e in self.grid]
        optimizer = prefer_fused(self.optimizer_factory(groups))
        if self.lr_schedule is None:
            return optimizer
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, self.lr_schedule)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "step"},
        }

    def _rows(self, batch: dict[str, Tensor]) -> BatchRows:
        rows = batch_rows(batch, drop_nonfinite=self.nonfinite == "skip")
        if rows.nonfinite:  # no per-step tensor op when every row is finite
            self.nonfinite_rows += rows.nonfinite
        return rows

    def on_train_batch_start(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        if not self.data_initialized:
            rows = batch_rows(batch, drop_nonfinite=True)
            if self.trainer.world_size > 1:
                # Every rank must start from the same b_dec / input_scale: use the global batch.
                rows = BatchRows(*(None if t is None else self.all_gather(t).flatten(0, 1)
                                   for t in (rows.x, rows.keep)))  # fmt: skip
            for e in self.grid:
                self.sae(e).initialize_from_data(rows.layer(e.layer_pos)[0].float())
            self.data_initialized.fill_(True)
        if self.trainer.accumulate_grad_batches == 1:
            # Lightning zeroes them after the forward; dropping them here keeps the previous
            # step's gradients (4 bytes per parameter) out of the forward's peak memory.
            for optimizer in self.trainer.optimizers:
                optimizer.zero_grad(set_to_none=True)
        if self.sparsity_schedule is not None:
            for e in self.grid:
                sae = self.sae(e)
                value = self.sparsity_schedule(self.global_step, self.targets[e.key])
                sae.sparsity_knob = value  # the SAE rounds it where the knob is an integer (k)

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        rows = self._rows(batch)
        self._last_batch = rows.x.detach()
        log_now = self.global_step % max(self.trainer.log_every_n_steps, 1) == 0
        parts: list[Tensor] = []
        logs: dict[str, Tensor | float] = {}
        world = self.trainer.world_size
        for e in self.grid:
            sae, xi = self.sae(e), rows.layer(e.layer_pos)[0]
            counter = self.since_fired(e)
            dead = counter >= self.dead_windows[e.key]
            out = sae(xi, dead_mask=dead)
            mse = F.mse_loss(out.x_hat.float(), xi)
            parts.append(mse + out.aux_loss)
            # From the k indices per row when the SAE gives them: no dense (batch, d_sae) pass.
            fired = out.codes.fired() if out.codes is not None else (out.z > 0).any(0)
            if world > 1 and dist.is_initialized():
                fired = fired.to(torch.uint8)
                dist.all_reduce(fired, op=dist.ReduceOp.MAX)
                fired = fired.bool()
            counter.add_(xi.shape[0] * world).masked_fill_(fired, 0)
            if log_now:
                logs[f"{e.prefix}/train/mse"] = mse.detach()
                logs[f"{e.prefix}/train/aux_loss"] = out.aux_loss.detach()
                logs[f"{e.prefix}/train/{sae.sparsity_attr}"] = sae.sparsity_knob
                logs[f"{e.prefix}/train/dead_fraction"] = dead.float().mean()
        self.divergence_guard.update(torch.stack([p.detach() for p in parts]), self.global_step)
        if log_now:
            self._check_divergence()
            for e in self.grid:
                logs[f"{e.prefix}/train/divergences"] = float(self.divergences[e.key])
            self.log_dict(logs)
        total = self._total_loss(parts)
        self.log("train/loss", total.detach(), prog_bar=True)
        if self.nonfinite == "skip":
            bad = self.nonfinite_rows.float()
            self.log("train/nonfinite_rows", bad, reduce_fx="sum", sync_dist=True)
        return total

    def _total_loss(self, parts: list[Tensor]) -> Tensor:
        """Σ of the SAEs' losses; an SAE about to be rolled back contributes 0·Σ its
        parameters instead: zero gradients (DDP still sees every parameter used), no NaN."""
        total = parts[0].new_zeros(())
        for e, part in zip(self.grid, parts, strict=True):
            if e.key in self._restore:
                part = sum((p.sum() for p in self.sae(e).parameters()), part.new_zeros(())) * 0
            total = total + part
        return total

    def _check_divergence(self) -> None:
        """At a logging step: one read of the guard's flags; each flagged SAE gets one WARNING
        line and the policy; under rollback each SAE that passed is snapshotted."""
        guard, step = self.divergence_guard, self.global_step
        spikes = {s.key: s for s in guard.spikes()}
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        for i, e in enumerate(self.grid):
            spike = spikes.get(e.key)
            if spike is None:
                if self.divergence == "rollback":
                    level = guard.levels[i]
                    self._snapshots[e.key] = take_snapshot(self.sae(e), optimizer, level, step)
                continue
            self.divergences[e.key] += 1
            self._act_on(i, spike)

    def _act_on(self, i: int, spike: Spike) -> None:
        guard, snap = self.divergence_guard, self._snapshots.get(spike.key)
        finite = spike.after < float("inf")
        if self.divergence == "stop":
            line = spike.line("stopping (model.divergence: stop)")
            log.warning("%s", line)
            raise TrainingDiverged(line, hint="set model.divergence: rollback or warn to go on")
        if self.divergence == "rollback" and snap is not None:
            self._restore.append(spike.key)
            guard.reset(i, snap.level)
            log.warning(
                "%s", spike.line(f"rolled back to step {snap.step} (weights and optimiser state)")
            )
            return
        # warn (or rollback before any snapshot): the new level becomes the reference; a
        # non-finite SAE stays so, and is not reported again.
        guard.reset(i, None, active=finite)
        why = "no state kept yet to roll back to" if self.divergence == "rollback" else "warn"
        log.warning("%s", spike.line(f"training goes on (model.divergence: {why})"))

    def _restore_diverged(self) -> None:
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        for e in self.grid:
            if e.key in self._restore:
                restore_snapshot(self.sae(e), optimizer, self._snapshots[e.key])
        self._restore.clear()

    def on_before_optimizer_step(self, optimizer: torch.optim.Optimizer) -> None:
        for e in self.grid:
            self.sae(e).remove_parallel_decoder_grad()

    def optimizer_step(self, *args: Any, **kwargs: Any) -> None:
        super().optimizer_step(*args, **kwargs)
        self._restore_diverged()
        # Here, not in on_train_batch_end: callbacks (ModelCheckpoint) run before that hook, so a
        # checkpoint would hold the un-normalised decoder and a resumed run would drift from it.
        for e in self.grid:
            self.sae(e).normalize_decoder()
        self._resample_dead()

    def on_train_start(self) -> None:
        steps = self.trainer.estimated_stepping_batches
        self._resample_before_step = self.resample_dead_until * steps

    def _resample_dead(self) -> None:
        """Re-initialises the latents past their dead window, early in training (see
        `resample_dead_until`), on the global batch so that every rank does the same."""
        x, self._last_batch = self._last_batch, None
        if x is None or self.global_step >= self._resample_before_step:
            return
        dead = {e.key: self.since_fired(e) >= self.dead_windows[e.key] for e in self.grid}
        # One host read-back per step for the whole grid (a sync on GPU), not one per SAE.
        if not bool(torch.stack([d.any() for d in dead.values()]).any()):
            return
        if self.trainer.world_size > 1:
            # all_gather needs equal shapes; rows dropped as non-finite may differ per rank.
            rows = int(self.all_gather(torch.tensor(x.shape[0], device=x.device)).min())
            x = self.all_gather(x[:rows]).flatten(0, 1)
        optimizer = self.trainer.optimizers[0] if self.trainer.optimizers else None
        for i, e in enumerate(self.grid):
            if e.baseline is not None:  # its random tensors stay as they are
                continue
            g = torch.Generator(device=x.device).manual_seed(self.global_step * 1009 + i)
            n = resample_dead_latents(self.sae(e), x[:, e.layer_pos], dead[e.key], optimizer, g)
            if n:  # the first n dead latents; the others wait for a later batch's rows
                self.since_fired(e)[dead[e.key].nonzero().squeeze(1)[:n]] = 0

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        rows = self._rows(batch)
        for e in self.grid:
            xi, offset = rows.layer(e.layer_pos)
            sae = self.sae(e)
            z = sae.encode(xi)
            x_hat = sae.decode(z).float()
            if offset is not None:  # scored in the original space: the offsets added back
                xi, x_hat = xi + offset, x_hat + offset
            metrics = self.val_metrics[e.key]
            for name in ("mse", "fvu", "cosine"):
                metrics[name].update(xi, x_hat)
            metrics["l0"].update(z)
            metrics["density"].update(z)

    def on_validation_epoch_end(self) -> None:
        logs: dict[str, Tensor | float] = {}
        for e in self.grid:
            metrics = self.val_metrics[e.key]
            for name in ("mse", "fvu", "cosine", "l0"):
                logs[f"{e.prefix}/val/{name}"] = metrics[name].compute()
            density = metrics["density"].compute()
            logs[f"{e.prefix}/val/dead_fraction"] = density["dead_fraction"]
            logs[f"{e.prefix}/val/dead_floor"] = density["dead_floor"]
            logs[f"{e.prefix}/val/dense_fraction"] = density["dense_fraction"]
            self.val_distributions[e.key] = (density["density"], metrics["l0"].histogram())
            for metric in metrics.values():
                metric.reset()
        logs["val/mse_mean"] = torch.stack(
            [torch.as_tensor(logs[f"{e.prefix}/val/mse"]) for e in self.grid]
        ).mean()
        self.log_dict(logs, sync_dist=False)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        """`saelight test`: the test split, scored as `validation_step` scores the val split."""
        self.validation_step(batch, batch_idx)

    def on_test_epoch_end(self) -> None:
        logs: dict[str, Tensor] = {}
        for e in self.grid:
            metrics = self.val_metrics[e.key]
            for name in ("mse", "fvu", "cosine", "l0"):
                logs[f"{e.prefix}/test/{name}"] = metrics[name].compute()
            density = metrics["density"].compute()
            for name in ("dead_fraction", "dead_floor", "dense_fraction"):
                logs[f"{e.prefix}/test/{name}"] = density[name]
            for metric in metrics.values():
                metric.reset()
        mses = [logs[f"{e.prefix}/test/mse"] for e in self.grid]
        logs["test/mse_mean"] = torch.stack(mses).mean()
        self.log_dict(logs, sync_dist=False)
