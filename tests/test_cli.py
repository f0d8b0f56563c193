"""End-to-end runs of the real `saelight` CLI on a tiny config: files, metrics and bad input."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

TINY = Path(__file__).parent / "data" / "tiny.yaml"
SAELIGHT = str(Path(sys.executable).with_name("saelight"))
"""The installed console script, run as a user runs it."""


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    command, *overrides = args
    cmd = [
        SAELIGHT,
        command,
        "--config",
        str(TINY),
        "--trainer.default_root_dir",
        ".",
        *overrides,
    ]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run = tmp_path_factory.mktemp("run")
    done = run_cli(run, "fit")
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def test_fit_leaves_cache_checkpoint_csv_wandb_and_exports(finished_run: Path) -> None:
    manifest = json.loads((finished_run / "cache" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["layers"] == [1, 2] and manifest["dim"] == 32
    assert (finished_run / "checkpoints" / "last.ckpt").exists()
    assert list((finished_run / "wandb").glob("offline-run-*/run-*.wandb"))
    metrics = pd.read_csv(next((finished_run / "csv").glob("version_*/metrics.csv")))
    fvu = metrics["L1/topk_s75/val/fvu"].dropna()
    assert len(fvu) == 3 and fvu.iloc[-1] < fvu.iloc[0]
    best = json.loads((finished_run / "saes" / "best.json").read_text())
    assert set(best) == {"L01_topk_s75", "L01_topk_s90", "L02_topk_s75", "L02_topk_s90"}
    cfg = json.loads((finished_run / "saes" / "L02_topk_s90" / "cfg.json").read_text())
    assert cfg["layer"] == 2 and cfg["k"] == 6 and cfg["backbone"]["untrained"] is True


def test_every_artefact_of_the_fit_carries_its_generation(finished_run: Path) -> None:
    """config.yaml, best.json, every export, results.{json,csv}, the report and the explorer
    name one id, the one `push` and `report` compare."""
    from saelight.report.generations import check_generations, run_generations

    found = run_generations(finished_run)
    (generation,) = set(found.values())
    assert generation and len(found) == 7 and check_generations(finished_run) is None
    csv = pd.read_csv(finished_run / "results" / "results.csv")
    assert set(csv["generation"]) == {generation}
    assert f"generation `{generation}`" in (finished_run / "report" / "report.md").read_text()
    pages = sorted((finished_run / "explorer").glob("*/latents.json"))
    assert len(pages) == 4
    assert {json.loads(p.read_text())["generation"] for p in pages} == {generation}
    assert not list((finished_run / "explorer").glob(".*"))  # no staging folder left


def test_fit_writes_results_with_dense_and_sae_rows(finished_run: Path) -> None:
    rows = json.loads((finished_run / "results" / "results.json").read_text())["rows"]
    names = {(r["layer"], r["name"]) for r in rows}
    assert names == {(layer, n) for layer in (1, 2) for n in ("dense", "topk_s75", "topk_s90")}
    for row in rows:
        assert 0.0 <= row["probe_vowel_acc"] <= 1.0
        if row["kind"] == "sae":
            assert row["l0"] == pytest.approx(row["k"])
            assert row["probe_vowel_acc_delta"] == pytest.approx(
                row["probe_vowel_acc"]
                - next(r for r in rows if r["layer"] == row["layer"] and r["kind"] == "dense")[
                    "probe_vowel_acc"
                ]
            )


def test_rerun_in_same_directory_reuses_cache_and_overwrites_config(finished_run: Path) -> None:
    before = (finished_run / "cache" / "manifest.json").stat().st_mtime_ns
    done = run_cli(finished_run, "fit", "--trainer.max_epochs", "1")
    assert done.returncode == 0, done.stderr[-3000:]
    assert (finished_run / "cache" / "manifest.json").stat().st_mtime_ns == before


def test_cache_subcommand_builds_the_same_cache_fit_reads(
    tmp_path: Path, finished_run: Path
) -> None:
    shutil.copytree(finished_run / "models", tmp_path / "models")
    done = run_cli(
        tmp_path,
        "cache",
        "--data.cache.directory",
        str(tmp_path / "cache"),
        "--data.cache.backbone.init_args.save_dir",
        str(tmp_path / "models"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "cache " in done.stdout and "rows, layers [1, 2]" in done.stdout
    ours = json.loads((tmp_path / "cache" / "manifest.json").read_text())
    theirs = json.loads((finished_run / "cache" / "manifest.json").read_text())
    assert ours["n_rows"] == theirs["n_rows"]
    assert [s["files"] for s in ours["shards"]] == [s["files"] for s in theirs["shards"]]


def test_layer_beyond_depth_is_a_clear_error(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "fit", "--data.cache.backbone.init_args.layers", "[1, 7]")
    assert done.returncode != 0
    assert "layer" in done.stderr and "0..2" in done.stderr


def test_missing_checkpoint_dir_is_a_clear_error(tmp_path: Path) -> None:
    done = run_cli(
        tmp_path,
        "fit",
        "--data.cache.backbone",
        "saelight.backbones.HFBackbone",
        "--data.cache.backbone.init_args.model",
        str(tmp_path / "no_such_model"),
    )
    assert done.returncode != 0
    assert "no_such_model" in done.stderr


def test_cache_from_another_backbone_width_is_refused(tmp_path: Path, finished_run: Path) -> None:
    shutil.copytree(finished_run / "cache", tmp_path / "cache")
    done = run_cli(tmp_path, "fit", "--data.cache.backbone.init_args.hidden_size", "64")
    assert done.returncode != 0
    assert "hidden_size" in done.stderr and "32" in done.stderr and "64" in done.stderr


def first_wandb_run(run_dir: Path) -> Path:
    """The .wandb file of the run's first fit (a later test reruns fit in the same folder)."""
    return sorted((run_dir / "wandb").glob("offline-run-*/run-*.wandb"))[0]


