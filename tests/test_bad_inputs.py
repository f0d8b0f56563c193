"""The bad-input suite (issue 28): every case runs through the installed console script and must
exit 2 with exactly one line on stderr (no traceback) naming the file or field, while every file
written before it (a finished run's config.yaml, results and exports, a cache) stays as it was.

One tiny finished run and its cache are built once; each case gets its own folder holding the
files it may break (copies of the run's files, a flipped cache, a broken manifest), hashed before
and compared after. The cases run the installed script's own code in forks of one interpreter
that has imported every verb (`console_zygote.py`): most stop at start-up, where ~6 s of imports
per process would be most of the suite's time. The shared run is built, and `--debug` checked,
by real `saelight` processes. "One line" means one `saelight: error:` line and no exception
text; the ordinary log lines before it ("Seed set to 0") stay.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

TINY = Path(__file__).parent / "data" / "tiny_csv.yaml"
ZYGOTE = Path(__file__).parent / "console_zygote.py"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "WANDB_MODE": "offline"}
ENV.pop("SAELIGHT_DEBUG", None)
EXCEPTION = re.compile(r"\w+(Error|Exception): ")
KEY = "L01_topk_s75"
SHARD = Path("layer_01") / "shard_00000.npy"


@dataclass(frozen=True)
class World:
    """The shared finished run, its cache and backbone (never modified by a case)."""

    run: Path
    cache: Path
    models: Path


@dataclass(frozen=True)
class Case:
    """One bad input: the command (`{run}`, `{cache}`, `{models}`, `{tiny}`, `{case}`
    placeholders), the words its error line must hold, and what to set up in its folder."""

    id: str
    args: tuple[str, ...]
    words: tuple[str, ...]
    setup: Callable[[Path, World], None] | None = None
    kwargs: dict[str, str] = field(default_factory=dict)


def fill(text: str, names: dict[str, object]) -> str:
    """`text` with each `{name}` replaced (JSON values hold braces of their own)."""
    for name, value in names.items():
        text = text.replace(f"{{{name}}}", str(value))
    return text


def digest(folder: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `folder` but lock files."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.name.endswith(".lock")
    }


def fit_args(*extra: str, root: str = "{case}") -> tuple[str, ...]:
    return (
        "fit", "--config", "{tiny}", "--trainer.default_root_dir", root,
        "--data.cache.directory", "{cache}", "--data.cache.backbone.init_args.save_dir",
        "{models}", "--trainer.logger", "false", *extra,
    )  # fmt: skip


# Set-ups: each writes into the case's own folder.


def finished_files(case: Path, world: World) -> None:
    """The finished run's config.yaml and results: a failing fit here must leave them."""
    shutil.copy(world.run / "config.yaml", case / "config.yaml")
    shutil.copytree(world.run / "results", case / "results")


def run_copy(case: Path, world: World, cache: Path | None = None) -> Path:
    """A copy of the finished run (config.yaml, saes, results) in `case/run`, its config
    pointing at `cache` (default: the shared cache)."""
    run = case / "run"
    shutil.copytree(world.run / "saes", run / "saes")
    shutil.copytree(world.run / "results", run / "results")
    text = (world.run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace(str(world.cache), str(cache or world.cache)))
    return run


def flipped_cache(case: Path, world: World) -> None:
    shutil.copytree(world.cache, case / "cache", ignore=shutil.ignore_patterns(".lock"))
    data = bytearray((case / "cache" / SHARD).read_bytes())
    data[-5] ^= 0x10
    (case / "cache" / SHARD).write_bytes(bytes(data))
    run_copy(case, world, case / "cache")


def no_cache(case: Path, world: World) -> None:
    run_copy(case, world, case / "no_cache")


def yaml_error_in_saved_config(case: Path, world: World) -> None:
    run = run_copy(case, world)
    (run / "config.yaml").write_text("data: {cache: [\n")


def plain_run(case: Path, world: World) -> None:
    run_copy(case, world)


