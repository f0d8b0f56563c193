"""The results table of a run: one row per (layer, SAE) plus one "dense" row per layer.

Written by the evaluation callback to `<run_dir>/results/results.{json,csv}` and read by
`saelight report`. Keys of a row (absent when not computed):

- identity: `layer`, `name` ("dense" for the backbone's own pooled activations), `kind`
  ("sae" | "dense"), `architecture`, `d_sae`, `k`, `sparsity` (fraction of zeroed latents,
  1 - L0/d_sae when not configured)
- reconstruction on test: `mse`, `fvu`, `cosine`, `l0`, `dead_fraction`, `dead_floor` (the dead
  fraction expected on these rows at uniform use, see `feature_density`), `dense_fraction`
- probes per label: `probe_<label>_acc`, `probe_<label>_f1`, `probe_<label>_acc_delta` (SAE − dense,
  accuracy in [0, 1] units), `ksparse_<label>_acc`, `probe_<label>_confusion`,
  `probe_<label>_classes`, `probe_<label>_clip_correct` (correct test rows per test clip, clips in
  sorted `clip_id` order: what `saelight report` resamples for its paired bootstrap intervals),
  `test_clip_rows` (test rows per clip; absent when every clip has one row, i.e. clip pooling)
- disentanglement (paper protocol, top-10 factors by R²): `r2_mean`, `r2_std`,
  `completeness_mean`, `completeness_std` (the paper's C_j = 1 − H_j / log K with K the code
  width: 2048 for an SAE, 768 for dense, so it is not comparable across widths),
  `completeness_kfair_mean`, `completeness_kfair_std` (log K_alive instead: still width-dependent),
  `factor_entropy_mean`, `factor_entropy_std` (H_j in nats, no K), `effective_dims`
  (exp(factor_entropy_mean): the geometric mean over the top factors of exp(H_j), the number of
  code dimensions that carry a factor; independent of K), `factor_entropy_boot` (optional: the
  mean H_j refitted on bootstrap resamples of the test clips), `top_factors` (names)
- standard scores: `dci_disentanglement`, `dci_completeness`, `dci_informativeness`, `mig`, `sap`,
  `modularity`
- planted ground truth (a cache of `saelight planted`; `evaluation.planted_scores`): `gt_mcc`,
  `gt_precision`, `gt_recall`, `gt_f1`, `gt_uniqueness`, `gt_shrinkage`, `gt_coverage`
- added by `saelight report` when it merges runs: `model`, `n_seeds` and `<key>_seed_std` (std
  across seeds, the row holding the mean), `completeness_sharedk_mean`/`_std` (1 − H_j / log K
  with one K, the widest representation compared, for every row)
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from saelight.io.atomic import atomic_write_bytes
from saelight.io.errors import SaelightError
from saelight.io.generation import GENERATION

RESULTS_DIR = "results"
RESULTS_JSON = "results.json"
RESULTS_CSV = "results.csv"

Row = dict[str, Any]
GroupKey = tuple[str, int]
"""(model, layer): rows of merged runs are told apart by the backbone's `model` label."""
DENSE = "dense"
"""`name` and `kind` of the backbone's own activations."""
BASELINE = "baseline"
"""`kind` of a random baseline's row (its `baseline` column names which: frozen_decoder, ...)."""
REPLICATE_OF = "replicate_of"
"""Seed n >= 1 of `model.seeds`: the name of seed 0's row, which the report averages it into."""
STABILITY = "stability"
"""Seed stability of an SAE: mean pairwise MCC of its seeds' decoders (needs model.seeds >= 2)."""
COMPLETENESS_VARIANTS = {
    "paper": "completeness",
    "kfair": "completeness_kfair",
    "sharedk": "completeness_sharedk",
}
"""Completeness columns: paper's log K, log K_alive ("K-fair") and one shared K for every row
compared ("sharedk", derived by the report from `factor_entropy_*`); each has `_mean`/`_std`."""
IDENTITY_KEYS = (
    *("layer", "name", "kind", "architecture", "d_sae", "k", "sparsity", "model"),
    *("baseline", "seed", REPLICATE_OF, STABILITY),
)
"""Keys that name a row rather than measure it: never averaged over seeds."""
TEST_CLIP_ROWS = "test_clip_rows"
"""Test rows per test clip (frame pooling); absent when every clip has one row."""
EFFECTIVE_DIMS = "effective_dims"
"""exp(mean over the top factors of H_j): code dimensions per factor, independent of K."""
FACTOR_ENTROPY_BOOT = "factor_entropy_boot"
"""Mean H_j over the top factors, refitted on each bootstrap resample of the test clips."""
N_SEEDS = "n_seeds"
"""Seeds averaged into a merged row (absent: one run)."""
GROUND_TRUTH = ("mcc", "precision", "recall", "f1", "uniqueness", "shrinkage", "coverage")
"""Scores against a planted dictionary (`GroundTruthScores.summary`), each a `gt_<score>` key."""


