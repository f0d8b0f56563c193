"""The as-shipped benchmark reads the shipped configs as the CLI does and runs their grid steps.

No timing is asserted (speed lives in benchmarks/README.md): this checks that the benchmark
measures what it says — every SAE of each config's grid, with the config's k, width and batch —
and that its steps train (the loss falls).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks")]

from as_shipped import CONFIGS, config_grid  # noqa: E402
from grid_steps import plain_grid_step, saelight_grid_step  # noqa: E402
from steps import synthetic_batches  # noqa: E402

from saelight.io.config_bases import load_with_bases  # noqa: E402


@pytest.mark.parametrize("path", CONFIGS)
def test_grid_is_the_configs_grid(path: str) -> None:
    specs, d_in, d_sae, batch = config_grid(path)
    cfg = load_with_bases(ROOT / path)
    layers = cfg["data"]["cache"]["backbone"]["init_args"].get("layers", [3, 12])
    sparsities = cfg["model"]["sparsities"]
    assert len(specs) == len(layers) * len(sparsities)
    assert [s["k"] for s in specs] == [int((1 - s) * d_sae) for s in sparsities] * len(layers)
    assert batch == cfg["data"]["batch_size"]
    assert d_sae == cfg["model"]["saes"][0]["init_args"]["d_sae"]


def test_quickstart_grid_steps_train() -> None:
    specs, d_in, _, batch = config_grid("configs/quickstart.yaml")
    data = synthetic_batches(2, batch, d_in, seed=1)
    for make in (saelight_grid_step, plain_grid_step):
        step = make(specs, d_in, data)
        first = float(step())
        for _ in range(20):
            last = float(step())
        assert last < first, make.__name__
