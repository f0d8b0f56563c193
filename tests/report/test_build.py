"""`saelight report`: tables hold exactly the results' numbers, figures exist, claims are right,
and a sweep's runs merge into the same report as one grid run (the paper's own tables, intervals,
seeds and collapse flags: the other modules of tests/report/)."""

import re
from pathlib import Path
from typing import Any

import pytest

from saelight.evaluation.results import write_results
from saelight.report.build import write_report
from saelight.report.claims import (
    completeness_claim,
    effective_dims_claim,
    probe_accuracy_claim,
    reconstruction_claim,
)

LAYERS = (3, 12)
SPARSITIES = (0.99, 0.75, 0.9)  # unsorted on purpose: tables and lines sort numerically
RUN = {"backbone": {"model": "facebook/hubert-base-ls960"}, "pooling": "clip", "epochs": 100}
TOP = {
    3: ["F0semitoneFrom27.5Hz_sma3nz_amean", "F0semitoneFrom27.5Hz_sma3nz_stddevNorm"],
    12: ["F1frequency_sma3nz_amean", "mfcc1_sma3_amean"],
}


def fake_rows(
    acc_drop: float = 0.01,
    fvu_ratio: float = 2.5,
    completeness_gain: float = 0.1,
    kfair_gain: float = 0.05,
    dims_ratio: float = 0.5,
    disentanglement: bool = True,
) -> list[dict[str, Any]]:
    """2 layers x 3 sparsities + dense rows; every number distinct so a swapped cell shows.
    Layer 3 decodes pitch factors best, layer 12 formants (claim 4)."""
    rows = []
    for i, layer in enumerate(LAYERS):
        dense = {
            "layer": layer,
            "name": "dense",
            "kind": "dense",
            "architecture": "dense",
            "d_sae": 768,
            "probe_technique_acc": 0.7325 - 0.1 * i,
            "probe_vowel_acc": 0.41 + i / 100,
        }
        if disentanglement:
            dense.update(
                r2_mean=0.851 + i / 100,
                r2_std=0.041,
                completeness_mean=0.581 + i / 100,
                completeness_std=0.021,
                completeness_kfair_mean=0.611 + i / 100,
                completeness_kfair_std=0.022,
                dci_completeness=0.3 + i / 100,
                effective_dims=12.0 + i,
                top_factors=TOP[layer],
            )
        rows.append(dense)
        for j, s in enumerate(sorted(SPARSITIES)):
            top = s == max(SPARSITIES)
            row = {
                "layer": layer,
                "name": f"topk_s{round(100 * s)}",
                "kind": "sae",
                "architecture": "topk",
                "d_sae": 2048,
                "k": int((1 - s) * 2048),
                "sparsity": s,
                "mse": 0.0123 * (layer + j / 10) * (fvu_ratio if top else 1.0),
                "fvu": (0.1 + j / 1000 + i / 100) * (fvu_ratio if top else 1.0),
                "dead_fraction": 0.001 * j,
                "probe_technique_acc": dense["probe_technique_acc"] - acc_drop - j / 1000,
                "probe_vowel_acc": 0.4 + j / 100,
            }
            if disentanglement:
                row.update(
                    r2_mean=0.84 - j / 100,
                    r2_std=0.05,
                    completeness_mean=dense["completeness_mean"] + completeness_gain + j / 100,
                    completeness_std=0.03,
                    completeness_kfair_mean=dense["completeness_kfair_mean"] + kfair_gain,
                    completeness_kfair_std=0.031,
                    dci_completeness=0.4 + j / 100,
                    effective_dims=dense["effective_dims"] * dims_ratio + j / 10,
                    top_factors=TOP[layer],
                )
            rows.append(row)
    return rows


def tables(text: str) -> dict[str, list[list[str]]]:
    """{'### title': [header, row, ...]} of every Markdown table in `text`."""
    out, title = {}, None
    for line in text.splitlines():
        if line.startswith("### "):
            title, out[line[4:]] = line[4:], []
        elif line.startswith("|") and title and not line.startswith("|---"):
            out[title].append([c.strip() for c in line.strip("|").split("|")])
    return out


def claims(text: str) -> dict[str, str]:
    """{'Claim 1 (technique) — …': '✅', …} of the report's Claims section, in order."""
    section = text.split("## Claims\n\n", 1)[1].split("\n\n", 1)[0]
    return {m.group(1): m.group(2) for m in re.finditer(r"\*\*(Claim [^*]+)\*\*: (\S+)", section)}


