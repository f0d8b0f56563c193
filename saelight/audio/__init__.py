"""Audio sources: where clips come from, their splits, labels and factors, and how to decode them.

Every source implements `AudioSource` (a deterministic `clips()` list plus `load(clip, rate)`).
`SyntheticSinging` is the embedded default and needs no download.
"""

from saelight.audio.base import (
    SPLITS,
    VOCALSET_TECHNIQUES,
    AudioSource,
    BadAudioError,
    BadSourceError,
    Clip,
    assign_group_splits,
    carve_val,
)
from saelight.audio.decode import crop_or_pad, load_audio, validate_waveform
from saelight.audio.egemaps import egemaps_functionals
from saelight.audio.folder import AudioFolder
from saelight.audio.hf import HFAudioDataset
from saelight.audio.synthetic import SyntheticSinging
from saelight.audio.vocalset import VocalSet

__all__ = [
    "SPLITS",
    "VOCALSET_TECHNIQUES",
    "AudioFolder",
    "AudioSource",
    "BadAudioError",
    "BadSourceError",
    "Clip",
    "HFAudioDataset",
    "SyntheticSinging",
    "VocalSet",
    "assign_group_splits",
    "carve_val",
    "crop_or_pad",
    "egemaps_functionals",
    "load_audio",
    "validate_waveform",
]
