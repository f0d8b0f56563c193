"""docs/causal_evaluation.md's output-head commands, run through the console script on tiny
random stand-ins of the same classes (the real checkpoints need a download): the model's own
output is scored with each SAE in place, the error term changes nothing, the three tables print,
and the CTC run's `--wandb` file and report carry the output table."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from test_output_splice import save_ast, save_ctc, save_whisper  # noqa: E402
from test_splice_report import logged, table_file  # noqa: E402

sys.path.insert(0, str(Path(__file__).parents[1] / "explorer"))
from test_browser import Chromium, alone  # noqa: E402

ROOT = Path(__file__).parents[2]
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
HEADS = {
    "whisper_base": (save_whisper, "WhisperForConditionalGeneration"),
    "wav2vec2_ctc": (save_ctc, "Wav2Vec2ForCTC"),
    "ast_audioset": (save_ast, "ASTForAudioClassification"),
}
# Appended to the documented fit: the tiny stand-in instead of the hub id, its one spliceable
# layer, a small source (3 techniques x 2 vowels x 8 singers), one epoch and one sparsity.
TINY_FIT = [
    "--data.cache.backbone.init_args.layers", "[1]",
    "--data.cache.source.init_args.clips_per_combo", "1",
    "--trainer.max_epochs", "1", "--model.sparsities", "[0.9]",
    "--data.cache.source.init_args.techniques", "[breathy, vibrato, vocal_fry]",
    "--data.cache.source.init_args.vowels", "[a, i]",
]  # fmt: skip


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "WANDB_MODE": "offline"}
    return subprocess.run(
        [SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=900, env=env
    )


def documented(name: str) -> list[list[str]]:
    text = (ROOT / "docs" / "causal_evaluation.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    lines = [ln.strip() for b in blocks for ln in b.splitlines() if f"heads/{name}" in ln]
    return [ln.split()[1:] for ln in lines if ln.split()[1] in ("fit", "splice")]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(HEADS))
def test_documented_head_commands(name: str, tmp_path: Path, wandb_records: Any) -> None:
    save, architecture = HEADS[name]
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    model = save(tmp_path / "models" / name)
    fit, splice = documented(name)
    assert fit[:2] == ["fit", "--config"] and splice[:2] == ["splice", "--run"]
    done = saelight(*fit, "--data.cache.backbone.init_args.model", str(model), *TINY_FIT,
                    cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    extra = ["--max_clips", "4", "--k_ablate", "1"] + (["--wandb"] if "ctc" in name else [])
    done = saelight(*splice, *extra, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "### Model output with the SAE in place" in done.stdout
    assert f"Model output ({architecture})" in done.stdout
    assert "### Model output: top-k detectors vs random-k ablated" in done.stdout
    assert "### Latents whose ablation moves the model output most" in done.stdout
    run = tmp_path / "runs" / "heads" / name
    payload = json.loads((run / "splice" / "splice.json").read_text())
    assert payload["output_head"] == architecture
    (layer,) = payload["layers"]
    rows = layer["output"]["saes"]
    assert list(rows) == ["L01_topk_s90"]  # the one sparsity TINY_FIT keeps
    for row in rows.values():
        assert row["error_term_kl"] == pytest.approx(0.0, abs=1e-9)
        assert row["kl"] >= 0 and 0 <= row["top1_agreement"] <= 1
        # k_ablate 1: one top and one random latent per label value; each top latent also alone
        assert {len(a["top"]["latents"]) for a in row["ablation"]} == {1}
        tops = {j for s in layer["saes"]["L01_topk_s90"]["ablation"] for j in s["latents"]
                if s["kind"] == "top"}  # fmt: skip
        assert {e["latent"] for e in row["latent_effects"]} == tops
    if "ctc" not in name:
        return
    (run_file,) = (run / "splice" / "wandb").glob("offline-run-*/run-*.wandb")
    keys = logged(run_file, wandb_records)
    table = table_file(run_file, keys["splice/output"])
    column = table["columns"].index("output KL")
    assert {r[0]: r[column] for r in table["data"]} == pytest.approx(
        {n: r["kl"] for n, r in rows.items()}
    )
    effects = table_file(run_file, keys["splice/latent_effects"])
    column = effects["columns"].index("ΔCE")
    logged_effects = {int(r[2]): r[column] for r in effects["data"]}
    row = rows["L01_topk_s90"]
    assert logged_effects == pytest.approx(
        {e["latent"]: e["delta_ce"] for e in row["latent_effects"][:5]}
    )
    report = saelight("report", str(run), "--no_figures", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-2000:]
    assert "Model output with the SAE in place" in (run / "report" / "report.md").read_text()
    # the run's explorer cards carry each scored latent's output effect (read from splice.json)
    done = saelight("inspect", "--run", str(run), "--no_audio", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    explorer = run / "explorer" / "L01_topk_s90"
    latents = json.loads((explorer / "latents.json").read_text())["latents"]
    scored = {e["latent"]: e for e in row["latent_effects"]}
    for lat in latents:
        effect = scored.get(lat["latent"])
        assert lat["output_delta_ce"] == (effect and pytest.approx(effect["delta_ce"]))
    if shutil.which("chromium"):
        j = row["latent_effects"][0]["latent"]
        browser = Chromium(tmp_path / "chromium-profile")
        try:
            session = browser.open(alone(explorer / "index.html", tmp_path / "page") + f"#q={j}")
            badge = browser.evaluate(session, BADGE % j)
        finally:
            browser.close()
        assert badge.startswith("output ΔCE ") and "top-1" in badge


BADGE = """new Promise((done) => { const t0 = Date.now(); (function poll() {
  const b = document.querySelector("#latent-%d .badge.output");
  if (b || Date.now() - t0 > 10000) done(b ? b.textContent : ""); else setTimeout(poll, 20);
})(); })"""
