"""The on-disk activation cache format: file names, the manifest, atomic writes and checks.

Layout of a cache directory (format version 1)::

    manifest.json                   what was extracted, how, and every shard; `complete` once merged
    manifest.rank<R>.json           during extraction only: the shards process R has committed
    layer_<LL>/shard_<SSSSS>.npy    (rows, dim) activations of hidden_states[LL], one per shard
    meta/shard_<SSSSS>.parquet      one row per activation row: row, clip_id, path, split, crop,
                                    frame, label_<name> and factor_<name> columns

A row's `split` is its clip's (train, val, test), or `test_head` (`TEST_HEAD`) for the extra row(s)
that `cache.protocol: paper` writes of each test file's first `crop_seconds`: the rows the paper
scores its probes on, while whole-file `test` rows keep reconstruction and disentanglement.

A shard covers a contiguous run of clips in the source's order and is named by its first clip
(`shard_00512` starts at clip 512; caches written before multi-process extraction number them
0, 1, ...; the reader takes the names from the manifest). Each extracting process owns one part
manifest, rewritten (temp file + rename) after every shard it commits, so an interrupted extraction
resumes at the clips no part covers. Once every process is done, rank 0 checks that the shards tile
the clips exactly once, numbers the rows and writes manifest.json with `complete: true`.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from saelight.io.atomic import atomic_write_bytes  # noqa: F401 (re-exported for cache modules)
from saelight.io.checksum import sha256_bytes, sha256_file  # noqa: F401 (re-exported)
from saelight.io.errors import SaelightError

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
PART_GLOB = "manifest.rank*.json"
STORAGE_DTYPES = ("float32", "float16", "bfloat16")
TEST_HEAD = "test_head"
"""Row split of a test file's first `crop_seconds` (protocol "paper"), beside its whole-file row.
Never a source's split (`audio.base.SPLITS`): readers of `split_rows("test")` never see it."""
# Manifest fields that must equal the requested configuration before a cache is reused or resumed.
IDENTITY_FIELDS = ("format_version", "backbone", "source", "extraction", "layers", "dim")


class CacheMismatchError(SaelightError, ValueError):
    """A cache on disk was made with a different configuration than the one requested."""


class CacheCorruptError(SaelightError, RuntimeError):
    """A cache file is missing, truncated or fails its checksum."""


class CacheNotFoundError(SaelightError, FileNotFoundError):
    """No complete activation cache where a command (or a run's config) says one is."""


def layer_dir(layer: int) -> str:
    return f"layer_{layer:02d}"


def shard_name(index: int, suffix: str) -> str:
    return f"shard_{index:05d}{suffix}"


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def part_name(rank: int) -> str:
    """The part manifest of extracting process `rank`."""
    return f"manifest.rank{rank}.json"


def check_listed_file(path: Path, digest: str, verify: bool, what: str, rebuild: str) -> None:
    """CacheCorruptError unless the `what` file `path` a manifest lists exists and, with
    `verify`, matches its sha256 `digest`; `rebuild` says how to get a good one again."""
    if not path.exists():
        raise CacheCorruptError(f"{what} {path} listed in the manifest is missing")
    if verify and sha256_file(path) != digest:
        raise CacheCorruptError(
            f"{what} {path} fails its sha256 checksum (corrupt or modified); {rebuild}"
        )


def new_header(recipe: dict[str, Any]) -> dict[str, Any]:
    """The manifest of a cache about to be written: its recipe, nothing extracted yet."""
    return {
        **recipe,
        "complete": False,
        "n_rows": 0,
        "shards": [],
        "skipped": [],
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }


def write_manifest(directory: str | Path, manifest: dict[str, Any], name: str = MANIFEST) -> None:
    atomic_write_bytes(Path(directory) / name, json.dumps(manifest, indent=1).encode())


def read_manifest(directory: str | Path, name: str = MANIFEST) -> dict[str, Any] | None:
    """The manifest (or a part manifest), or None when the directory holds none yet."""
    path = Path(directory) / name
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CacheCorruptError(
            f"{path} is not valid JSON ({err}); the manifest is truncated or corrupt. Move the "
            "cache directory aside and run `saelight cache` again."
        ) from err
    if not isinstance(manifest, dict):
        raise CacheCorruptError(f"{path} does not hold a JSON object; the manifest is corrupt")
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise CacheMismatchError(
            f"{path}: cache format_version {version!r}, this saelight reads {FORMAT_VERSION}; "
            "rebuild the cache with `saelight cache`."
        )
    return manifest


def check_compatible(found: dict[str, Any], expected: dict[str, Any], where: str | Path) -> None:
    """Raise CacheMismatchError naming the first manifest field that differs from the request."""
    for key in IDENTITY_FIELDS:
        a, b = _jsonable(found.get(key)), _jsonable(expected.get(key))
        if a != b:
            detail = _first_difference(a, b, key)
            raise CacheMismatchError(
                f"cache {where} was built with a different configuration: {detail}. Point "
                "`cache.directory` at a new directory or delete this one."
            )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def _first_difference(found: Any, expected: Any, path: str) -> str:
    if isinstance(found, dict) and isinstance(expected, dict):
        for key in sorted(set(found) | set(expected)):
            if found.get(key) != expected.get(key):
                return _first_difference(found.get(key), expected.get(key), f"{path}.{key}")
    return f"field '{path}' is {found!r} in the cache but {expected!r} was requested"


def to_storage(array: np.ndarray, dtype: str) -> np.ndarray:
    """float32 -> the storage dtype; bfloat16 is kept as its upper 16 bits in a uint16 array."""
    if dtype == "float32":
        return array.astype(np.float32, copy=False)
    if dtype == "float16":
        return array.astype(np.float16)
    if dtype == "bfloat16":
        bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
        rounded = bits + 0x7FFF + ((bits >> 16) & 1)  # round to nearest even
        return (rounded >> 16).astype(np.uint16)
    raise ValueError(f"storage dtype must be one of {STORAGE_DTYPES}, got {dtype!r}")


def from_storage(array: np.ndarray, dtype: str) -> np.ndarray:
    """Stored rows -> float32."""
    if dtype == "bfloat16":
        return (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(np.float32, copy=False)


LABEL_PREFIX = "label_"
FACTOR_PREFIX = "factor_"


def label_column(name: str) -> str:
    """Row-metadata column of a categorical label (`technique` -> `label_technique`)."""
    return LABEL_PREFIX + name


def factor_column(name: str) -> str:
    """Row-metadata column of a continuous factor (`f0_hz` -> `factor_f0_hz`)."""
    return FACTOR_PREFIX + name


def label_names(columns: Any) -> list[str]:
    """Label names among metadata `columns`, in column order."""
    return [c.removeprefix(LABEL_PREFIX) for c in columns if c.startswith(LABEL_PREFIX)]


def factor_names(columns: Any) -> list[str]:
    """Factor names among metadata `columns`, in column order."""
    return [c.removeprefix(FACTOR_PREFIX) for c in columns if c.startswith(FACTOR_PREFIX)]