def ground_truth_key(score: str) -> str:
    """`gt_mcc`, `gt_f1`, ...: a `GROUND_TRUTH` score of an SAE on a planted cache's test rows."""
    return f"gt_{score}"


def probe_acc_key(label: str) -> str:
    return f"probe_{label}_acc"


def probe_f1_key(label: str) -> str:
    return f"probe_{label}_f1"


def probe_delta_key(label: str) -> str:
    """SAE − dense accuracy of `label`, in [0, 1] units."""
    return f"probe_{label}_acc_delta"


def probe_confusion_key(label: str) -> str:
    return f"probe_{label}_confusion"


def probe_classes_key(label: str) -> str:
    return f"probe_{label}_classes"


def ksparse_acc_key(label: str) -> str:
    """Accuracy of the k-sparse probe (the k best single latents) on `label`."""
    return f"ksparse_{label}_acc"


def probe_clip_correct_key(label: str) -> str:
    """Correct test rows of the `label` probe per test clip (a list, clips in sorted id order)."""
    return f"probe_{label}_clip_correct"


def factor_entropy_key(stat: str = "mean") -> str:
    """`factor_entropy_mean` / `_std`: importance entropy H_j in nats over the top factors."""
    return f"factor_entropy_{stat}"


def seed_std_key(key: str) -> str:
    """Std across seeds of `key` in a row merged from runs of several seeds."""
    return f"{key}_seed_std"


def per_clip_keys(row: Row) -> list[str]:
    """Keys of `row` holding per-clip lists (long; left out of results.csv)."""
    per_clip = {TEST_CLIP_ROWS, FACTOR_ENTROPY_BOOT}
    per_clip |= {probe_clip_correct_key(label) for label in probed_labels([row])}
    return [k for k in row if k in per_clip]


def completeness_key(variant: str = "paper", stat: str = "mean") -> str:
    """`completeness_mean`, `completeness_kfair_std`, …; `variant` in COMPLETENESS_VARIANTS."""
    if variant not in COMPLETENESS_VARIANTS:
        raise ValueError(
            f"completeness variant {variant!r}; allowed: {list(COMPLETENESS_VARIANTS)}"
        )
    return f"{COMPLETENESS_VARIANTS[variant]}_{stat}"


def is_dense(row: Row) -> bool:
    return row.get("kind") == DENSE


def is_baseline(row: Row) -> bool:
    return row.get("kind") == BASELINE


def probed_labels(rows: list[Row]) -> list[str]:
    """Labels with a probe accuracy in any row, technique first, then alphabetical."""
    prefix, suffix = probe_acc_key(""), probe_acc_key("x")[-len("_acc") :]
    prefix = prefix[: -len(suffix)]
    names = {
        k[len(prefix) : -len(suffix)]
        for r in rows
        for k in r
        if k.startswith(prefix) and k.endswith(suffix) and not k.endswith("_acc_delta")
    }
    return sorted(names, key=lambda n: (n != "technique", n))


def confusion_labels(row: Row) -> list[str]:
    """Labels whose confusion matrix the row holds."""
    return [label for label in probed_labels([row]) if row.get(probe_confusion_key(label))]


def sparsity_key(row: Row) -> tuple[float, str]:
    """Sort key: numeric sparsity (missing last), then name."""
    s = row.get("sparsity")
    return (float(s) if s is not None else float("inf"), str(row.get("name", "")))


def group_rows(rows: list[Row]) -> dict[GroupKey, tuple[Row | None, list[Row]]]:
    """{(model, layer): (dense row or None, SAE rows sorted by sparsity)}."""
    groups: dict[GroupKey, tuple[list[Row], list[Row]]] = defaultdict(lambda: ([], []))
    for row in rows:
        key = (str(row.get("model", "")), int(row["layer"]))
        groups[key][0 if is_dense(row) else 1].append(row)
    return {
        key: (dense[0] if dense else None, sorted(saes, key=sparsity_key))
        for key, (dense, saes) in sorted(groups.items())
    }


