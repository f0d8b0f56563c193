"""End to end: `saelight fit` with the LatentExplorer callback, then `saelight inspect --run`."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

SAELIGHT = str(Path(sys.executable).with_name("saelight"))

CONFIG = """
seed_everything: 0
trainer:
  max_epochs: 1
  logger: false
  enable_checkpointing: false
  enable_progress_bar: false
  enable_model_summary: false
  callbacks:
    - class_path: saelight.callbacks.BestSAEExport
    - class_path: saelight.callbacks.explorer.LatentExplorer
      init_args: {top_n: 3}
data:
  cache:
    source:
      class_path: saelight.audio.SyntheticSinging
      init_args: {clips_per_combo: 1, duration_s: 1.0, techniques: [straight, vibrato, breathy],
                  vowels: [a, i], n_singers: 4, n_val_singers: 1, n_test_singers: 1}
    backbone:
      class_path: saelight.backbones.UntrainedBackbone
      init_args: {num_layers: 1, hidden_size: 32, layers: [1]}
  batch_size: 4
  verify_checksums: false
model:
  saes:
    - class_path: saelight.sae.TopKSAE
      init_args: {d_sae: 32, k: 4}
"""


@pytest.mark.slow
def test_fit_then_inspect(tmp_path: Path) -> None:
    def saelight(*args: str) -> None:
        done = subprocess.run([SAELIGHT, *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]

    config = yaml.safe_load(CONFIG)
    config["trainer"]["default_root_dir"] = str(tmp_path / "run")
    config["data"]["cache"]["directory"] = str(tmp_path / "cache")
    config["data"]["cache"]["backbone"]["init_args"]["save_dir"] = str(tmp_path / "models")
    (tmp_path / "fit.yaml").write_text(yaml.safe_dump(config))
    saelight("fit", "--config", str(tmp_path / "fit.yaml"))
    run = tmp_path / "run"
    at_fit_end = json.loads((run / "explorer" / "L01_topk_k4" / "latents.json").read_text())
    assert at_fit_end["d_sae"] == 32 and at_fit_end["n_rows"] == 6

    saelight("inspect", "--run", str(run), "--top", "2", "--out", str(tmp_path / "inspected"))
    out = tmp_path / "inspected" / "L01_topk_k4"
    latents = json.loads((out / "latents.json").read_text())
    assert (
        latents["layer"] == 1 and latents["architecture"] == "topk" and latents["pooling"] == "clip"
    )
    assert any(t["audio"] for r in latents["latents"] for t in r["top"])
    assert set(json.loads((out / "labels.json").read_text())["technique"]) == {
        "straight",
        "vibrato",
        "breathy",
    }
