"""A grid of SAEs (cache layers × SAE specs × sparsities) with stable names for logs and exports."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from saelight.sae.base import SAE
from saelight.sae.baselines import check_baselines, make_baseline
from saelight.sae.spec import build_at_sparsity


@dataclass(frozen=True)
class GridEntry:
    """One SAE of the grid.

    Attributes:
        layer: backbone layer (hidden_states index) the SAE reads.
        layer_pos: position of that layer in the cache rows' layer axis.
        name: spec name, e.g. "topk_s90" (sparsity 90 %) or "relu".
        key: the ModuleDict key (no dots), e.g. "L03_topk_s90".
        sparsity: the grid's sparsity for this SAE (None when the spec sets its own knob).
        baseline: a random baseline's kind (`saelight.sae.baselines`), else None.
        replicate_of: for seed n >= 1 of `model.seeds`, the name of seed 0's SAE.
    """

    layer: int
    layer_pos: int
    name: str
    key: str
    sparsity: float | None = None
    baseline: str | None = None
    replicate_of: str | None = None

    @property
    def prefix(self) -> str:
        """Log prefix `<layer>/<name>`, e.g. "L3/topk_s90"."""
        return f"L{self.layer}/{self.name}"


def spec_name(sae: SAE, sparsity: float | None) -> str:
    """`<architecture>_s<grid sparsity %>`, else `<architecture>_k<k>`, else the architecture."""
    if sparsity is not None:
        return f"{sae.architecture}_s{round(sparsity * 100, 2):g}"
    k = sae.identity()["k"]
    return f"{sae.architecture}_k{k}" if k is not None else sae.architecture


def build_grid(
    saes: list[Callable[..., SAE]],
    sparsities: list[float] | None,
    d_in: int,
    layers: list[int],
    baselines: list[str] | None = None,
    seeds: int = 1,
) -> tuple[nn.ModuleDict, list[GridEntry]]:
    """Instantiate every (layer, spec, sparsity) SAE; each SAE's class maps a grid sparsity to
    its own knob (k for the TopK family) or refuses it, naming the field to set instead.

    Each SAE comes `seeds` times (seed n >= 1 named `<name>_seed<n>`, its own random init), and
    each of those with one random baseline per kind of `baselines` (`<name>_<kind>`): built by
    the same spec at the same sparsity, so at the same width and k."""
    if not saes:
        raise ValueError("model.saes must list at least one SAE (class_path + init_args)")
    if d_in < 1:
        raise ValueError(f"model.d_in must be >= 1 (linked from the cache), got {d_in}")
    if seeds < 1:
        raise ValueError(f"model.seeds must be >= 1, got {seeds}")
    kinds = check_baselines(baselines or [])
    modules, entries, seen = nn.ModuleDict(), [], set()

    def add(layer: int, pos: int, sae: SAE, name: str, sparsity: float | None, **tags: Any) -> str:
        base, n = name, 2
        while (layer, name) in seen:
            name, n = f"{base}_{n}", n + 1
        seen.add((layer, name))
        key = f"L{layer:02d}_{name}".replace(".", "p")
        modules[key] = sae
        entries.append(GridEntry(layer, pos, name, key, sparsity, **tags))
        return name

    for pos, layer in enumerate(layers):
        for make in saes:
            for sparsity in sparsities or [None]:
                first = None
                for seed in range(seeds):
                    sae = build_at_sparsity(make, d_in, sparsity)
                    name = spec_name(sae, sparsity) + (f"_seed{seed}" if seed else "")
                    name = add(layer, pos, sae, name, sparsity, replicate_of=first)
                    first = first or name
                    for kind in kinds:
                        twin = make_baseline(build_at_sparsity(make, d_in, sparsity), kind)
                        of = f"{first}_{kind}" if seed else None
                        add(
                            layer,
                            pos,
                            twin,
                            f"{name}_{kind}",
                            sparsity,
                            baseline=kind,
                            replicate_of=of,
                        )
    return modules, entries
