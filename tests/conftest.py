"""Test-wide settings: offline hubs, offline W&B, fixed seeds and the default dtype restored."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_dtype_and_env():
    """Fixed seed; default dtype and WANDB_* variables restored (WandbLogger(offline=True) sets
    WANDB_MODE=dryrun in os.environ, which would leak into later tests)."""
    dtype = torch.get_default_dtype()
    wandb_env = {k: v for k, v in os.environ.items() if k.startswith("WANDB_")}
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(dtype)
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        del os.environ[key]
    os.environ.update(wandb_env)