def run_report(tmp_path: Path, rows: list[dict[str, Any]], figures: bool = False, **kw: Any) -> str:
    write_results(tmp_path / "run", rows, RUN)
    return write_report([tmp_path / "run"], tmp_path / "out", figures=figures, **kw).read_text()


def test_tables_hold_the_rows_numbers(tmp_path: Path) -> None:
    rows = fake_rows()
    t = tables(run_report(tmp_path, rows))
    find = {(r["layer"], r["name"]): r for r in rows}
    names = ["dense"] + [f"topk_s{round(100 * s)}" for s in sorted(SPARSITIES)]
    acc = t["technique: test accuracy (%)"]
    assert acc[0] == ["layer", "dense", "75 %", "90 %", "99 %"]
    delta = "{}: SAE − dense accuracy (points), 95 % paired bootstrap interval over test clips"
    assert list(t)[:4] == [
        "technique: test accuracy (%)",
        delta.format("technique"),
        "vowel: test accuracy (%)",
        delta.format("vowel"),
    ]
    for line, layer in zip(t[delta.format("technique")][1:], LAYERS, strict=True):
        dense = find[layer, "dense"]["probe_technique_acc"]
        expected = [f"{100 * (find[layer, n]['probe_technique_acc'] - dense):+.2f}" for n in names]
        assert line == [f"L{layer}", *expected[1:]]  # no per-clip lists: no interval
    for line, layer in zip(acc[1:], LAYERS, strict=True):
        expected = [f"{100 * find[layer, n]['probe_technique_acc']:.2f}" for n in names]
        assert line == [f"L{layer}", *expected]
    for title, key, fmt in (
        ("MSE (test)", "mse", "{:.4g}"),
        ("FVU = 1 − explained variance (test)", "fvu", "{:.4f}"),
    ):
        assert t[title][0] == ["layer", "75 %", "90 %", "99 %"]
        for line, layer in zip(t[title][1:], LAYERS, strict=True):
            assert line[1:] == [fmt.format(find[layer, n][key]) for n in names[1:]]
    for line, layer in zip(
        t["Completeness, K-fair = log K_alive (mean ± std)"][1:], LAYERS, strict=True
    ):
        assert line[1:] == [
            f"{find[layer, n]['completeness_kfair_mean']:.3f} ± "
            f"{find[layer, n]['completeness_kfair_std']:.3f}"
            for n in names
        ]
    standard = t["Standard disentanglement scores (test)"]
    assert standard[0] == ["layer", "representation", "dci_completeness"]
    assert standard[1] == ["L3", "dense", "0.300"] and len(standard) == 1 + 8


def test_figures_are_written(tmp_path: Path) -> None:
    text = run_report(tmp_path, fake_rows(), figures=True)
    for name in (
        "accuracy_technique",
        "accuracy_vowel",
        "reconstruction",
        "completeness",
        "top_factors",
    ):
        png = tmp_path / "out" / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert f"]({name}.png)" in text


CLAIM_KEYS = ["1 (technique)", "1 (vowel)", "2", "3 —", "3 as", "4"]


def marks(text: str) -> list[str]:
    found = claims(text)
    assert [k for k in CLAIM_KEYS if any(c.startswith(f"Claim {k}") for c in found)] == CLAIM_KEYS
    return list(found.values())


def test_claims_hold(tmp_path: Path) -> None:
    text = run_report(tmp_path, fake_rows())
    assert marks(text) == ["✅"] * 6
    assert text.count("  - rule: ") == 2 * 6  # beside each verdict, in Claims and in its section


def test_claims_fail(tmp_path: Path) -> None:
    rows = fake_rows(acc_drop=0.08, fvu_ratio=1.2, completeness_gain=-0.05, dims_ratio=1.1)
    for r in rows:
        if r["layer"] == 12:
            r["top_factors"] = TOP[3]
    assert marks(run_report(tmp_path, rows)) == ["❌", "✅", "❌", "❌", "❌", "❌"]


