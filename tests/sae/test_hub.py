"""`SAE.from_pretrained` from a Hub repo id, resolved offline through huggingface_hub's own cache,
and the integrity checks every load makes (checksum, shapes), from a folder or a repo.

The cache is laid out by hand the way `snapshot_download` leaves it (huggingface_hub 2.x,
`_snapshot_download.py` / `file_download.py`): `models--<org>--<name>/blobs/<hash>` holds the
bytes, `snapshots/<commit>/<path>` links to them and `refs/<branch>` holds the commit. With
`HF_HUB_OFFLINE=1` snapshot_download reads `refs/<revision>` and returns the snapshot folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from saelight.io.checksum import sha256_file
from saelight.io.errors import SaelightError
from saelight.sae import SAE, JumpReLUSAE, TopKSAE
from saelight.sae.base import CFG_FILE, WEIGHTS_FILE
from saelight.sae.hub import WEIGHTS_SHA256

REPO = "org/audio-saes"
KEY = "L01_topk_k4"
COMMIT_MAIN = "a" * 40
COMMIT_V1 = "b" * 40


def export(folder: Path, seed: int = 0) -> TopKSAE:
    torch.manual_seed(seed)
    sae = TopKSAE(16, d_sae=64, k=4)
    sae.save_pretrained(folder, layer=1, backbone={"model": "facebook/hubert-base-ls960"})
    return sae


def lay_cache(cache: Path, repo_id: str, commit: str, files: dict[str, Path], ref: str) -> None:
    """One commit of `repo_id` in a Hub cache: blobs, snapshot symlinks and `refs/<ref>`."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    for rel, src in files.items():
        data = src.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / ref).write_text(commit)  # no newline, as huggingface_hub writes it


def export_files(folder: Path, subfolder: str) -> dict[str, Path]:
    return {f"{subfolder}/{name}": folder / name for name in (CFG_FILE, WEIGHTS_FILE)}


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, TopKSAE, TopKSAE]:
    """An offline Hub cache holding REPO at `main` (seed 0) and at branch `v1` (seed 1)."""
    import huggingface_hub.constants as hf

    cache = tmp_path / "hf_cache"
    main, v1 = export(tmp_path / "main", seed=0), export(tmp_path / "v1", seed=1)
    lay_cache(cache, REPO, COMMIT_MAIN, export_files(tmp_path / "main", KEY), ref="main")
    lay_cache(cache, REPO, COMMIT_V1, export_files(tmp_path / "v1", KEY), ref="v1")
    # huggingface_hub reads both variables once, at import: set them where it looks at call time.
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(hf, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hf, "HF_HUB_OFFLINE", True)
    return cache, main, v1


def same_sae(a: SAE, b: SAE) -> None:
    x = torch.randn(8, 16)
    torch.testing.assert_close(a.encode(x), b.encode(x))
    torch.testing.assert_close(a.W_dec, b.W_dec)


def test_loads_a_repo_subfolder_from_the_offline_cache(hub) -> None:
    _, main, _ = hub
    loaded = SAE.from_pretrained(REPO, subfolder=KEY)
    assert isinstance(loaded, TopKSAE) and loaded.k == 4
    same_sae(loaded, main)


def test_revision_picks_a_branch_or_a_commit(hub) -> None:
    _, main, v1 = hub
    same_sae(SAE.from_pretrained(REPO, subfolder=KEY, revision="v1"), v1)
    same_sae(SAE.from_pretrained(REPO, subfolder=KEY, revision=COMMIT_MAIN), main)


def test_a_repo_missing_from_the_cache_is_one_clear_error(hub) -> None:
    with pytest.raises(SaelightError, match=r"Hub repo org/missing is not in the Hub cache") as err:
        SAE.from_pretrained("org/missing", subfolder=KEY)
    assert "HF_HUB_OFFLINE" in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(SaelightError, match="at revision 'v9'"):
        SAE.from_pretrained(REPO, subfolder=KEY, revision="v9")


def test_a_missing_subfolder_names_the_ones_there(hub) -> None:
    with pytest.raises(SaelightError, match=rf"subfolder 'L09_relu'.*\['{KEY}'\]"):
        SAE.from_pretrained(REPO, subfolder="L09_relu")
    with pytest.raises(SaelightError, match="outside"):
        SAE.from_pretrained(REPO, subfolder="../../..")


def test_a_path_that_is_neither_dir_nor_repo_id(tmp_path: Path) -> None:
    with pytest.raises(SaelightError, match="neither an existing directory nor a Hub repo id"):
        SAE.from_pretrained(str(tmp_path / "no" / "such" / "export"))


def test_a_local_directory_wins_and_takes_a_subfolder(tmp_path: Path) -> None:
    sae = export(tmp_path / "saes" / KEY)
    same_sae(SAE.from_pretrained(tmp_path / "saes", subfolder=KEY), sae)
    with pytest.raises(SaelightError, match="revision='main' applies to a Hub repo id only"):
        SAE.from_pretrained(tmp_path / "saes" / KEY, revision="main")


