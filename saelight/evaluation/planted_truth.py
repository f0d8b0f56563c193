"""Synthetic activations with a planted dictionary: the ground truth an SAE should recover.

A row is ``x = Σ_j a_j f_j + ε``: ``F`` unit directions ``f_j`` in ``d_in`` dimensions, each
firing independently with its own probability, with a positive magnitude when it fires, plus
Gaussian noise. Optional structure follows SAELens' SynthSAEBench: correlated pairs (firing
correlated through a Gaussian copula, marginals kept) and hierarchical parent -> child pairs (a
child fires only on rows where its parent fires). Score an SAE trained on it with
``saelight.metrics.dictionary_match.ground_truth_scores(sae.W_dec, planted.directions, z, a)``.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


class PlantedDictionary:
    """A seeded random dictionary of planted features and its sampler.

    Attributes:
        directions: ``(n_features, d_in)`` float32 unit rows ``f_j``.
        frequencies: ``(n_features,)`` firing probability of each feature; for a child, its
            probability given that its parent fires (its marginal is that times the parent's).
        partner: ``(n_features,)`` long, the other member of a correlated pair, ``-1`` if none.
        parent: ``(n_features,)`` long, the parent of a child feature, ``-1`` if none.
    """

    def __init__(
        self,
        d_in: int = 32,
        n_features: int = 64,
        frequency_range: tuple[float, float] = (0.02, 0.2),
        magnitude_mean: float = 1.0,
        magnitude_std: float = 0.25,
        n_correlated_pairs: int = 0,
        correlation: float = 0.8,
        n_hierarchical_pairs: int = 0,
        noise_std: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Draws the directions, frequencies and pair structure from ``seed``.

        Args:
            d_in: width of the activations.
            n_features: number of planted features ``F`` (may exceed ``d_in``: superposition).
            frequency_range: ``(low, high)``; each feature's firing probability is log-uniform
                in it.
            magnitude_mean: mean ``μ`` of the magnitude ``|N(μ, σ²)|`` of a firing feature.
            magnitude_std: its ``σ``.
            n_correlated_pairs: disjoint feature pairs whose firing is correlated.
            correlation: correlation ``ρ`` of the copula's Gaussians within a correlated pair.
            n_hierarchical_pairs: disjoint parent -> child pairs (a child fires only with its
                parent), drawn from the features left out of the correlated pairs.
            noise_std: standard deviation of the isotropic Gaussian noise added to each row.
            seed: seeds the dictionary (``sample`` takes its own seed).
        """
        low, high = frequency_range
        if not 0 < low <= high <= 1:
            raise ValueError(f"frequency_range must satisfy 0 < low <= high <= 1, got {low, high}")
        if 2 * (n_correlated_pairs + n_hierarchical_pairs) > n_features:
            raise ValueError(
                f"{n_correlated_pairs} correlated + {n_hierarchical_pairs} hierarchical pairs "
                f"need {2 * (n_correlated_pairs + n_hierarchical_pairs)} features, "
                f"only {n_features} exist"
            )
        if not -1 < correlation < 1:
            raise ValueError(f"correlation must be in (-1, 1), got {correlation}")
        if d_in < 1 or magnitude_std < 0 or noise_std < 0:
            raise ValueError("d_in must be >= 1 and magnitude_std, noise_std >= 0")
        self.d_in, self.n_features = d_in, n_features
        self.magnitude_mean, self.magnitude_std = magnitude_mean, magnitude_std
        self.correlation, self.noise_std = correlation, noise_std
        g = torch.Generator().manual_seed(seed)
        directions = torch.randn(n_features, d_in, generator=g, dtype=torch.float64)
        self.directions = (directions / directions.norm(dim=1, keepdim=True)).float()
        u = torch.rand(n_features, generator=g, dtype=torch.float64)
        self.frequencies = torch.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        order = torch.randperm(n_features, generator=g)
        self.partner = torch.full((n_features,), -1, dtype=torch.long)
        self.parent = torch.full((n_features,), -1, dtype=torch.long)
        pairs = order[: 2 * n_correlated_pairs].view(-1, 2)
        self.partner[pairs[:, 0]], self.partner[pairs[:, 1]] = pairs[:, 1], pairs[:, 0]
        tree = order[2 * n_correlated_pairs :][: 2 * n_hierarchical_pairs].view(-1, 2)
        self.parent[tree[:, 1]] = tree[:, 0]

    def sample(self, n_rows: int, seed: int = 0) -> tuple[Tensor, Tensor]:
        r"""Draws ``n_rows`` rows.

        .. math::
            g \sim N(0, I),\; g_{b} \leftarrow \rho g_{a} + \sqrt{1 - \rho^2}\, g_{b}
            \text{ for each correlated pair } (a, b), \quad
            s_j = [\Phi(g_j) < p_j] \wedge s_{\mathrm{parent}(j)}

        .. math::
            a_{nj} = s_{nj}\,|m_{nj}|,\; m \sim N(\mu, \sigma^2), \qquad
            x_n = \sum_j a_{nj} f_j + \varepsilon_n,\; \varepsilon \sim N(0, \sigma_\varepsilon^2 I)

        Args:
            n_rows: rows to draw.
            seed: seeds this draw (the dictionary itself is fixed by the constructor's seed).

        Returns:
            ``x: (n_rows, d_in)`` float32 and ``activations: (n_rows, n_features)`` float32.
        """
        g = torch.Generator().manual_seed(seed)
        gauss = torch.randn(n_rows, self.n_features, generator=g, dtype=torch.float64)
        a, b = self._pairs()
        rho = self.correlation
        gauss[:, b] = rho * gauss[:, a] + math.sqrt(1 - rho**2) * gauss[:, b]
        fires = gauss < torch.special.ndtri(self.frequencies)
        children = (self.parent >= 0).nonzero().flatten()
        fires[:, children] &= fires[:, self.parent[children]]
        magnitude = torch.randn(n_rows, self.n_features, generator=g, dtype=torch.float64)
        magnitude = (magnitude * self.magnitude_std + self.magnitude_mean).abs()
        activations = torch.where(fires, magnitude, 0.0)
        noise = torch.randn(n_rows, self.d_in, generator=g, dtype=torch.float64)
        x = activations @ self.directions.double() + self.noise_std * noise
        return x.float(), activations.float()

    def _pairs(self) -> tuple[Tensor, Tensor]:
        """The correlated pairs as ``(first, second)`` index tensors, each pair once."""
        first = ((self.partner >= 0) & (self.partner > torch.arange(self.n_features))).nonzero()
        first = first.flatten()
        return first, self.partner[first]
