"""eGeMAPS functionals through openSMILE (saelight/audio/egemaps.py)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from saelight.audio import SyntheticSinging, egemaps_functionals
from saelight.audio.egemaps import _smile


def test_88_finite_functionals_on_a_generated_clip() -> None:
    pytest.importorskip("opensmile")
    source = SyntheticSinging(clips_per_combo=1, n_singers=4, techniques=("vibrato",))
    clip = source.clips()[0]
    values = egemaps_functionals(source.load(clip, 16000), 16000)
    assert len(values) == 88
    assert all(isinstance(v, float) and np.isfinite(v) for v in values.values())
    assert values["F0semitoneFrom27.5Hz_sma3nz_amean"] > 0


def test_missing_opensmile_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    _smile.cache_clear()
    monkeypatch.setitem(sys.modules, "opensmile", None)
    try:
        with pytest.raises(ImportError, match=r"saelight\[egemaps\]"):
            egemaps_functionals(np.zeros(16000, dtype=np.float32), 16000)
    finally:
        _smile.cache_clear()
