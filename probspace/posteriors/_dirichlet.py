"""Dirichlet posterior: one distribution over the probability simplex per batch entry."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special, stats

from ._base import Posterior

__all__ = ["Dirichlet", "sample_dirichlet"]

_TINY = np.finfo(np.float64).tiny


def sample_dirichlet(concentration: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` Dirichlet vectors for every row of ``concentration``, in log space.

    Uses ``Gamma(a) = Gamma(a + 1) * U**(1/a)``, so the gammas are combined as
    logarithms and small concentrations (sparse topic mixtures) neither
    underflow to zero nor give 0/0.

    Parameters
    ----------
    concentration : ndarray of shape (..., K)
        Positive concentrations.
    n : int
        Number of draws.
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of shape (n, ..., K)
        Rows sum to one.
    """
    shape = (n,) + concentration.shape
    log_g = np.log(rng.standard_gamma(concentration + 1.0, size=shape)) + np.log(rng.random(shape)) / concentration
    log_g -= log_g.max(axis=-1, keepdims=True)
    g = np.exp(log_g)
    g /= g.sum(axis=-1, keepdims=True)
    return g


class Dirichlet(Posterior):
    """One Dirichlet distribution over the simplex per batch entry.

    The posterior over a document's topic proportions in LDA (a variational
    posterior), or over a topic's word distribution.

    Parameters
    ----------
    concentration : array-like of shape (..., K)
        Positive concentration parameters; the last axis is the event.
    method : {"exact", "variational", "amortized_variational"}, default="exact"
        How the concentrations were obtained.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    concentration : ndarray of shape (..., K)
        The concentration parameters.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import Dirichlet
    >>> post = Dirichlet(np.array([[2.0, 1.0, 1.0], [20.0, 10.0, 10.0]]))
    >>> post.mean
    array([[0.5 , 0.25, 0.25],
           [0.5 , 0.25, 0.25]])
    >>> bool(post.entropy()[0] > post.entropy()[1])  # more evidence, less uncertainty
    True
    """

    def __init__(self, concentration: Any, *, method: str = "exact", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        alpha = np.asarray(concentration, dtype=np.float64)
        if alpha.ndim < 1 or alpha.shape[-1] < 1:
            raise ValueError(f"'concentration' must have shape (..., K) with K >= 1; got shape {alpha.shape}.")
        if not np.all(np.isfinite(alpha)) or np.any(alpha <= 0):
            raise ValueError("'concentration' must be finite and positive.")
        self.concentration = alpha

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Every axis but the last."""
        return self.concentration.shape[:-1]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(K,)``: one probability vector."""
        return self.concentration.shape[-1:]

    @property
    def total_concentration(self) -> np.ndarray:
        """``alpha_0 = sum_k alpha_k`` per batch entry: the evidence behind the mean."""
        return self.concentration.sum(axis=-1)

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return sample_dirichlet(self.concentration, n, rng)

    def log_prob(self, value: Any) -> np.ndarray:
        """Log density of probability vectors under each Dirichlet.

        Parameters
        ----------
        value : array-like of shape ``(...,) + batch_shape + (K,)``
            Points on the simplex.

        Returns
        -------
        ndarray of shape ``(...,) + batch_shape``
        """
        x = self._split_value(value, dtype=np.float64)
        if np.any(x < 0) or not np.allclose(x.sum(axis=-1), 1.0, atol=1e-6):
            raise ValueError("values passed to Dirichlet.log_prob must be probability vectors (non-negative, "
                             "summing to one).")
        a = self.concentration
        norm = special.gammaln(a.sum(axis=-1)) - special.gammaln(a).sum(axis=-1)
        return norm + ((a - 1.0) * np.log(np.maximum(x, _TINY))).sum(axis=-1)

    @property
    def mean(self) -> np.ndarray:
        """``alpha / alpha_0``, shape ``batch_shape + (K,)``."""
        return self.concentration / self.total_concentration[..., None]

    @property
    def variance(self) -> np.ndarray:
        """Marginal variances ``alpha_k (alpha_0 - alpha_k) / (alpha_0^2 (alpha_0 + 1))``."""
        a = self.concentration
        a0 = self.total_concentration[..., None]
        return a * (a0 - a) / (a0**2 * (a0 + 1.0))

    @property
    def mode(self) -> np.ndarray:
        """``(alpha - 1) / (alpha_0 - K)``, defined when every ``alpha_k > 1``."""
        a = self.concentration
        if np.any(a <= 1.0):
            raise ValueError("The Dirichlet mode lies inside the simplex only when every concentration exceeds 1; "
                             "some are at most 1 (the density is unbounded at the boundary).")
        return (a - 1.0) / (self.total_concentration[..., None] - a.shape[-1])

    def entropy(self) -> np.ndarray:
        """Differential entropy (nats) of each Dirichlet.

        Returns
        -------
        ndarray of shape ``batch_shape``
        """
        a = self.concentration
        a0 = self.total_concentration
        K = a.shape[-1]
        log_beta = special.gammaln(a).sum(axis=-1) - special.gammaln(a0)
        return log_beta + (a0 - K) * special.digamma(a0) - ((a - 1.0) * special.digamma(a)).sum(axis=-1)

    def credible_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of each coordinate, from its exact Beta marginal.

        Parameters
        ----------
        level : float, default=0.95
            Probability inside the interval.

        Returns
        -------
        lower, upper : ndarray of shape ``batch_shape + (K,)``
            Interval bounds for each coordinate.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"'level' must lie strictly between 0 and 1; got {level!r}.")
        a = self.concentration
        b = self.total_concentration[..., None] - a
        tail = (1.0 - level) / 2.0
        if a.shape[-1] == 1:
            return np.ones_like(a), np.ones_like(a)
        return stats.beta.ppf(tail, a, b), stats.beta.ppf(1.0 - tail, a, b)
