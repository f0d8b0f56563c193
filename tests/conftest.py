"""Test-wide settings: offline hubs, offline W&B, fixed seeds and the default dtype restored."""

import os
import sys
from pathlib import Path

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
    WANDB_MODE=dryrun in os.environ, which would leak into later tests); a W&B run an in-process
    fit left open (one that failed on purpose) is finished, else a later test's WandbLogger
    reuses it and writes its media under the run's relative directory, in whatever directory the
    worker is then in (the repository root)."""
    dtype = torch.get_default_dtype()
    wandb_env = {k: v for k, v in os.environ.items() if k.startswith("WANDB_")}
    torch.manual_seed(0)
    yield
    wandb = sys.modules.get("wandb")
    if wandb is not None and getattr(wandb, "run", None) is not None:
        wandb.finish()
    torch.set_default_dtype(dtype)
    for key in [k for k in os.environ if k.startswith("WANDB_")]:
        del os.environ[key]
    os.environ.update(wandb_env)


def read_wandb_records(path) -> list:  # noqa: ANN001
    """Every `Record` of an offline `run-*.wandb` file, decoded with the wandb SDK's protobufs.

    The file is W&B's LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then
    32 KiB blocks of chunks (crc32 4 B, length 2 B LE, type 1 B: 1 full, 2 first, 3 middle,
    4 last). wandb 0.31 reads it in its Go core only, so the framing is decoded here.
    """
    from wandb.proto import wandb_internal_pb2

    data = open(path, "rb").read()
    assert data[:4] == b":W&B", f"{path} is not a W&B run file"
    block, pos, records, pending = 32768, 7, [], b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # the block's tail is padding
            pos += block - pos % block
            continue
        length = int.from_bytes(data[pos + 4 : pos + 6], "little")
        kind = data[pos + 6]
        chunk = data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind == 0 and length == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
            pending = b""
    return records


@pytest.fixture
def wandb_records():  # noqa: ANN201
    """`read_wandb_records` as a fixture (tests cannot import conftest)."""
    return read_wandb_records


@pytest.fixture(scope="session")
def tiny_cache_args(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """`--data.cache.*` arguments of tests/data/tiny_csv.yaml's cache and backbone, built once per
    session before any fit: building the random backbone draws from torch's RNG, which would
    shift the SAE initialisation of the run that happened to build it."""
    from saelight.cli import main

    base = tmp_path_factory.getbasetemp()
    args = ["--data.cache.directory", str(base / "tiny_cache")]
    args += ["--data.cache.backbone.init_args.save_dir", str(base / "tiny_models")]
    config = Path(__file__).parent / "data" / "tiny_csv.yaml"
    main(["cache", "--config", str(config), "--trainer.default_root_dir", str(base), *args])
    return args
