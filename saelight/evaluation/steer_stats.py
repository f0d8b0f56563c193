"""Per-clip statistics of a steered pass against the clean one, and the sweep row they pool into
(`evaluation.steering`): KL and top-1 agreement of a head's outputs (or, without a head, the
last hidden state's relative change and cosine, plus the clip probe's KL and agreement when one
reads it: `evaluation.steer_probe`), transcripts with WER/CER, top-5 classes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch.nn.functional as F

from saelight.evaluation.output_splice import transcript_errors

if TYPE_CHECKING:
    from saelight.evaluation.steering import Pass


def clip_stats(clean: Pass, out: Pass, hidden: bool) -> list[dict[str, Any]]:
    """Per clip of a chunk: summable statistics of `out` against `clean` (see `summarise`)."""
    stats = []
    for i in range(len(clean.valid)):
        c = clean.values[i][clean.valid[i]].double()
        o = out.values[i][clean.valid[i]].double()
        row: dict[str, Any] = {"n": len(c), "max_abs": float((o - c).abs().max()) if len(c) else 0}
        if hidden:
            row["sse"], row["ss"] = float(((o - c) ** 2).sum()), float((c**2).sum())
            row["cos"] = float(F.cosine_similarity(o, c, dim=-1, eps=1e-8).sum())
            if clean.probe is not None and out.probe is not None:
                log_p = F.log_softmax(clean.probe[i].double(), -1)
                log_q = F.log_softmax(out.probe[i].double(), -1)
                row["probe_kl"] = float((log_p.exp() * (log_p - log_q)).sum())
                row["probe_top1"] = float(log_p.argmax() == log_q.argmax())
        else:
            log_p, log_q = F.log_softmax(c, -1), F.log_softmax(o, -1)
            row["kl"] = float((log_p.exp() * (log_p - log_q)).sum())
            row["top1"] = float((o.argmax(-1) == c.argmax(-1)).sum())
        if out.texts is not None:
            row["text"] = out.texts[i]
        if out.top5 is not None:
            row["top5"] = out.top5[i]
        stats.append(row)
    return stats


def summarise(
    clips: list[dict[str, Any]], clean: list[dict[str, Any]], hidden: bool
) -> dict[str, Any]:
    """One sweep row from the per-clip statistics (clip order), pooled over positions."""
    n = max(sum(c["n"] for c in clips), 1)
    out: dict[str, Any] = {"output_max_abs_diff": max(c["max_abs"] for c in clips)}
    if hidden:
        ss = sum(c["ss"] for c in clips)
        out["hidden_change"] = sum(c["sse"] for c in clips) / ss if ss > 0 else None
        out["cosine"] = sum(c["cos"] for c in clips) / n
        if "probe_kl" in clips[0]:  # one probe reading per clip: means over clips
            out["probe_kl"] = sum(c["probe_kl"] for c in clips) / len(clips)
            out["probe_agreement"] = sum(c["probe_top1"] for c in clips) / len(clips)
    else:
        out["kl"] = sum(c["kl"] for c in clips) / n
        out["top1_agreement"] = sum(c["top1"] for c in clips) / n
    per_clip = []
    for c, base in zip(clips, clean, strict=True):
        m = max(c["n"], 1)
        row: dict[str, Any] = (
            {"hidden_change": c["sse"] / c["ss"] if c["ss"] > 0 else None, "cosine": c["cos"] / m}
            if hidden
            else {"kl": c["kl"] / m, "top1_agreement": c["top1"] / m}
        )
        if "probe_kl" in c:
            row["probe_kl"] = c["probe_kl"]
        if "text" in c:
            row["text"] = c["text"]
            row.update(transcript_errors([base["text"]], [c["text"]]))
        if "top5" in c:
            row["top5"] = c["top5"]
        per_clip.append(row)
    if "text" in clips[0]:
        out.update(transcript_errors([b["text"] for b in clean], [c["text"] for c in clips]))
    out["clips"] = per_clip
    return out
