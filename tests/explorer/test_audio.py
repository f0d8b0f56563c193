"""Audio snippets: the right span of the right clip, from the source or from the file path."""

import doctest
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from saelight.explorer import audio
from saelight.explorer.audio import snippet_name, write_snippets


def _meta(**columns) -> pd.DataFrame:
    base = {
        "row": [0],
        "clip_id": ["c0"],
        "path": [""],
        "start_s": [0.0],
        "end_s": [1.0],
        "frame": [-1],
    }
    return pd.DataFrame({**base, **columns})


def test_doctests() -> None:
    assert doctest.testmod(audio).failed == 0


def test_file_path_fallback_and_resampling(tmp_path: Path) -> None:
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000)
    meta = _meta(
        row=[3, 4],
        clip_id=["a", "a"],
        path=[str(tmp_path / "a.wav")] * 2,
        start_s=[0.25, 0.5],
        end_s=[0.75, 0.52],
        frame=[-1, 25],
    )
    written = write_snippets(meta, None, tmp_path / "out", frame_window_s=0.2)
    assert written == {3: snippet_name(3), 4: snippet_name(4)}
    assert sf.info(tmp_path / "out" / written[3]).samplerate == 16000
    assert sf.info(tmp_path / "out" / written[3]).frames == 8000
    assert sf.info(tmp_path / "out" / written[4]).frames == 3200  # 0.2 s window around the frame


def test_missing_audio_is_skipped(tmp_path: Path, caplog) -> None:
    meta = _meta(path=[str(tmp_path / "missing.wav")])
    assert write_snippets(meta, None, tmp_path / "out") == {}
    assert write_snippets(_meta(), None, tmp_path / "out") == {}
    assert "no audio" in caplog.text
