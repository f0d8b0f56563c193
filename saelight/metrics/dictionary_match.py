"""Matching dictionaries of directions: MCC, seed stability and scores against planted features.

A dictionary is a ``(n, d)`` matrix whose rows are directions (an SAE's ``W_dec``, or the true
feature directions of synthetic data). Rows are compared by absolute cosine, since a direction and
its negative span the same feature. The mean correlation coefficient (MCC) pairs rows one-to-one by
the Hungarian algorithm (``scipy.optimize.linear_sum_assignment`` on ``-|cos|``), as in
Song et al. 2025 (arXiv:2505.20254, seed consistency), O'Neill et al. 2024 (arXiv:2411.13117) and
SAELens' SynthSAEBench.

The ground-truth scores of :func:`ground_truth_scores` come from summable counts
(:func:`_ground_truth_update`), so streaming the rows in batches gives the same result.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor


def abs_cosine(a: Tensor, b: Tensor) -> Tensor:
    r"""Absolute cosine between every row of ``a`` and every row of ``b``, in float64.

    .. math:: C_{ij} = \frac{|a_i \cdot b_j|}{\max(\|a_i\|, \epsilon)\,\max(\|b_j\|, \epsilon)}

    with :math:`\epsilon = 10^{-12}`, so a zero row has cosine 0 with everything.

    Args:
        a: ``(n, d)`` directions.
        b: ``(m, d)`` directions.

    Returns:
        ``(n, m)`` float64 tensor in ``[0, 1]``.

    Example:
        >>> abs_cosine(torch.tensor([[1.0, 0.0]]), torch.tensor([[-2.0, 0.0], [1.0, 1.0]]))
        tensor([[1.0000, 0.7071]], dtype=torch.float64)
    """
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(
            f"need (n, d) and (m, d) dictionaries, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a = a.detach().cpu().double()
    b = b.detach().cpu().double()
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (a @ b.T).abs().clamp_max(1.0)


class DictionaryMatch(NamedTuple):
    """Result of :func:`match_dictionaries` between ``a: (n, d)`` and ``b: (m, d)``."""

    mcc: float
    """Mean ``|cos|`` over the ``min(n, m)`` pairs of the optimal one-to-one matching."""
    rows: Tensor
    """``(min(n, m),)`` indices into ``a`` of the matched pairs."""
    cols: Tensor
    """``(min(n, m),)`` indices into ``b``, ``b[cols[p]]`` matched to ``a[rows[p]]``."""
    cosine: Tensor
    """``(min(n, m),)`` ``|cos|`` of each matched pair."""
    best: Tensor
    """``(n,)`` best ``|cos|`` of each row of ``a`` with any row of ``b`` (not one-to-one)."""


def match_dictionaries(a: Tensor, b: Tensor) -> DictionaryMatch:
    r"""Optimal one-to-one matching of the rows of ``a`` to the rows of ``b`` by ``|cos|``.

    .. math::
        \pi^* = \arg\max_{\pi} \sum_{i} C_{i\pi(i)}, \qquad
        \mathrm{MCC} = \frac{1}{\min(n, m)} \sum_{i} C_{i\pi^*(i)}, \qquad
        \mathrm{best}_i = \max_j C_{ij}

    where :math:`C` is :func:`abs_cosine` and :math:`\pi` ranges over injective matchings of the
    smaller dictionary into the larger (Hungarian algorithm, ``linear_sum_assignment(-C)``).

    Args:
        a: ``(n, d)`` directions (rows).
        b: ``(m, d)`` directions (rows).

    Returns:
        A :class:`DictionaryMatch`.

    Example:
        >>> m = match_dictionaries(torch.eye(2), torch.tensor([[0.0, -1.0], [1.0, 0.0]]))
        >>> m.mcc, m.cols.tolist()
        (1.0, [1, 0])
    """
    cos = abs_cosine(a, b)
    rows, cols = linear_sum_assignment(-cos.numpy())
    rows_t, cols_t = torch.from_numpy(rows).long(), torch.from_numpy(cols).long()
    matched = cos[rows_t, cols_t]
    best = cos.max(dim=1).values if cos.shape[1] else torch.zeros(cos.shape[0], dtype=cos.dtype)
    mcc_value = float(matched.mean()) if matched.numel() else float("nan")
    return DictionaryMatch(mcc_value, rows_t, cols_t, matched, best)


def mcc(a: Tensor, b: Tensor) -> float:
    r"""Mean correlation coefficient of two dictionaries (see :func:`match_dictionaries`).

    .. math:: \mathrm{MCC}(a, b) = \frac{1}{\min(n, m)} \max_{\pi} \sum_i |\cos(a_i, b_{\pi(i)})|

    1 when ``b`` holds the rows of ``a`` up to permutation, sign and scale; 0 when they are
    orthogonal. Symmetric in ``a`` and ``b``.

    Args:
        a: ``(n, d)`` directions.
        b: ``(m, d)`` directions.

    Returns:
        MCC in ``[0, 1]``.

    Example:
        >>> round(mcc(torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.eye(2)), 4)
        0.8536
    """
    return match_dictionaries(a, b).mcc


def best_match_cosine(a: Tensor, b: Tensor) -> Tensor:
    r"""Per row of ``a``, its best ``|cos|`` with any row of ``b`` (the explorer's "best match
    in the other seeds"); not one-to-one, so two rows of ``a`` may pick the same row of ``b``.

    .. math:: \mathrm{best}_i = \max_j |\cos(a_i, b_j)|

    Args:
        a: ``(n, d)`` directions.
        b: ``(m, d)`` directions.

    Returns:
        ``(n,)`` float64 tensor.

    Example:
        >>> best_match_cosine(torch.eye(2), torch.tensor([[1.0, 1.0]]))
        tensor([0.7071, 0.7071], dtype=torch.float64)
    """
    return match_dictionaries(a, b).best


def mean_max_cosine(a: Tensor, b: Tensor) -> float:
    r"""Mean over the rows of ``a`` of their best ``|cos|`` in ``b`` (MMCS, Sharkey et al. 2022);
    ``>= mcc(a, b)`` when ``n <= m``, since the matching need not be one-to-one.

    .. math:: \mathrm{MMCS}(a, b) = \frac{1}{n} \sum_i \max_j |\cos(a_i, b_j)|

    Args:
        a: ``(n, d)`` directions.
        b: ``(m, d)`` directions.

    Returns:
        MMCS in ``[0, 1]``.

    Example:
        >>> mean_max_cosine(torch.eye(2), torch.tensor([[1.0, 0.0]]))
        0.5
    """
    return float(best_match_cosine(a, b).mean())


def pairwise_mcc(decoders: Sequence[Tensor]) -> Tensor:
    """Matrix of :func:`mcc` between every pair of dictionaries (1 on the diagonal).

    Args:
        decoders: ``S`` dictionaries, each ``(d_sae, d_in)`` (e.g. ``W_dec`` of each seed).

    Returns:
        ``(S, S)`` float64 symmetric tensor.
    """
    s = len(decoders)
    out = torch.eye(s, dtype=torch.float64)
    for i, j in combinations(range(s), 2):
        out[i, j] = out[j, i] = mcc(decoders[i], decoders[j])
    return out


def seed_stability(decoders: Sequence[Tensor]) -> float:
    r"""Mean pairwise MCC of the decoders of ``S >= 2`` seeds (Song et al. 2025, arXiv:2505.20254).

    .. math:: \mathrm{stability} = \binom{S}{2}^{-1} \sum_{s < t} \mathrm{MCC}(W^{(s)}, W^{(t)})

    Args:
        decoders: ``S`` dictionaries ``(d_sae, d_in)``, one per seed.

    Returns:
        Stability in ``[0, 1]``.

    Example:
        >>> w = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
        >>> seed_stability([w, -w.flip(0), 3 * w])
        1.0
    """
    if len(decoders) < 2:
        raise ValueError(f"seed_stability needs at least 2 decoders, got {len(decoders)}")
    s = len(decoders)
    upper = pairwise_mcc(decoders)[torch.triu_indices(s, s, offset=1).unbind()]
    return float(upper.mean())


@dataclass
class GroundTruthScores:
    """Result of :func:`ground_truth_scores` for an SAE with ``d_sae`` latents against ``F`` true
    features. Per-latent fields are ``nan`` for latents the matching leaves out (``d_sae > F``)
    and where their denominator is 0 (a latent that never fires has no precision).

    Attributes:
        mcc: :func:`mcc` of ``W_dec`` against the true directions.
        feature: ``(d_sae,)`` long, the true feature matched to each latent, ``-1`` if none.
        cosine: ``(d_sae,)`` ``|cos|`` of each latent's decoder row with its matched feature.
        precision: ``(d_sae,)`` ``TP / #{z_i > 0}``.
        recall: ``(d_sae,)`` ``TP / #{a_j > 0}``.
        f1: ``(d_sae,)`` ``2 TP / (#{z_i > 0} + #{a_j > 0})``.
        shrinkage: ``(d_sae,)`` mean ratio of the latent's contribution to the feature's on
            rows where both fire; ``< 1`` means the SAE shrinks the feature.
        uniqueness: distinct best-matching features over latents (SynthSAEBench).
        coverage: fraction of true features some latent matches with ``|cos| >= threshold``.
    """

    mcc: float
    feature: Tensor
    cosine: Tensor
    precision: Tensor
    recall: Tensor
    f1: Tensor
    shrinkage: Tensor
    uniqueness: float
    coverage: float

    def summary(self) -> dict[str, float]:
        """The scalars, with per-latent fields averaged over the latents where they are defined."""
        means = {
            name: float(np.nanmean(values.numpy())) if (~values.isnan()).any() else float("nan")
            for name, values in (
                ("cosine", self.cosine),
                ("precision", self.precision),
                ("recall", self.recall),
                ("f1", self.f1),
                ("shrinkage", self.shrinkage),
            )
        }
        return {"mcc": self.mcc, **means, "uniqueness": self.uniqueness, "coverage": self.coverage}


class _LatentMatch(NamedTuple):
    feature: Tensor
    """``(d_sae,)`` matched true feature, -1 if none."""
    cosine: Tensor
    """``(d_sae,)`` ``|cos|`` with it, nan if none."""
    scale: Tensor
    """``(d_sae,)`` ``||W_dec_i|| / ||f_j||``, the factor that puts codes in feature units."""
    mcc: float
    cos: Tensor
    """``(d_sae, F)`` full ``|cos|`` matrix."""


def _match_latents(W_dec: Tensor, directions: Tensor) -> _LatentMatch:
    match = match_dictionaries(W_dec, directions)
    d_sae = W_dec.shape[0]
    feature = torch.full((d_sae,), -1, dtype=torch.long)
    feature[match.rows] = match.cols
    cosine = torch.full((d_sae,), float("nan"), dtype=torch.float64)
    cosine[match.rows] = match.cosine
    norms = directions.detach().cpu().double().norm(dim=1)
    scale = W_dec.detach().cpu().double().norm(dim=1) / norms[feature.clamp_min(0)]
    return _LatentMatch(feature, cosine, scale, match.mcc, abs_cosine(W_dec, directions))


def _ground_truth_update(
    z: Tensor, activations: Tensor, feature: Tensor, scale: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Per-latent summable counts on one batch: (TP, #fired, #feature active, Σ ratio)."""
    z = z.detach().cpu().double()
    a = activations.detach().cpu().double()[:, feature.clamp_min(0)]
    matched = feature >= 0
    fired, on = z > 0, (a > 0) & matched
    both = fired & on
    ratio = torch.where(both, z * scale / torch.where(both, a, 1.0), 0.0)
    return both.sum(0), fired.sum(0), on.sum(0), ratio.sum(0)


def _ground_truth_compute(
    tp: Tensor, fired: Tensor, active: Tensor, ratio_sum: Tensor, feature: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(precision, recall, F1, shrinkage) per latent from the summed counts; nan where 0/0."""
    nan = torch.tensor(float("nan"), dtype=torch.float64)
    tp, fired, active = tp.double(), fired.double(), active.double()
    matched = feature >= 0

    def ratio(num: Tensor, den: Tensor) -> Tensor:
        return torch.where(matched & (den > 0), num / den.clamp_min(1), nan)

    return ratio(tp, fired), ratio(tp, active), ratio(2 * tp, fired + active), ratio(ratio_sum, tp)


def ground_truth_scores(
    W_dec: Tensor,
    directions: Tensor,
    z: Tensor,
    activations: Tensor,
    threshold: float = 0.9,
) -> GroundTruthScores:
    r"""Scores an SAE against planted features whose directions and activations are known.

    Each latent ``i`` is paired with a true feature :math:`j(i)` by the one-to-one matching of
    :func:`match_dictionaries` between ``W_dec`` and ``directions`` (SynthSAEBench). On rows
    :math:`n`, with :math:`\mathrm{TP}_i = \#\{n: z_{ni} > 0 \wedge a_{n j(i)} > 0\}`:

    .. math::
        P_i = \frac{\mathrm{TP}_i}{\#\{n: z_{ni} > 0\}}, \quad
        R_i = \frac{\mathrm{TP}_i}{\#\{n: a_{nj(i)} > 0\}}, \quad
        F1_i = \frac{2\,\mathrm{TP}_i}{\#\{z_{ni} > 0\} + \#\{a_{nj(i)} > 0\}}

    .. math::
        \mathrm{shrinkage}_i = \frac{1}{\mathrm{TP}_i} \sum_{n: z_{ni} > 0,\, a_{nj(i)} > 0}
            \frac{z_{ni}\,\|W_{\mathrm{dec},i}\|}{a_{nj(i)}\,\|f_{j(i)}\|}

    (the norm of the latent's contribution to ``x_hat`` over the norm of the feature's
    contribution to ``x``; ``< 1`` means the SAE shrinks, as an L1 penalty does).

    .. math::
        \mathrm{uniqueness} = \frac{\#\{\arg\max_j C_{ij} : i\}}{d_{sae}}, \qquad
        \mathrm{coverage} = \frac{1}{F} \#\{j : \max_i C_{ij} \ge \tau\}

    with :math:`C` the :func:`abs_cosine` matrix: uniqueness is SynthSAEBench's (1 when no two
    latents share a best-matching feature), coverage counts each true feature once however many
    latents match it.

    Args:
        W_dec: ``(d_sae, d_in)`` decoder rows.
        directions: ``(F, d_in)`` true feature directions.
        z: ``(rows, d_sae)`` SAE codes.
        activations: ``(rows, F)`` true feature magnitudes (0 where a feature is off).
        threshold: :math:`\tau`, the ``|cos|`` at which a true feature counts as covered.

    Returns:
        A :class:`GroundTruthScores`.

    Example:
        >>> f = torch.eye(2)
        >>> a = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 4.0]])
        >>> s = ground_truth_scores(f.flip(0), f, a.flip(1) / 2, a)
        >>> s.feature.tolist(), s.recall.tolist(), s.shrinkage.tolist()
        ([1, 0], [1.0, 1.0], [0.5, 0.5])
    """
    if z.shape[0] != activations.shape[0]:
        raise ValueError(f"z has {z.shape[0]} rows but activations has {activations.shape[0]}")
    if z.shape[1] != W_dec.shape[0] or activations.shape[1] != directions.shape[0]:
        raise ValueError(
            f"z {tuple(z.shape)} must match W_dec {tuple(W_dec.shape)} and activations "
            f"{tuple(activations.shape)} must match directions {tuple(directions.shape)}"
        )
    m = _match_latents(W_dec, directions)
    counts = _ground_truth_update(z, activations, m.feature, m.scale)
    precision, recall, f1, shrinkage = _ground_truth_compute(*counts, m.feature)
    uniqueness = m.cos.argmax(dim=1).unique().numel() / max(W_dec.shape[0], 1)
    coverage = float((m.cos.max(dim=0).values >= threshold).double().mean())
    return GroundTruthScores(
        m.mcc, m.feature, m.cosine, precision, recall, f1, shrinkage, uniqueness, coverage
    )
