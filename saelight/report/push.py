"""What `saelight push` publishes: a run's exported SAEs and a model card, staged as one folder.

The repo holds one subfolder per export (`saes/<key>` of the run, the same `cfg.json` and
`sae_weights.safetensors`), so `SAE.from_pretrained(repo, subfolder=key)` and SAELens'
`SAE.from_pretrained(repo, key)` both load it. `--local_dir` writes exactly the folder that
`--repo` uploads, which is how the card is checked without a network (`tests/report`).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any

import yaml

from saelight.evaluation.results import (
    RESULTS_DIR,
    RESULTS_JSON,
    Row,
    is_dense,
    probe_acc_key,
    probed_labels,
    read_results,
)
from saelight.io.atomic import remove_dead_temps, replace_folder, staging_folder
from saelight.io.errors import SaelightError
from saelight.io.layout import RunLayout
from saelight.report.generations import check_generations
from saelight.sae.base import CFG_FILE, SAE, WEIGHTS_FILE

CARD_FILE = "README.md"
LIBRARY = "saelight"
TAGS = ["sparse-autoencoder", "audio", "saelight"]
METRICS = ("fvu", "mse", "cosine", "l0", "dead_fraction")
"""Test-split columns of a results row shown on the card, in this order (then probe accuracies)."""
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
"""A Hugging Face Hub repo id: org/name."""


def stage(
    run: str | Path, out: Path, repo_id: str | None = None, revision: str | None = None
) -> str | None:
    """Writes into `out` (new) one subfolder per export of `run` and the model card; each copy
    is loaded once, so a corrupt export fails here, naming its file, not on a user's machine.
    A run whose files come from different fits is refused (`check_generations`); returns its
    note when some files carry no generation id."""
    layout = RunLayout.of(run)
    if not layout.root.is_dir():
        raise SaelightError(f"run directory {layout.root} not found")
    exports = layout.exported_saes()
    if not exports:
        raise SaelightError(
            f"{layout.saes} holds no exported SAE (no */{CFG_FILE}): nothing to push",
            hint="train with the BestSAEExport callback (a standard `saelight fit` callback)",
        )
    results_path = layout.root / RESULTS_DIR / RESULTS_JSON
    try:
        results = read_results(layout.root)
    except FileNotFoundError:
        raise SaelightError(
            f"{results_path} not found: the card needs the run's test metrics",
            hint="run `saelight test` (or `saelight fit` with SAEEvaluation) first",
        ) from None
    note = check_generations(layout.root)
    out.mkdir(parents=True)
    cfgs: dict[str, dict[str, Any]] = {}
    for folder in exports:
        if not (folder / WEIGHTS_FILE).is_file():
            raise SaelightError(f"{folder / WEIGHTS_FILE} not found: the export is incomplete")
        (out / folder.name).mkdir()
        for name in (CFG_FILE, WEIGHTS_FILE):
            shutil.copyfile(folder / name, out / folder.name / name)
        # Loading the copy checks its checksum and shapes: a corrupt export is never published.
        SAE.from_pretrained(out / folder.name)
        cfgs[folder.name] = json.loads((folder / CFG_FILE).read_text())
    card = model_card(cfgs, results, repo_id=repo_id, revision=revision)
    (out / CARD_FILE).write_text(card)
    return note


def model_card(
    cfgs: dict[str, dict[str, Any]],
    results: dict[str, Any],
    repo_id: str | None = None,
    revision: str | None = None,
) -> str:
    """The repo's README.md: Hub front matter, one table per SAE, training data, how to load.

    Args:
        cfgs: {subfolder: its cfg.json}, in the order the card lists them.
        results: the run's results.json ({"run": ..., "rows": [...]}).
        repo_id: the repo the snippets load from; None writes the placeholder "ORG/NAME".
        revision: the branch the snippets pass as `revision` (None: the default branch).
    """
    run, rows = results.get("run") or {}, results.get("rows") or []
    backbone = _backbone(run, cfgs)
    model = backbone.get("model")
    meta: dict[str, Any] = {"library_name": LIBRARY, "tags": TAGS}
    if base := hub_model_id(backbone):
        meta["base_model"] = base
    layers = sorted({cfg.get("layer") for cfg in cfgs.values() if cfg.get("layer") is not None})
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", ""]
    lines += [f"# Sparse autoencoders on {f'`{model}`' if model else 'an audio model'}", ""]
    lines += [
        f"{len(cfgs)} sparse autoencoder{'s' * (len(cfgs) != 1)} trained with saelight on the "
        f"hidden states of layer{'s' * (len(layers) != 1)} {', '.join(map(str, layers)) or '?'}, "
        "one per subfolder "
        f"(`{CFG_FILE}` + `{WEIGHTS_FILE}`, SAELens naming). Metrics are on the run's test split.",
        "",
        "## SAEs",
        "",
    ]
    for key, cfg in cfgs.items():
        lines += _sae_table(key, cfg, rows)
    lines += _training_data(run, backbone)
    lines += _how_to_load(list(cfgs), repo_id or "ORG/NAME", revision, placeholder=not repo_id)
    return "\n".join(lines) + "\n"


def hub_model_id(backbone: dict[str, Any]) -> str | None:
    """The backbone's Hub id for `base_model`: None for a local path, an untrained backbone
    (random weights, so not a derivative of the named model) or a bare name ("my-encoder")."""
    model = backbone.get("model")
    if not isinstance(model, str) or backbone.get("untrained") or Path(model).exists():
        return None
    return model if HUB_ID.match(model) else None


def _backbone(run: dict[str, Any], cfgs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The run's backbone identity; the exports' own when results.json has none."""
    for candidate in (run.get("backbone"), *(c.get("backbone") for c in cfgs.values())):
        if isinstance(candidate, dict) and candidate:
            return candidate
        if isinstance(candidate, str):
            return {"model": candidate}
    return {}


