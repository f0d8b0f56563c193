"""`failure_line`: each kind of exception a user causes becomes one line naming the file or
field; a bug (an exception raised outside saelight's checks) is left to its traceback."""

from __future__ import annotations

import errno
import io
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml
from lightning.fabric.utilities.exceptions import MisconfigurationException
from omegaconf import OmegaConf

from saelight.io.errors import ConfigError
from saelight.io.failures import failure_line


def test_saelight_errors_keep_their_message_and_hint() -> None:
    error = ConfigError("data.batch_size must be >= 1, got 0", hint="set a positive batch size")
    assert failure_line(error) == "data.batch_size must be >= 1, got 0; set a positive batch size"


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "no space left on the device (ENOSPC)"),
        (errno.EROFS, "the file system is read-only (EROFS)"),
        (errno.EACCES, "permission denied (EACCES)"),
    ],
)
def test_os_errors_name_the_path_and_the_reason(code: int, reason: str) -> None:
    error = OSError(code, os.strerror(code), "runs/x/saes/L02/cfg.json")
    assert failure_line(error) == f"runs/x/saes/L02/cfg.json: {reason}"


def test_a_real_write_to_a_directory_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(OSError) as caught:
        open(tmp_path, "w")  # noqa: SIM115 (the error is what is tested)
    assert failure_line(caught.value) == f"{tmp_path}: is a directory, expected a file (EISDIR)"


def test_yaml_syntax_error_names_line_and_problem() -> None:
    with pytest.raises(yaml.YAMLError) as caught:
        yaml.safe_load("trainer:\n  max_epochs: [1, 2\n")
    line = failure_line(caught.value)
    assert line is not None and line.startswith("YAML syntax error: ")
    assert "\n" not in line


def test_bad_interpolation_is_one_line() -> None:
    config = OmegaConf.create({"a": "${missing.key}"})
    with pytest.raises(Exception) as caught:
        OmegaConf.to_container(config, resolve=True)
    line = failure_line(caught.value)
    assert line is not None and line.startswith("config interpolation: ")
    assert "missing" in line and "\n" not in line


def test_lightning_misconfiguration_is_one_line() -> None:
    from lightning.pytorch import Trainer

    with pytest.raises(MisconfigurationException) as caught:
        Trainer(max_epochs=-5, logger=False, enable_checkpointing=False)
    line = failure_line(caught.value)
    assert line is not None and line.startswith("trainer configuration: ")
    assert "max_epochs" in line


def test_a_pickle_checkpoint_is_refused_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "evil.ckpt"

    class Payload:
        def __reduce__(self) -> tuple:
            return (print, ("this must never run",))

    path.write_bytes(pickle.dumps({"state_dict": Payload()}))
    with pytest.raises(pickle.UnpicklingError) as caught:
        torch.load(path, weights_only=True)
    assert "weights-only load refuses" in failure_line(caught.value)


def test_a_checkpoint_of_another_grid_names_the_mismatch() -> None:
    small, large = torch.nn.Linear(2, 3), torch.nn.Linear(2, 4)
    with pytest.raises(RuntimeError) as caught:
        small.load_state_dict(large.state_dict())
    line = failure_line(caught.value)
    assert line is not None and "does not match this config's SAE grid" in line
    assert "size mismatch for weight" in line


def test_bugs_keep_their_traceback() -> None:
    assert failure_line(KeyError("rows")) is None
    assert failure_line(ValueError("raised outside saelight")) is None
    assert failure_line(RuntimeError("CUDA error")) is None
    assert failure_line(io.UnsupportedOperation("not writable")) is None
