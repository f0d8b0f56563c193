"""Each architecture on planted ground truth at (about) the same L0, through SAEModule's real path.

48 planted features in 32 dims (superposition), true L0 ~3, correlated and hierarchical pairs,
noise 0.02 (`PlantedDictionary`), 51,200 training rows, 4 epochs, d_sae 48, Adam 1e-2, the
library defaults otherwise (AuxK, resampling, divergence guard). TopK-family SAEs get k = 4;
ReLU and JumpReLU get the coefficient of a small sweep whose held-out L0 lands closest to 4, since
they have no k. Each SAE's random `frozen_decoder` baseline is trained beside it. Scores on 4,096
held-out rows: ground-truth MCC, mean per-latent F1, shrinkage, FVU.

    python benchmarks/planted_architectures.py   # writes benchmarks/planted_architectures.json
"""

from __future__ import annotations

import functools
import json
import platform
import subprocess
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader

from saelight.data.batches import TensorBatches
from saelight.evaluation.planted_truth import PlantedDictionary
from saelight.metrics.dictionary_match import ground_truth_scores
from saelight.module import SAEModule
from saelight.sae import BatchTopKSAE, HierarchicalTopKSAE, JumpReLUSAE, ReLUSAE, TopKSAE

D_IN, D_SAE, K, EPOCHS = 32, 48, 4, 4
SPECS: dict[str, list[Any]] = {
    "topk": [functools.partial(TopKSAE, d_sae=D_SAE, k=K)],
    "batchtopk": [functools.partial(BatchTopKSAE, d_sae=D_SAE, k=K)],
    "hierarchical_topk": [functools.partial(HierarchicalTopKSAE, d_sae=D_SAE, ks=[2, K])],
    "relu": [
        functools.partial(ReLUSAE, d_sae=D_SAE, l1_coefficient=c) for c in (0.005, 0.01, 0.03)
    ],
    "jumprelu": [
        functools.partial(JumpReLUSAE, d_sae=D_SAE, l0_coefficient=c) for c in (0.001, 0.003, 0.01)
    ],
}


def score(sae: Any, planted: PlantedDictionary, x: torch.Tensor, a: torch.Tensor) -> dict:
    with torch.no_grad():
        z = sae.encode(x)
        fvu = float(((x - sae.decode(z)) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
        summary = ground_truth_scores(sae.W_dec, planted.directions, z, a).summary()
    l0 = float((z > 0).float().sum(1).mean())
    return {"l0": l0, "fvu": fvu, **{k: summary[k] for k in ("mcc", "f1", "shrinkage")}}


def train(spec: Any, x: torch.Tensor) -> tuple[SAEModule, float]:
    L.seed_everything(0, verbose=False)
    module = SAEModule(
        [spec],
        d_in=D_IN,
        baselines=["frozen_decoder"],
        optimizer=functools.partial(torch.optim.Adam, lr=1e-2),
    )
    trainer = L.Trainer(
        max_epochs=EPOCHS,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    t0 = time.perf_counter()
    trainer.fit(module, DataLoader(TensorBatches(x, 128), batch_size=None))
    return module, time.perf_counter() - t0


def main() -> None:
    torch.set_num_threads(1)
    planted = PlantedDictionary(
        d_in=D_IN, n_features=48, n_correlated_pairs=4, n_hierarchical_pairs=4, noise_std=0.02
    )
    x, _ = planted.sample(400 * 128, seed=1)
    x_eval, a_eval = planted.sample(4096, seed=2)
    results = {}
    for name, specs in SPECS.items():
        best = None
        for spec in specs:
            module, wall = train(spec, x)
            trained, baseline = (module.sae(e) for e in module.grid)
            row = score(trained, planted, x_eval, a_eval)
            row["baseline_mcc"] = score(baseline, planted, x_eval, a_eval)["mcc"]
            row["wall_s"] = wall
            row["knob"] = {k: v for k, v in spec.keywords.items() if k != "d_sae"}
            if best is None or abs(row["l0"] - K) < abs(best["l0"] - K):
                best = row
        results[name] = best
        print(name, {k: round(v, 3) if isinstance(v, float) else v for k, v in best.items()})
    cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    model = next((ln.split(":", 1)[1].strip() for ln in cpu.splitlines() if "Model name" in ln), "")
    out = {"cpu": model or platform.processor(), "torch": torch.__version__, "results": results}
    path = Path(__file__).with_suffix(".json")
    path.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
