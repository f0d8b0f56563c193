"""docs/causal_evaluation.md's `saelight steer` lines, run through the console script on tiny
frame runs of random stand-ins with heads (Whisper, wav2vec 2.0 CTC): α = 0 reproduces the
clean output exactly, every dose and control is in steer.json, the `--wandb` file holds the
steer table with the JSON's numbers, and each steer page renders in headless Chromium with its
players, spectrograms, curve and transcript diffs, loading nothing from outside the file."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1] / "explorer"))
from test_browser import CHROMIUM, Chromium  # noqa: E402
from test_output_splice import save_ctc, save_whisper  # noqa: E402
from test_splice_report import logged, table_file  # noqa: E402

ROOT = Path(__file__).parents[2]
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
STAND_INS = {
    "whisper_base": (save_whisper, "openai/whisper-base"),
    "wav2vec2_ctc": (save_ctc, "facebook/wav2vec2-base-960h"),
}
SOURCE = "--data.cache.source.init_args."
TINY_FIT = [
    "--data.cache.backbone.init_args.layers", "[1]", "--model.sparsities", "[0.9]",
    f"{SOURCE}clips_per_combo", "1", f"{SOURCE}duration_s", "1.0",
    f"{SOURCE}techniques", "[straight,vibrato]", f"{SOURCE}vowels", "[a,i]",
    f"{SOURCE}n_singers", "4", f"{SOURCE}n_test_singers", "1",
    "--data.batch_size", "64", "--trainer.max_epochs", "1", "--trainer.logger", "false",
    "--trainer.callbacks", "[{class_path: saelight.callbacks.BestSAEExport}]",
]  # fmt: skip
"""A small source, one spliceable layer, one sparsity, one epoch, exports only."""
EXPORT = "L01_topk_s90"  # the stand-in's export for the documented L03/L06 one


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    return subprocess.run(
        [SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env
    )


def steer_lines() -> list[list[str]]:
    """Every `saelight steer` line of the doc's bash blocks, split as a shell splits it."""
    text = (ROOT / "docs" / "causal_evaluation.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith("saelight steer ")]


def stand_in(args: list[str], models: Path) -> list[str]:
    """The documented arguments with the stand-in's export name and model directory."""
    out = [re.sub(r"L\d\d_topk_s90", EXPORT, a) for a in args]
    for name, (_, hub_id) in STAND_INS.items():
        out = [str(models / name) if a == hub_id else a for a in out]
    return out


def output_folder(args: list[str], cwd: Path) -> Path:
    return cwd / args[args.index("--run") + 1] / "steer" if "--run" in args else cwd / "steer"


@pytest.fixture(scope="module")
def steered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Fits the stand-in runs the lines name, then runs every documented steer line:
    {"cwd", "runs": [(args, stdout, folder, payload)]}."""
    cwd = tmp_path_factory.mktemp("steer")
    shutil.copytree(ROOT / "configs", cwd / "configs")
    lines = steer_lines()
    assert len(lines) == 3
    for name, (save, _) in STAND_INS.items():
        assert any(name in " ".join(line) for line in lines), name
        model = save(cwd / "models" / name)
        fit = ["fit", "--config", f"configs/heads/{name}.yaml"]
        done = saelight(*fit, "--data.cache.backbone.init_args.model", str(model), *TINY_FIT,
                        cwd=cwd)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    speech = 0.3 * np.sin(2 * np.pi * 200 * t) + 0.05 * rng.standard_normal(len(t))
    soundfile.write(cwd / "speech.wav", speech.astype(np.float32), 16000)
    runs = []
    for line in lines:
        args = stand_in(line, cwd / "models")
        extra = ["--max_clips", "2"] if "--run" in args else []
        done = saelight(*args, *extra, cwd=cwd)
        assert done.returncode == 0, done.stderr[-3000:]
        folder = output_folder(args, cwd)
        runs.append((args, done.stdout, folder, json.loads((folder / "steer.json").read_text())))
    return {"cwd": cwd, "runs": runs}


@pytest.mark.slow
def test_documented_steer_lines_keep_alpha_zero_clean(steered: dict[str, Any]) -> None:
    for args, stdout, folder, payload in steered["runs"]:
        alphas = json.loads(args[args.index("--alphas") + 1])
        assert payload["alphas"] == alphas and payload["mode"] == args[args.index("--mode") + 1]
        assert payload["architecture"] in ("WhisperForConditionalGeneration", "Wav2Vec2ForCTC")
        assert len(payload["sweep"]) == 3 * len(alphas)
        assert {r["variant"] for r in payload["sweep"]} == {
            "latents", "random_direction", "random_latents"
        }  # fmt: skip
        for row in payload["sweep"]:
            if row["alpha"] == 0:
                assert row["output_max_abs_diff"] == 0.0 and row["kl"] == 0.0
                assert [c["text"] for c in row["clips"]] == [c["text"] for c in payload["clean"]]
        moved = [r for r in payload["sweep"] if r["alpha"] > 0 and r["variant"] == "latents"]
        assert all(r["edit_norm"] > 0 for r in moved)
        assert (folder / "steer.png").read_bytes()[:4] == b"\x89PNG"
        assert "| alpha | variant | edit norm |" in stdout and "wrote" in stdout
        if "--audio" in args:
            assert [c["clip_id"] for c in payload["clips"]] == ["speech.wav"]
            assert payload["clamp_values"] == {str(j): 8.0 for j in payload["frequency"]}
        if payload["selection"] == "vowel=a":
            assert len(payload["latents"]) == 8 and len(payload["control_latents"]) == 8


@pytest.mark.slow
def test_wandb_file_holds_the_steer_table(steered: dict[str, Any], wandb_records: Any) -> None:
    (args, _, folder, payload), *_ = [r for r in steered["runs"] if "--wandb" in r[0]]
    (run_file,) = (folder / "wandb").glob("offline-run-*/run-*.wandb")
    keys = logged(run_file, wandb_records)
    assert keys["steer/curve"]["_type"] == "image-file"
    table = table_file(run_file, keys["steer/sweep"])
    alpha, variant, kl = (table["columns"].index(c) for c in ("alpha", "variant", "kl"))
    got = {(r[alpha], r[variant]): r[kl] for r in table["data"]}
    assert got == pytest.approx({(r["alpha"], r["variant"]): r["kl"] for r in payload["sweep"]})
    outputs = table_file(run_file, keys["steer/outputs"])
    assert len(outputs["data"]) == len(payload["sweep"]) * len(payload["clips"])


def test_a_bad_latent_spec_is_one_line(tmp_path: Path) -> None:
    done = saelight("steer", "--run", str(tmp_path), "--latents", "12;40", cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "latents='12;40'" in done.stderr and "label=value" in done.stderr


PAGE = """(async () => {
  const decode = [...document.querySelectorAll("audio")].map(async (a) => {
    const buffer = await (await fetch(a.src)).arrayBuffer();
    return (await new OfflineAudioContext(1, 1, 16000).decodeAudioData(buffer)).duration;
  });
  const images = [...document.querySelectorAll("img")].map(async (img) => {
    await img.decode();
    return [img.className, img.naturalWidth, img.src.slice(0, 22)];
  });
  const diffs = [...document.querySelectorAll("td")].filter((td) => td.querySelector("ins, del"));
  return { durations: await Promise.all(decode), images: await Promise.all(images),
           diffs: diffs.length, sections: document.querySelectorAll("section.clip").length,
           fetched: performance.getEntriesByType("resource").map((e) => e.name.slice(0, 5)) };
})()"""


@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not on PATH")
def test_steer_pages_render_in_chromium(steered: dict[str, Any], tmp_path: Path) -> None:
    browser = Chromium(tmp_path / "profile")
    try:
        for i, (_, _, folder, payload) in enumerate(steered["runs"]):
            alone = tmp_path / f"page{i}"
            alone.mkdir()
            shutil.copyfile(folder / "steer.html", alone / "steer.html")
            page = browser.evaluate(browser.open((alone / "steer.html").as_uri()), PAGE)
            n = len(payload["clips"])
            assert page["sections"] == n and len(page["durations"]) == n
            assert all(d == pytest.approx(1.0, abs=0.01) for d in page["durations"])
            kinds = sorted(c for c, _, _ in page["images"])
            assert kinds == ["curve", *["spectrogram"] * n]
            assert all(w > 0 and src == "data:image/png;base64," for _, w, src in page["images"])
            changed = sum(
                out["text"].split() != clean["text"].split()
                for r in payload["sweep"]
                for out, clean in zip(r["clips"], payload["clean"], strict=True)
            )
            assert page["diffs"] == changed
            assert changed > 0 or payload["output"] != "ctc"  # the CTC line's doses change text
            assert set(page["fetched"]) <= {"data:"}
    finally:
        browser.close()
