"""Rows of the report's output-effect tables: which latents move the *model's output* when
ablated (`evaluation.output_effects`), per label value against a frequency-matched random set,
and latent by latent. Raw values, formatted by `splice_section.cell` like the other splice
tables; ΔCE in nats, KL in nats, top-1 drop in points."""

from __future__ import annotations

from typing import Any

Raw = tuple[list[str], list[list[Any]]]
TOP_LATENTS = 5
"""Latents per SAE listed in the latent table (the largest ΔCE first)."""


def _scored(payload: dict[str, Any]) -> list[tuple[dict[str, Any], str, dict[str, Any]]]:
    """(layer entry, SAE name, output row) of every SAE whose output effects were scored."""
    out = []
    for layer in payload["layers"]:
        for name, r in ((layer.get("output") or {}).get("saes") or {}).items():
            if r.get("ablation") or r.get("latent_effects"):
                out.append((layer, name, r))
    return out


def _pt(value: float | None) -> float | None:
    return None if value is None else 100 * float(value)


def output_ablation_rows(payload: dict[str, Any]) -> Raw:
    """Per SAE × label value: ΔCE of the output when its top-k detectors are ablated vs k
    frequency-matched random latents, the paired gap with its 95 % interval over clips, KL, the
    top-1 drop and (transcribing heads) WER against the clean transcripts."""
    columns = ["SAE", "layer", "label", "value", "top-k ΔCE", "random-k ΔCE"]
    columns += ["top − random ΔCE, 95 % interval", "top-k KL", "random-k KL"]
    columns += ["top-k top-1 drop (pt)", "random-k top-1 drop (pt)", "top-k WER", "random-k WER"]
    rows = []
    for layer, name, r in _scored(payload):
        for a in r.get("ablation") or []:
            top, rand, gap = a["top"], a["random"], a["gap"]
            interval = f"{gap['estimate']:+.3f} [{gap['low']:+.3f}, {gap['high']:+.3f}]"
            rows.append(
                [
                    name, layer["layer"], a["label"], a["value"],
                    top["delta_ce"], rand["delta_ce"], interval, top["kl"], rand["kl"],
                    _pt(top["top1_drop"]), _pt(rand["top1_drop"]), top.get("wer"), rand.get("wer"),
                ]
            )  # fmt: skip
    return columns, rows


def latent_effect_rows(payload: dict[str, Any]) -> Raw:
    """Per SAE: the `TOP_LATENTS` single latents whose ablation moves the output most (ΔCE), with
    the label values they were chosen as a top detector of, KL and top-1 drop."""
    columns = ["SAE", "layer", "latent", "detects", "ΔCE", "KL", "top-1 drop (pt)"]
    rows = []
    for layer, name, r in _scored(payload):
        detects: dict[int, list[str]] = {}
        for s in layer["saes"].get(name, {}).get("ablation", []):
            if s["kind"] == "top":
                for j in s["latents"]:
                    detects.setdefault(int(j), []).append(f"{s['label']}={s['value']}")
        for e in (r.get("latent_effects") or [])[:TOP_LATENTS]:
            j = int(e["latent"])
            what = ", ".join(detects.get(j, [])) or "-"
            rows.append(
                [name, layer["layer"], str(j), what, e["delta_ce"], e["kl"], _pt(e["top1_drop"])]
            )
    return columns, rows
