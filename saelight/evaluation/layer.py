"""Held-out evaluation of one layer: the dense activations and every SAE on them, into result rows.

Everything here works on arrays already read from the cache: probes are fitted on train (selected on
val) and scored on test; reconstruction and disentanglement use the test split, like the paper.
Given `TEST_HEAD` rows too (a cache built with `protocol: paper`: each test file's first 5 s), the
probes are scored on those instead, as the paper scores them, while reconstruction and
disentanglement keep the whole test files. The row keys are documented in
`saelight.evaluation.results`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
import torch

from saelight.audio.base import SPLITS as SPLIT_NAMES
from saelight.cache.format import (
    TEST_HEAD,
    factor_column,
    factor_names,
    label_column,
    label_names,
)
from saelight.evaluation.results import (
    BASELINE,
    DENSE,
    EFFECTIVE_DIMS,
    FACTOR_ENTROPY_BOOT,
    TEST_CLIP_ROWS,
    completeness_key,
    factor_entropy_key,
    ksparse_acc_key,
    probe_acc_key,
    probe_classes_key,
    probe_clip_correct_key,
    probe_confusion_key,
    probe_delta_key,
    probe_f1_key,
)
from saelight.io.defaults import EVAL_SEED
from saelight.metrics.disentanglement import lasso_completeness
from saelight.metrics.disentanglement_dci import dci
from saelight.metrics.disentanglement_info import information_scores
from saelight.metrics.probe import ProbeResult, k_sparse_probe, linear_probe, logistic_probe
from saelight.metrics.reconstruction import cosine_similarity, fvu, mse
from saelight.metrics.sparsity import feature_density, l0
from saelight.metrics.uncertainty import lasso_entropy_bootstrap
from saelight.sae.base import SAE

log = logging.getLogger(__name__)


@dataclass
class SplitData:
    """One split of one layer: activations (n, dim), its metadata rows and, for a
    position-centred run (`data.centre_positions`), the (n, dim) offsets its SAEs' input is
    centred by (SAEs read x − offset; reconstruction is scored in x's space)."""

    x: np.ndarray
    meta: pd.DataFrame
    offset: np.ndarray | None = None

    def sae_input(self) -> np.ndarray:
        return self.x if self.offset is None else self.x - self.offset

    def subset(self, keep: np.ndarray) -> SplitData:
        offset = None if self.offset is None else self.offset[keep]
        return SplitData(self.x[keep], self.meta[keep].reset_index(drop=True), offset)


@dataclass
class EvalOptions:
    """What to compute (see `SAEEvaluation` for the meaning of each field).

    `protocol="paper"` fits and scores the Lasso R² on the same test rows, as the original does
    (in-sample, optimistic); "saelight" scores R² on held-out test files. (Which rows the probes
    are scored on follows the splits given to `evaluate_layer`: `TEST_HEAD` when present.)
    `bootstrap` > 0 refits each row's top-factor Lassos on that many resamples of the test clips,
    for an interval on the SAE − dense entropy (slow: one Lasso fit per resample and
    representation).
    """

    protocol: Literal["saelight", "paper"] = "saelight"
    bootstrap: int = 0
    probe: Literal["paper", "logistic"] = "paper"
    labels: list[str] | None = None
    k_sparse: int = 8
    disentanglement: bool = True
    standard_scores: bool = True
    factors: list[str] | None = None
    probe_train_crops: int = 1
    seed: int = EVAL_SEED


_WARNED: set[str] = set()
"""Unprobeable-label warnings already given: the callback asks per SAE and per epoch, the
evaluation per layer, and the same splits give the same reason each time."""


def probe_labels(splits: dict[str, SplitData], wanted: list[str] | None) -> list[str]:
    """Labels a probe can learn: ≥2 classes in train and every val/test class seen in train.

    A label whose groups are split apart (e.g. `singer` when splits are by singer) cannot be probed
    across splits: rather than scored as 0 it is skipped, with one WARNING line per label and
    process saying why and how to make it probeable (`unprobeable_reason`).
    """
    names = label_names(splits["train"].meta.columns)
    if wanted is not None:
        missing = sorted(set(wanted) - set(names))
        if missing:
            raise ValueError(f"evaluation labels {missing} are not in the cache (it has {names})")
        names = list(wanted)
    usable = []
    for name in names:
        column = label_column(name)
        train = set(splits["train"].meta[column])
        unseen = (set(splits["val"].meta[column]) | set(splits["test"].meta[column])) - train
        if len(train) < 2 or unseen:
            reason = unprobeable_reason(name, sorted(map(str, train)), sorted(map(str, unseen)))
            if reason not in _WARNED:
                _WARNED.add(reason)
                log.warning("%s", reason)
            continue
        usable.append(name)
    return usable


def unprobeable_reason(name: str, train: list[str], unseen: list[str]) -> str:
    """One line: why label `name` cannot be probed and what would make it probeable."""
    shown = ", ".join(unseen[:5]) + (f" (+{len(unseen) - 5} more)" if len(unseen) > 5 else "")
    if len(train) < 2:
        why = f"train holds {len(train)} value(s) of it and a probe needs at least 2"
    else:
        why = (
            f"{len(unseen)} of its val/test values never occur in train ({shown}): the split "
            "keeps its groups apart (e.g. splits by singer or speaker), so a probe fitted on "
            "train cannot predict them"
        )
    fix = (
        "to probe it, build the cache with a split where every val/test value also has train "
        "clips (e.g. a manifest `split_column`, or a `group_column` other than this label); "
        "SAEEvaluation(labels=[...]) lists the labels to probe"
    )
    return f"label {name!r} is not probed: {why}; {fix}"


def label_arrays(splits: dict[str, SplitData], label: str) -> dict[str, np.ndarray]:
    """{split: the split's values of `label`}."""
    return {s: splits[s].meta[label_column(label)].to_numpy() for s in SPLIT_NAMES}


def run_probe(
    kind: str,
    features: dict[str, np.ndarray],
    labels: dict[str, np.ndarray],
    seed: int,
    k: int | None = None,
) -> ProbeResult:
    args = [a for s in SPLIT_NAMES for a in (features[s], labels[s])]
    if k is not None:
        return k_sparse_probe(*args, k=k, seed=seed)
    if kind == "paper":
        return linear_probe(*args, seed=seed)
    return logistic_probe(*args, seed=seed)


def test_clips(meta: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(clip index of each test row, rows per clip), clips in sorted `clip_id` order.

    A bootstrap resamples clips, not rows: the frames of one clip are not independent.
    """
    ids = meta["clip_id"].to_numpy() if "clip_id" in meta else np.arange(len(meta))
    _, inverse = np.unique(ids, return_inverse=True)
    return inverse, np.bincount(inverse)


def per_clip_correct(correct: np.ndarray, clips: np.ndarray) -> list[int]:
    """Correct test rows per clip, from a probe's `test_correct` and `test_clips(...)[0]`."""
    return np.bincount(clips, weights=correct.astype(np.float64)).astype(int).tolist()


def probe_scores(
    features: dict[str, np.ndarray],
    splits: dict[str, SplitData],
    labels: list[str],
    opts: EvalOptions,
    with_k_sparse: bool,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    clips, _ = test_clips(splits["test"].meta)
    for name in labels:
        y = label_arrays(splits, name)
        result = run_probe(opts.probe, features, y, opts.seed)
        out[probe_acc_key(name)] = result.accuracy
        out[probe_f1_key(name)] = result.macro_f1
        out[probe_confusion_key(name)] = result.confusion.tolist()
        out[probe_classes_key(name)] = [str(c) for c in result.classes]
        if result.test_correct is not None:
            out[probe_clip_correct_key(name)] = per_clip_correct(result.test_correct, clips)
        if with_k_sparse and opts.k_sparse > 0:
            k = min(opts.k_sparse, features["train"].shape[1])
            out[ksparse_acc_key(name)] = run_probe(opts.probe, features, y, opts.seed, k=k).accuracy
    return out


def disentanglement_scores(
    codes: np.ndarray, meta: pd.DataFrame, opts: EvalOptions
) -> dict[str, Any]:
    """Paper's Lasso R²/completeness (+ K-fair, entropy, effective dims), DCI, MIG, SAP, modularity
    on test rows; R² held out unless `opts.protocol == "paper"`."""
    names = factor_names(meta.columns)
    if opts.factors is not None:
        names = [n for n in names if n in set(opts.factors)]
    if not names or len(meta) < 10:
        return {}
    factors = {n: meta[factor_column(n)].to_numpy(np.float64) for n in names}
    groups = meta["clip_id"].to_numpy()
    out: dict[str, Any] = {}
    held_out = opts.protocol != "paper"
    paper = lasso_completeness(codes, factors, seed=opts.seed, groups=groups, held_out=held_out)
    s = paper.summary
    out.update(
        r2_mean=s["r2_mean"],
        r2_std=s["r2_std"],
    )
    for variant, source in (("paper", "completeness"), ("kfair", "completeness_k_fair")):
        for stat in ("mean", "std"):
            out[completeness_key(variant, stat)] = s[f"{source}_{stat}"]
    out["top_factors"] = [paper.factor_names[i] for i in paper.top]
    for stat in ("mean", "std"):
        out[factor_entropy_key(stat)] = s[f"entropy_{stat}"]
    out[EFFECTIVE_DIMS] = s["effective_dims"]
    if opts.bootstrap > 0:
        top = {n: factors[n] for n in out["top_factors"]}
        boot = lasso_entropy_bootstrap(
            codes, top, n_resamples=opts.bootstrap, held_out=held_out, seed=opts.seed, groups=groups
        )
        out[FACTOR_ENTROPY_BOOT] = [None if np.isnan(v) else float(v) for v in boot]
    if opts.standard_scores:
        labels = {
            n: meta[label_column(n)].to_numpy()
            for n in label_names(meta.columns)
            if meta[label_column(n)].nunique() > 1
        }
        d = dci(codes, factors, labels, seed=opts.seed, groups=groups)
        out.update(
            dci_disentanglement=d.disentanglement,
            dci_completeness=d.completeness,
            dci_informativeness=d.informativeness,
        )
        if codes.shape[1] >= 2:
            info = information_scores(codes, factors, labels, seed=opts.seed, groups=groups)
            out.update(mig=info.mig, sap=info.sap, modularity=info.modularity)
    return out


@torch.no_grad()
def encode(sae: SAE, x: np.ndarray, batch: int = 4096) -> np.ndarray:
    sae.eval()
    parts = [
        sae.encode(torch.from_numpy(x[i : i + batch])).float() for i in range(0, len(x), batch)
    ]
    return torch.cat(parts).numpy() if parts else np.zeros((0, sae.d_sae), np.float32)


def reconstruction_scores(
    sae: SAE, x: np.ndarray, codes: np.ndarray, offset: np.ndarray | None = None
) -> dict[str, float]:
    """Scores of x̂ = decode(codes) (+ offset, for a position-centred SAE) against x."""
    xt, z = torch.from_numpy(x), torch.from_numpy(codes)
    with torch.no_grad():
        x_hat = sae.decode(z).float()
    if offset is not None:
        x_hat = x_hat + torch.from_numpy(offset)
    density = feature_density(z)
    return {
        "mse": float(mse(xt, x_hat)),
        "fvu": float(fvu(xt, x_hat)),
        "cosine": float(cosine_similarity(xt, x_hat)),
        "l0": float(l0(z)),
        "dead_fraction": float(density["dead_fraction"]),
        "dead_floor": float(density["dead_floor"]),
        "dense_fraction": float(density["dense_fraction"]),
    }


def sae_identity(sae: SAE) -> dict[str, Any]:
    """architecture, d_sae, k and sparsity of a row, as the SAE states them (`SAE.identity`):
    the configured sparsity, not one recomputed from k; None where only the measured L0 tells."""
    return sae.identity()


def _probe_splits(splits: dict[str, SplitData], max_crops: int) -> dict[str, SplitData]:
    """The probes' train/val/test: `TEST_HEAD` rows as test when given (the paper's first 5 s of
    each test file), and train rows keeping only the first `max_crops` crops of each file (0 =
    all).

    A cache with N random crops per train file would otherwise train each probe on N× the paper's
    rows (N× slower, and no longer the paper's protocol).
    """
    if TEST_HEAD in splits:
        splits = {"train": splits["train"], "val": splits["val"], "test": splits[TEST_HEAD]}
    train = splits["train"]
    if max_crops < 1 or "crop" not in train.meta:
        return splits
    keep = train.meta["crop"].to_numpy() < max_crops
    return {**splits, "train": train.subset(keep)}


def evaluate_layer(
    layer: int,
    splits: dict[str, SplitData],
    saes: dict[str, SAE],
    opts: EvalOptions,
    on_row: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Rows for the dense activations of `layer` and for each named SAE on them.

    Args:
        layer: the backbone layer.
        splits: train, val and test; with `TEST_HEAD` too, the probes (accuracy, F1, confusion,
            per-clip correct, k-sparse) are scored on it, reconstruction and disentanglement on
            test.
        saes: the SAEs of the layer by name.
        opts: what to compute.
        on_row: called with each row once it is complete.
    """
    probe_splits = _probe_splits(splits, opts.probe_train_crops)
    labels = probe_labels(probe_splits, opts.labels)
    dense_features = {s: probe_splits[s].x for s in SPLIT_NAMES}
    dense = {
        "layer": layer,
        "name": DENSE,
        "kind": DENSE,
        "architecture": DENSE,
        "d_sae": int(splits["test"].x.shape[1]),
    }
    clip_rows = test_clips(probe_splits["test"].meta)[1]  # what the probes' per-clip lists count
    if (clip_rows != 1).any():
        dense[TEST_CLIP_ROWS] = clip_rows.tolist()
    dense.update(probe_scores(dense_features, probe_splits, labels, opts, with_k_sparse=True))
    if opts.disentanglement:
        dense.update(disentanglement_scores(splits["test"].x, splits["test"].meta, opts))
    rows = [dense]
    if on_row:
        on_row(dense)
    for name, sae in saes.items():
        codes = {s: encode(sae, probe_splits[s].sae_input()) for s in SPLIT_NAMES}
        whole = probe_splits["test"] is splits["test"]
        test_codes = codes["test"] if whole else encode(sae, splits["test"].sae_input())
        kind = BASELINE if sae.baseline else "sae"
        row: dict[str, Any] = {"layer": layer, "name": name, "kind": kind, **sae_identity(sae)}
        if TEST_CLIP_ROWS in dense:
            row[TEST_CLIP_ROWS] = dense[TEST_CLIP_ROWS]
        test = splits["test"]
        row.update(reconstruction_scores(sae, test.x, test_codes, test.offset))
        if row["sparsity"] is None:  # no configured sparsity (ReLU, JumpReLU): the measured one
            row["sparsity"] = 1.0 - row["l0"] / sae.d_sae
        row.update(probe_scores(codes, probe_splits, labels, opts, with_k_sparse=True))
        for label in labels:
            row[probe_delta_key(label)] = row[probe_acc_key(label)] - dense[probe_acc_key(label)]
        if opts.disentanglement:
            row.update(disentanglement_scores(test_codes, splits["test"].meta, opts))
        rows.append(row)
        if on_row:
            on_row(row)
    return rows