def where(key: GroupKey, row: Row | None = None) -> str:
    """Human name of a layer (and SAE), e.g. 'hubert-base-ls960 L3 topk_s90'."""
    model, layer = key
    text = f"{model} L{layer}".strip()
    return f"{text} {row.get('name', '?')}" if row is not None else text


def write_results(run_dir: str | Path, rows: list[dict[str, Any]], run: dict[str, Any]) -> Path:
    """Write `results.json` ({"run": ..., "rows": [...]}) and a flat `results.csv`, atomically;
    the CSV repeats the run's `generation` (the fit the rows come from) in its first column."""
    out = Path(run_dir) / RESULTS_DIR
    atomic_write_bytes(out / RESULTS_JSON, _dumps(run, rows).encode())
    generation = run.get(GENERATION)
    if generation:
        rows = [{GENERATION: generation, **row} for row in rows]
    columns: list[str] = []
    for row in rows:
        skip = set(per_clip_keys(row))
        columns.extend(c for c in row if c not in columns and c not in skip)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _cell(v) for k, v in row.items()})
    atomic_write_bytes(out / RESULTS_CSV, buffer.getvalue().encode())
    return out / RESULTS_JSON


def _dumps(run: dict[str, Any], rows: list[Row]) -> str:
    """`{"run": ..., "rows": [...]}` indented, but each per-clip list on one line: with one
    number per line, 400 clips x 14 rows x a few labels would make most of the file."""
    inline: list[str] = []
    marked = []
    for row in rows:
        row = dict(row)
        for key in per_clip_keys(row):
            inline.append(json.dumps(row[key], separators=(",", ":")))
            row[key] = f"\0inline{len(inline) - 1}\0"
        marked.append(row)
    text = json.dumps({"run": run, "rows": marked}, indent=1)
    for i, value in enumerate(inline):
        text = text.replace(json.dumps(f"\0inline{i}\0"), value, 1)
    return text


def _cell(value: Any) -> Any:
    """Lists of names become "a;b"; nested values (confusion matrices) JSON text."""
    if isinstance(value, list):
        return ";".join(value) if all(isinstance(v, str) for v in value) else json.dumps(value)
    return value


def read_results(run_dir: str | Path) -> dict[str, Any]:
    """The results of one run directory (or the results.json path itself)."""
    path = Path(run_dir)
    if not path.exists():
        raise ResultsNotFoundError(f"{path} does not exist", hint="check the run directory")
    if path.is_dir():
        path = path / RESULTS_DIR / RESULTS_JSON
    if not path.exists():
        raise ResultsNotFoundError(
            f"{run_dir} holds no {RESULTS_DIR}/{RESULTS_JSON} (an unfinished run, or not a run)",
            hint="run `saelight fit` (or `saelight test`) with the SAEEvaluation callback first",
        )
    try:
        results = json.loads(path.read_text())
    except ValueError as err:
        raise SaelightError(f"{path} is not valid JSON ({err}): truncated?") from None
    check_results_shape(results, path)
    return results


def check_results_shape(results: Any, path: Path) -> None:
    """Raises naming the field unless `results` is {"run": {...}, "rows": [{layer, name, ...}]}
    (what `write_results` writes), so readers never meet a bare KeyError."""
    where = f"{path}: not a saelight results file"
    if not isinstance(results, dict):
        raise SaelightError(f"{where} (expected a JSON object, got {type(results).__name__})")
    if not isinstance(results.get("rows"), list):
        raise SaelightError(f"{where} (field 'rows' must be a list of result rows)")
    if not isinstance(results.get("run", {}), dict):
        raise SaelightError(f"{where} (field 'run' must be an object)")
    for i, row in enumerate(results["rows"]):
        if not isinstance(row, dict):
            raise SaelightError(f"{where} (rows[{i}] must be an object)")
        for key, kind in (("layer", int), ("name", str)):
            if not isinstance(row.get(key), kind) or isinstance(row.get(key), bool):
                raise SaelightError(
                    f"{where} (rows[{i}].{key} must be {'an integer' if kind is int else 'text'})"
                )


class ResultsNotFoundError(SaelightError, FileNotFoundError):
    """A run directory without results (or no directory at all)."""
