"""`saelight explain` through the console script on a tiny run (the quickstart's shape: synthetic
singing, untrained HuBERT, TopK SAEs, explorer with the descriptor pass): the page renders in
headless Chromium with activations over time for each file, and every latent link opens that
latent's card in the run's explorer. Bad input stops in one line naming the file."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import yaml

from .test_browser import Chromium

TINY = Path(__file__).parents[1] / "data" / "tiny.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SR = 16000


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def tiny_run(tmp_path: Path, pooling: str) -> Path:
    """A fitted tiny run whose explorer ran after the descriptor pass."""
    config = yaml.safe_load(TINY.read_text())
    config["trainer"].update(max_epochs=1, logger=False, default_root_dir=str(tmp_path / "run"))
    config["trainer"]["callbacks"] = [
        {"class_path": "saelight.callbacks.BestSAEExport"},
        {
            "class_path": "saelight.callbacks.LatentExplorer",
            "init_args": {"top_n": 2, "descriptors": True},
        },
    ]
    config["data"]["cache"].update(pooling=pooling, crop_seconds=0.5)  # crops as the quickstart
    source = config["data"]["cache"]["source"]["init_args"]
    source.update(clips_per_combo=4, n_singers=5, n_test_singers=2)  # 48 test clips to name on
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    done = saelight("fit", "--config", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "run"


def planted_files(folder: Path) -> list[Path]:
    """A 1.5 s tone rising 150 -> 300 Hz and a 1 s noise burst after 0.4 s of silence."""
    t = np.arange(int(1.5 * SR)) / SR
    tone = 0.3 * np.sin(2 * np.pi * np.cumsum(150 + 100 * t) / SR)
    burst = np.r_[np.zeros(int(0.4 * SR)), 0.3 * np.random.default_rng(0).standard_normal(SR)]
    paths = [folder / "tone.wav", folder / "burst.flac"]
    for path, wave in zip(paths, (tone, burst), strict=True):
        sf.write(path, wave.astype(np.float32), SR)
    return paths


CARDS = "[...document.querySelectorAll('.card')].map((c) => c.id)"
LINKS = "[...document.querySelectorAll('a.card-link')].map((a) => a.href)"


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """runs(pooling): that tiny run, fitted on first use and shared by the module's tests."""
    made: dict[str, Path] = {}

    def get(pooling: str) -> Path:
        if pooling not in made:
            made[pooling] = tiny_run(tmp_path_factory.mktemp(pooling), pooling)
        return made[pooling]

    return get


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
@pytest.mark.parametrize("pooling", ["clip", "frame"])
def test_explain_page_renders_and_links_open_explorer_cards(
    tmp_path: Path, runs: Callable[[str], Path], pooling: str
) -> None:
    run = runs(pooling)
    files = planted_files(tmp_path)
    args = ["explain", *map(str, files), "--run", str(run), "--top", "3"]
    done = saelight(*args, cwd=run.parent)  # the run's relative paths (cache, models) resolve
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr and "tone.wav" in done.stdout
    data = json.loads((run / "explain" / "explain.json").read_text())
    keys = sorted(p.parent.name for p in (run / "saes").glob("*/cfg.json"))
    assert [f["path"] for f in data["files"]] == list(map(str, files))
    for record in data["files"]:
        assert [s["key"] for s in record["saes"]] == keys
        n_times = len(record["times"])
        assert n_times > (1 if pooling == "clip" else 40)  # activations over time
        for sae in record["saes"]:
            assert sae["top"] and all(len(e["activation"]) == n_times for e in sae["top"])
    named = [e for f in data["files"] for s in f["saes"] for e in s["top"] if e.get("name")]
    assert named  # names come from the explorer
    assert (run.parent / "cache" / "descriptors" / "recipe.json").is_file()  # the opt-in pass ran

    browser = Chromium(tmp_path / "profile")
    try:
        session = browser.open((run / "explain" / "explain.html").as_uri())
        curves = browser.evaluate(session, "document.querySelectorAll('svg.curve').length")
        assert curves == sum(len(s["top"]) for f in data["files"] for s in f["saes"])
        assert browser.evaluate(session, "document.querySelectorAll('img.spec').length") == 2
        links = browser.evaluate(session, LINKS)
        assert len(links) == curves
        for link in sorted(set(links))[:6]:
            latent = link.rsplit("#q=", 1)[1]
            card = browser.open(link)
            assert browser.evaluate(card, CARDS) == [f"latent-{latent}"], link
    finally:
        browser.close()


@pytest.mark.slow
def test_bad_input_is_one_line_naming_the_file(tmp_path: Path, runs: Callable[[str], Path]) -> None:
    run = runs("clip")
    missing = tmp_path / "nowhere.wav"
    done = saelight("explain", str(missing), "--run", str(run), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert str(missing) in done.stderr and len(done.stderr.strip().splitlines()) == 1
    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    done = saelight("explain", str(text), "--run", str(run), cwd=tmp_path)
    assert done.returncode == 2 and str(text) in done.stderr and "unreadable" in done.stderr
    bare = tmp_path / "bare"  # the run without its explorer
    shutil.copytree(run, bare, ignore=shutil.ignore_patterns("explorer", "cache", "explain"))
    tone = planted_files(tmp_path)[0]
    done = saelight("explain", str(tone), "--run", str(bare), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "latents.parquet does not exist" in done.stderr and "saelight inspect" in done.stderr
