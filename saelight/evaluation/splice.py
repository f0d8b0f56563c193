"""Splicing: run the backbone with hidden_states[L] replaced by an SAE's reconstruction.

Layer index L follows `saelight.backbones.hf` (0 = input of the first encoder layer, i = output of
encoder layer i). For L < N the replacement is a forward pre-hook on encoder layer L (the module
that reads hidden_states[L]), so every later layer and the final one see the spliced value; for
L = N nothing runs after it, and the replacement is applied to the final hidden states directly.
Only valid frames are replaced (the family's `frame_mask`, as extraction keeps them); padding
frames keep whatever the model computes there. Batches, inputs and masks come from the backbone
itself (`HFBackbone.plan_batches` / `forward_hidden`): no second extraction path.

Variants, for x the valid rows of hidden_states[L], z = encode(x), x̂ = decode(z):

* ``sae``: x̂ (reconstruction only);
* ``sae+error``: x̂ + (x − x̂), summed in float64 so it is x bit for bit: the built-in check
  that the hook changes nothing else (its downstream layers must equal the clean run's);
* ``mean``: x̄, the mean valid row of layer L over the clips given (the mean-ablation baseline);
* ablations: decode(z with latents S zeroed) + (x − x̂), i.e. x − Σ_{j∈S} z_j W_dec[j]
  (`saelight.evaluation.ablation`).

Fidelity at a later layer l, with h the clean and h' the spliced valid rows of layer l:
FVU_l = Σ‖h − h'‖² / Σ‖h − h̄‖², cos_l = mean_n cos(h_n, h'_n), and
fidelity_l = (d_mean − d_sae) / d_mean = 1 − SSE_sae,l / SSE_mean,l with SSE = Σ‖h − h'‖².
"fidelity recovered" is fidelity at the final layer N: 1 = the SAE loses nothing the model uses
later, 0 = no better than mean-ablation (negative: worse).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from saelight.backbones.base import Backbone
from saelight.backbones.hf import HFBackbone
from saelight.evaluation.ablation import CrossFitProbe, ProbeTally, latent_sets
from saelight.io.defaults import DATA_SEED
from saelight.io.errors import SaelightError

Replace = Callable[[Tensor], Tensor]
"""(n, D) valid rows of hidden_states[L] -> (n, D) rows that replace them."""


def encoder_layers(backbone: Backbone) -> nn.ModuleList:
    """The backbone's transformer layers (`encoder.layers`, Whisper's `layers`, AST's `layer`)."""
    if not isinstance(backbone, HFBackbone):
        raise SaelightError(
            f"splice needs a Hugging Face backbone (HFBackbone), not {type(backbone).__name__}"
        )
    net = backbone.net
    for owner in (getattr(net, "encoder", None), net):
        for name in ("layers", "layer"):
            layers = getattr(owner, name, None)
            if isinstance(layers, nn.ModuleList) and len(layers) == backbone.num_layers:
                return layers
    raise SaelightError(
        f"cannot splice {backbone.model_class}: found no list of its {backbone.num_layers} "
        "encoder layers (encoder.layers, layers or encoder.layer)"
    )