def an_out_file(case: Path, world: World) -> None:
    run_copy(case, world)
    (case / "taken").write_text("a file")


def export_edit(change: Callable[[dict], None]) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        cfg_path = run_copy(case, world) / "saes" / KEY / "cfg.json"
        cfg = json.loads(cfg_path.read_text())
        change(cfg)
        cfg_path.write_text(json.dumps(cfg))

    return setup


def flipped_weights(case: Path, world: World) -> None:
    weights = run_copy(case, world) / "saes" / KEY / "sae_weights.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01
    weights.write_bytes(bytes(data))


def results_edit(text: str) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        (run_copy(case, world) / "results" / "results.json").write_text(text)

    return setup


def no_results(case: Path, world: World) -> None:
    shutil.rmtree(run_copy(case, world) / "results")


def write_file(name: str, content: bytes) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        finished_files(case, world)
        (case / name).parent.mkdir(parents=True, exist_ok=True)
        (case / name).write_bytes(content)

    return setup


def truncated_ckpt(name: str) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        finished_files(case, world)
        data = (world.run / "checkpoints" / "last.ckpt").read_bytes()
        (case / name).parent.mkdir(parents=True, exist_ok=True)
        (case / name).write_bytes(data[: len(data) // 2])

    return setup


def pickle_ckpt(case: Path, world: World) -> None:
    finished_files(case, world)

    class Payload:
        def __reduce__(self) -> tuple:
            return (open, (str(case / "pwned"), "w"))

    (case / "evil.ckpt").write_bytes(pickle.dumps({"state_dict": Payload()}))


def zip_of(members: dict[str, bytes]) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        finished_files(case, world)
        with zipfile.ZipFile(case / "odd.ckpt", "w") as archive:
            for name, data in members.items():
                archive.writestr(name, data)

    return setup


def directory(name: str) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        finished_files(case, world)
        (case / name).mkdir()

    return setup


def user_config(text: str) -> Callable[[Path, World], None]:
    def setup(case: Path, world: World) -> None:
        finished_files(case, world)
        (case / "user.yaml").write_text(text)

    return setup


def wav(path: Path, seconds: float = 1.0) -> None:
    t = np.arange(int(16000 * seconds)) / 16000
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), 16000)


def manifest(rows: list[str], header: str = "path,singer,technique,split") -> Callable:
    def setup(case: Path, world: World) -> None:
        for name in ("a.wav", "b.wav", "c.wav"):
            wav(case / "data" / name)
        (case / "data" / "notaudio.wav").write_text("not audio")
        (case / "data" / "metadata.csv").write_text("\n".join([header, *rows]) + "\n")

    return setup


def folder_source(**init_args: object) -> str:
    args = {"root": "{case}/data", "path_column": "path", "label_columns": ["technique"]}
    args |= {"split_column": "split", **init_args}
    return json.dumps({"class_path": "saelight.audio.AudioFolder", "init_args": args})


def cache_args(source: str) -> tuple[str, ...]:
    return (
        "cache", "--config", "{tiny}", "--data.cache.directory", "{case}/new_cache",
        "--data.cache.backbone.init_args.save_dir", "{models}", "--data.cache.source", source,
    )  # fmt: skip