def test_claim_1_per_label_and_only_the_configured_ones(tmp_path: Path) -> None:
    rows = [{k: v for k, v in r.items() if "technique" not in k} for r in fake_rows()]
    found = claims(run_report(tmp_path, rows))
    assert found["Claim 1 (vowel) — SAE codes keep task information"] == "✅"
    assert not any("technique" in c for c in found)
    only = claims(run_report(tmp_path, fake_rows(), labels=["technique"]))
    assert [c for c in only if c.startswith("Claim 1")] == [
        "Claim 1 (technique) — SAE codes keep task information"
    ]
    missing = claims(run_report(tmp_path, rows, label="technique"))
    assert missing["Claim 1 (technique) — SAE codes keep task information"] == "➖"


def test_claim_checks_directly() -> None:
    rows = fake_rows(acc_drop=0.04)
    assert probe_accuracy_claim(rows).holds is True
    claim = probe_accuracy_claim(rows, tolerance=0.03)
    assert claim.holds is False and claim.point is False
    assert "median SAE − dense -4.05 points" in claim.explanation  # -4.00 and -4.10 twice
    assert ">= -3.00 points" in claim.rule and "<= 95 %" in claim.rule
    # Only the 99 % SAEs drop 10 points: outside the claim's <= 95 % range.
    drop99 = [
        {**r, "probe_technique_acc": r["probe_technique_acc"] - 0.1}
        if r.get("sparsity") == 0.99
        else r
        for r in rows
    ]
    assert probe_accuracy_claim(drop99).holds is True
    assert probe_accuracy_claim(drop99, max_sparsity=0.99).holds is False  # max_drop 10 points
    assert probe_accuracy_claim(drop99, max_sparsity=0.99, max_drop=0.2).holds is True
    assert reconstruction_claim(fake_rows(fvu_ratio=1.6)).holds is True
    assert reconstruction_claim(fake_rows(fvu_ratio=1.6), metric="mse", ratio=2.0).holds is False
    assert completeness_claim(fake_rows(kfair_gain=0.0), kfair=True).holds is False
    assert effective_dims_claim(fake_rows(dims_ratio=0.9)).holds is True
    assert effective_dims_claim(fake_rows(dims_ratio=0.9), max_ratio=0.8).holds is False
    assert probe_accuracy_claim(rows, label="singer").holds is None
    with pytest.raises(ValueError, match="metric"):
        reconstruction_claim(rows, metric="cosine")


def test_without_disentanglement(tmp_path: Path) -> None:
    text = run_report(tmp_path, fake_rows(disentanglement=False), figures=True)
    assert "No disentanglement results" in text
    assert not any("Completeness" in title for title in tables(text))
    assert marks(text) == ["✅", "✅", "✅", "➖", "➖", "➖"]
    assert not (tmp_path / "out" / "completeness.png").exists()


def test_sweep_runs_merge_into_the_grid_report(tmp_path: Path) -> None:
    rows = fake_rows()
    write_results(tmp_path / "grid", rows, RUN)
    sweep = []
    for i, sae in enumerate(r for r in rows if r["kind"] == "sae"):
        dense = next(r for r in rows if r["kind"] == "dense" and r["layer"] == sae["layer"])
        sweep.append(tmp_path / "sweep" / f"run{i}")
        write_results(sweep[-1], [dense, sae], RUN)
    grid = write_report([tmp_path / "grid"], tmp_path / "a", figures=False).read_text()
    merged = write_report(sweep[::-1], tmp_path / "b", figures=False).read_text()
    assert merged.split("## Runs")[0] == grid.split("## Runs")[0]
    assert "## Notes" not in merged
    # A re-run SAE is reported once, and the duplicate is named under Notes.
    twice = write_report([*sweep, sweep[0]], tmp_path / "c", figures=False).read_text()
    assert twice.split("## Runs")[0] == grid.split("## Runs")[0]
    assert "6 run(s)" in merged and "7 run(s)" in twice
    assert "## Notes" in twice and "kept" in twice


def test_wandb_run_gets_images_and_tables(tmp_path: Path) -> None:
    import wandb

    class FakeRun:
        def __init__(self) -> None:
            self.logged: dict[str, Any] = {}

        def log(self, data: dict[str, Any]) -> None:
            self.logged.update(data)

    write_results(tmp_path / "run", fake_rows(), RUN)
    run = FakeRun()
    write_report([tmp_path / "run"], wandb_run=run)
    assert (tmp_path / "run" / "report" / "report.md").exists()
    assert isinstance(run.logged["report/reconstruction"], wandb.Image)
    assert isinstance(run.logged["report/table/probe_technique"], wandb.Table)
    assert isinstance(run.logged["report/table/results"], wandb.Table)