def test_env_variables_alone_resolve_the_repo_in_a_fresh_process(hub) -> None:
    """The user's path: HF_HUB_CACHE and HF_HUB_OFFLINE=1 in the environment, nothing patched."""
    load = f"SAE.from_pretrained({REPO!r}, subfolder={KEY!r})"
    code = f"from saelight.sae import SAE; print({load}.k)"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "4"


def with_checksum_of(folder: Path, cfg: dict) -> dict:
    """`cfg` holding the SHA-256 of the folder's weights (save_pretrained's own, when it wrote
    one: by hand until it does)."""
    return {**cfg, WEIGHTS_SHA256: cfg.get(WEIGHTS_SHA256) or sha256_file(folder / WEIGHTS_FILE)}


def with_checksum(folder: Path) -> dict:
    cfg = with_checksum_of(folder, json.loads((folder / CFG_FILE).read_text()))
    (folder / CFG_FILE).write_text(json.dumps(cfg))
    return cfg


def test_save_pretrained_writes_the_checksum(tmp_path: Path) -> None:
    export(tmp_path)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    if WEIGHTS_SHA256 not in cfg:
        pytest.skip("save_pretrained does not write cfg.json's weights_sha256 yet (base.py diff)")
    assert cfg[WEIGHTS_SHA256] == sha256_file(tmp_path / WEIGHTS_FILE)


def test_a_flipped_byte_names_the_file_and_field(tmp_path: Path) -> None:
    export(tmp_path)
    with_checksum(tmp_path)
    SAE.from_pretrained(tmp_path)  # intact: loads
    data = bytearray((tmp_path / WEIGHTS_FILE).read_bytes())
    data[-3] ^= 0x01  # inside a tensor: safetensors itself would load it silently
    (tmp_path / WEIGHTS_FILE).write_bytes(bytes(data))
    with pytest.raises(SaelightError, match=rf"{WEIGHTS_FILE}: SHA-256 .* '{WEIGHTS_SHA256}'"):
        SAE.from_pretrained(tmp_path)


@pytest.mark.parametrize("field", ["d_in", "d_sae"])
def test_cfg_shapes_that_disagree_with_the_weights_name_the_field(tmp_path: Path, field) -> None:
    export(tmp_path)
    cfg = with_checksum(tmp_path)
    cfg[field] *= 2
    (tmp_path / CFG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(SaelightError, match=rf"{CFG_FILE}: field '{field}' is {cfg[field]}"):
        SAE.from_pretrained(tmp_path)


def test_a_tensor_of_another_architecture_is_refused(tmp_path: Path) -> None:
    """A jumprelu threshold of the wrong length (cfg and W_enc agree): the tensor is named."""
    JumpReLUSAE(16, d_sae=64).save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(tmp_path / WEIGHTS_FILE))
    tensors["threshold"] = tensors["threshold"][:32].contiguous()
    save_file(tensors, str(tmp_path / WEIGHTS_FILE))
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    cfg.pop(WEIGHTS_SHA256, None)  # written consistently wrong: the checksum would still match
    (tmp_path / CFG_FILE).write_text(json.dumps(with_checksum_of(tmp_path, cfg)))
    with pytest.raises(SaelightError, match=r"tensor 'threshold' has shape \(32,\)"):
        SAE.from_pretrained(tmp_path)


def test_an_export_without_a_checksum_is_refused_naming_the_field(tmp_path: Path) -> None:
    export(tmp_path)
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    digest = cfg.pop(WEIGHTS_SHA256)  # an export from before the checksum, or one edited
    (tmp_path / CFG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(SaelightError, match=f"no field '{WEIGHTS_SHA256}'") as refused:
        SAE.from_pretrained(tmp_path)
    assert digest in str(refused.value)  # the hint gives the digest to add for a trusted file


def test_unreadable_files_are_user_errors(tmp_path: Path) -> None:
    export(tmp_path)
    (tmp_path / WEIGHTS_FILE).write_bytes(b"not safetensors")
    cfg = json.loads((tmp_path / CFG_FILE).read_text())
    cfg.pop(WEIGHTS_SHA256, None)  # a checksum of the garbage: the parse itself must fail
    (tmp_path / CFG_FILE).write_text(json.dumps(with_checksum_of(tmp_path, cfg)))
    with pytest.raises(SaelightError, match=f"{WEIGHTS_FILE}: not a readable safetensors file"):
        SAE.from_pretrained(tmp_path)
    (tmp_path / CFG_FILE).write_text("{")
    with pytest.raises(SaelightError, match=f"{CFG_FILE}: not valid JSON"):
        SAE.from_pretrained(tmp_path)
    cfg_free = tmp_path / "empty"
    cfg_free.mkdir()
    with pytest.raises(SaelightError, match=f"holds no {CFG_FILE}"):
        SAE.from_pretrained(cfg_free)
