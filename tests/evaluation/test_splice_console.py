"""`saelight splice --run` through the console script, on a tiny frame-level run; and the one
clear line a clip-pooled run gets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

TINY = Path(__file__).parents[1] / "data" / "tiny.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
EXPORTS_ONLY = "[{class_path: saelight.callbacks.BestSAEExport}]"


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=900)


def fit(tmp_path: Path, pooling: str) -> Path:
    args = ["fit", "--config", str(TINY), "--trainer.default_root_dir", str(tmp_path / "run")]
    args += [
        "--data.cache.pooling",
        pooling,
        "--trainer.max_epochs",
        "1",
        "--trainer.logger",
        "false",
    ]
    args += ["--trainer.callbacks", EXPORTS_ONLY]
    done = saelight(*args, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "run"


@pytest.mark.slow
def test_splice_a_frame_run(tmp_path: Path) -> None:
    run = fit(tmp_path, "frame")
    done = saelight(
        "splice", "--run", str(run), "--max_clips", "6", "--k_ablate", "1", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((run / "splice" / "splice.json").read_text())
    text = json.dumps(result)
    assert "fidelity_recovered" in text and "error_term_max_abs" in text
    assert (run / "splice" / "splice.png").read_bytes()[:4] == b"\x89PNG"
    # Redirected output gets plain progress lines (clips/s, ETA) and a closing count: layers x
    # 6 clips x 2 passes (this encoder has no head).
    n_layers = len(result["layers"])
    assert f"splice clips: {n_layers * 12}/{n_layers * 12} done in" in done.stderr

    # steer on the same headless run reads a clip probe of the steered label on the last layer
    sae = sorted(p.name for p in (run / "saes").iterdir() if p.name.startswith("L01_"))[0]
    done = saelight("steer", "--run", str(run), "--sae", sae, "--latents", "technique=vibrato",
                    "--k", "2", "--alphas", "[0,1]", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "clip probe of 'technique'" in done.stdout
    steer = json.loads((run / "steer" / "steer.json").read_text())
    assert steer["output"] == "hidden" and steer["probe"] == "technique"
    for row in steer["sweep"]:
        assert 0.0 <= row["probe_agreement"] <= 1.0
        if row["alpha"] == 0.0:
            assert row["probe_kl"] == 0.0 and row["probe_agreement"] == 1.0
            assert [c["top5"] for c in row["clips"]] == [c["top5"] for c in steer["clean"]]
    classes = {name for clip in steer["clean"] for name, _ in clip["top5"]}
    assert classes <= {"straight", "vibrato", "breathy"} and classes


def test_a_clip_run_is_refused_in_one_line(tmp_path: Path) -> None:
    run = fit(tmp_path, "clip")
    done = saelight("splice", "--run", str(run), cwd=tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "clip-pooled" in done.stderr and "frame-level" in done.stderr
