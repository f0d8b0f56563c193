"""Clip-level pooling of frame-level hidden states.

The paper (Mariotte et al. 2025, arXiv:2509.24793) mean-pools each layer's (T, D) output over time
into one vector per clip. Here the mean runs over valid frames only, so the padding that a batch or
a fixed-length feature extractor adds never leaks into a clip's vector.
"""

from __future__ import annotations

import torch


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid frames of each clip: ``sum_t mask[b,t] h[b,t] / sum_t mask[b,t]``.

    Args:
        hidden: (B, T, D) frame-level hidden states.
        mask: (B, T) bool (or 0/1) marking valid, non-padding frames.

    Returns:
        (B, D) pooled vectors, in `hidden`'s dtype.

    Raises:
        ValueError: if shapes disagree or a clip has no valid frame.

    Example:
        >>> h = torch.tensor([[[1.0], [3.0], [100.0]]])
        >>> mean_pool(h, torch.tensor([[True, True, False]]))
        tensor([[2.]])
    """
    if hidden.ndim != 3 or mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"hidden (B, T, D) and mask (B, T) disagree: {tuple(hidden.shape)} vs "
            f"{tuple(mask.shape)}"
        )
    weights = mask.to(hidden.dtype)
    counts = weights.sum(dim=1, keepdim=True)
    if bool((counts == 0).any()):
        raise ValueError("mask has a clip with no valid frame; mean pooling is undefined for it")
    return torch.einsum("btd,bt->bd", hidden, weights) / counts
