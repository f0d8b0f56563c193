"""`AudioSource.validate` and the user-error classes (audio/base.py, saelight/errors.py)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from saelight.audio import SPLITS, AudioSource, BadAudioError, BadSourceError, Clip
from saelight.io.errors import SaelightError


class _Listed(AudioSource):
    """A source that is just a list of clips (for checking the base class's validation)."""

    def __init__(self, clips: list[Clip]) -> None:
        self._clips = clips

    def clips(self) -> list[Clip]:
        return list(self._clips)

    def load(self, clip: Clip, sample_rate: int) -> np.ndarray:
        return np.zeros(sample_rate, dtype=np.float32)


def test_native_rate_is_unknown_unless_a_source_says() -> None:
    assert _Listed(_clips("train")).native_rate(Clip("c0", "train")) is None


def _clips(*splits: str) -> list[Clip]:
    return [Clip(f"c{i}", split) for i, split in enumerate(splits)]


def test_validate_passes_a_usable_list_and_checks_the_splits_asked_for() -> None:
    _Listed(_clips(*SPLITS)).validate()
    train_only = _Listed(_clips("train", "train"))
    train_only.validate(["train"])
    with pytest.raises(BadSourceError) as err:
        train_only.validate()
    assert str(err.value) == (
        "_Listed: split 'val' would have no clips (train 2, val 0, test 0); "
        "check _Listed's split options"
    )


@pytest.mark.parametrize(
    ("clips", "message"),
    [
        ([], "_Listed: no clips; check its root and filters"),
        ([Clip("a", "train"), Clip("a", "val")], "clip id 'a' appears twice"),
        (_clips("train", "holdout"), "split names ['holdout']"),
    ],
)
def test_validate_names_the_problem(clips: list[Clip], message: str) -> None:
    with pytest.raises(BadSourceError) as err:
        _Listed(clips).validate([])
    assert message in str(err.value)


def test_user_errors_are_saelight_errors_and_value_errors() -> None:
    for cls in (BadAudioError, BadSourceError):
        assert issubclass(cls, SaelightError) and issubclass(cls, ValueError)
    err = BadSourceError("m.csv: line 3, column 'x' is empty", hint="fill it in")
    assert (err.message, err.hint) == ("m.csv: line 3, column 'x' is empty", "fill it in")
    assert str(err) == "m.csv: line 3, column 'x' is empty; fill it in"
    assert str(SaelightError("plain")) == "plain"
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is BadSourceError and str(copy) == str(err)
