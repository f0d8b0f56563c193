"""Sparsity of SAE codes: L0 (with its per-row histogram) and per-latent firing density.

A latent *fires* on a row when its code is nonzero (``z != 0``). States are integer counts, so
batches and DDP ranks add up exactly.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def _codes(z: Tensor, d_sae: int | None = None) -> Tensor:
    """Flatten ``z: (..., d_sae)`` to ``(rows, d_sae)``, checking ``d_sae`` when given."""
    if z.ndim == 0:
        raise ValueError("z must have at least one dimension (..., d_sae)")
    if d_sae is not None and z.shape[-1] != d_sae:
        raise ValueError(f"z has {z.shape[-1]} latents, expected d_sae={d_sae}")
    return z.detach().reshape(-1, z.shape[-1])


def _l0_update(z: Tensor, d_sae: int) -> tuple[Tensor, int, Tensor]:
    """Return (Σ_n L0_n, rows, histogram of L0_n with d_sae + 1 bins)."""
    counts = (_codes(z, d_sae) != 0).sum(-1)
    return counts.sum(), counts.shape[0], torch.bincount(counts, minlength=d_sae + 1)


def _l0_compute(l0_sum: Tensor, n: Tensor | int) -> Tensor:
    return l0_sum.double().div(n).float()


def l0(z: Tensor) -> Tensor:
    r"""Mean number of nonzero codes per row.

    .. math:: L_0 = \frac{1}{N}\sum_{n=1}^{N} \#\{i : z_{ni} \neq 0\}

    For a TopK SAE this is at most ``k``; it is lower when fewer than ``k`` pre-activations are
    positive.

    Args:
        z: codes, ``(..., d_sae)``.

    Returns:
        Scalar float32 tensor.

    Example:
        >>> l0(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]))
        tensor(1.5000)
    """
    z = _codes(z)
    return _l0_compute(*_l0_update(z, z.shape[-1])[:2])


def l0_histogram(z: Tensor) -> Tensor:
    """Number of rows with each L0 value: entry ``c`` counts rows with exactly ``c`` nonzero codes.

    Args:
        z: codes, ``(..., d_sae)``.

    Returns:
        Long tensor ``(d_sae + 1,)``.

    Example:
        >>> l0_histogram(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]))
        tensor([0, 1, 1, 0])
    """
    z = _codes(z)
    return _l0_update(z, z.shape[-1])[2]


class L0(Metric):
    """Streaming :func:`l0` plus the histogram of per-row L0 counts (:meth:`histogram`).

    Args:
        d_sae: number of latents (fixes the histogram length, ``d_sae + 1``).

    Example:
        >>> metric = L0(d_sae=3)
        >>> metric.update(torch.tensor([[0.0, 1.0, 2.0]]))
        >>> metric.update(torch.tensor([[0.0, 0.0, 3.0]]))
        >>> metric.compute()
        tensor(1.5000)
        >>> metric.histogram()
        tensor([0, 1, 1, 0])
    """

    is_differentiable = False
    higher_is_better = None  # lower is sparser, but the target is the configured k, not 0
    full_state_update = False

    l0_sum: Tensor
    n: Tensor
    hist: Tensor

    def __init__(self, d_sae: int, **kwargs) -> None:
        super().__init__(**kwargs)
        if d_sae < 1:
            raise ValueError(f"d_sae must be a positive integer, got {d_sae}")
        self.d_sae = d_sae
        self.add_state("l0_sum", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("hist", torch.zeros(d_sae + 1, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, z: Tensor) -> None:
        """Add a batch of codes ``z: (..., d_sae)``."""
        l0_sum, n, hist = _l0_update(z, self.d_sae)
        self.l0_sum += l0_sum
        self.n += n
        self.hist += hist

    def compute(self) -> Tensor:
        return _l0_compute(self.l0_sum, self.n)

    def histogram(self) -> Tensor:
        """Rows seen with each L0 value, ``(d_sae + 1,)`` long tensor (summed over DDP ranks)."""
        with self.sync_context():
            return self.hist.clone()


def _feature_density_update(z: Tensor, d_sae: int) -> tuple[Tensor, int]:
    """Return (per-latent firing counts ``(d_sae,)``, rows)."""
    z = _codes(z, d_sae)
    return (z != 0).sum(0), z.shape[0]


def _feature_density_compute(
    fires: Tensor, n: Tensor | int, dense_threshold: float
) -> dict[str, Tensor]:
    density = fires.double().div(n)
    return {
        "dead_fraction": (fires == 0).double().mean().float(),
        "dead_floor": (1 - density.mean()).pow(n).float(),
        "dense_fraction": (density > dense_threshold).double().mean().float(),
        "density": density.float(),
    }


def feature_density(z: Tensor, dense_threshold: float = 0.1) -> dict[str, Tensor]:
    r"""Per-latent firing frequency and the fractions of dead and dense latents.

    .. math:: \rho_i = \frac{1}{N}\#\{n : z_{ni} \neq 0\}, \quad
              \text{dead} = \frac{\#\{i : \rho_i = 0\}}{d_{sae}}, \quad
              \text{dense} = \frac{\#\{i : \rho_i > \tau\}}{d_{sae}}

    "Dead" means never fired on the rows seen (so it depends on how much data was seen):
    ``dead_floor`` = (1 − ρ̄)^N, ρ̄ the mean of ρ_i, is the dead fraction expected on these N rows
    if every latent fired at the mean rate. At 99 % sparsity on 100 rows it is 0.37, so a
    dead fraction near it says "too few rows to tell", not "collapsed".

    Args:
        z: codes, ``(..., d_sae)``.
        dense_threshold: τ, a latent firing on more than this fraction of rows is dense.

    Returns:
        ``{"dead_fraction", "dead_floor", "dense_fraction": scalars, "density": (d_sae,)}``,
        float32.

    Example:
        >>> out = feature_density(torch.tensor([[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]), 0.5)
        >>> out["density"], out["dead_fraction"], out["dense_fraction"]
        (tensor([0.0000, 0.5000, 1.0000]), tensor(0.3333), tensor(0.3333))
    """
    z = _codes(z)
    return _feature_density_compute(*_feature_density_update(z, z.shape[-1]), dense_threshold)


def log10_density(density: Tensor, eps: float = 1e-10) -> Tensor:
    r"""``log10(density + eps)``, the x-axis of the usual feature-density histogram.

    Dead latents land at ``log10(eps)`` (−10 by default) instead of ``-inf``.

    Args:
        density: per-latent firing frequency in [0, 1].
        eps: floor added before the log.

    Example:
        >>> log10_density(torch.tensor([0.0, 0.01, 1.0]))
        tensor([-10.,  -2.,   0.])
    """
    return torch.log10(density + eps)


class FeatureDensity(Metric):
    """Streaming :func:`feature_density`: per-latent firing counts over all rows seen.

    Args:
        d_sae: number of latents.
        dense_threshold: a latent firing on more than this fraction of rows counts as dense.

    Example:
        >>> metric = FeatureDensity(d_sae=3, dense_threshold=0.5)
        >>> metric.update(torch.tensor([[0.0, 1.0, 2.0]]))
        >>> metric.update(torch.tensor([[0.0, 0.0, 3.0]]))
        >>> metric.compute()["dead_fraction"]
        tensor(0.3333)
    """

    is_differentiable = False
    higher_is_better = None  # a dict of diagnostics: fewer dead and dense latents is better
    full_state_update = False

    fires: Tensor
    n: Tensor

    def __init__(self, d_sae: int, dense_threshold: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        if d_sae < 1:
            raise ValueError(f"d_sae must be a positive integer, got {d_sae}")
        if not 0.0 <= dense_threshold <= 1.0:
            raise ValueError(f"dense_threshold must be in [0, 1], got {dense_threshold}")
        self.d_sae = d_sae
        self.dense_threshold = dense_threshold
        self.add_state("fires", torch.zeros(d_sae, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, z: Tensor) -> None:
        """Add a batch of codes ``z: (..., d_sae)``."""
        fires, n = _feature_density_update(z, self.d_sae)
        self.fires += fires
        self.n += n

    def compute(self) -> dict[str, Tensor]:
        return _feature_density_compute(self.fires, self.n, self.dense_threshold)
