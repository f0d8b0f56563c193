"""The W&B table: audio cells decoded from the page's embedded snippets, empty where capped."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import soundfile as sf
import wandb

from saelight.explorer.audio import encode
from saelight.explorer.wandb_table import AUDIO_CELLS, log_explorer


def _latent(j: int, rows: list[int], selectivity: float | None) -> dict:
    top = [{"row": r, "clip_id": f"c{r}", "activation": 1.0} for r in rows]
    return {
        "latent": j,
        "fires": len(rows),
        "frequency": 0.1,
        "mean_activation": 1.0,
        "selectivity": selectivity,
        "best_label": "technique=vibrato",
        "histogram": [1, 2],
        "top": top,
    }


def test_cells_hold_the_embedded_audio(tmp_path: Path) -> None:
    logged: dict = {}
    run = SimpleNamespace(log=logged.update)
    wave = np.sin(np.linspace(0, 100, 8000)).astype(np.float32) * 0.5
    latents = [_latent(0, [5, 6], 0.2), _latent(1, [6], 0.9), _latent(2, [], None)]
    log_explorer(run, "L1", latents, {5: encode(wave)})
    table = logged["explorer/L1/latents"]
    assert [row[0] for row in table.data] == [1, 0]  # by selectivity; the dead latent left out
    cells = table.data[1][-AUDIO_CELLS:]
    assert isinstance(cells[0], wandb.Audio) and cells[1] is None and cells[2] is None
    back, rate = sf.read(cells[0]._path, dtype="float32")
    assert rate == 16000 and np.abs(back - wave).max() < 1e-4
    assert "explorer/L1/log10_frequency" in logged
