"""`saelight inspect`: argument handling, output folders, and the saved-config round trip."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from saelight.commands import inspect as command
from saelight.commands import saved_run
from saelight.io.errors import SaelightError


@pytest.fixture
def run_dir(tmp_path: Path, kit, clip_cache, source, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A run folder with one exported SAE; the config's cache is the planted clip cache."""
    run = tmp_path / "run"
    kit.planted_sae().save_pretrained(
        run / "saes" / "L03_planted",
        layer=kit.LAYER,
        name="planted",
        pooling="clip",
        backbone={"model": "planted"},
    )
    (run / "config.yaml").write_text("seed_everything: 0\n")
    cache = SimpleNamespace(source=source, pooling="clip")
    monkeypatch.setattr(command, "open_cache", lambda config: (cache, clip_cache))
    return run


def test_run_inspects_every_export(run_dir: Path, kit, capsys: pytest.CaptureFixture) -> None:
    command.inspect(run=run_dir, top=3, audio=False)
    page = run_dir / "explorer" / "L03_planted" / "index.html"
    assert page.exists() and str(page) in capsys.readouterr().out
    media = json.loads((page.parent / "latents.json").read_text())["media"]
    assert not media["embedded"] and media["audio_rows"] == media["spectrogram_rows"] == 0


def test_codec_and_cap_reach_the_page(run_dir: Path, kit) -> None:
    command.inspect(run=run_dir, top=2, codec="opus", max_page_mb=5)
    out = run_dir / "explorer" / "L03_planted"
    media = json.loads((out / "latents.json").read_text())["media"]
    assert media["codec"] == "opus" and media["max_page_mb"] == 5 and media["audio_rows"] > 0
    assert kit.read_page(out / "index.html")["media"]["mime"] == "audio/ogg"


def test_sae_defaults_to_the_runs_explorer(run_dir: Path, tmp_path: Path) -> None:
    sae = run_dir / "saes" / "L03_planted"
    command.inspect(sae=sae, config=run_dir / "config.yaml", audio=False)
    assert (run_dir / "explorer" / "L03_planted" / "labels.json").exists()
    command.inspect(sae=sae, config=Path("x.yaml"), out=tmp_path / "o", audio=False)
    assert (tmp_path / "o" / "latents.parquet").exists()


def test_bad_arguments(run_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(SaelightError, match="exactly one of --run"):
        command.inspect()
    with pytest.raises(SaelightError, match="needs --config"):
        command.inspect(sae=run_dir / "saes" / "L03_planted")
    with pytest.raises(SaelightError, match="no exported SAEs"):
        command.inspect(run=tmp_path)
    with pytest.raises(SaelightError, match="--top must be >= 1"):
        command.inspect(run=run_dir, top=0)
    with pytest.raises(SaelightError, match="--max_page_mb must be > 0"):
        command.inspect(run=run_dir, max_page_mb=0)


def test_saved_fit_config_keys_are_dropped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "seed_everything: 1\ndata: {batch_size: 4}\nckpt_path: null\nweights_only: null\n"
    )
    seen = {}

    def fake_make_cli(args: list[str], run: bool = True) -> SimpleNamespace:
        seen["config"], seen["run"] = yaml.safe_load(args[1]), run
        return SimpleNamespace(datamodule=SimpleNamespace(cache="the cache"))

    monkeypatch.setattr("saelight.commands.train.make_cli", fake_make_cli)
    assert saved_run.load_cache(config) == "the cache"
    assert seen == {"config": {"seed_everything": 1, "data": {"batch_size": 4}}, "run": False}
    with pytest.raises(SaelightError, match="does not exist"):
        saved_run.load_cache(tmp_path / "missing.yaml")
