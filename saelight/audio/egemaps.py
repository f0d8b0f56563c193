"""The 88 eGeMAPSv02 functionals (Eyben et al. 2016) of a waveform, through openSMILE.

The paper's disentanglement factors: one value per file for each of the 88 functionals (f0,
loudness, jitter, shimmer, HNR, formants, spectral slopes, MFCC 1-4, ...). openSMILE is an
optional dependency (`pip install saelight[egemaps]`), imported on first use.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np


@lru_cache(maxsize=1)
def _smile() -> Any:
    try:
        import opensmile
    except ImportError as err:
        raise ImportError(
            "eGeMAPS factors need the opensmile package: pip install saelight[egemaps]"
        ) from err
    return opensmile.Smile(
        feature_set=opensmile.FeatureSet.eGeMAPSv02,
        feature_level=opensmile.FeatureLevel.Functionals,
    )


def egemaps_functionals(wave: np.ndarray, sample_rate: int) -> dict[str, float]:
    """The 88 eGeMAPSv02 functionals of one clip, named as openSMILE names them.

    Args:
        wave: (samples,) mono waveform.
        sample_rate: its sample rate in Hz.

    Returns:
        {functional name: value}, e.g. "F0semitoneFrom27.5Hz_sma3nz_amean", in openSMILE's order.
        Values can be NaN/0 for clips with no voiced frames (f0-based functionals).

    Raises:
        ImportError: opensmile is not installed.
    """
    frame = _smile().process_signal(np.asarray(wave, dtype=np.float32), sample_rate)
    return {str(name): float(value) for name, value in frame.iloc[0].items()}
