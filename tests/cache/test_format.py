"""The on-disk format: atomic writes, manifest errors, recipe comparison, storage dtypes."""

import errno
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import saelight.cache.format as fmt
import saelight.io.atomic as atomic
from saelight.cache import CacheCorruptError, CacheMismatchError


def test_failed_atomic_write_keeps_the_old_file_and_no_temp(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "f.bin"
    fmt.atomic_write_bytes(target, b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        fmt.atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["f.bin"]


def test_manifest_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    assert fmt.read_manifest(tmp_path) is None
    (tmp_path / "manifest.json").write_text('{"format_version": 1, "shar')
    with pytest.raises(CacheCorruptError, match="manifest.json is not valid JSON.*truncated"):
        fmt.read_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("[1, 2]")
    with pytest.raises(CacheCorruptError, match="does not hold a JSON object"):
        fmt.read_manifest(tmp_path)
    (tmp_path / "manifest.rank3.json").write_text(json.dumps({"format_version": 0}))
    with pytest.raises(CacheMismatchError, match="format_version 0, this saelight reads 1"):
        fmt.read_manifest(tmp_path, fmt.part_name(3))


def test_recipe_difference_names_the_nested_field() -> None:
    found = {"backbone": {"model": "a", "hidden_size": 32}, "layers": [1]}
    wanted = {"backbone": {"model": "a", "hidden_size": 64}, "layers": [1]}
    with pytest.raises(
        CacheMismatchError, match="'backbone.hidden_size' is 32 in the cache but 64"
    ):
        fmt.check_compatible(found, wanted, "here")
    fmt.check_compatible(found, json.loads(json.dumps(found)), "here")


def test_storage_dtypes_round_trip_like_torch() -> None:
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32) * 1e3
    bf16 = fmt.from_storage(fmt.to_storage(x, "bfloat16"), "bfloat16")
    np.testing.assert_array_equal(bf16, torch.from_numpy(x).bfloat16().float().numpy())
    np.testing.assert_array_equal(fmt.from_storage(fmt.to_storage(x, "float16"), "float16"),
                                  x.astype(np.float16).astype(np.float32))  # fmt: skip
    assert fmt.from_storage(fmt.to_storage(x, "float32"), "float32") is not None
    with pytest.raises(ValueError, match="storage dtype must be one of"):
        fmt.to_storage(x, "int8")
