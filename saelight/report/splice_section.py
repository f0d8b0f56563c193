"""The report's "Causal evaluation" section and the W&B tables of `saelight splice`'s splice.json.

One module turns a splice payload (`saelight.evaluation.splice_run.splice_run`) into rows, so
`report.md`, the `splice/*` W&B tables of `saelight splice --wandb` and those of
`SAEEvaluation(splice=True)` show the same numbers. Each row is kept twice: raw values (W&B
tables, sortable) and the formatted cells of the Markdown table (`Table`).
Drops are accuracy differences clean − spliced in points (100 × the [0, 1] value of the JSON);
docs/causal_evaluation.md explains each column. An SAE that `saelight.report.collapse` flags in
the results rows gets the ⚠ that the claims of the other sections carry, in the SAE cell of its
Markdown rows and in a line above the tables: its splice numbers say nothing about sparse codes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from saelight.evaluation.results import Row
from saelight.metrics.uncertainty import paired_difference
from saelight.report.collapse import collapse_reasons
from saelight.report.output_effect_rows import latent_effect_rows, output_ablation_rows
from saelight.report.tables import Table

SPLICE_DIR = "splice"
"""`<run>/splice/`: where `saelight splice` and `SAEEvaluation(splice=True)` write."""
SPLICE_JSON = "splice.json"
SPLICE_PNG = "splice.png"

DROPS = ("target_drop", "target_value_drop", "others_drop_mean")
"""The ablation keys the table shows, each for the top-k then the random-k set."""
Raw = tuple[list[str], list[list[Any]]]
"""(columns, rows of raw values: str, float or None)."""
COLLAPSED = "⚠"
Collapsed = dict[tuple[int, str], list[str]]
"""{(layer, SAE name as splice.json spells it): collapse reasons}."""


def collapsed_saes(rows: list[Row]) -> Collapsed:
    """The collapsed SAEs of results `rows`, under both names splice.json may use: the row's
    name ("topk_s90") and the grid key of its export folder ("L01_topk_s90", `grid.build_grid`)."""
    out: Collapsed = {}
    for r in rows:
        reasons = collapse_reasons(r)
        if reasons and r.get("layer") is not None:
            layer, name = int(r["layer"]), str(r["name"])
            out[(layer, name)] = out[(layer, f"L{layer:02d}_{name}".replace(".", "p"))] = reasons
    return out


def fidelity_rows(payload: dict[str, Any]) -> Raw:
    """Per SAE: layer, sparsity, fidelity recovered, final-layer FVU/cosine, FVU at L, probe drop
    per label (points)."""
    labels = sorted(
        {lab for layer in payload["layers"] for r in layer["saes"].values() for lab in r["probe"]}
    )
    columns = ["SAE", "layer", "sparsity", "fidelity recovered", "final FVU", "final cos"]
    columns += ["FVU@L", *[f"probe drop {lab} (pt)" for lab in labels]]
    rows = []
    for layer in payload["layers"]:
        final = str(layer["num_layers"])
        for name, r in layer["saes"].items():
            rows.append(
                [
                    name,
                    layer["layer"],
                    r.get("sparsity"),
                    r["fidelity_recovered"],
                    r["per_layer"][final]["fvu"],
                    r["per_layer"][final]["cosine"],
                    r["reconstruction"]["fvu"],
                    *[_pt(r["probe"].get(lab, {}).get("drop")) for lab in labels],
                ]
            )
    return columns, rows


def ablation_rows(payload: dict[str, Any]) -> Raw:
    """Per SAE × label value: target-label drop of its top-k vs its random-k latents, the drop in
    that value's recall, and the mean drop of the other labels (specificity), in points. Values
    of a label the probes could not read (a fold of clips with one value) are left out."""
    columns = ["SAE", "layer", "label", "value", "top-k drop (pt)", "random-k drop (pt)"]
    columns += ["top-k recall drop (pt)", "random-k recall drop (pt)"]
    columns += ["top-k others' drop (pt)", "random-k others' drop (pt)"]
    columns += ["top − random drop, 95 % interval (pt)"]
    rows = []
    for layer in payload["layers"]:
        for name, r in layer["saes"].items():
            pairs: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
            for a in r["ablation"]:
                pairs.setdefault((a["label"], a["value"]), {})[a["kind"]] = a
            for (label, value), kinds in pairs.items():
                top, rand = kinds.get("top", {}), kinds.get("random", {})
                drops = [_pt(d.get(k)) for k in DROPS for d in (top, rand)]
                if any(d is not None for d in drops):  # else its label could not be probed
                    rows.append([name, layer["layer"], label, value, *drops, _gap(top, rand)])
    return columns, rows


def _gap(top: dict[str, Any], rand: dict[str, Any]) -> str | None:
    """Top-k minus random-k drop of the target label's accuracy with its paired bootstrap
    interval over the spliced clips: drop_top − drop_random = acc_random − acc_top, clip by clip
    on the same resamples (`metrics.uncertainty.paired_difference`)."""
    a, b = rand.get("target_clip_correct"), top.get("target_clip_correct")
    rows = top.get("target_clip_rows")
    if not a or not b or len(a) != len(b) or rows != rand.get("target_clip_rows"):
        return None
    gap = paired_difference(a, b, rows)
    return f"{100 * gap.estimate:+.2f} [{100 * gap.low:+.2f}, {100 * gap.high:+.2f}]"


def output_rows(payload: dict[str, Any]) -> Raw:
    """Per SAE whose layer was scored on the model's output head: output KL, CE recovered,
    top-1 (and top-5) agreement with the clean output, WER and CER of its transcripts."""
    columns = ["SAE", "layer", "sparsity", "output KL", "CE recovered", "top-1 agreement"]
    columns += ["top-5 agreement", "WER", "CER"]
    rows = []
    for layer in payload["layers"]:
        output = layer.get("output") or {}
        for name, r in (output.get("saes") or {}).items():
            sparsity = layer["saes"].get(name, {}).get("sparsity")
            values = [r.get(k) for k in ("kl", "ce_recovered", "top1_agreement")]
            values += [r.get(k) for k in ("top5_agreement", "wer", "cer")]
            rows.append([name, layer["layer"], sparsity, *values])
    return columns, rows


def output_line(payload: dict[str, Any]) -> str:
    """What the output table scores, or why a run has none."""
    head = payload.get("output_head")
    if not head:
        return (
            "- Model output: no output head (the backbone checkpoint is an encoder only); "
            "fidelity is measured on later layers."
        )
    skipped = sorted(
        {f"L{layer['layer']}: {layer['output']['skipped']}" for layer in payload["layers"]
         if "skipped" in (layer.get("output") or {})}
    )  # fmt: skip
    note = f" Not scored: {'; '.join(skipped)}." if skipped else ""
    return (
        f"- Model output ({head}): each SAE's reconstruction spliced in, scored against the "
        "clean output (KL, agreement, WER/CER of the greedy transcripts) and as CE recovered = "
        "(CE_mean − CE_sae) / (CE_mean − CE_clean), 1 = nothing lost, 0 = mean-ablation "
        f"(docs/causal_evaluation.md).{note}"
    )


def _pt(value: float | None) -> float | None:
    return None if value is None else 100 * float(value)


def cell(value: Any, column: str) -> str:
    """The Markdown text of one raw value: points to 1 decimal, sparsity in %, others to 3."""
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if column == "layer":
        return f"L{value}"
    if column == "sparsity":
        return f"{round(100 * value, 2):g} %"
    return f"{value:.1f}" if column.endswith("(pt)") else f"{value:.3f}"


def splice_tables(
    payload: dict[str, Any], suffix: str = "", collapsed: Collapsed | None = None
) -> list[Table]:
    """The fidelity table and (when the run ablated latents) the ablation table; the SAE cell of
    a `collapsed` SAE's rows ends in ⚠."""
    out = []
    specs = (
        ("splice_fidelity", "Splice fidelity (SAE reconstruction spliced in)", fidelity_rows),
        ("splice_ablation", "Latent ablation: top-k detectors vs random-k", ablation_rows),
        ("splice_output", "Model output with the SAE in place", output_rows),
        ("splice_output_ablation", "Model output: top-k detectors vs random-k ablated",
         output_ablation_rows),
        ("splice_latent_effects", "Latents whose ablation moves the model output most",
         latent_effect_rows),
    )  # fmt: skip
    for slug, title, build in specs:
        columns, rows = build(payload)
        if rows:
            cells = [[cell(v, c) for v, c in zip(row, columns, strict=True)] for row in rows]
            for row, line in zip(rows, cells, strict=True):  # row[:2] = SAE name, layer
                if (int(row[1]), str(row[0])) in (collapsed or {}):
                    line[0] = f"{line[0]} {COLLAPSED}"
            out.append(Table(slug + suffix, title + suffix.replace("_", " "), columns, cells))
    return out


