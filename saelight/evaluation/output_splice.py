"""What the *model* outputs with an SAE spliced in: KL, CE recovered, agreement, transcripts.

Per batch of clips, the checkpoint's head model (`backbones.heads`) runs clean, with
hidden_states[L] mean-ablated, and with each SAE's reconstruction in its place (a forward
pre-hook on encoder layer L replacing the valid frames, as `evaluation.splice` does), plus the
reconstruction + error term as a check (its outputs must equal the clean ones). Whisper's
encoder runs once per variant and its decoder reads that encoder output.

With p the clean and q a variant's output distribution at position n — a valid CTC frame, a
decoder step teacher-forced on the clean greedy transcript, or a clip for a classifier — and
y_n the clean model's own prediction there (argmax frame or class, next greedy token):

    KL(clean ‖ variant) = mean_n Σ_v p_n(v) (log p_n(v) − log q_n(v))
    CE(variant)         = mean_n −log q_n(y_n)
    CE recovered        = (CE_mean − CE_sae) / (CE_mean − CE_clean)

CE recovered is SAELens' definition with mean-ablation as the zero point (1 = the SAE loses
nothing the output uses, 0 = as bad as replacing the layer by its mean). top-1 agreement =
mean_n [argmax q_n = y_n]; top-5 (classifiers) = the share of clips whose clean class is in the
variant's five most likely. WER and CER (jiwer) compare each variant's greedy transcript with the
clean one after `normalise_text`; clips whose clean transcript is empty are left out.
"""

from __future__ import annotations

import inspect
import re
import string
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from saelight.backbones.heads import OutputHead
from saelight.backbones.hf import HFBackbone
from saelight.evaluation.output_effects import ablation_variants, effects_summary, per_clip
from saelight.evaluation.splice import SpliceHook, sae_replace
from saelight.io.defaults import EFFECT_LATENTS, EVAL_SEED
from saelight.io.errors import SaelightError

Replace = Callable[[Tensor], Tensor]
MAX_NEW_TOKENS = 48
"""Greedy decoding stops at end-of-text or after this many tokens (Whisper)."""
_PUNCTUATION = re.compile(f"[{re.escape(string.punctuation)}]")


def normalise_text(text: str) -> str:
    """Lower case, punctuation removed, whitespace collapsed: what WER/CER compare."""
    return " ".join(_PUNCTUATION.sub(" ", text.lower()).split())


