"""Bad configs and bad data stop with a message that names the problem (or, for NaN/Inf rows with
`model.nonfinite: skip`, are left out and counted)."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from saelight.audio import AudioFolder
from saelight.audio.base import BadAudioError
from saelight.cache import ActivationCache, CacheMismatchError, CacheReader
from saelight.cache.format import npy_bytes, sha256_bytes
from saelight.cli import main
from saelight.commands.train import make_cli
from saelight.evaluation.layer import SplitData, probe_labels

CONFIG = Path(__file__).parent / "data" / "tiny_csv.yaml"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Session directory holding the shared tiny cache and backbone (built here if needed)."""
    root = tmp_path_factory.getbasetemp()
    main(["cache", *args(root)])
    return root


SAELIGHT = str(Path(sys.executable).with_name("saelight"))


def args(root: Path, *extra: str) -> list[str]:
    return [
        "--config", str(CONFIG), "--trainer.default_root_dir", str(root),
        "--data.cache.directory", str(root / "tiny_cache"),
        "--data.cache.backbone.init_args.save_dir", str(root / "tiny_models"), *extra,
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model.bogus", "1"], "unrecognized arguments: --model.bogus"),
        (
            ["--data.batch_size", "four"],
            "data.batch_size: Expected a <class 'int'>. Got value: four",
        ),
        (
            ["--data.cache.pooling", "token"],
            "data.cache.pooling: Expected a typing.Literal\\['clip', 'frame'\\]",
        ),
        (["--model.d_in", "16"], 'Linked "model.d_in" must be given via "data.d_in"'),
    ],
)
def test_config_errors_name_the_key(base: Path, extra: list[str], message: str) -> None:
    """Through the console script: exit 2 and one line naming the key, no usage dump."""
    done = subprocess.run(
        [SAELIGHT, "fit", *args(base, *extra)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2 and "Traceback" not in done.stderr and "usage:" not in done.stderr
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("saelight: error:")]
    assert re.search(message, line), line


def test_unknown_key_in_a_yaml_file(base: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        CONFIG.read_text().replace("  batch_size: 4", "  batch_size: 4\n  shuffle: true")
    )
    done = subprocess.run(
        [SAELIGHT, "fit", *args(base), "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 2
    (line,) = [ln for ln in done.stderr.splitlines() if ln.startswith("saelight: error:")]
    assert "shuffle" in line and "data" in line, line


SAES = '[{"class_path": "saelight.sae.TopKSAE", "init_args": {"d_sae": 64, "k": 100}}]'


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--data.cache.backbone.init_args.layers", "[1, 7]"], r"\[7\] beyond .* range is 0..2"),
        (["--model.sparsities", "[1.0]"], r"`sparsity` must be in \[0, 1\), got 1.0"),
        (["--model.sparsities", "[-0.1]"], r"`sparsity` must be in \[0, 1\), got -0.1"),
        (["--model.sparsities", "null", "--model.saes", SAES], r"\[1, d_sae=64\], got 100"),
        (
            [
                "--data.cache.source",
                "saelight.audio.AudioFolder",
                "--data.cache.source.init_args.root",
                "/no/such/dataset",
            ],
            "root: '/no/such/dataset' does not exist",
        ),
    ],  # fmt: skip
)
def test_values_out_of_range_are_refused(base: Path, extra: list[str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_cli(args(base, *extra), run=False)


def test_a_cache_of_another_width_is_refused(base: Path, tmp_path: Path) -> None:
    shutil.copytree(base / "tiny_cache", tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    (tmp_path / "c" / "manifest.json").write_text(json.dumps({**manifest, "dim": 16}))
    cli = make_cli(args(base, "--data.cache.directory", str(tmp_path / "c")), run=False)
    assert cli.model.d_in == 32  # linked from the backbone, never typed
    with pytest.raises(CacheMismatchError, match="field 'dim' is 16 in the cache but 32"):
        cli.datamodule.setup("fit")


def nan_cache(base: Path, directory: Path) -> int:
    """A copy of the tiny cache whose first train row is NaN in layer 2 (checksums updated)."""
    shutil.copytree(base / "tiny_cache", directory)
    reader = CacheReader(directory)
    row = int(reader.split_rows("train")[0])
    shard = int(np.searchsorted(reader.row_starts, row, side="right") - 1)
    entry = reader.manifest["shards"][shard]
    rel = f"layer_02/shard_{entry['index']:05d}.npy"
    data = np.load(directory / rel)
    data[row - entry["row_start"], 3] = np.nan
    (directory / rel).write_bytes(npy_bytes(data))
    manifest = json.loads((directory / "manifest.json").read_text())
    manifest["shards"][shard]["files"][rel] = sha256_bytes(npy_bytes(data))
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return row


def test_nonfinite_rows_stop_training_by_default(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nan_cache(base, tmp_path / "c")
    monkeypatch.chdir(tmp_path)  # the config's CSV logger writes to ./csv
    fit = ["fit", *args(base, "--data.cache.directory", str(tmp_path / "c"))]
    fit += ["--trainer.default_root_dir", ".", "--trainer.max_epochs", "1"]
    done = subprocess.run([SAELIGHT, *fit], capture_output=True, text=True, timeout=600)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert re.search(
        r"saelight: error: 1 cached rows hold NaN/Inf.*model.nonfinite: skip", done.stderr
    )


def test_nonfinite_rows_are_skipped_counted_and_logged(
    base: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nan_cache(base, tmp_path / "c")
    monkeypatch.chdir(tmp_path)
    fit = ["fit", *args(base, "--data.cache.directory", str(tmp_path / "c"))]
    fit += ["--trainer.default_root_dir", ".", "--trainer.max_epochs", "1"]
    main([*fit, "--model.nonfinite", "skip"])
    metrics = pd.read_csv(tmp_path / "csv" / "version_0" / "metrics.csv")
    assert metrics["train/nonfinite_rows"].dropna().iloc[-1] == 1  # 1 epoch: the row seen once
    assert (tmp_path / "results" / "results.json").exists()  # evaluation left the row out


def test_probe_labels_missing_from_the_cache(base: Path) -> None:
    meta = CacheReader(base / "tiny_cache").metadata
    splits = {s: SplitData(np.zeros((len(meta), 2)), meta) for s in ("train", "val", "test")}
    with pytest.raises(ValueError, match=r"evaluation labels \['mood'\] are not in the cache"):
        probe_labels(splits, ["vowel", "mood"])


def test_a_file_that_is_not_audio(base: Path, tmp_path: Path) -> None:
    folder = tmp_path / "audio" / "a"
    folder.mkdir(parents=True)
    t = np.arange(16000) / 16000
    for i in range(3):
        sf.write(folder / f"ok{i}.wav", 0.3 * np.sin(2 * np.pi * 220 * (i + 1) * t), 16000)
    (folder / "notes.wav").write_text("not audio at all")
    source = AudioFolder(str(tmp_path / "audio"), val_fraction=0.0, test_fraction=0.0)
    notes = next(c for c in source.clips() if c.clip_id == "a/notes.wav")
    with pytest.raises(BadAudioError, match="notes.wav: unreadable file or not audio"):
        source.load(notes, 16000)
    backbone = make_cli(args(base), run=False).datamodule.cache.backbone
    reader = ActivationCache(str(tmp_path / "skip"), source, backbone).build(progress=False)
    assert len(reader) == 3 and reader.manifest["skipped"][0]["path"].endswith("notes.wav")
    with pytest.raises(BadAudioError, match="notes.wav: unreadable.*on_bad_input: skip"):
        ActivationCache(str(tmp_path / "stop"), source, backbone, on_bad_input="error").build(
            progress=False
        )