def collapsed_line(payload: dict[str, Any], collapsed: Collapsed) -> str | None:
    """The section's ⚠ line naming the payload's collapsed SAEs and why (None when none is)."""
    found = [
        f"{name} ({', '.join(collapsed[(int(layer['layer']), name)])})"
        for layer in payload["layers"]
        for name in layer["saes"]
        if (int(layer["layer"]), name) in collapsed
    ]
    if not found:
        return None
    return (
        f"- {COLLAPSED} collapsed SAEs, marked {COLLAPSED} in the tables (their splice numbers say "
        f"nothing about sparse codes): {'; '.join(found)}"
    )


def intro(payload: dict[str, Any], run: str) -> str:
    """One line: what was spliced, on how much audio, and where the numbers are explained."""
    return (
        f"- `{run}`: {payload['n_clips']} held-out `{payload['split']}` clip(s) "
        f"({payload['audio_seconds']:.0f} s of audio), k = {payload['k_ablate']} latents ablated "
        "per label value. Fidelity recovered: 1 = later layers lose nothing, 0 = no better than "
        "mean-ablation; drops are clean − spliced probe accuracy in points. Each column is "
        "explained in docs/causal_evaluation.md."
    )


def run_root(path: str | Path) -> Path | None:
    """The run directory of a `write_report` input (a run dir or its results/results.json)."""
    path = Path(path)
    if path.is_dir():
        return path
    if path.name == "results.json" and path.parent.name == "results":
        return path.parent.parent
    return None


