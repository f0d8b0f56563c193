"""Random baselines: the same SAE at the same width and k with part of it frozen at its random init.

SAEs whose decoder or encoder stays at random initialisation score almost as well as trained
ones on several interpretability benchmarks (arXiv 2602.14111), so a verdict on a trained SAE
means something only beside the same verdict on its random baseline. A baseline is built by the
grid exactly like its SAE (same class, init args and sparsity), trained on the same batches and
evaluated through the same path; it only keeps its frozen tensors bit for bit (no gradient, no
decoder renormalisation, no dead-latent resampling).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from saelight.sae.base import SAE

BASELINES: dict[str, tuple[str, ...]] = {
    "frozen_decoder": ("W_dec",),
    "frozen_encoder": ("W_enc", "b_enc"),
    "random": ("W_enc", "b_enc", "W_dec"),
}
"""Baseline kind -> the tensors it keeps at their random init.

frozen_decoder: a random unit-norm dictionary; the encoder (and b_dec) learn to use it.
frozen_encoder: random encoder directions; the decoder (and b_dec) learn to reconstruct from them.
random: nothing learned but b_dec (set from the data like the SAE's): an untrained SAE at the
    same k (W_enc = W_dec.T under the default `encoder_init_from_decoder`).
"""


def check_baselines(kinds: list[str]) -> list[str]:
    """`kinds` when each is a known baseline, in order, without repeats; else a ValueError."""
    unknown = [k for k in kinds if k not in BASELINES]
    if unknown:
        raise ValueError(f"model.baselines: unknown {unknown}; choose from {sorted(BASELINES)}")
    return list(dict.fromkeys(kinds))


def make_baseline(sae: SAE, kind: str) -> SAE:
    """Freezes `sae`'s `BASELINES[kind]` tensors in place and tags it (`sae.baseline`)."""
    for name in BASELINES[kind]:
        getattr(sae, name).requires_grad_(False)
    sae.baseline = kind
    return sae