def sae_row(key: str, cfg: dict[str, Any], rows: list[Row]) -> Row | None:
    """The results row of an export: same layer and name (the name is the key without its
    `L<layer>_` prefix for exports that do not store it)."""
    name = cfg.get("name") or re.sub(r"^L\d+_", "", key)
    for row in rows:
        if not is_dense(row) and row.get("layer") == cfg.get("layer") and row.get("name") == name:
            return row
    return None


def _sae_table(key: str, cfg: dict[str, Any], rows: list[Row]) -> list[str]:
    row = sae_row(key, cfg, rows) or {}
    layer = cfg.get("layer")
    dense = next((r for r in rows if is_dense(r) and r.get("layer") == layer), {})
    arch = cfg.get("saelight_architecture", cfg.get("architecture"))
    sparsity = row.get("sparsity", cfg.get("grid_sparsity"))
    hook = (cfg.get("metadata") or {}).get("hook_name")
    cells: list[tuple[str, Any]] = [
        ("subfolder", f"`{key}`"),
        ("layer", f"{layer} (`{hook}`)" if hook else layer),
        ("architecture", f"{arch} (SAELens: {cfg.get('architecture')})"),
        ("k", cfg.get("k", row.get("k"))),
        ("sparsity", sparsity),
        ("d_in × d_sae", f"{cfg.get('d_in')} × {cfg.get('d_sae')}"),
        ("pooling", cfg.get("pooling")),
    ]
    cells += [(f"test {m}", row[m]) for m in METRICS if m in row]
    for label in probed_labels([row]):
        key_ = probe_acc_key(label)
        baseline = f" (dense: {_fmt(dense[key_])})" if key_ in dense else ""
        cells.append((f"test {key_}", f"{_fmt(row[key_])}{baseline}"))
    if not row:
        cells.append(("test metrics", "not in results.json"))
    out = [f"### {key}", "", "| | |", "|---|---|"]
    out += [f"| {name} | {_fmt(value)} |" for name, value in cells if value is not None]
    return [*out, ""]


def _training_data(run: dict[str, Any], backbone: dict[str, Any]) -> list[str]:
    lines = ["## Training data", ""]
    if backbone:
        model, rev = backbone.get("model", "?"), backbone.get("revision")
        at = f" at revision `{rev}`" if rev else ""
        lines.append(
            f"- backbone: `{model}`{at}" + (" (untrained)" if backbone.get("untrained") else "")
        )
    for field in ("layers", "pooling", "epochs", "steps", "seed"):
        if run.get(field) is not None:
            lines.append(f"- {field}: {run[field]}")
    source = run.get("source")
    if source:
        lines += ["- audio source (its fingerprint, as in the activation cache's manifest):", ""]
        lines += ["```json", json.dumps(source, indent=1, sort_keys=True), "```"]
    return [*lines, ""]