def splice_parts(
    run_dirs: list[str | Path],
    out: Path,
    copy_figures: bool = True,
    rows: list[Row] | None = None,
) -> tuple[list[str], list[Table], list[str]]:
    """(intro lines, tables, figure names) of the runs holding `splice/splice.json`; with
    `copy_figures`, each run's splice.png is copied into `out` (`splice.png`, then
    `splice_2.png`, …) so report.md links it like a drawn figure. The SAEs that collapsed in
    the results `rows` are flagged ⚠ (`collapsed_saes`)."""
    collapsed = collapsed_saes(rows or [])
    lines: list[str] = []
    tables: list[Table] = []
    figures: list[str] = []
    roots = [r for r in map(run_root, run_dirs) if r is not None]
    found = [r for r in roots if (r / SPLICE_DIR / SPLICE_JSON).is_file()]
    for i, root in enumerate(found):
        suffix = f"_{i + 1}" if i else ""
        payload = json.loads((root / SPLICE_DIR / SPLICE_JSON).read_text())
        lines.append(intro(payload, root.name if len(found) > 1 else str(root)))
        flagged = collapsed_line(payload, collapsed)
        lines += [flagged] if flagged else []
        lines.append(output_line(payload))
        tables += splice_tables(payload, suffix, collapsed)
        png = root / SPLICE_DIR / SPLICE_PNG
        if copy_figures and png.is_file():
            out.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(png, out / f"splice{suffix}.png")
            figures.append(f"splice{suffix}")
    return lines, tables, figures


def log_splice(run: Any, payload: dict[str, Any], png: Path | None) -> None:
    """Log `splice/fidelity`, `splice/ablation`, `splice/output`, `splice/output_ablation` and
    `splice/latent_effects` (wandb.Tables of raw values) and `splice/figure` to a W&B run."""
    import wandb

    data: dict[str, Any] = {}
    builds = (
        ("fidelity", fidelity_rows),
        ("ablation", ablation_rows),
        ("output", output_rows),
        ("output_ablation", output_ablation_rows),
        ("latent_effects", latent_effect_rows),
    )
    for key, build in builds:
        columns, rows = build(payload)
        if rows:
            data[f"splice/{key}"] = wandb.Table(columns=columns, data=rows)
    if png is not None and png.is_file():
        data["splice/figure"] = wandb.Image(str(png), caption="fidelity recovered vs sparsity")
    run.log(data)
