"""Reconstruction quality of an SAE: MSE, fraction of variance unexplained, cosine similarity.

Every metric is built from summable statistics (``_x_update``) and a pure ``_x_compute``, so the
streamed value over batches, the DDP-synced value and the one-shot functional value are the same
number. Statistics are accumulated in float64 (FVU subtracts two large sums, which float32 would
cancel badly for activations with a large mean such as AST's); results come back as float32.

Inputs may have leading dimensions (``(batch, d_in)`` clip-level or ``(batch, time, d_in)``
frame-level): every vector along the last axis is one row.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torchmetrics import Metric


def _rows(x: Tensor, x_hat: Tensor) -> tuple[Tensor, Tensor]:
    """Flatten ``x, x_hat: (..., d_in)`` to float64 ``(rows, d_in)``; shapes must match."""
    if x.shape != x_hat.shape:
        raise ValueError(
            f"x and x_hat must have the same shape, got {tuple(x.shape)} and {tuple(x_hat.shape)}"
        )
    if x.ndim == 0:
        raise ValueError("x must have at least one dimension (..., d_in)")
    d = x.shape[-1]
    return x.detach().reshape(-1, d).double(), x_hat.detach().reshape(-1, d).double()


def _mse_update(x: Tensor, x_hat: Tensor) -> tuple[Tensor, int]:
    """Return (Σ (x - x̂)², number of elements)."""
    x, x_hat = _rows(x, x_hat)
    return ((x - x_hat) ** 2).sum(), x.numel()


def _mse_compute(sse: Tensor, n: Tensor | int) -> Tensor:
    return (sse / n).float()


def mse(x: Tensor, x_hat: Tensor) -> Tensor:
    r"""Mean squared error, a global mean over rows *and* dimensions.

    .. math:: \mathrm{MSE} = \frac{1}{N d}\sum_{n=1}^{N}\sum_{i=1}^{d} (x_{ni} - \hat x_{ni})^2

    This is ``torch.nn.functional.mse_loss(x_hat, x)`` (the paper's reconstruction number).

    Args:
        x: input activations, ``(..., d_in)``.
        x_hat: reconstruction, same shape as ``x``.

    Returns:
        Scalar float32 tensor.

    Example:
        >>> mse(torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[1.0, 0.0], [3.0, 5.0]]))
        tensor(1.2500)
    """
    return _mse_compute(*_mse_update(x, x_hat))


def _fvu_update(x: Tensor, x_hat: Tensor) -> tuple[Tensor, Tensor, Tensor, int]:
    """Return (Σ‖x − x̂‖², Σ_n x_n per dim, Σ_n x_n² per dim, rows)."""
    x, x_hat = _rows(x, x_hat)
    return ((x - x_hat) ** 2).sum(), x.sum(0), (x**2).sum(0), x.shape[0]


def _fvu_compute(sse: Tensor, s: Tensor, ss: Tensor, n: Tensor | int) -> Tensor:
    return (sse / (ss - s**2 / n).sum()).float()


def fvu(x: Tensor, x_hat: Tensor) -> Tensor:
    r"""Fraction of variance unexplained, 1 − explained variance, normalised by the data variance.

    .. math:: \mathrm{FVU} = \frac{\sum_n \lVert x_n - \hat x_n \rVert^2}
                                  {\sum_n \lVert x_n - \bar x \rVert^2},
              \qquad \bar x = \frac{1}{N}\sum_n x_n

    The mean :math:`\bar x` is taken *per dimension* over all rows seen, and both sums run over
    all rows and dimensions (so dimensions with more variance weigh more), as in sparsify's FVU.
    It differs from averaging a per-dimension :math:`1 - R^2_i` (overcomplete's ``r2_score``).
    The denominator is computed from summable statistics, :math:`\sum_i (S_{2,i} - S_{1,i}^2/N)`.
    Scale-free, unlike MSE: 0 is perfect, 1 is as good as predicting the mean.
    If the data has no variance the result is ``inf`` or ``nan``.

    Args:
        x: input activations, ``(..., d_in)``.
        x_hat: reconstruction, same shape as ``x``.

    Returns:
        Scalar float32 tensor.

    Example:
        >>> fvu(torch.tensor([[0.0, 0.0], [2.0, 2.0]]), torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
        tensor(0.5000)
    """
    return _fvu_compute(*_fvu_update(x, x_hat))


def _cosine_similarity_update(x: Tensor, x_hat: Tensor, eps: float = 1e-8) -> tuple[Tensor, int]:
    """Return (Σ_n cos(x_n, x̂_n), rows)."""
    x, x_hat = _rows(x, x_hat)
    return torch.nn.functional.cosine_similarity(x, x_hat, dim=-1, eps=eps).sum(), x.shape[0]


def _cosine_similarity_compute(cos_sum: Tensor, n: Tensor | int) -> Tensor:
    return (cos_sum / n).float()


def cosine_similarity(x: Tensor, x_hat: Tensor) -> Tensor:
    r"""Mean over rows of the cosine similarity between each input and its reconstruction.

    .. math:: \mathrm{cos} = \frac{1}{N}\sum_n
              \frac{x_n \cdot \hat x_n}{\max(\lVert x_n \rVert \lVert \hat x_n \rVert, \epsilon)},
              \qquad \epsilon = 10^{-8}

    (the ``torch.nn.functional.cosine_similarity`` convention, so a zero row scores 0).

    Args:
        x: input activations, ``(..., d_in)``.
        x_hat: reconstruction, same shape as ``x``.

    Returns:
        Scalar float32 tensor in [-1, 1].

    Example:
        >>> cosine_similarity(torch.tensor([[1.0, 0.0], [0.0, 1.0]]),
        ...                   torch.tensor([[2.0, 0.0], [1.0, 0.0]]))
        tensor(0.5000)
    """
    return _cosine_similarity_compute(*_cosine_similarity_update(x, x_hat))


class MSE(Metric):
    """Streaming :func:`mse`: global mean of (x − x̂)² over all rows and dimensions seen.

    Example:
        >>> metric = MSE()
        >>> metric.update(torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, 0.0]]))
        >>> metric.update(torch.tensor([[3.0, 4.0]]), torch.tensor([[3.0, 5.0]]))
        >>> metric.compute()
        tensor(1.2500)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    sse: Tensor
    n: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("sse", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, x: Tensor, x_hat: Tensor) -> None:
        """Add a batch. ``x, x_hat: (..., d_in)``."""
        sse, n = _mse_update(x, x_hat)
        self.sse += sse
        self.n += n

    def compute(self) -> Tensor:
        return _mse_compute(self.sse, self.n)


