"""configs/quickstart_pretrained.yaml cannot download its HuBERT here: it is parsed as shipped, and
run end to end against a local `save_pretrained` copy of a tiny model of the same class (the one
override a user without internet would make), so the config cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

from saelight.io.config_bases import load_with_bases

ROOT = Path(__file__).parents[1]
CONFIG = ROOT / "configs" / "quickstart_pretrained.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def test_it_is_the_quickstart_on_a_pretrained_hub_model() -> None:
    values = load_with_bases(CONFIG)
    backbone = values["data"]["cache"]["backbone"]
    assert backbone["class_path"] == "saelight.backbones.HFBackbone"
    assert backbone["init_args"]["model"] == "facebook/hubert-base-ls960"
    quickstart = load_with_bases(ROOT / "configs" / "quickstart.yaml")
    assert values["model"]["sparsities"] == quickstart["model"]["sparsities"]
    assert values["data"]["cache"]["source"] == quickstart["data"]["cache"]["source"]
    done = subprocess.run(
        [SAELIGHT, "fit", "--config", str(CONFIG), "--print_config"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "facebook/hubert-base-ls960" in done.stdout


@pytest.mark.slow
def test_it_runs_on_a_local_copy_of_the_same_class(tmp_path: Path) -> None:
    model = tmp_path / "hubert-tiny"
    config = HubertConfig(
        hidden_size=32,
        num_hidden_layers=3,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(16,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2,
    )
    HubertModel(config).save_pretrained(model)
    Wav2Vec2FeatureExtractor(sampling_rate=16000, return_attention_mask=False).save_pretrained(
        model
    )
    overrides = ["--data.cache.backbone.init_args.model", str(model)]
    overrides += ["--data.cache.backbone.init_args.layers", "[1, 3]", "--trainer.max_epochs", "1"]
    overrides += ["--trainer.default_root_dir", str(tmp_path / "run")]
    overrides += ["--data.cache.directory", str(tmp_path / "run" / "cache")]
    done = subprocess.run(
        [SAELIGHT, "fit", "--config", str(CONFIG), *overrides],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results" / "results.json").read_text())
    assert results["run"]["backbone"]["model"] == str(model)
    assert {r["layer"] for r in results["rows"]} == {1, 3}
    assert {r["d_sae"] for r in results["rows"] if r["kind"] == "sae"} == {2048}
