"""LatentExplorer at fit end: a folder per grid SAE, rank 0 only, a W&B table when attached."""

import json
from pathlib import Path
from types import SimpleNamespace

from lightning.pytorch.loggers import WandbLogger
from torch import nn

from saelight.callbacks.explorer import LatentExplorer
from saelight.data.datamodule import ActivationDataModule
from saelight.grid import GridEntry


def _fit(tmp_path: Path, kit, clip_cache, source, loggers=(), rank_zero=True):
    entry = GridEntry(layer=kit.LAYER, layer_pos=0, name="planted", key="L03_planted")
    saes = nn.ModuleDict({entry.key: kit.planted_sae()})
    module = SimpleNamespace(grid=[entry], sae=lambda e: saes[e.key])
    cache = SimpleNamespace(source=source, pooling="clip")
    datamodule = ActivationDataModule(cache)  # type: ignore[arg-type] (a cache stand-in)
    datamodule.reader = clip_cache
    trainer = SimpleNamespace(
        is_global_zero=rank_zero,
        default_root_dir=str(tmp_path),
        loggers=list(loggers),
        datamodule=datamodule,
    )
    LatentExplorer(top_n=3).on_fit_end(trainer, module)
    return tmp_path / "explorer" / entry.key


def test_writes_one_explorer_per_sae(tmp_path: Path, kit, clip_cache, source) -> None:
    out = _fit(tmp_path, kit, clip_cache, source)
    ranking = json.loads((out / "labels.json").read_text())
    assert ranking["technique"]["vibrato"][0]["latent"] == kit.VIBRATO
    assert (out / "index.html").exists() and not (out / "audio").exists()
    assert json.loads((out / "latents.json").read_text())["media"]["audio_rows"] > 0
    assert not _fit(tmp_path / "rank1", kit, clip_cache, source, rank_zero=False).exists()


def test_logs_a_wandb_table(tmp_path: Path, kit, clip_cache, source) -> None:
    logger = WandbLogger(project="saelight-tests", save_dir=str(tmp_path), offline=True)
    try:
        _fit(tmp_path, kit, clip_cache, source, loggers=[logger])
        files = list(
            Path(logger.experiment.dir).glob(
                "media/table/explorer/L03_planted/latents_*.table.json"
            )
        )
        table = json.loads(files[0].read_text())
    finally:
        logger.experiment.finish()
    assert table["columns"][:2] == ["latent", "frequency"]
    assert kit.VIBRATO in [row[0] for row in table["data"]]
    assert "Audio" in table["data"][0]
    assert table["data"][0][-3:] == ["Audio"] * 3
