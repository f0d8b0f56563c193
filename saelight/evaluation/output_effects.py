"""Which latents move the model's *output*: ablation effects on the head, per latent and per label
value, with a frequency-matched random control and a paired bootstrap interval over clips.

Each ablation is in delta form (`splice.sae_replace` with `drop`): the spliced layer becomes
h − Σ_{j ∈ S} z_j d_j (the SAE's error term kept), so removing nothing is the clean run and
an effect is the latent's own. For a variant v, with the clean output's prediction y_n at each
scored position n of clip c (a CTC frame, a teacher-forced decoder step, a classifier's clip):

    ΔCE_v     = CE_v − CE_clean,  CE = mean_n −log q_n(y_n)
    KL_v      = mean_n KL(p_n ‖ q_n)
    top-1 drop = 1 − mean_n [argmax q_n = y_n]

Per label value, the k best detectors ("top", `ablation.latent_sets`) are ablated together and so
are k frequency-matched random latents; gap = ΔCE_top − ΔCE_random with a paired bootstrap
interval over clips (`metrics.uncertainty.paired_difference`, per-clip CE sums, positions per
clip as rows). Single latents: the best detectors of every label value, round robin (each value's
best first), up to `effect_latents` per SAE.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from saelight.evaluation.splice import sae_replace
from saelight.metrics.uncertainty import paired_difference

Replace = Any


def single_latents(sets: list[dict[str, Any]], limit: int) -> list[int]:
    """The "top" sets' latents, round robin over label values (rank 0 of every value first),
    without repeats, at most `limit`.

    Example:
        >>> s = [{"kind": "top", "latents": [3, 1]}, {"kind": "random", "latents": [9]},
        ...      {"kind": "top", "latents": [3, 7]}]
        >>> single_latents(s, 3)
        [3, 1, 7]
    """
    tops = [s["latents"] for s in sets if s["kind"] == "top"]
    out: list[int] = []
    for rank in range(max((len(t) for t in tops), default=0)):
        for top in tops:
            if rank < len(top) and top[rank] not in out and len(out) < limit:
                out.append(int(top[rank]))
    return out


def ablation_variants(
    saes: dict[str, Any], sets: dict[str, list[dict[str, Any]]], limit: int, device: Any
) -> tuple[dict[str, Replace], dict[str, list[int]]]:
    """({variant name: replace} of every set and single-latent ablation, {SAE: its single
    latents}). Names: `<sae>|set<i>` for sets[sae][i], `<sae>|latent<j>` for latent j."""
    variants: dict[str, Replace] = {}
    singles: dict[str, list[int]] = {}
    for name, sae_sets in sets.items():
        sae = saes[name]
        for i, s in enumerate(sae_sets):
            drop = torch.tensor(s["latents"], dtype=torch.long, device=device)
            variants[f"{name}|set{i}"] = sae_replace(sae, drop)
        singles[name] = single_latents(sae_sets, limit)
        for j in singles[name]:
            drop = torch.tensor([j], dtype=torch.long, device=device)
            variants[f"{name}|latent{j}"] = sae_replace(sae, drop)
    return variants, singles


def per_clip(values: Tensor, clips: Tensor, n_clips: int) -> np.ndarray:
    """(n_clips,) sums of per-position `values` (n,) by their clip index `clips` (n,)."""
    return np.bincount(clips.cpu().numpy(), values.double().cpu().numpy(), minlength=n_clips)


def _effect(result: dict[str, float], clean: dict[str, float]) -> dict[str, float]:
    return {
        "delta_ce": result["ce"] - clean["ce"],
        "kl": result["kl"],
        "top1_drop": 1.0 - result["top1_agreement"],
    }


def effects_summary(
    tallies: dict[str, Any],
    sets: dict[str, list[dict[str, Any]]],
    singles: dict[str, list[int]],
    seed: int,
    errors: Any = None,
) -> dict[str, dict[str, Any]]:
    """{SAE: {latent_effects: [{latent, delta_ce, kl, top1_drop}] by ΔCE descending,
    ablation: [{label, value, top, random (each latents + delta_ce, kl, top1_drop [, wer, cer]),
    gap: {estimate, low, high} of ΔCE_top − ΔCE_random}]}} from the variants' `Tally`s.

    `errors(variant)` gives a set variant's WER/CER against the clean transcripts (None: no
    transcripts, e.g. a classifier)."""
    clean_tally = tallies["clean"]
    clean = clean_tally.result()
    out: dict[str, dict[str, Any]] = {}
    for name, sae_sets in sets.items():
        effects = [
            {"latent": j, **_effect(tallies[f"{name}|latent{j}"].result(), clean)}
            for j in singles.get(name, [])
        ]
        effects.sort(key=lambda e: -e["delta_ce"])
        rows: list[dict[str, Any]] = []
        by_value: dict[tuple[str, str], dict[str, Any]] = {}
        for i, s in enumerate(sae_sets):
            tally = tallies[f"{name}|set{i}"]
            entry = {"latents": s["latents"], **_effect(tally.result(), clean)}
            if errors is not None:
                entry.update(errors(f"{name}|set{i}"))
            pair = by_value.setdefault((s["label"], s["value"]), {})
            pair[s["kind"]] = (entry, tally)
        for (label, value), pair in by_value.items():
            if "top" not in pair or "random" not in pair:
                continue
            (top, t_top), (rand, t_rand) = pair["top"], pair["random"]
            ce_top, rows_c = t_top.clip_sums("ce")
            ce_rand, _ = t_rand.clip_sums("ce")
            gap = paired_difference(ce_top, ce_rand, rows_c, seed=seed)
            rows.append(
                {
                    "label": label,
                    "value": value,
                    "top": top,
                    "random": rand,
                    "gap": {"estimate": gap.estimate, "low": gap.low, "high": gap.high},
                }
            )
        out[name] = {"latent_effects": effects, "ablation": rows}
    return out
