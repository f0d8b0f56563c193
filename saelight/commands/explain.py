"""`saelight explain AUDIO... --run RUN`: which of a run's latents fire on any audio file, and when.

Reads the run's config (backbone, pooling, crop length), its exported SAEs and their explorer
tables (names, usual maxima), runs each file through `explorer.explain` and writes
`explain.html` (`explorer.explain_page`) and `explain.json` into `<run>/explain/` (or `--out`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from saelight.commands.saved_run import load_cache
from saelight.io.errors import SaelightError
from saelight.io.layout import RunLayout

PAGE, DATA = "explain.html", "explain.json"


def explain(
    audio: list[str], run: str, out: str | None = None, top: int = 5, device: str = "cpu"
) -> None:
    """Explain audio files with a run's SAEs: the top latents over time, named, linked to cards.

    Each file runs through the run's backbone and every exported SAE (frame-level runs per
    frame; clip-level runs on windows of the run's crop length). The page shows each file's
    spectrogram with its top latents' activations over time below it, each with its acoustic
    name and a link to its card in the run's explorer (`saelight inspect` or the fit's
    explorer must have run); the same numbers go to explain.json beside it.

    Args:
        audio: audio files (any format soundfile reads).
        run: run directory of `saelight fit` (config.yaml, saes/, explorer/).
        out: output folder (default: RUN/explain).
        top: latents shown per SAE and file.
        device: torch device of the backbone and SAEs.
    """
    import torch

    from saelight.audio.decode import file_rate
    from saelight.explorer.explain import explain_file, load_file
    from saelight.explorer.explain_page import render_explain, spectrogram_png
    from saelight.io.atomic import atomic_write_text

    if top < 1:
        raise SaelightError(f"--top must be >= 1, got {top}")
    layout = RunLayout.of(run)
    for path in audio:  # a missing or unreadable file stops before any model loads
        file_rate(path)
    saes, cards, pages = _run_saes(layout, device)
    cache = load_cache(layout.config)
    backbone = cache.backbone.to(device)
    waves = [load_file(p, backbone.sample_rate, backbone.min_samples) for p in audio]
    folder = Path(out) if out else layout.explain
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    with torch.inference_mode():
        for path, wave in zip(audio, waves, strict=True):
            records.append(
                explain_file(
                    path,
                    wave,
                    backbone,
                    saes,
                    cards,
                    pages,
                    folder,
                    cache.pooling,
                    cache.crop_seconds,
                    top,
                )  # fmt: skip
            )
    spectrograms = [spectrogram_png(w, backbone.sample_rate) for w in waves]
    atomic_write_text(folder / PAGE, render_explain(records, spectrograms, str(run)))
    payload = {"run": str(run), "files": records}
    atomic_write_text(folder / DATA, json.dumps(payload, indent=1))
    for record in records:
        best = [f"{s['key']}: {_first(s['top'])}" for s in record["saes"]]
        print(f"{record['path']}: " + "; ".join(best))
    print(f"wrote {folder / PAGE} and {folder / DATA}")


def _first(top: list[dict[str, Any]]) -> str:
    if not top:
        return "nothing fires"
    return f"latent {top[0]['latent']} ({top[0].get('name') or 'unnamed'})"


def _run_saes(layout: RunLayout, device: str) -> tuple[dict, dict, dict]:
    """({key: (SAE, layer)}, {key: latents.parquet table}, {key: explorer page}) of the run;
    SaelightError naming the missing file when the run has no config, exports or explorer."""
    import pandas as pd

    from saelight.sae.base import SAE
    from saelight.sae.export_files import CFG_FILE

    if not layout.config.is_file():
        raise SaelightError(f"{layout.config} does not exist", hint="pass a run directory")
    exports = layout.exported_saes()
    if not exports:
        raise SaelightError(f"{layout.saes} holds no exported SAE (saes/*/cfg.json)")
    saes, cards, pages = {}, {}, {}
    for path in exports:
        table = layout.explorer / path.name / "latents.parquet"
        if not table.is_file():
            raise SaelightError(
                f"{table} does not exist: the run has no explorer for {path.name}",
                hint=f"run `saelight inspect --run {layout.root}` first",
            )
        layer = int(json.loads((path / CFG_FILE).read_text())["layer"])
        saes[path.name] = (SAE.from_pretrained(path, device=device).eval(), layer)
        cards[path.name] = pd.read_parquet(table)
        pages[path.name] = table.with_name("index.html")
    return saes, cards, pages
