"""`saelight push --local_dir`: the folder a Hub upload would send, checked without a network.

The upload itself (`--repo`, `HfApi.create_repo` + `upload_folder`) needs the Hub and a token, so
no test here runs it; `--local_dir` shares every step before it (`push.stage`).
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

from saelight.commands.push import push as push_command
from saelight.evaluation.results import write_results
from saelight.io.errors import SaelightError
from saelight.report.push import CARD_FILE, front_matter
from saelight.sae import SAE, TopKSAE
from saelight.sae.base import CFG_FILE, WEIGHTS_FILE

SAELENS_LOAD = """
import sys
from safetensors.torch import load_file, save_file
from sae_lens import SAE
sae = SAE.from_pretrained(sys.argv[1], sys.argv[2])
save_file({"z": sae.encode(load_file(sys.argv[3])["x"])}, sys.argv[4])
"""

KEY = "L01_topk_k4"
BACKBONE = {"model": "facebook/hubert-base-ls960", "revision": "dba3bb0", "class": "HubertModel"}
SOURCE = {"class": "VocalSet", "version": 2, "n_clips": 800}
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
REPO_ROOT = Path(__file__).resolve().parents[2]


def make_run(root: Path, backbone: dict = BACKBONE, results: bool = True) -> TopKSAE:
    """A run directory as `saelight fit` leaves it: one export and its results.json."""
    torch.manual_seed(0)
    sae = TopKSAE(16, d_sae=64, k=4)
    sae.save_pretrained(root / "saes" / KEY, layer=1, backbone=backbone, name="topk_k4")
    (root / "saes" / "best.json").write_text("{}")  # the BestSAEExport index: not an export
    rows = [
        {"layer": 1, "name": "dense", "kind": "dense", "probe_technique_acc": 0.7},
        {
            **{"layer": 1, "name": "topk_k4", "kind": "sae", "architecture": "topk"},
            **{"d_sae": 64, "k": 4, "sparsity": 0.9375, "fvu": 0.25, "mse": 0.0123},
            **{"l0": 4.0, "dead_fraction": 0.125, "probe_technique_acc": 0.8125},
            "probe_technique_clip_correct": [1, 0, 1],
        },
    ]
    run = {"backbone": backbone, "source": SOURCE, "pooling": "clip", "layers": [1]}
    run |= {"cache": "/home/someone/private/cache", "epochs": 2, "steps": 10, "seed": 0}
    if results:
        write_results(root, rows, run)
    return sae


def card_of(out: Path) -> tuple[dict, str]:
    text = (out / CARD_FILE).read_text()
    return front_matter(text), text


def test_local_dir_holds_the_exports_and_the_card(tmp_path: Path) -> None:
    sae = make_run(tmp_path / "run")
    out = tmp_path / "hub"
    push_command(str(tmp_path / "run"), local_dir=str(out))
    files = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert files == sorted([CARD_FILE, f"{KEY}/{CFG_FILE}", f"{KEY}/{WEIGHTS_FILE}"])
    for name in (CFG_FILE, WEIGHTS_FILE):
        assert (out / KEY / name).read_bytes() == (tmp_path / "run/saes" / KEY / name).read_bytes()
    loaded = SAE.from_pretrained(out, subfolder=KEY)
    x = torch.randn(8, 16)
    torch.testing.assert_close(loaded.encode(x), sae.encode(x))


def test_card_front_matter_and_metrics(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    push_command(str(tmp_path / "run"), local_dir=str(tmp_path / "hub"))
    meta, text = card_of(tmp_path / "hub")
    assert meta == {
        "library_name": "saelight",
        "tags": ["sparse-autoencoder", "audio", "saelight"],
        "base_model": "facebook/hubert-base-ls960",
    }
    for line in (
        f"### {KEY}",
        "| layer | 1 (`hidden_states.1`) |",
        "| architecture | topk (SAELens: topk) |",
        "| k | 4 |",
        "| sparsity | 0.9375 |",
        "| d_in × d_sae | 16 × 64 |",
        "| test fvu | 0.25 |",
        "| test mse | 0.0123 |",
        "| test l0 | 4 |",
        "| test dead_fraction | 0.125 |",
        "| test probe_technique_acc | 0.8125 (dense: 0.7) |",
        "- backbone: `facebook/hubert-base-ls960` at revision `dba3bb0`",
        "- pooling: clip",
        "- epochs: 2",
        f'sae = SAE.from_pretrained("ORG/NAME", subfolder="{KEY}")',
        f'sae = SAE.from_pretrained("ORG/NAME", "{KEY}")',
    ):
        assert line in text.splitlines(), line
    assert json.dumps(SOURCE, indent=1, sort_keys=True) in text
    assert "/home/someone" not in text  # the cache path is machine-specific


def test_card_names_the_repo_and_revision_it_is_pushed_to(tmp_path: Path) -> None:
    from saelight.report.push import stage

    make_run(tmp_path / "run")
    stage(tmp_path / "run", tmp_path / "staged", repo_id="org/audio-saes", revision="v1")
    _, text = card_of(tmp_path / "staged")
    assert f'SAE.from_pretrained("org/audio-saes", subfolder="{KEY}", revision=\'v1\')' in text
    assert "ORG/NAME" not in text


@pytest.mark.parametrize(
    "backbone",
    [
        {**BACKBONE, "model": "saelight-untrained/hubert", "untrained": True},
        {"model": "my-encoder"},
    ],
)
def test_no_base_model_unless_the_backbone_is_a_hub_model(tmp_path: Path, backbone) -> None:
    make_run(tmp_path / "run", backbone=backbone)
    push_command(str(tmp_path / "run"), local_dir=str(tmp_path / "hub"))
    assert "base_model" not in card_of(tmp_path / "hub")[0]


def test_a_previous_push_is_replaced_anything_else_refused(tmp_path: Path) -> None:
    make_run(tmp_path / "run")
    out = tmp_path / "hub"
    push_command(str(tmp_path / "run"), local_dir=str(out))
    (out / KEY / "stale.txt").write_text("x")
    with pytest.raises(SaelightError, match="not empty or a previous `saelight push`"):
        push_command(str(tmp_path / "run"), local_dir=str(out))
    (out / KEY / "stale.txt").unlink()
    (out / "old_export").mkdir()
    (out / "old_export" / CFG_FILE).write_text("{}")
    push_command(str(tmp_path / "run"), local_dir=str(out))  # a previous push: replaced whole
    assert not (out / "old_export").exists() and (out / KEY / CFG_FILE).exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(SaelightError, match="--local_dir"):
        push_command(str(tmp_path / "run"), local_dir=str(mine))
    assert (mine / "notes.txt").read_text() == "keep me"


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    with pytest.raises(SaelightError, match="exactly one of --repo"):
        push_command(str(run), repo="org/x", local_dir=str(tmp_path / "hub"))
    with pytest.raises(SaelightError, match="exactly one of --repo"):
        push_command(str(run))
    with pytest.raises(SaelightError, match="not a Hub repo id"):
        push_command(str(run), repo="not a repo")
    with pytest.raises(SaelightError, match="run directory .* not found"):
        push_command(str(run), local_dir=str(tmp_path / "hub"))
    (run / "saes").mkdir(parents=True)
    with pytest.raises(SaelightError, match="holds no exported SAE"):
        push_command(str(run), local_dir=str(tmp_path / "hub"))
    make_run(run, results=False)
    with pytest.raises(SaelightError, match=r"results\.json not found"):
        push_command(str(run), local_dir=str(tmp_path / "hub"))
    make_run(run)
    digest = hashlib.sha256((run / "saes" / KEY / WEIGHTS_FILE).read_bytes()).hexdigest()
    bogus = {"architecture": "nope", "weights_sha256": digest}
    (run / "saes" / KEY / CFG_FILE).write_text(json.dumps(bogus))
    with pytest.raises(SaelightError, match=f"{CFG_FILE}: field 'architecture' is 'nope'"):
        push_command(str(run), local_dir=str(tmp_path / "hub"))
    assert not (tmp_path / "hub").exists()


def console(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([SAELIGHT, *args], capture_output=True, text=True, env=env, timeout=300)


def test_through_the_console_script(tmp_path: Path) -> None:
    """The way a user runs it."""
    helped = console("push", "--help")
    assert helped.stdout.startswith("usage: saelight push"), helped.stderr
    assert "--local_dir" in helped.stdout
    make_run(tmp_path / "run")
    done = console("push", "--run", str(tmp_path / "run"), "--local_dir", str(tmp_path / "hub"))
    assert done.returncode == 0, done.stderr
    assert card_of(tmp_path / "hub")[0]["library_name"] == "saelight"
    assert SAE.from_pretrained(tmp_path / "hub", subfolder=KEY).k == 4
    both = console("push", "--run", str(tmp_path / "run"), "--repo", "o/n", "--local_dir", "x")
    assert both.returncode == 2 and "Traceback" not in both.stderr
    assert both.stderr.strip() == (
        "saelight: error: give exactly one of --repo ORG/NAME and --local_dir DIR"
    )


def hub_cache_of(folder: Path, cache: Path, repo_id: str) -> None:
    """`folder` as one commit of `repo_id` in a Hub cache, laid out as `snapshot_download`
    leaves it (blobs, snapshot symlinks, refs/main; see tests/sae/test_hub.py)."""
    repo, commit = cache / f"models--{repo_id.replace('/', '--')}", "c" * 40
    for src in (p for p in folder.rglob("*") if p.is_file()):
        data = src.read_bytes()
        blob = repo / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = repo / "snapshots" / commit / src.relative_to(folder)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)


def test_the_cards_saelens_snippet_loads_the_pushed_repo(tmp_path: Path) -> None:
    """SAELens' own Hub loader (repo id + subfolder), offline from a cache holding the folder
    `--local_dir` wrote, computes saelight's codes. Needs the SAELens venv (.ci/run builds it)."""
    from safetensors.torch import load_file, save_file

    named = os.environ.get("SAELIGHT_SAELENS_PYTHON")
    python = Path(named) if named else REPO_ROOT / ".venv-saelens" / "bin" / "python"
    if not python.exists():
        reason = f"no SAELens interpreter at {python} (.ci/run builds .venv-saelens)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    sae = make_run(tmp_path / "run")
    push_command(str(tmp_path / "run"), local_dir=str(tmp_path / "hub"))
    hub_cache_of(tmp_path / "hub", tmp_path / "cache", "org/audio-saes")
    x = torch.randn(8, 16)
    save_file({"x": x}, str(tmp_path / "x.safetensors"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache")}
    args = ["org/audio-saes", KEY, str(tmp_path / "x.safetensors"), str(tmp_path / "z.st")]
    done = subprocess.run(
        [str(python), "-c", SAELENS_LOAD, *args], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr[-3000:]
    z = load_file(str(tmp_path / "z.st"))["z"]
    torch.testing.assert_close(z, sae.encode(x), rtol=1e-5, atol=1e-5)


def test_a_killed_pushs_staging_folder_goes_on_the_next_push(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    gone = subprocess.Popen(["true"])
    gone.wait()
    tmp = tmp_path / "tmp"
    leftover = tmp / f"saelight-push-{gone.pid}-x1y2z3" / "repo"
    leftover.mkdir(parents=True)
    (leftover / "README.md").write_text("half a push")
    running = tmp / f"saelight-push-{os.getpid()}-a1b2c3"  # a push still running: kept
    running.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    make_run(tmp_path / "run")
    push_command(str(tmp_path / "run"), local_dir=str(tmp_path / "hub"))
    assert sorted(p.name for p in tmp.iterdir()) == [running.name]
    assert (tmp_path / "hub" / CARD_FILE).is_file()