def wandb_run_contents(run_dir: Path, read) -> tuple[dict, dict[str, str]]:  # noqa: ANN001
    """(run config, {logged key: W&B value type or "scalar"}) of the run's offline .wandb file."""
    config, logged = {}, {}
    for record in read(first_wandb_run(run_dir)):
        kind = record.WhichOneof("record_type")
        updates = {"config": record.config.update, "run": record.run.config.update}.get(kind, [])
        for item in updates:
            config[item.key] = json.loads(item.value_json)
        if kind == "history":
            for item in record.history.item:
                value = json.loads(item.value_json)
                parts = [item.key] if item.key else list(item.nested_key)
                if len(parts) == 1:  # a whole value
                    typed = isinstance(value, dict) and "_type" in value
                    logged[parts[0]] = value["_type"] if typed else "scalar"
                elif parts[-1] == "_type":  # media and histograms come field by field
                    logged["/".join(parts[:-1])] = value
    return {k: v.get("value", v) if isinstance(v, dict) else v for k, v in config.items()}, logged


def test_wandb_run_holds_config_grid_scalars_histograms_media(
    finished_run: Path,
    wandb_records,  # noqa: ANN001
) -> None:
    config, logged = wandb_run_contents(finished_run, wandb_records)
    assert config["model"]["sparsities"] == [0.75, 0.9] and config["seed_everything"] == 0
    cache = config["data"]["cache"]["init_args"]
    assert cache["backbone"]["init_args"]["layers"] == [1, 2]
    assert config["trainer"]["max_epochs"] == 3
    grid = config["grid"]
    assert set(grid) == {"L01_topk_s75", "L01_topk_s90", "L02_topk_s75", "L02_topk_s90"}
    assert grid["L02_topk_s90"] == {
        "layer": 2,
        "name": "topk_s90",
        "architecture": "topk",
        "k": 6,
        "sparsity": 0.9,
        "d_sae": 64,
    }
    assert logged["L1/topk_s75/val/fvu"] == "scalar" and logged["L2/topk_s90/test/fvu"] == "scalar"
    assert logged["L1/topk_s75/val/l0"] == "scalar"  # the mean; the distribution has its own key
    assert logged["L1/topk_s75/val/l0_histogram"] == "histogram"
    assert logged["L1/topk_s75/val/log10_feature_density"] == "histogram"
    assert logged["grid"] == "table-file"
    assert logged["L2/dense/test/confusion_vowel"] == "image-file"
    assert logged["report/accuracy_vowel"] == "image-file"
    assert logged["report/table/results"] == "table-file"
    assert logged["explorer/L02_topk_s90/latents"] == "table-file"
    tables = {
        r.artifact.name: [c.path for c in r.artifact.manifest.contents]
        for r in wandb_records(first_wandb_run(finished_run))
        if r.WhichOneof("record_type") == "artifact"
    }
    (explorer,) = [files for name, files in tables.items() if "explorerL02_topk_s90" in name]
    assert any(f.startswith("media/audio/") and f.endswith(".wav") for f in explorer)


def test_report_tables_hold_the_logged_numbers(finished_run: Path) -> None:
    rows = json.loads((finished_run / "results" / "results.json").read_text())["rows"]
    report = (finished_run / "report" / "report.md").read_text()
    assert "Claim 1" in report and "Claim 2" in report
    for row in rows:
        assert f"{100 * row['probe_vowel_acc']:.2f}" in report
        if row["kind"] == "sae":
            assert f"{row['fvu']:.4g}" in report or f"{row['fvu']:.4f}" in report
    assert (finished_run / "report" / "accuracy_vowel.png").stat().st_size > 1000