class Tally:
    """Summable output statistics of one variant against the clean run, in total and per clip."""

    def __init__(self) -> None:
        self.kl = self.ce = self.top1 = self.top5 = 0.0
        self.n = self.clips = 0
        self.texts: list[str] = []
        self._per_clip: dict[str, list[np.ndarray]] = {"ce": [], "kl": [], "rows": []}

    def update(self, clean: Tensor, out: Tensor, target: Tensor, clips: Tensor) -> None:
        """clean, out: (n, V) logits at the valid positions; target: (n,) clean predictions;
        clips: (n,) the held-out index of each position's clip."""
        log_p, log_q = F.log_softmax(clean.double(), -1), F.log_softmax(out.double(), -1)
        kl = (log_p.exp() * (log_p - log_q)).sum(-1)
        ce = -log_q.gather(1, target[:, None])[:, 0]
        self.kl += float(kl.sum())
        self.ce += float(ce.sum())
        self.top1 += float((out.argmax(-1) == target).sum())
        self.n += len(target)
        size = int(clips.max()) + 1 if len(clips) else 0
        for key, values in (("ce", ce), ("kl", kl), ("rows", torch.ones_like(ce))):
            self._per_clip[key].append(per_clip(values, clips, size))

    def clip_sums(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        """((clips,) per-clip sums of `key` ("ce" or "kl"), (clips,) positions per clip)."""
        size = max((len(a) for a in self._per_clip["rows"]), default=0)
        total = {k: np.zeros(size) for k in (key, "rows")}
        for k in total:
            for part in self._per_clip[k]:
                total[k][: len(part)] += part
        return total[key], total["rows"]

    def result(self) -> dict[str, float]:
        n = max(self.n, 1)
        out = {"kl": self.kl / n, "ce": self.ce / n, "top1_agreement": self.top1 / n}
        if self.clips:
            out["top5_agreement"] = self.top5 / self.clips
        return out


def output_fidelity(
    backbone: HFBackbone,
    head: OutputHead,
    saes: dict[str, Any],
    layer: int,
    waves: list[np.ndarray],
    mean: Tensor | None = None,
    max_new_tokens: int = MAX_NEW_TOKENS,
    sets: dict[str, list[dict[str, Any]]] | None = None,
    effect_latents: int = EFFECT_LATENTS,
    seed: int = EVAL_SEED,
) -> dict[str, Any]:
    """Output KL, CE recovered, agreement and transcripts of `saes` spliced in at `layer`, and
    the output effect of ablating latents (`output_effects`).

    Args:
        backbone: the encoder the SAEs were trained on (its family prepares the inputs).
        head: `backbone.output_head()`.
        saes: {name: SAE} trained on hidden_states[layer].
        layer: the spliced hidden-state index, 0 <= layer < N (the last hidden state feeds no
            layer of the head model's encoder, so it is not spliced here).
        waves: held-out clips, prepared by `backbone.prepare_waves`.
        mean: (D,) the mean-ablation vector (default: the mean valid row of layer L over
            `waves`, from one clean pass).
        max_new_tokens: greedy decoding cap (Whisper).
        sets: {SAE name: `ablation.latent_sets` entries (label, value, kind, latents)}: each
            set is ablated (set ablations get transcripts) and its top latents one by one.
        effect_latents: single latents ablated per SAE (`output_effects.single_latents`).
        seed: seeds the bootstrap resamples of the top-vs-random gaps.

    Returns:
        JSON-able dict: kind, architecture, clean ({ce}), mean (the variant's scores), saes
        ({name: kl, ce, ce_recovered, top1_agreement, [top5_agreement], [wer, cer],
        error_term_kl, and with `sets` latent_effects and ablation (`effects_summary`)}),
        examples (first clips' clean and spliced transcripts).
    """
    if not 0 <= layer < backbone.num_layers:
        raise SaelightError(f"output scoring splices layers 0..{backbone.num_layers - 1}")
    hook = SpliceHook(backbone)
    handle = head.layers[layer].register_forward_pre_hook(hook, with_kwargs=True, prepend=True)
    try:
        if mean is None:
            mean = _layer_mean(backbone, head, hook, waves)
        mean = mean.to(backbone.device)
        extra, singles = ablation_variants(saes, sets or {}, effect_latents, backbone.device)
        variants, tallies = _splice_outputs(
            backbone, head, hook, saes, waves, mean, max_new_tokens, extra
        )
        summary = _summary(head, saes, tallies)
        texts = head.kind != "classifier"

        def errors(variant: str) -> dict[str, float | None]:
            return transcript_errors(tallies["clean"].texts, tallies[variant].texts)

        effects = effects_summary(tallies, sets or {}, singles, seed, errors if texts else None)
        for name, row in effects.items():
            summary["saes"][name].update(row)
        return summary
    finally:
        handle.remove()


def _layer_mean(
    backbone: HFBackbone, head: OutputHead, hook: SpliceHook, waves: list[np.ndarray]
) -> Tensor:
    """(D,) mean of the valid rows the hook sees at layer L on a clean pass over `waves`."""
    total, n = None, 0
    for chunk in backbone.plan_batches([len(w) for w in waves]):
        part = [waves[i] for i in chunk]
        hook.lengths = [len(w) for w in part]
        inputs = {k: v.to(backbone.device) for k, v in backbone.family.features(part).items()}
        with torch.inference_mode():
            (head.encoder if head.kind == "seq2seq" else head.model)(**inputs)
        assert hook.seen is not None
        rows = hook.seen.double().sum(0)
        total, n = (rows if total is None else total + rows), n + len(hook.seen)
    assert total is not None
    return (total / max(n, 1)).float()


def _splice_outputs(
    backbone: HFBackbone,
    head: OutputHead,
    hook: SpliceHook,
    saes: dict[str, Any],
    waves: list[np.ndarray],
    mean: Tensor,
    max_new_tokens: int,
    ablations: dict[str, Replace],
) -> tuple[dict[str, Replace | None], dict[str, Tally]]:
    """The variants' passes (the hook is attached): their tallies. Single-latent ablations
    (`|latent<j>`) are scored without greedy transcripts (one decode per step is the cost)."""
    variants: dict[str, Replace | None] = {"clean": None, "mean": lambda r: mean.expand_as(r)}
    for name, sae in saes.items():
        variants[f"{name}|sae"] = sae_replace(sae, error=False)
        variants[f"{name}|sae+error"] = sae_replace(sae)
    variants.update(ablations)
    tallies = {name: Tally() for name in variants}
    for chunk in backbone.plan_batches([len(w) for w in waves]):
        part = [waves[i] for i in chunk]
        hook.lengths = [len(w) for w in part]
        inputs = {k: v.to(backbone.device) for k, v in backbone.family.features(part).items()}
        clips = torch.as_tensor(chunk, dtype=torch.long, device=backbone.device)
        with torch.inference_mode():
            _score_chunk(backbone, head, hook, inputs, clips, variants, tallies, max_new_tokens)
    return variants, tallies


def _score_chunk(
    backbone: HFBackbone,
    head: OutputHead,
    hook: SpliceHook,
    inputs: dict[str, Tensor],
    clips: Tensor,
    variants: dict[str, Replace | None],
    tallies: dict[str, Tally],
    max_new_tokens: int,
) -> None:
    """The clean pass, then one pass per variant, scored against it."""

    def run(replace: Replace | None) -> Any:
        hook.replace = replace
        try:
            if head.kind == "seq2seq":
                return head.encoder(**inputs).last_hidden_state
            return head.model(**inputs).logits.float()
        finally:
            hook.replace = None

    clean = run(None)
    if head.kind == "seq2seq":
        tokens, lengths = greedy_decode(head, clean, max_new_tokens)
        clean_logits, valid = teacher_forced(head, clean, tokens, lengths)
        target = tokens[:, 1:][valid]
        at = clips[:, None].expand_as(valid)[valid]
        for name, replace in variants.items():
            encoded = clean if replace is None else run(replace)
            logits, _ = teacher_forced(head, encoded, tokens, lengths)
            tallies[name].update(clean_logits[valid], logits[valid], target, at)
            if "|latent" in name:
                continue
            ids, n = greedy_decode(head, encoded, max_new_tokens) if replace else (tokens, lengths)
            tallies[name].texts += [
                head.decode_tokens(row[1:k].tolist()) for row, k in zip(ids, n, strict=True)
            ]
        return
    valid = _valid_positions(backbone, head, hook.lengths, clean)
    target = clean.argmax(-1)[valid]
    at = clips if valid.ndim == 1 else clips[:, None].expand_as(valid)[valid]
    for name, replace in variants.items():
        logits = clean if replace is None else run(replace)
        tallies[name].update(clean[valid], logits[valid], target, at)
        if head.kind == "classifier":
            top5 = logits.topk(min(5, logits.shape[-1]), -1).indices
            tallies[name].top5 += float((top5 == target[:, None]).any(-1).sum())
            tallies[name].clips += len(target)
        else:
            tallies[name].texts += ctc_transcripts(head, logits.argmax(-1), valid)


def _valid_positions(
    backbone: HFBackbone, head: OutputHead, lengths: list[int], logits: Tensor
) -> Tensor:
    """(b,) all True for a classifier; (b, t) the valid CTC frames."""
    if head.kind == "classifier":
        return torch.ones(len(lengths), dtype=torch.bool, device=logits.device)
    return backbone.family.frame_mask(lengths, logits.shape[1], logits.device)


def greedy_decode(
    head: OutputHead, encoded: Tensor, max_new_tokens: int
) -> tuple[Tensor, list[int]]:
    """(tokens (b, 1 + steps) from the decoder start token, each clip's length up to and
    including its end-of-text token): greedy, one step at a time on `encoded`, each step feeding
    only the new token with the decoder's key/value cache (9x faster than re-running the whole
    prefix at 48 steps, same tokens)."""
    config = head.model.config
    eos = int(config.eos_token_id)
    pad = int(config.pad_token_id if config.pad_token_id is not None else eos)
    steps = min(max_new_tokens, int(config.max_target_positions) - 1)
    tokens = torch.full(
        (len(encoded), 1), int(config.decoder_start_token_id), device=encoded.device
    )
    done = torch.zeros(len(encoded), dtype=torch.bool, device=encoded.device)
    lengths = [steps + 1] * len(encoded)
    # transformers 5 names the decoder cache `cache`, 4.x `past_key_values` (argument and output)
    key = (
        "cache"
        if "cache" in inspect.signature(head.model.forward).parameters
        else "past_key_values"
    )
    cache = None
    for step in range(steps):
        out = head.model(
            encoder_outputs=(encoded,), decoder_input_ids=tokens[:, -1:], use_cache=True,
            **{key: cache},
        )  # fmt: skip
        cache = getattr(out, key)
        nxt = out.logits[:, -1].argmax(-1).masked_fill(done, pad)
        tokens = torch.cat([tokens, nxt[:, None]], 1)
        for i in torch.nonzero((nxt == eos) & ~done).flatten().tolist():
            lengths[i] = step + 2
        done |= nxt == eos
        if bool(done.all()):
            break
    return tokens, lengths


def teacher_forced(
    head: OutputHead, encoded: Tensor, tokens: Tensor, lengths: list[int]
) -> tuple[Tensor, Tensor]:
    """(logits (b, s − 1, V) predicting tokens[:, 1:], mask of the positions inside each clip's
    clean transcript)."""
    logits = head.model(encoder_outputs=(encoded,), decoder_input_ids=tokens[:, :-1]).logits
    steps = torch.arange(tokens.shape[1] - 1, device=tokens.device)
    valid = steps[None, :] < (torch.tensor(lengths, device=tokens.device)[:, None] - 1)
    return logits.float(), valid


def ctc_transcripts(head: OutputHead, ids: Tensor, valid: Tensor) -> list[str]:
    """Greedy CTC text per clip: the tokenizer's decode (it merges repeats and drops the blank),
    else repeats merged, blanks dropped and ids listed."""
    blank = int(head.model.config.pad_token_id or 0)
    out = []
    for row, keep in zip(ids, valid, strict=True):
        frames = row[keep].tolist()
        if head.tokenizer is not None:
            out.append(str(head.tokenizer.decode(frames)))
            continue
        merged = [t for i, t in enumerate(frames) if (i == 0 or t != frames[i - 1]) and t != blank]
        out.append(" ".join(str(t) for t in merged))
    return out


def transcript_errors(reference: list[str], hypothesis: list[str]) -> dict[str, float | None]:
    """WER and CER (jiwer) of normalised transcripts, over clips with a non-empty reference."""
    import jiwer

    pairs = [
        (normalise_text(r), normalise_text(h)) for r, h in zip(reference, hypothesis, strict=True)
    ]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return {"wer": None, "cer": None}
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


def _summary(head: OutputHead, saes: dict[str, Any], tallies: dict[str, Tally]) -> dict[str, Any]:
    clean, mean = tallies["clean"].result(), tallies["mean"].result()
    texts = head.kind != "classifier"
    rows: dict[str, Any] = {}
    for name in saes:
        row = tallies[f"{name}|sae"].result()
        gap = mean["ce"] - clean["ce"]
        row["ce_recovered"] = (mean["ce"] - row["ce"]) / gap if abs(gap) > 1e-12 else None
        row["error_term_kl"] = tallies[f"{name}|sae+error"].result()["kl"]
        if texts:
            row.update(transcript_errors(tallies["clean"].texts, tallies[f"{name}|sae"].texts))
        rows[name] = row
    if texts:
        mean.update(transcript_errors(tallies["clean"].texts, tallies["mean"].texts))
    examples = [
        {"clean": tallies["clean"].texts[i], **{n: tallies[f"{n}|sae"].texts[i] for n in saes}}
        for i in range(min(3, len(tallies["clean"].texts)))
    ]
    return {
        "kind": head.kind,
        "architecture": head.architecture,
        "clean": {"ce": clean["ce"]},
        "mean": mean,
        "saes": rows,
        "examples": examples,
    }
