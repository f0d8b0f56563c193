"""Where `SAE.from_pretrained` finds an export (a local folder or a Hugging Face Hub repo), and
the checks that it arrived whole before any tensor reaches the SAE.

A Hub repo id goes through `huggingface_hub.snapshot_download`, so its cache, `HF_HUB_CACHE`,
tokens and `HF_HUB_OFFLINE=1` (resolve from the cache only) behave as in every other HF library.
The checks turn what would be a bare `KeyError`, a safetensors parse error or a `load_state_dict`
size mismatch into one `SaelightError` naming the file and the field: a truncated download, a
flipped byte (against cfg.json's `WEIGHTS_SHA256`; an export without that field is refused, its
hint giving the digest to add by hand for a file one trusts) or a cfg.json edited so that its
`d_in` / `d_sae` no longer describe the weights.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load
from torch import Tensor

from saelight.io.checksum import sha256_bytes
from saelight.io.errors import ConfigError, SaelightError
from saelight.sae.baselines import BASELINES, make_baseline
from saelight.sae.export_files import CFG_FILE, WEIGHTS_FILE, WEIGHTS_SHA256

if TYPE_CHECKING:
    from saelight.sae.base import SAE


def resolve_export(
    path_or_repo: str | Path, subfolder: str | None = None, revision: str | None = None
) -> Path:
    """The local folder holding `CFG_FILE` for a directory or a Hub repo id (downloaded first).

    A directory that exists wins, so a run's `saes/<key>` never reaches the network; anything
    else is taken for a repo id ("org/name").
    """
    local = Path(path_or_repo)
    if local.is_dir():
        if revision is not None:
            raise SaelightError(
                f"{local} is a local directory; revision={revision!r} applies to a Hub repo id only"
            )
        root, where = local, str(local)
    else:
        root, where = _download(str(path_or_repo), subfolder, revision), f"Hub repo {path_or_repo}"
    folder = _inside(root, subfolder, where)
    if not (folder / CFG_FILE).is_file():
        found = sorted(str(p.parent.relative_to(root)) for p in root.glob(f"*/{CFG_FILE}"))
        inside = f"subfolder {subfolder!r} of {where}" if subfolder else where
        hint = f"its subfolders holding an export: {found}" if found else None
        raise SaelightError(f"{inside} holds no {CFG_FILE}: not a saelight export", hint=hint)
    return folder


def _inside(root: Path, subfolder: str | None, where: str) -> Path:
    """`root / subfolder`, refusing a subfolder that climbs out of `root` ("../x", "/etc"); the
    check is on the name, so a user's own symlinked export folder still loads."""
    if not subfolder:
        return root
    if Path(subfolder).is_absolute() or ".." in Path(subfolder).parts:
        raise SaelightError(f"subfolder {subfolder!r} lies outside {where}")
    return root / subfolder


