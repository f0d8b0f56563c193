"""`saelight inspect --run RUN --descriptors` through the console script: a run whose cache has no
acoustic descriptors gets them (stored in `<cache>/descriptors/`) and its latents named by them.

The run is tests/data/tiny_csv.yaml's shape, frame-pooled (the session's clip-pooled
`tiny_cache_args` cache has 6 test rows: too few for any name), with one random TopK SAE
exported by hand instead of a fit: what is tested is the naming input, not the training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from saelight.audio.descriptors import DESCRIPTORS

TINY = Path(__file__).parents[1] / "data" / "tiny_csv.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def saelight(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([SAELIGHT, *args], cwd=cwd, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_inspect_descriptors_names_latents_of_a_run_fitted_without(tmp_path: Path) -> None:
    from saelight.sae import TopKSAE

    config = yaml.safe_load(TINY.read_text())
    config["data"]["cache"].update(directory=str(tmp_path / "cache"), pooling="frame")
    config["data"]["cache"]["backbone"]["init_args"]["save_dir"] = str(tmp_path / "models")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    done = saelight("cache", "--config", str(run / "config.yaml"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    torch.manual_seed(0)
    TopKSAE(d_in=32, d_sae=64, k=8).save_pretrained(
        run / "saes" / "L01_topk", layer=1, name="topk", pooling="frame", backbone={}
    )
    assert not (tmp_path / "cache" / "descriptors").exists()

    done = saelight("inspect", "--run", str(run), "--no_audio", "--descriptors", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert (tmp_path / "cache" / "descriptors" / "recipe.json").is_file()
    latents = json.loads((run / "explorer" / "L01_topk" / "latents.json").read_text())["latents"]
    families = {d.family for d in DESCRIPTORS.values()}
    by_descriptor = [r for r in latents if r["name_family"] in families]
    assert len(by_descriptor) >= 5  # labels and factors alone name no latent by a descriptor
    shorts = tuple(d.short for d in DESCRIPTORS.values()) + ("voiced", "unvoiced")
    assert all(r["name"].startswith(shorts) for r in by_descriptor)
