"""The dead-latent window follows each SAE's k/d_sae, so AuxK (and resampling) start within a
short run."""

from __future__ import annotations

from functools import partial

import lightning as L
import pytest
import torch
from torch import Tensor

from saelight.module import SAEModule
from saelight.sae import ReLUSAE, TopKSAE
from saelight.sae.dead_latents import DEAD_AFTER_FIRINGS, DEAD_AFTER_SAMPLES_UNKNOWN, dead_window

D_IN, D_SAE = 8, 64


def test_window_is_expected_firings_over_the_active_fraction() -> None:
    sae = TopKSAE(D_IN, 2048, sparsity=0.99)  # k = 20
    assert dead_window(sae, None) == round(DEAD_AFTER_FIRINGS / 0.01) == 10_000
    assert dead_window(TopKSAE(D_IN, 2048, sparsity=0.75), None) == 400
    assert dead_window(sae, 1234) == 1234  # a configured window wins
    assert dead_window(ReLUSAE(D_IN, D_SAE), None) == DEAD_AFTER_SAMPLES_UNKNOWN


def batches(n: int, seed: int) -> list[dict[str, Tensor]]:
    g = torch.Generator().manual_seed(seed)
    return [{"x": torch.randn(32, 1, D_IN, generator=g)} for _ in range(n)]


def fit(
    dead_after_samples: int | None, resample_dead_until: float = 0.0
) -> tuple[SAEModule, dict[str, float]]:
    """40 steps of 32 rows (1 280 rows) of a TopK SAE at 75 % sparsity: window 400 rows."""
    torch.manual_seed(0)
    module = SAEModule(
        saes=[partial(TopKSAE, d_sae=D_SAE, aux_k=8)],
        sparsities=[0.75],
        d_in=D_IN,
        layers=[0],
        dead_after_samples=dead_after_samples,
        resample_dead_until=resample_dead_until,
    )
    sae = module.sae(module.grid[0])
    with torch.no_grad():  # latents 0..15 can never win the top-k: they are born dead
        sae.b_enc[:16] = -1e3
    seen: list[float] = []

    class AuxLog(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
            seen.append(
                float(trainer.callback_metrics[f"{pl_module.grid[0].prefix}/train/aux_loss"])
            )

    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        limit_val_batches=0,
        callbacks=[AuxLog()],
    )
    trainer.fit(module, torch.utils.data.DataLoader(batches(40, 1), batch_size=None))
    prefix = module.grid[0].prefix
    return module, {
        "dead": float(trainer.callback_metrics[f"{prefix}/train/dead_fraction"]),
        "first_aux_step": next((i for i, v in enumerate(seen) if v > 0), -1),
    }


@pytest.mark.usefixtures("fp32_only")
def test_auxk_starts_once_a_latent_missed_the_window() -> None:
    module, auto = fit(None)
    assert module.dead_windows[module.grid[0].key] == 400
    # the mask of step i (0-based) reads the counter of the 32·i rows before it: 416 >= 400
    # first at step 13
    assert auto["first_aux_step"] == 13
    assert auto["dead"] >= 16 / D_SAE
    _, fixed = fit(100_000)  # the old fixed window: AuxK never starts in a run this short
    assert fixed["first_aux_step"] == -1 and fixed["dead"] == 0


@pytest.mark.usefixtures("fp32_only")
def test_dead_latents_are_resampled_early_in_training_and_then_fire() -> None:
    module, result = fit(None, resample_dead_until=0.5)
    sae = module.sae(module.grid[0])
    # Born dead, they miss the 400-row window after step 12 (416 rows) and are re-initialised
    # then, within the first half of the 40 steps: b_enc back to 0, a fresh window, no AuxK.
    assert result["first_aux_step"] == -1 and result["dead"] == 0
    assert bool((sae.b_enc[:16] > -1).all())
    x = torch.cat([b["x"][:, 0] for b in batches(40, 1)])
    fired = (sae.encode(x) > 0).any(0)
    assert int(fired[:16].sum()) >= 12
    _, off = fit(None, resample_dead_until=0.0)
    assert off["dead"] >= 16 / D_SAE