class FVU(Metric):
    """Streaming :func:`fvu`: Σ‖x − x̂‖² / Σ‖x − x̄‖², x̄ the per-dimension mean over all rows seen.

    The per-dimension sums are created on the first ``update`` (``d_in`` is not needed up front),
    so under DDP every rank must see at least one batch before ``compute``.

    Example:
        >>> metric = FVU()
        >>> metric.update(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 1.0]]))
        >>> metric.update(torch.tensor([[2.0, 2.0]]), torch.tensor([[2.0, 1.0]]))
        >>> metric.compute()
        tensor(0.5000)
    """

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    sse: Tensor
    sum_x: Tensor
    sum_x2: Tensor
    n: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("sse", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        # Scalar defaults broadcast to (d_in,) on the first update.
        self.add_state("sum_x", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("sum_x2", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, x: Tensor, x_hat: Tensor) -> None:
        """Add a batch. ``x, x_hat: (..., d_in)``."""
        sse, s, ss, n = _fvu_update(x, x_hat)
        if self.sum_x.ndim == 1 and self.sum_x.shape != s.shape:
            raise ValueError(f"d_in changed between updates: {self.sum_x.shape[0]} -> {s.shape[0]}")
        self.sse = self.sse + sse
        self.sum_x = self.sum_x + s
        self.sum_x2 = self.sum_x2 + ss
        self.n = self.n + n

    def compute(self) -> Tensor:
        return _fvu_compute(self.sse, self.sum_x, self.sum_x2, self.n)


class CosineSimilarity(Metric):
    """Streaming :func:`cosine_similarity`: mean over rows of cos(x, x̂).

    Example:
        >>> metric = CosineSimilarity()
        >>> metric.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[2.0, 0.0]]))
        >>> metric.update(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 0.0]]))
        >>> metric.compute()
        tensor(0.5000)
    """

    is_differentiable = False
    higher_is_better = True
    full_state_update = False

    cos_sum: Tensor
    n: Tensor

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.add_state("cos_sum", torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("n", torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, x: Tensor, x_hat: Tensor) -> None:
        """Add a batch. ``x, x_hat: (..., d_in)``."""
        cos_sum, n = _cosine_similarity_update(x, x_hat)
        self.cos_sum += cos_sum
        self.n += n

    def compute(self) -> Tensor:
        return _cosine_similarity_compute(self.cos_sum, self.n)
