"""Checks of the `data.cache` options that need no audio and no model.

They live apart from `ActivationCache` so the CLI can run them on the parsed config before
jsonargparse builds the nested source and backbone (loading a model takes seconds to minutes; a
typo in `pooling` should not).
"""

from __future__ import annotations

from typing import Any

from saelight.cache.format import STORAGE_DTYPES
from saelight.io.errors import ConfigError

PROTOCOLS = ("saelight", "paper")


def check_cache_options(
    *,
    pooling: str,
    storage_dtype: str,
    crops_per_file: int,
    clips_per_shard: int,
    batch_size: int,
    on_bad_input: str,
    on_locked: str,
    crop_seconds: float | None,
    protocol: str = "saelight",
    test_full_length: bool = True,
    **_: Any,
) -> None:
    """The checks of this section's own values; the CLI runs them before the backbone is
    built (jsonargparse builds nested objects first)."""
    if pooling not in ("clip", "frame"):
        raise ConfigError(f"cache.pooling must be 'clip' or 'frame', got {pooling!r}")
    if storage_dtype not in STORAGE_DTYPES:
        raise ConfigError(
            f"cache.storage_dtype must be one of {STORAGE_DTYPES}, got {storage_dtype!r}"
        )
    counts = {"crops_per_file": crops_per_file, "clips_per_shard": clips_per_shard}
    for name, value in {**counts, "batch_size": batch_size}.items():
        if value < 1:
            raise ConfigError(f"data.cache.{name} must be >= 1, got {value}")
    if on_bad_input not in ("skip", "error"):
        raise ConfigError(f"cache.on_bad_input must be 'skip' or 'error', got {on_bad_input!r}")
    if on_locked not in ("wait", "error"):
        raise ConfigError(f"cache.on_locked must be 'wait' or 'error', got {on_locked!r}")
    if crop_seconds is not None and crop_seconds <= 0:
        raise ConfigError(f"cache.crop_seconds must be > 0 or null, got {crop_seconds}")
    if protocol not in PROTOCOLS:
        raise ConfigError(f"cache.protocol must be 'saelight' or 'paper', got {protocol!r}")
    if protocol == "paper" and (crop_seconds is None or not test_full_length):
        raise ConfigError(
            "cache.protocol: paper needs cache.crop_seconds (the paper's 5 s crops) and "
            "cache.test_full_length: true (its whole test files), got "
            f"crop_seconds={crop_seconds}, test_full_length={test_full_length}"
        )
