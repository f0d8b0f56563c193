"""Steering: edit chosen SAE latents inside the backbone and read what the model then outputs.

For x the valid rows of hidden_states[L], z = encode(x) and a latent set S, the edit is in delta
form, x' = x + decode(z') − decode(z) (summed in float64): the SAE's error term x − decode(z)
is kept, only the edited latents move, and an edit that leaves z as it is (α = 0) returns x bit
for bit. With α the dose, for j ∈ S:

    ablate:  z'_j = z_j + α (0 − z_j)      α = 1 zeroes the latent
    clamp:   z'_j = z_j + α (v_j − z_j)    α = 1 holds it at v_j on every frame
    add:     z'_j = z_j + α                adds α · W_dec[j] to every frame

Two controls run in the same sweep, at the same α: `random_direction` moves each frame by the
same norm ‖decode(z') − decode(z)‖ along one fixed random unit direction (seeded), so the dose
is equal and only the direction differs; `random_latents` applies the same edit to as many live
latents of matched firing frequency (`evaluation.ablation.matched_random`).

The replacement runs through the splice hook (`evaluation.splice.SpliceHook`, valid frames only).
What is read, against the clean run (same hook, nothing replaced):

* a head (`backbones.heads`): per position KL(clean ‖ steered) (Whisper: decoder steps
  teacher-forced on the clean greedy transcript; CTC: valid frames; classifier: the clip) and
  top-1 agreement, the greedy transcripts with WER/CER against the clean one (Whisper, CTC), or
  the five most likely classes (classifier) — formulas in `evaluation.output_splice`;
* no head (or L = N, which no encoder layer reads): the change of the last hidden state,
  Σ‖h' − h‖² / Σ‖h‖² over valid frames, and the mean cosine of h' with h; with a clip probe
  (`steer_probe`: what a classifier trained on the last layer would say), also its top-5
  classes per clip, KL(clean ‖ steered) of its class distribution and its top-1 agreement,
  averaged over clips.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor

from saelight.backbones.heads import OutputHead
from saelight.backbones.hf import HFBackbone
from saelight.evaluation.ablation import matched_random, sparse_codes
from saelight.evaluation.output_splice import (
    MAX_NEW_TOKENS,
    ctc_transcripts,
    greedy_decode,
    teacher_forced,
)
from saelight.evaluation.splice import SpliceHook, attached, run_chunk
from saelight.evaluation.steer_probe import ClipProbe
from saelight.evaluation.steer_stats import clip_stats, summarise
from saelight.io.errors import SaelightError

Mode = Literal["ablate", "clamp", "add"]
MODES = ("ablate", "clamp", "add")
VARIANTS = ("latents", "random_direction", "random_latents")
"""The edited latents, then the two controls (see the module docstring)."""


def edit_codes(z: Tensor, latents: list[int], mode: Mode, alpha: float, value: Tensor) -> Tensor:
    """z (n, d_sae) with latents S moved by α (see the module docstring); value: (|S|,) the
    clamp targets v_j (read by `clamp` only)."""
    cols = z[:, latents]
    if mode == "ablate":
        step = -cols
    elif mode == "clamp":
        step = value.to(cols) - cols
    else:
        step = torch.ones_like(cols)
    out = z.clone()
    out[:, latents] = cols + alpha * step  # α = 0: cols + 0 = cols exactly
    return out


class LatentEdit:
    """The replacement x -> x + Δ, Δ = decode(z') − decode(z) (float64), or, with `direction`
    u, x + ‖Δ‖ u per row (the equal-norm control); sums ‖Δ‖ over the rows it edits.

    Args:
        sae: anything with `encode` / `decode` on raw activations.
        latents: the set S.
        mode: "ablate", "clamp" or "add".
        alpha: the dose α.
        value: (|S|,) clamp targets.
        direction: (D,) unit vector of the random-direction control, or None.
    """

    def __init__(
        self,
        sae: Any,
        latents: list[int],
        mode: Mode,
        alpha: float,
        value: Tensor,
        direction: Tensor | None = None,
    ) -> None:
        self.sae, self.latents, self.mode, self.alpha = sae, latents, mode, alpha
        self.value, self.direction = value, direction
        self.norm_sum, self.rows = 0.0, 0

    def delta(self, x: Tensor) -> Tensor:
        """(n, D) float64 decode(z') − decode(z) of rows x."""
        z = self.sae.encode(x)
        edited = edit_codes(z, self.latents, self.mode, self.alpha, self.value)
        return self.sae.decode(edited).double() - self.sae.decode(z).double()

    def __call__(self, x: Tensor) -> Tensor:
        d = self.delta(x)
        norms = d.norm(dim=1, keepdim=True)
        self.norm_sum += float(norms.sum())
        self.rows += len(x)
        if self.direction is not None:
            d = norms * self.direction.to(d)
        return (x.double() + d).float()


@dataclass
class Pass:
    """One forward pass over a chunk of clips: what is compared with the clean pass.

    Attributes:
        values: (b, P, V) logits (Whisper: teacher-forced on the clean transcript) or (b, P, D)
            last hidden states (no head).
        valid: (b, P) the positions that count.
        texts: greedy transcripts (Whisper, CTC), else None.
        top5: per clip the five most likely (class, probability) (classifier), else None.
        tokens: Whisper's clean greedy tokens and lengths, which steered passes are forced on.
    """

    values: Tensor
    valid: Tensor
    texts: list[str] | None = None
    top5: list[list[tuple[str, float]]] | None = None
    tokens: tuple[Tensor, list[int]] | None = None
    x: Tensor | None = field(default=None, repr=False)
    """(n, D) the clean pass's valid rows of hidden_states[L]."""
    probe: Tensor | None = None
    """(b, K) the clip probe's logits on the last hidden state (no head, `steer_probe`)."""


def _forward(
    backbone: HFBackbone,
    head: OutputHead | None,
    hook: SpliceHook,
    layer: int,
    part: list[np.ndarray],
    replace: LatentEdit | None,
    clean: Pass | None,
    max_new_tokens: int,
    probe: ClipProbe | None = None,
) -> Pass:
    """One pass of the clips `part` with the hook's replacement (None: the clean pass)."""
    if head is None:
        rows, mask = run_chunk(backbone, hook, layer, part, replace)
        h = torch.zeros(*mask.shape, backbone.hidden_size, device=mask.device)
        h[mask] = rows[backbone.num_layers].to(h)
        x = rows[layer] if replace is None else None
        if probe is None:
            return Pass(h, mask, x=x)
        logits = probe.logits(h, mask)
        p = logits.softmax(-1).topk(min(5, logits.shape[-1]), -1)
        top5 = [[(probe.classes[int(i)], float(q)) for q, i in zip(ps, ix, strict=True)]
                for ps, ix in zip(p.values, p.indices, strict=True)]  # fmt: skip
        return Pass(h, mask, top5=top5, x=x, probe=logits)
    hook.lengths, hook.replace = [len(w) for w in part], replace
    inputs = {k: v.to(backbone.device) for k, v in backbone.family.features(part).items()}
    try:
        with torch.inference_mode():
            return _head_pass(head, hook, inputs, clean, max_new_tokens)
    finally:
        hook.replace = None


def _head_pass(
    head: OutputHead,
    hook: SpliceHook,
    inputs: dict[str, Tensor],
    clean: Pass | None,
    max_new_tokens: int,
) -> Pass:
    """`_forward` through the head model (the hook is set)."""
    if head.kind == "seq2seq":
        encoded = head.encoder(**inputs).last_hidden_state
        x = hook.seen
        tokens = greedy_decode(head, encoded, max_new_tokens) if clean is None else clean.tokens
        assert tokens is not None
        logits, valid = teacher_forced(head, encoded, *tokens)
        ids, n = tokens if clean is None else greedy_decode(head, encoded, max_new_tokens)
        texts = [head.decode_tokens(row[1:k].tolist()) for row, k in zip(ids, n, strict=True)]
        return Pass(logits, valid, texts, tokens=tokens, x=x)
    logits = head.model(**inputs).logits.float()
    if head.kind == "classifier":
        probs = logits.softmax(-1).topk(min(5, logits.shape[-1]), -1)
        names = getattr(head.model.config, "id2label", None) or {}
        top5 = [
            [(str(names.get(int(i), i)), float(p)) for p, i in zip(ps, ix, strict=True)]
            for ps, ix in zip(probs.values, probs.indices, strict=True)
        ]
        valid = torch.ones(len(logits), 1, dtype=torch.bool, device=logits.device)
        return Pass(logits[:, None], valid, top5=top5, x=hook.seen)
    valid = hook.family.frame_mask(hook.lengths, logits.shape[1], logits.device)
    texts = ctc_transcripts(head, logits.argmax(-1), valid)
    return Pass(logits, valid, texts, x=hook.seen)


@contextmanager
def _hooked(backbone: HFBackbone, head: OutputHead | None, layer: int) -> Iterator[SpliceHook]:
    """The splice hook on the layer reading hidden_states[L]: the head model's or the encoder's."""
    if head is None:
        with attached(backbone, layer) as hook:
            yield hook
        return
    hook = SpliceHook(backbone)
    handle = head.layers[layer].register_forward_pre_hook(hook, with_kwargs=True, prepend=True)
    try:
        yield hook
    finally:
        handle.remove()


@dataclass
class Plan:
    """What `steer_sweep` edits: latents, mode, doses, clamp value, seed and the controls."""

    latents: list[int]
    mode: Mode
    alphas: list[float]
    value: float | None
    seed: int
    control: list[int] | None = None
    """frequency-matched random latents (None: drawn on the steered clips' frames)."""


def steer_sweep(
    backbone: HFBackbone,
    head: OutputHead | None,
    sae: Any,
    layer: int,
    waves: list[np.ndarray],
    plan: Plan,
    max_new_tokens: int = MAX_NEW_TOKENS,
    probe: ClipProbe | None = None,
) -> dict[str, Any]:
    """Per α and variant (`VARIANTS`), the model's output with the edit of `plan` at `layer`.

    Args:
        backbone: the encoder the SAE was trained on.
        head: `backbone.output_head()`, or None (the last hidden state's change is read).
        sae: an SAE trained on hidden_states[layer].
        layer: the edited hidden-state index L.
        waves: the clips, at `backbone.sample_rate`.
        plan: latents, mode, α sweep, clamp value (None: each latent's largest activation on
            the clips' frames), seed of the random direction and control draw.
        max_new_tokens: greedy decoding cap (Whisper).
        probe: without a head, a clip probe on the last hidden state (`steer_probe`): its
            top-5 classes per clip, KL and agreement are read beside the hidden change.

    Returns:
        JSON-able dict: output ("seq2seq" | "ctc" | "classifier" | "hidden"), architecture,
        note (what is read without a head), latents, control_latents, frequency,
        clamp_values, clean (per clip text / top5), sweep ([{alpha, variant, edit_norm,
        output_max_abs_diff, kl | hidden_change, ..., clips}]).
    """
    if plan.mode not in MODES:
        raise SaelightError(f"mode={plan.mode!r}: expected one of {list(MODES)}")
    if not plan.alphas:
        raise SaelightError("alphas: give at least one dose, e.g. [0,0.5,1]")
    if max(plan.latents) >= sae.d_sae:
        raise SaelightError(f"latents {plan.latents}: the SAE has latents 0..{sae.d_sae - 1}")
    waves = backbone.prepare_waves(waves)
    if hasattr(sae, "to"):
        sae.to(backbone.device).eval()
    note = "last hidden state (no output head read)"
    if head is not None and layer == backbone.num_layers:
        note = f"last hidden state (L{layer} feeds no layer of {head.architecture}'s encoder)"
        head = None
    chunks = backbone.plan_batches([len(w) for w in waves])
    hidden = head is None
    with _hooked(backbone, head, layer) as hook:

        def run(edit: LatentEdit | None, clean: list[Pass] | None) -> list[Pass]:
            return [
                _forward(backbone, head, hook, layer, [waves[i] for i in chunk], edit,
                         None if clean is None else clean[c], max_new_tokens,
                         None if head is not None else probe)
                for c, chunk in enumerate(chunks)
            ]  # fmt: skip

        cleans = run(None, None)
        ref = _Reference.of(sae, cleans, plan, backbone)
        ordered = _in_clip_order(chunks, [clip_stats(p, p, hidden) for p in cleans])
        rows = []
        for alpha in plan.alphas:
            for variant in VARIANTS:
                latents = ref.control if variant == "random_latents" else plan.latents
                if not latents:
                    continue
                direction = ref.direction if variant == "random_direction" else None
                edit = LatentEdit(sae, latents, plan.mode, alpha, ref.values(latents), direction)
                outs = run(edit, cleans)
                stats = [clip_stats(c, o, hidden) for c, o in zip(cleans, outs, strict=True)]
                row = summarise(_in_clip_order(chunks, stats), ordered, hidden)
                edit_norm = edit.norm_sum / max(edit.rows, 1)
                rows.append({"alpha": alpha, "variant": variant, "edit_norm": edit_norm, **row})
    used = [*plan.latents, *ref.control]
    clamp = dict(zip(map(str, used), ref.values(used).tolist(), strict=True))
    return {
        "output": "hidden" if head is None else head.kind,
        "architecture": None if head is None else head.architecture,
        "note": note if head is None else None,
        "probe": None if head is not None or probe is None else probe.label,
        "latents": plan.latents,
        "control_latents": ref.control,
        "frequency": {str(j): float(ref.frequency[j]) for j in used},
        "clamp_values": clamp if plan.mode == "clamp" else None,
        "clean": [{k: c[k] for k in ("text", "top5") if k in c} for c in ordered],
        "sweep": rows,
    }


@dataclass
class _Reference:
    """What the clean pass fixes for the whole sweep: each latent's firing frequency and peak
    on the clips' frames, the control latents and the random unit direction."""

    frequency: np.ndarray
    peak: np.ndarray
    control: list[int]
    direction: Tensor
    value: float | None

    @classmethod
    def of(cls, sae: Any, cleans: list[Pass], plan: Plan, backbone: HFBackbone) -> _Reference:
        x = torch.cat([p.x for p in cleans if p.x is not None])
        codes = sparse_codes(sae, x)
        frequency = np.diff(codes.indptr) / max(len(x), 1)
        control = plan.control
        if control is None:
            control = matched_random(plan.latents, frequency, np.random.default_rng(plan.seed))
        gen = torch.Generator().manual_seed(plan.seed)
        u = torch.randn(backbone.hidden_size, generator=gen, dtype=torch.float64)
        peak = codes.max(axis=0).toarray().ravel()
        return cls(frequency, peak, control, (u / u.norm()).to(backbone.device), plan.value)

    def values(self, latents: list[int]) -> Tensor:
        """(|S|,) clamp targets: the plan's value, else each latent's peak."""
        return torch.tensor([self.peak[j] if self.value is None else self.value for j in latents])


def _in_clip_order(chunks: list[list[int]], stats: list[list[dict[str, Any]]]) -> list[Any]:
    """Per-chunk lists (chunks of `plan_batches`, longest first) back in the clips' order."""
    out: list[Any] = [None] * sum(len(c) for c in chunks)
    for chunk, part in zip(chunks, stats, strict=True):
        for i, item in zip(chunk, part, strict=True):
            out[i] = item
    return out