def _download(repo_id: str, subfolder: str | None, revision: str | None) -> Path:
    """Fetches only the two export files of `subfolder` (a pushed run holds one per SAE)."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError, HFValidationError

    prefix = f"{subfolder.strip('/')}/" if subfolder else ""
    at = f" at revision {revision!r}" if revision else ""
    try:
        root = snapshot_download(
            repo_id,
            revision=revision,
            allow_patterns=[prefix + CFG_FILE, prefix + WEIGHTS_FILE],
        )
    except HFValidationError:
        raise SaelightError(
            f"{repo_id!r} is neither an existing directory nor a Hub repo id (org/name)"
        ) from None
    except (HfHubHTTPError, EntryNotFoundError) as error:
        head = f"{repo_id!r} is not a local directory, and Hub repo {repo_id}{at}"
        if constants.HF_HUB_OFFLINE:
            raise SaelightError(
                f"{head} is not in the Hub cache {constants.HF_HUB_CACHE}",
                hint="HF_HUB_OFFLINE is set: download it once online, or unset HF_HUB_OFFLINE",
            ) from None
        reason = (str(error).strip().splitlines() or [""])[0][:200]
        raise SaelightError(
            f"{head} could not be loaded ({type(error).__name__}: {reason})",
            hint="check the repo id, the revision and your token (`hf auth login`)",
        ) from None
    return Path(root)


def read_export(folder: Path) -> tuple[dict[str, Any], dict[str, Tensor]]:
    """(cfg, tensors) of an export folder, the weights verified against `WEIGHTS_SHA256`."""
    cfg_path, weights_path = folder / CFG_FILE, folder / WEIGHTS_FILE
    try:
        cfg = json.loads(cfg_path.read_text())
    except FileNotFoundError:
        raise SaelightError(f"{cfg_path} not found: not a saelight export") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise SaelightError(f"{cfg_path}: not valid JSON ({error})") from None
    if not isinstance(cfg, dict):
        raise SaelightError(f"{cfg_path}: expected a JSON object, got {type(cfg).__name__}")
    if not weights_path.is_file():
        raise SaelightError(f"{weights_path} not found: the export is incomplete")
    data = weights_path.read_bytes()  # read once: hashed, then parsed from the same bytes
    expected = cfg.get(WEIGHTS_SHA256)
    actual = sha256_bytes(data)
    if not isinstance(expected, str) or not expected:
        # Unverifiable weights are refused: a flipped byte would load without a word.
        raise SaelightError(
            f"{cfg_path} has no field '{WEIGHTS_SHA256}', so {WEIGHTS_FILE} cannot be verified",
            hint="export it again with saelight, or, if you trust the file, add "
            f'"{WEIGHTS_SHA256}": "{actual}" (its SHA-256) to {CFG_FILE}',
        )
    if actual != expected:
        raise SaelightError(
            f"{weights_path}: SHA-256 {actual[:16]}… differs from field '{WEIGHTS_SHA256}' "
            f"({str(expected)[:16]}…) of {cfg_path}",
            hint="the file is corrupt or was replaced; download or export it again",
        )
    try:
        tensors = load(data)
    except SafetensorError as error:
        raise SaelightError(f"{weights_path}: not a readable safetensors file ({error})") from None
    return cfg, tensors


def load_export(cls: type[SAE], folder: Path) -> SAE:
    """The SAE an export folder holds, as `cls.from_pretrained` returns it (on the CPU)."""
    cfg, tensors = read_export(folder)
    sae_cls = export_class(cls.registry, cfg, folder)
    if "registry" not in vars(cls) and not issubclass(sae_cls, cls):  # not the SAE base class
        raise ConfigError(
            f"{folder} holds a {sae_cls.architecture!r} SAE, not a {cls.architecture!r} one"
        )
    args = sae_cls.init_args_from_cfg(cfg)
    # The shapes come from an SAE built on the meta device: free, and a cfg.json claiming a huge
    # d_sae fails the check before it allocates anything.
    with torch.device("meta"):
        check_tensors(sae_cls(**args), tensors, folder)
    sae = sae_cls(**args)
    sae.import_state(tensors)
    if cfg.get("baseline") in BASELINES:
        make_baseline(sae, cfg["baseline"])
    return sae


def export_class(registry: dict[str, type[SAE]], cfg: dict[str, Any], folder: Path) -> type[SAE]:
    """The registered class an export's cfg names (saelight's name first: `architecture` is the
    SAELens one, and exports written before the SAELens fields hold only `architecture`)."""
    field = "saelight_architecture" if "saelight_architecture" in cfg else "architecture"
    name = cfg.get(field)
    if name not in registry:
        raise ConfigError(
            f"{folder / CFG_FILE}: field '{field}' is {name!r}, an unknown architecture; "
            f"known: {sorted(registry)}"
        )
    return registry[name]


def check_tensors(sae: SAE, tensors: dict[str, Tensor], folder: Path) -> None:
    """Raises unless `tensors` are what `sae` (built from the folder's cfg) exports: the names
    and shapes of its `export_state`, which is what `import_state` takes back."""
    cfg_path, weights_path = folder / CFG_FILE, folder / WEIGHTS_FILE
    expected = {n: tuple(t.shape) for n, t in sae.export_state().items()}
    missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or extra:
        raise SaelightError(
            f"{weights_path}: tensors {missing} missing and {extra} unexpected for the "
            f"{sae.architecture!r} SAE described by {cfg_path}"
        )
    # W_enc is (d_in, d_sae) in every architecture: name the cfg field that disagrees.
    w_enc = tuple(tensors["W_enc"].shape)
    for field, dim in (("d_in", 0), ("d_sae", 1)):
        if len(w_enc) == 2 and w_enc[dim] != getattr(sae, field):
            raise SaelightError(
                f"{cfg_path}: field '{field}' is {getattr(sae, field)} but W_enc in "
                f"{WEIGHTS_FILE} has shape {w_enc} (d_in, d_sae)"
            )
    for name, shape in expected.items():
        if tuple(tensors[name].shape) != shape:
            raise SaelightError(
                f"{weights_path}: tensor '{name}' has shape {tuple(tensors[name].shape)}, but "
                f"{cfg_path} (d_in={sae.d_in}, d_sae={sae.d_sae}) asks for {shape}"
            )