class SpliceHook:
    """Forward pre-hook on encoder layer L: replaces the valid rows of its input hidden states.

    Attributes:
        replace: the current variant (None: leave the input as it is).
        lengths: sample lengths of the clips of the current forward pass (for the frame mask).
        seen: (n, D) float32 valid rows of hidden_states[L] the hook saw in the last pass.
    """

    def __init__(self, backbone: HFBackbone) -> None:
        self.family = backbone.family
        self.replace: Replace | None = None
        self.lengths: list[int] = []
        self.seen: Tensor | None = None

    def __call__(
        self, module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        x = args[0] if args else kwargs["hidden_states"]
        mask = self.family.frame_mask(self.lengths, x.shape[1], x.device)
        self.seen = x[mask].float()
        if self.replace is None:
            return None
        out = x.clone()
        out[mask] = self.replace(self.seen).to(x.dtype)
        if args:
            return (out, *args[1:]), kwargs
        return args, {**kwargs, "hidden_states": out}


@contextmanager
def attached(backbone: HFBackbone, layer: int) -> Iterator[SpliceHook]:
    """The hook on encoder layer `layer` (none for the last hidden state), with `backbone.layers`
    widened to layer..N for the duration, so `_forward` returns every later hidden state."""
    if not 0 <= layer <= backbone.num_layers:
        raise SaelightError(f"layer {layer} is outside 0..{backbone.num_layers}")
    hook, saved = SpliceHook(backbone), backbone.layers
    handle = None
    if layer < backbone.num_layers:
        module = encoder_layers(backbone)[layer]
        handle = module.register_forward_pre_hook(hook, with_kwargs=True, prepend=True)
    backbone.layers = list(range(layer, backbone.num_layers + 1))
    try:
        yield hook
    finally:
        backbone.layers = saved
        if handle is not None:
            handle.remove()


def run_chunk(
    backbone: HFBackbone,
    hook: SpliceHook,
    layer: int,
    waves: list[np.ndarray],
    replace: Replace | None,
) -> tuple[dict[int, Tensor], Tensor]:
    """({l: (n, D) float32 valid rows} for l = layer..N, mask (b, t)) of one forward pass."""
    hook.lengths, hook.replace = [len(w) for w in waves], replace
    with torch.inference_mode():
        states, mask = backbone.forward_hidden(waves)
        rows = {i: h[mask].float() for i, h in states.items()}
        if layer == backbone.num_layers and replace is not None:
            rows[layer] = replace(rows[layer])  # nothing runs after the last layer
    hook.replace = None
    return rows, mask


def sae_replace(sae: Any, drop: Tensor | None = None, error: bool = True) -> Replace:
    """x -> decode(z with latents `drop` zeroed) + (x − x̂) (float64 sum), or x̂ if not `error`."""

    def replace(x: Tensor) -> Tensor:
        z = sae.encode(x)
        x_hat = sae.decode(z).float()
        if not error:
            return x_hat
        kept = x_hat
        if drop is not None and len(drop):
            z = z.clone()
            z[:, drop] = 0
            kept = sae.decode(z).float()
        return (kept.double() + (x.double() - x_hat.double())).float()

    return replace


class LayerStats:
    """Summable statistics of spliced vs clean rows per later layer: SSE, Σcos, n."""

    def __init__(self) -> None:
        self.sse: dict[int, float] = {}
        self.cos: dict[int, float] = {}
        self.n = 0
        self.max_abs = 0.0

    def update(
        self, clean: dict[int, Tensor], spliced: dict[int, Tensor], layers: list[int]
    ) -> None:
        for i in layers:
            h, g = clean[i].double(), spliced[i].double()
            d = h - g
            self.sse[i] = self.sse.get(i, 0.0) + float((d**2).sum())
            cos = torch.nn.functional.cosine_similarity(h, g, dim=-1, eps=1e-8).sum()
            self.cos[i] = self.cos.get(i, 0.0) + float(cos)
            self.max_abs = max(self.max_abs, float(d.abs().max()) if len(d) else 0.0)
        self.n += len(clean[layers[0]])


class CleanStats:
    """Per-layer Σh, Σh² of the clean rows: the FVU denominator Σ_i (S2_i − S1_i² / n)."""

    def __init__(self) -> None:
        self.s: dict[int, Tensor] = {}
        self.ss: dict[int, Tensor] = {}
        self.n = 0

    def update(self, clean: dict[int, Tensor], layers: list[int]) -> None:
        for i in layers:
            h = clean[i].double().cpu()
            self.s[i] = self.s.get(i, 0) + h.sum(0)
            self.ss[i] = self.ss.get(i, 0) + (h**2).sum(0)
        self.n += len(clean[layers[0]])

    def variance(self, i: int) -> float:
        return float((self.ss[i] - self.s[i] ** 2 / self.n).sum())


def _per_layer(stats: LayerStats, clean: CleanStats, mean: LayerStats | None) -> dict[str, Any]:
    out = {}
    for i in sorted(stats.sse):
        row = {"fvu": stats.sse[i] / clean.variance(i), "cosine": stats.cos[i] / stats.n}
        if mean is not None:
            row["fidelity"] = 1.0 - stats.sse[i] / mean.sse[i] if mean.sse[i] > 0 else float("nan")
        out[str(i)] = row
    return out


def _clean_pass(
    backbone: HFBackbone,
    hook: SpliceHook,
    layer: int,
    waves: list[np.ndarray],
    probe_layer: int,
    progress: Any = None,
) -> tuple[Tensor, Tensor, np.ndarray, float]:
    """(x (n, D) rows of layer L, probe-layer rows (n, D), clip of each row, hook check)."""
    xs, probes, clips, check = [], [], [], 0.0
    for chunk in backbone.plan_batches([len(w) for w in waves]):
        rows, mask = run_chunk(backbone, hook, layer, [waves[i] for i in chunk], None)
        seen = hook.seen if hook.seen is not None and layer < backbone.num_layers else rows[layer]
        check = max(check, float((seen - rows[layer]).abs().max()))
        xs.append(rows[layer].cpu())
        probes.append(rows[probe_layer].cpu())
        clips.append(np.repeat(chunk, mask.sum(1).cpu().numpy()))
        if progress is not None:
            progress.update(len(chunk))
    return torch.cat(xs), torch.cat(probes), np.concatenate(clips), check


def splice_fidelity(
    backbone: HFBackbone,
    saes: Any,
    layer: int,
    waves: list[np.ndarray],
    labels: dict[str, list[str]] | None = None,
    mean: Tensor | None = None,
    probe_layer: int | None = None,
    k_ablate: int = 0,
    seed: int = DATA_SEED,
    progress: Any = None,
) -> dict[str, Any]:
    """Downstream fidelity, probe drops and latent ablations of SAEs spliced in at `layer`.

    Args:
        backbone: the frozen HF encoder the SAEs were trained on.
        saes: one SAE or {name: SAE} (anything with `encode`/`decode` on raw activations), all
            trained on hidden_states[layer].
        layer: the spliced hidden-state index L (0 = embeddings, N = last layer).
        waves: held-out 1-D float32 clips at `backbone.sample_rate`.
        labels: {label: value per clip}, for the probes and the ablations (None: neither).
        mean: (D,) the mean-ablation vector (default: the mean valid row of layer L over `waves`).
        probe_layer: hidden state the probes read, > L (default: the last, N).
        k_ablate: latents ablated per label value (0: no ablation).
        seed: seed of the probe folds and of the random control latents.
        progress: told `update(n)` after each chunk of n clips of each of the two passes.

    Returns:
        JSON-able dict: layer, num_layers, n_clips, n_frames, checks, mean (per_layer), saes
        ({name: per_layer, fidelity_recovered, reconstruction, error_term_max_abs, probe,
        ablation}); per_layer keys are later layers (str), each with fvu, cosine, fidelity.
    """
    saes = {"sae": saes} if hasattr(saes, "encode") else dict(saes)
    waves = backbone.prepare_waves(waves)
    n_layers = backbone.num_layers
    later = list(range(layer + 1, n_layers + 1)) or [n_layers]
    probe_layer = n_layers if probe_layer is None else probe_layer
    if probe_layer not in later:
        raise SaelightError(f"probe_layer {probe_layer} must be one of the later layers {later}")
    for sae in saes.values():
        if hasattr(sae, "to"):
            sae.to(backbone.device).eval()
    with attached(backbone, layer) as hook:
        x, probe_x, clip_of, hook_check = _clean_pass(
            backbone, hook, layer, waves, probe_layer, progress
        )
        mean = (x.mean(0) if mean is None else mean.float()).to(backbone.device)
        clip_labels = {k: np.asarray(v).astype(str) for k, v in (labels or {}).items()}
        frame_labels = {k: v[clip_of] for k, v in clip_labels.items()}
        probe = CrossFitProbe(probe_x.numpy(), clip_of, clip_labels, seed) if labels else None
        variants: dict[str, Replace] = {"mean": lambda r: mean.expand_as(r).clone()}
        sets: dict[str, list[dict[str, Any]]] = {}
        for name, sae in saes.items():
            variants[f"{name}|sae"] = sae_replace(sae, error=False)
            variants[f"{name}|sae+error"] = sae_replace(sae)
            if k_ablate > 0 and frame_labels:
                sets[name] = latent_sets(sae, x, frame_labels, k_ablate, seed)
                for j, s in enumerate(sets[name]):
                    drop = torch.tensor(s["latents"], dtype=torch.long, device=backbone.device)
                    variants[f"{name}|ablate{j}"] = sae_replace(sae, drop)
        stats, clean, tallies = _spliced_pass(
            backbone, hook, layer, waves, later, variants, probe, probe_layer, progress
        )
    recon = {name: _reconstruction(sae, x.to(backbone.device)) for name, sae in saes.items()}
    return _summary(layer, n_layers, waves, x, hook_check, stats, clean, tallies, saes, sets, recon)


def _spliced_pass(
    backbone: HFBackbone,
    hook: SpliceHook,
    layer: int,
    waves: list[np.ndarray],
    later: list[int],
    variants: dict[str, Replace],
    probe: CrossFitProbe | None,
    probe_layer: int,
    progress: Any = None,
) -> tuple[dict[str, LayerStats], CleanStats, dict[str, ProbeTally]]:
    """Per chunk: the clean pass, then one pass per variant, compared layer by layer."""
    stats = {name: LayerStats() for name in variants}
    tallies = {name: ProbeTally() for name in ["clean", *variants]}
    clean_stats = CleanStats()
    for chunk in backbone.plan_batches([len(w) for w in waves]):
        part = [waves[i] for i in chunk]
        clean, mask = run_chunk(backbone, hook, layer, part, None)
        clean_stats.update(clean, later)
        clips = np.repeat(chunk, mask.sum(1).cpu().numpy())
        if probe is not None:
            tallies["clean"].update(probe, clean[probe_layer], clips)
        for name, replace in variants.items():
            spliced, _ = run_chunk(backbone, hook, layer, part, replace)
            stats[name].update(clean, spliced, later)
            if probe is not None:
                tallies[name].update(probe, spliced[probe_layer], clips)
        if progress is not None:
            progress.update(len(chunk))
    return stats, clean_stats, tallies


def _reconstruction(sae: Any, x: Tensor) -> dict[str, float]:
    """FVU and cosine of the SAE on the clean rows of layer L itself."""
    with torch.inference_mode():
        x_hat = torch.cat([sae.decode(sae.encode(b)).float() for b in x.split(4096)])
    d = x.double() - x_hat.double()
    var = float(((x.double() - x.double().mean(0)) ** 2).sum())
    cos = torch.nn.functional.cosine_similarity(x.double(), x_hat.double(), dim=-1).mean()
    return {"fvu": float((d**2).sum()) / var, "cosine": float(cos)}


def _summary(
    layer: int,
    n_layers: int,
    waves: list[np.ndarray],
    x: Tensor,
    hook_check: float,
    stats: dict[str, LayerStats],
    clean: CleanStats,
    tallies: dict[str, ProbeTally],
    saes: dict[str, Any],
    sets: dict[str, list[dict[str, Any]]],
    recon: dict[str, dict[str, float]],
) -> dict[str, Any]:
    mean = stats["mean"]
    base = tallies["clean"]
    out: dict[str, Any] = {
        "layer": layer,
        "num_layers": n_layers,
        "n_clips": len(waves),
        "n_frames": int(len(x)),
        "checks": {"hook_matches_layer_max_abs": hook_check},
        "mean": {"per_layer": _per_layer(mean, clean, None), "probe": base.drops(tallies["mean"])},
        "saes": {},
    }
    for name in saes:
        sae_stats = stats[f"{name}|sae"]
        per_layer = _per_layer(sae_stats, clean, mean)
        err = stats[f"{name}|sae+error"]
        row = {
            "per_layer": per_layer,
            "fidelity_recovered": per_layer[str(n_layers)]["fidelity"],
            "d_sae": sae_stats.sse[n_layers] / max(sae_stats.n, 1),
            "d_mean": mean.sse[n_layers] / max(mean.n, 1),
            "reconstruction": recon[name],
            "error_term_max_abs": err.max_abs,
            "probe": base.drops(tallies[f"{name}|sae"]),
            "ablation": [],
        }
        for j, s in enumerate(sets.get(name, [])):
            row["ablation"].append({**s, **base.ablation_drops(tallies[f"{name}|ablate{j}"], s)})
        out["saes"][name] = row
    return out