GOOD = ["a.wav,s1,belt,train", "b.wav,s2,belt,val", "c.wav,s3,belt,test"]
OTHER_GRID = json.dumps([{"class_path": "saelight.sae.TopKSAE", "init_args": {"d_sae": 32}}])
EXPORT_CFG = "{case}/run/saes/" + KEY
CASES = [
    # The user's config: syntax, shape, values, interpolation, sections Lightning refuses.
    Case("yaml-syntax", fit_args("--config", "{case}/user.yaml"), ("user.yaml", "line 3"),
         user_config("trainer:\n  max_epochs: [1, 2\n")),
    Case("yaml-tab", fit_args("--config", "{case}/user.yaml"), ("user.yaml", "YAML"),
         user_config("trainer:\n\tmax_epochs: 1\n")),
    Case("empty-config", fit_args("--config", "{case}/user.yaml"), ("user.yaml", "empty"),
         user_config("")),
    Case("list-config", fit_args("--config", "{case}/user.yaml"), ("user.yaml", "mapping"),
         user_config("- trainer\n- data\n")),
    Case("missing-config", fit_args("--config", "{case}/nope.yaml"), ("nope.yaml",),
         finished_files),
    Case("config-is-a-dir", fit_args("--config", "{case}/adir"), ("adir", "directory"),
         directory("adir")),
    Case("max-epochs", fit_args("--trainer.max_epochs", "-5"), ("max_epochs",), finished_files),
    Case("bad-interpolation", fit_args("--config", "{case}/user.yaml"), ("interpolation", "nope"),
         user_config("trainer:\n  default_root_dir: ${data.nope}/run\n")),
    Case("unknown-key", fit_args("--model.bogus", "1"), ("model.bogus",), finished_files),
    Case("unknown-section", fit_args("--config", "{case}/user.yaml"), ("traner",),
         user_config("traner: {max_epochs: 1}\n")),
    Case("batch-size-text", fit_args("--data.batch_size", "four"), ("data.batch_size",),
         finished_files),
    Case("batch-size-0", fit_args("--data.batch_size", "0"), ("data.batch_size",),
         finished_files),
    Case("clips-per-shard-0", fit_args("--data.cache.clips_per_shard", "0"),
         ("data.cache.clips_per_shard",), finished_files),
    Case("crops-per-file-0", fit_args("--data.cache.crops_per_file", "0"),
         ("data.cache.crops_per_file",), finished_files),
    Case("cache-batch-0", fit_args("--data.cache.batch_size", "0"), ("data.cache.batch_size",),
         finished_files),
    Case("pooling", fit_args("--data.cache.pooling", "token"), ("data.cache.pooling",),
         finished_files),
    Case("storage-dtype", fit_args("--data.cache.storage_dtype", "int8"), ("storage_dtype",),
         finished_files),
    Case("crop-seconds", fit_args("--data.cache.crop_seconds", "-1"), ("crop_seconds",),
         finished_files),
    Case("num-workers", fit_args("--data.num_workers", "-1"), ("num_workers",), finished_files),
    Case("negative-lr", fit_args("--model.optimizer.init_args.lr", "-1"), ("model.optimizer",),
         finished_files),
    Case("sparsity-2", fit_args("--model.sparsities", "[2.0]"), ("sparsit",), finished_files),
    Case("precision", fit_args("--trainer.precision", "13"), ("precision",), finished_files),
    Case("no-gpu", fit_args("--trainer.accelerator", "cuda"), ("trainer configuration",),
         finished_files),
    Case("cache-dir-is-a-file", fit_args("--data.cache.directory", "{case}/f"),
         ("{case}/f",), write_file("f", b"x")),
    Case("root-is-a-file", fit_args(root="{case}/f"), ("{case}/f",), write_file("f", b"x")),
    Case("other-width-cache", fit_args("--data.cache.backbone.init_args.hidden_size", "64"),
         ("{cache}", "hidden_size"), finished_files),
    # Checkpoints.
    Case("missing-ckpt", fit_args("--ckpt_path", "{case}/gone.ckpt"), ("gone.ckpt",),
         finished_files),
    Case("dir-ckpt", fit_args("--ckpt_path", "{case}/adir"), ("adir", "directory"),
         directory("adir")),
    Case("truncated-ckpt", fit_args("--ckpt_path", "{case}/half.ckpt"), ("half.ckpt",),
         truncated_ckpt("half.ckpt")),
    Case("truncated-last", fit_args("--ckpt_path", "last"), ("last.ckpt", "not a complete"),
         truncated_ckpt("checkpoints/last.ckpt")),
    Case("empty-ckpt", fit_args("--ckpt_path", "{case}/e.ckpt"), ("e.ckpt",),
         write_file("e.ckpt", b"")),
    Case("garbage-ckpt", fit_args("--ckpt_path", "{case}/g.ckpt"), ("g.ckpt",),
         write_file("g.ckpt", os.urandom(4096))),
    Case("pickle-ckpt", fit_args("--ckpt_path", "{case}/evil.ckpt"), ("checkpoint",),
         pickle_ckpt),
    Case("zip-not-ckpt", fit_args("--ckpt_path", "{case}/odd.ckpt"), ("checkpoint",),
         zip_of({"archive/data.pkl": b"not a pickle"})),
    Case("other-grid-width", fit_args("--ckpt_path", "{run}/checkpoints/last.ckpt",
         "--model.saes", OTHER_GRID), ("SAE grid", "size mismatch"), finished_files),
    Case("other-grid-keys", fit_args("--ckpt_path", "{run}/checkpoints/last.ckpt",
         "--model.sparsities", "[0.5]"), ("SAE grid",), finished_files),
    Case("test-missing-ckpt", ("test", "--config", "{case}/run/config.yaml", "--ckpt_path",
         "{case}/gone.ckpt", "--trainer.default_root_dir", "{case}/run"), ("gone.ckpt",),
         plain_run),
    # Verbs: typos and options.
    Case("typo-fit", ("fitt", "--config", "{tiny}"), ("fitt", "saelight fit`")),
    Case("typo-inspect", ("inspekt", "--run", "{run}"), ("inspekt", "saelight inspect`")),
    Case("typo-underscore", ("layer_sweep",), ("layer_sweep", "saelight layer-sweep`")),
    Case("unknown-option", ("report", "{run}", "--bogus", "1"), ("bogus",)),
    # The cache: verified on every open.
    Case("cache-flipped", ("cache", "--config", "{case}/run/config.yaml"),
         ("shard_00000.npy", "sha256"), flipped_cache),
    Case("inspect-flipped", ("inspect", "--run", "{case}/run", "--no_audio"),
         ("shard_00000.npy", "sha256"), flipped_cache),
    Case("sweep-flipped", ("layer-sweep", "--cache", "{case}/cache", "--label", "vowel"),
         ("shard_00000.npy", "sha256"), flipped_cache),
    Case("inspect-no-cache", ("inspect", "--run", "{case}/run"), ("no_cache",), no_cache),
    Case("sweep-no-cache", ("layer-sweep", "--cache", "{case}/nothing"), ("nothing",)),
    Case("sweep-label", ("layer-sweep", "--cache", "{cache}", "--label", "mood"), ("mood",)),
    Case("sweep-layer", ("layer-sweep", "--cache", "{cache}", "--label", "vowel", "--layers",
         "[7]"), ("[7]",)),
    Case("sweep-out-file", ("layer-sweep", "--cache", "{cache}", "--label", "vowel", "--out",
         "{case}/taken"), ("taken",), an_out_file),
    # inspect.
    Case("inspect-out-file", ("inspect", "--run", "{case}/run", "--out", "{case}/taken"),
         ("taken",), an_out_file),
    Case("inspect-saved-yaml", ("inspect", "--run", "{case}/run"), ("config.yaml", "line 2"),
         yaml_error_in_saved_config),
    Case("inspect-no-exports", ("inspect", "--run", "{case}"), ("saes",)),
    Case("inspect-top-0", ("inspect", "--run", "{run}", "--top", "0"), ("--top",)),
    Case("inspect-sae-no-config", ("inspect", "--sae", "{run}/saes/" + KEY), ("--config",)),
    Case("inspect-no-checksum", ("inspect", "--sae", EXPORT_CFG, "--config",
         "{case}/run/config.yaml"), ("cfg.json", "weights_sha256"),
         export_edit(lambda cfg: cfg.pop("weights_sha256"))),
    # report.
    Case("report-shape", ("report", "{case}/run"), ("results.json", "rows"),
         results_edit('{"run": {}, "results": []}')),
    Case("report-row-shape", ("report", "{case}/run"), ("results.json", "rows[0].layer"),
         results_edit('{"run": {}, "rows": [{"layer": "two", "name": "x"}]}')),
    Case("report-list", ("report", "{case}/run"), ("results.json", "JSON object"),
         results_edit("[1, 2]")),
    Case("report-truncated", ("report", "{case}/run"), ("results.json", "not valid JSON"),
         results_edit('{"run": {"backbone"')),
    Case("report-mixed", ("report", "{case}/run"), ("fits", f"{KEY}/cfg.json"),
         export_edit(lambda cfg: cfg.update(generation="20200101T000000Z-0ld0ld00"))),
    Case("report-out-file", ("report", "{case}/run", "--out", "{case}/taken"), ("taken",),
         an_out_file),
    Case("report-missing", ("report", "{case}/nowhere"), ("nowhere",)),
    # push.
    Case("push-offline", ("push", "--run", "{case}/run", "--repo", "org/name"),
         ("org/name", "HF_HUB_OFFLINE"), plain_run),
    Case("push-mixed", ("push", "--run", "{case}/run", "--local_dir", "{case}/hub"),
         ("2 fits", f"{KEY}/cfg.json"),
         export_edit(lambda cfg: cfg.update(generation="20200101T000000Z-0ld0ld00"))),
    Case("push-no-checksum", ("push", "--run", "{case}/run", "--local_dir", "{case}/hub"),
         ("cfg.json", "weights_sha256"), export_edit(lambda cfg: cfg.pop("weights_sha256"))),
    Case("push-flipped-weights", ("push", "--run", "{case}/run", "--local_dir", "{case}/hub"),
         ("sae_weights.safetensors", "SHA-256"), flipped_weights),
    Case("push-no-results", ("push", "--run", "{case}/run", "--local_dir", "{case}/hub"),
         ("results.json",), no_results),
    Case("push-bad-repo", ("push", "--run", "{run}", "--repo", "not a repo"), ("not a repo",)),
    Case("push-both", ("push", "--run", "{run}", "--repo", "o/n", "--local_dir", "{case}/h"),
         ("--repo", "--local_dir")),
    Case("push-local-dir-taken", ("push", "--run", "{case}/run", "--local_dir", "{case}/run"),
         ("--local_dir",), plain_run),
    # Manifests and audio (AudioFolder), checked before a model is loaded.
    Case("manifest-missing-file", cache_args(folder_source()), ("metadata.csv", "gone.wav"),
         manifest([*GOOD, "gone.wav,s1,belt,train"])),
    Case("manifest-no-path-column", cache_args(folder_source()), ("metadata.csv", "path"),
         manifest(["a.wav,s1,belt,train"], header="file,singer,technique,split")),
    Case("manifest-unknown-label", cache_args(folder_source(label_columns=["mood"])),
         ("metadata.csv", "mood"), manifest(GOOD)),
    Case("manifest-empty-label", cache_args(folder_source()), ("metadata.csv", "technique"),
         manifest([*GOOD, "a.wav,s1,,train"])),
    Case("manifest-bad-split", cache_args(folder_source()), ("metadata.csv", "split"),
         manifest([*GOOD, "a.wav,s1,belt,holdout"])),
    Case("manifest-header-only", cache_args(folder_source()), ("metadata.csv",), manifest([])),
    Case("manifest-factor-text", cache_args(folder_source(factor_columns=["singer"])),
         ("metadata.csv", "factor_columns", "expected a number"), manifest(GOOD)),
    Case("manifest-no-group-column", cache_args(folder_source(group_column="teacher")),
         ("metadata.csv", "group_column", "teacher"), manifest(GOOD)),
    Case("manifest-val-fraction", cache_args(folder_source(val_fraction=1.5)),
         ("val_fraction",), manifest(GOOD)),
    Case("manifest-no-root", cache_args(folder_source(root="{case}/nodata")), ("nodata",)),
    Case("audio-not-audio", (*cache_args(folder_source()), "--data.cache.on_bad_input",
         "error"), ("notaudio.wav",), manifest([*GOOD, "notaudio.wav,s1,belt,train"])),
]  # fmt: skip


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """One finished tiny run (config.yaml, saes, results, checkpoints) and its cache."""
    base = tmp_path_factory.mktemp("bad_inputs")
    w = World(base / "run", base / "tiny_cache", base / "tiny_models")
    w.run.mkdir()
    args = fit_args(root=str(w.run))
    args = tuple(fill(a, {"tiny": TINY, "cache": w.cache, "models": w.models}) for a in args)
    done = subprocess.run(
        [SAELIGHT, *args], cwd=w.run, env=ENV, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (w.run / "config.yaml").is_file() and (w.run / "checkpoints" / "last.ckpt").is_file()
    return w


@pytest.fixture(scope="module")
def outcomes(world: World, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Runs every case through the console script (`console_zygote`: the script's own code in a
    fresh fork of one warm interpreter): {id: (returncode, stderr, its folder, files before,
    files after)}, and "shared": the finished run and cache before and after all cases."""
    root = tmp_path_factory.mktemp("cases")
    shared_before = (digest(world.run), digest(world.cache))
    zygote = subprocess.Popen(
        [sys.executable, str(ZYGOTE), SAELIGHT],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=ENV, text=True,
    )  # fmt: skip
    assert zygote.stdin is not None and zygote.stdout is not None
    results: dict[str, tuple] = {}
    try:
        for case in CASES:
            folder = root / case.id
            folder.mkdir()
            if case.setup is not None:
                case.setup(folder, world)
            before = digest(folder)
            names = {"tiny": TINY, "run": world.run, "cache": world.cache}
            names |= {"models": world.models, "case": folder}
            err = root / f"{case.id}.stderr"
            job = {"argv": [fill(a, names) for a in case.args], "cwd": str(folder)}
            job |= {"stdout": str(root / f"{case.id}.stdout"), "stderr": str(err)}
            zygote.stdin.write(json.dumps(job) + "\n")
            zygote.stdin.flush()
            code = json.loads(zygote.stdout.readline())["returncode"]
            results[case.id] = (code, err.read_text(), folder, before, digest(folder))
    finally:
        zygote.stdin.close()
        zygote.wait(timeout=60)
    return {**results, "shared": (shared_before, (digest(world.run), digest(world.cache)))}


def test_there_are_at_least_sixty_cases() -> None:
    assert len(CASES) >= 60 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_is_one_line_exit_2_and_nothing_is_lost(
    case: Case, outcomes: dict[str, tuple], world: World
) -> None:
    code, stderr, folder, before, after = outcomes[case.id]
    assert code == 2, (code, stderr[-3000:])
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("saelight: error: ")]
    assert len(errors) == 1, lines
    names = {"run": world.run, "cache": world.cache, "case": folder}
    for word in case.words:
        assert fill(word, names) in errors[0], (word, errors[0])
    # Other lines are the run's ordinary log ("Seed set to 0"), never an exception's.
    assert not [ln for ln in lines if ln not in errors and EXCEPTION.search(ln)], lines
    lost = {name: sha for name, sha in before.items() if after.get(name) != sha}
    assert not lost, f"files changed or deleted: {sorted(lost)}"


def test_the_finished_run_and_its_cache_are_unchanged(outcomes: dict[str, tuple]) -> None:
    before, after = outcomes["shared"]
    assert before == after


def test_the_finished_run_is_one_generation(world: World) -> None:
    from saelight.report.generations import check_generations, run_generations

    assert len(set(run_generations(world.run).values())) == 1
    assert check_generations(world.run) is None and None not in run_generations(world.run).values()


def test_the_pickle_payload_never_ran(outcomes: dict[str, tuple]) -> None:
    assert not (outcomes["pickle-ckpt"][2] / "pwned").exists()


def test_debug_brings_the_traceback_back(world: World, tmp_path: Path) -> None:
    done = subprocess.run(
        [SAELIGHT, "--debug", "report", str(tmp_path / "nowhere")],
        env=ENV, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode != 0 and "Traceback" in done.stderr
