"""When a latent counts as dead: the training rows it may go without firing, per SAE.

The window decides when AuxK starts working on a latent and what `train/dead_fraction` logs. A
fixed count (100 000 rows, as often used) is never reached by a clip-level run of a few thousand
rows, so AuxK would never start there; the default follows each SAE's k/d_sae instead.
"""

from __future__ import annotations

from saelight.sae.base import SAE

DEAD_AFTER_FIRINGS = 100
"""Expected firings of an average latent in the default dead window (`dead_window`)."""
DEAD_AFTER_SAMPLES_UNKNOWN = 100_000
"""The default dead window of an SAE without a target sparsity (ReLU, JumpReLU: L1/L0-tuned)."""


def dead_window(sae: SAE, dead_after_samples: int | None) -> int:
    """Training rows without a firing after which a latent of `sae` counts as dead.

    `dead_after_samples` if given; else DEAD_AFTER_FIRINGS / (1 - s) rows for a target sparsity
    s (= 100 · d_sae / k for the TopK family: a latent firing at 1 % of the average rate is
    still alive, one at the average rate misses that window with probability e^-100).
    """
    if dead_after_samples is not None:
        return dead_after_samples
    sparsity = sae.target_sparsity
    if sparsity is None or sparsity >= 1:
        return DEAD_AFTER_SAMPLES_UNKNOWN
    return max(1, round(DEAD_AFTER_FIRINGS / (1.0 - sparsity)))