def _how_to_load(
    keys: list[str], repo_id: str, revision: str | None, placeholder: bool
) -> list[str]:
    rev = f", revision={revision!r}" if revision else ""
    key = keys[0]
    lines = ["## How to load", ""]
    if placeholder:
        lines += [
            "Replace ORG/NAME with the repo this folder is uploaded to (or its local path).",
            "",
        ]
    lines += [
        f"Subfolders: {', '.join(f'`{k}`' for k in keys)}.",
        "",
        "```python",
        "from saelight.sae import SAE",
        "",
        f'sae = SAE.from_pretrained("{repo_id}", subfolder="{key}"{rev})',
        "z = sae.encode(x)  # x: (batch, d_in) hidden states of the SAE's layer",
        "```",
        "",
        "With SAELens (`architecture` in cfg.json is the SAELens name):",
        "",
        "```python",
        "from sae_lens import SAE",
        "",
        f'sae = SAE.from_pretrained("{repo_id}", "{key}")',
        "```",
    ]
    return lines


def _fmt(value: Any) -> str:
    """4 significant digits for floats; anything else as written."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def write_local(staged: Path, local_dir: Path) -> None:
    """Moves `staged` to `local_dir` in one rename, replacing only a previous push's folder."""
    if local_dir.exists() and not is_previous_push(local_dir):
        raise SaelightError(
            f"--local_dir {local_dir} exists and is not empty or a previous `saelight push`",
            hint="pick a new folder or remove it",
        )
    remove_dead_temps(local_dir.parent)  # a killed push's copy
    # Copied beside the target first, so the rename that publishes it stays on one filesystem.
    tmp = staging_folder(local_dir)
    try:
        shutil.copytree(staged, tmp, dirs_exist_ok=True)
        replace_folder(tmp, local_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def is_previous_push(folder: Path) -> bool:
    """Empty, or only what `stage` writes: a card whose front matter names saelight, and export
    subfolders holding nothing but the export files (a user's own file is never deleted)."""
    entries = list(folder.iterdir()) if folder.is_dir() else None
    if entries is None:
        return False
    if not entries:
        return True
    card = folder / CARD_FILE
    if not card.is_file() or front_matter(card.read_text()).get("library_name") != LIBRARY:
        return False
    return all(p == card or _is_pushed_export(p) for p in entries)


def _is_pushed_export(folder: Path) -> bool:
    """A subfolder `stage` writes: the export's two files and nothing else."""
    names = {p.name for p in folder.iterdir()} if folder.is_dir() else set()
    return CFG_FILE in names and names <= {CFG_FILE, WEIGHTS_FILE}


def front_matter(card: str) -> dict[str, Any]:
    """The YAML block between the leading `---` lines of a model card ({} when there is none)."""
    if not card.startswith("---\n"):
        return {}
    block = card[4:].split("\n---\n", 1)[0]
    try:
        meta = yaml.safe_load(block)
    except yaml.YAMLError:
        return {}
    return meta if isinstance(meta, dict) else {}


def upload(staged: Path, repo: str, private: bool, revision: str | None) -> None:
    """Creates the repo (exist_ok) and uploads `staged` as one commit; needs network and a token."""
    from huggingface_hub import HfApi, constants

    api = HfApi()
    try:
        api.create_repo(repo, private=private, exist_ok=True)
        if revision is not None:
            api.create_branch(repo, branch=revision, exist_ok=True)
        api.upload_folder(
            repo_id=repo,
            folder_path=staged,
            revision=revision,
            commit_message=f"saelight push: {', '.join(sorted(p.name for p in staged.iterdir()))}",
        )
    except Exception as error:  # noqa: BLE001 (network and Hub errors: one line, not a trace)
        if not _is_network_error(error):
            raise
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
        hint = (
            "HF_HUB_OFFLINE is set: unset it to upload, or write the folder with --local_dir"
            if constants.HF_HUB_OFFLINE
            else "check the network, the repo id and your token (`hf auth login`)"
        )
        raise SaelightError(
            f"--repo {repo}: the upload failed ({type(error).__name__}: {reason})", hint=hint
        ) from None


def _is_network_error(error: BaseException) -> bool:
    """A connection, HTTP or Hub error (huggingface_hub's, httpx's or requests'), by class."""
    modules = {c.__module__.split(".")[0] for c in type(error).__mro__}
    return isinstance(error, OSError) or bool(modules & {"huggingface_hub", "httpx", "httpx2"})
