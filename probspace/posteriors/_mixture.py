"""Posterior over latent variables averaged over parameter draws (a finite mixture)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from scipy.special import logsumexp

from ._base import Posterior

__all__ = ["FiniteMixture"]


class FiniteMixture(Posterior):
    r"""Equal-weight mixture of posteriors, one per parameter draw.

    With parameter draws :math:`\theta_1, \dots, \theta_S` from an MCMC fit,
    the posterior over the latents of ``X`` that accounts for parameter
    uncertainty is :math:`p(z \mid X) \approx \frac1S \sum_s p(z \mid X, \theta_s)`.
    Each component is exact given its draw (label responsibilities, or a
    Markov chain over state paths). A joint draw picks a parameter draw
    uniformly at random and then draws the latents from its component, so the
    latents of all observations (all frames of a path) come from the same
    parameters.

    Components are built on demand by ``component(s)``, so only the draws that
    are used are ever computed. ``mean`` and ``variance`` visit every
    component once.

    Parameters
    ----------
    component : callable
        ``s -> Posterior`` for ``s`` in ``range(n_draws)``; all components
        share ``batch_shape`` and ``event_shape``.
    n_draws : int
        Number of components (parameter draws).
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import Categorical
    >>> from probspace.posteriors import FiniteMixture
    >>> probs = [np.array([[0.9, 0.1]]), np.array([[0.5, 0.5]])]
    >>> post = FiniteMixture(lambda s: Categorical(probs[s]), 2)
    >>> post.mean
    array([[0.7, 0.3]])
    """

    def __init__(self, component: Callable[[int], Posterior], n_draws: int, *, random_state: Any = None) -> None:
        super().__init__(method="mcmc", random_state=random_state)
        if n_draws < 1:
            raise ValueError(f"n_draws must be at least 1; got {n_draws}.")
        self._component = component
        self.n_draws = int(n_draws)
        self._first = component(0)
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    def component(self, s: int) -> Posterior:
        """Return the exact posterior given parameter draw ``s``.

        Parameters
        ----------
        s : int
            Index of the draw, in ``range(n_draws)``.

        Returns
        -------
        Posterior
        """
        return self._first if s == 0 else self._component(int(s))

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """Batch shape of the components (one entry per observation, or ``()`` for paths)."""
        return self._first.batch_shape

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Event shape of the components (``()`` for labels, ``(T,)`` for paths)."""
        return self._first.event_shape

    def sample_at(self, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One latent draw from the component of each entry of ``draws``.

        Parameters
        ----------
        draws : ndarray of int, shape (n,)
            Parameter-draw indices.
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        ndarray of shape ``(n,) + batch_shape + event_shape``
        """
        draws = np.asarray(draws, dtype=np.int64)
        out = None
        for s in np.unique(draws):
            where = np.flatnonzero(draws == s)
            z = self.component(s).sample(len(where), random_state=rng)
            if out is None:
                out = np.empty((len(draws),) + z.shape[1:], dtype=z.dtype)
            out[where] = z
        return out

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.sample_at(rng.integers(0, self.n_draws, size=n), rng)

    def log_prob(self, value: Any) -> np.ndarray:
        """Log of the mixture probability of ``value``, per batch entry.

        Parameters
        ----------
        value : array-like
            Latent values shaped ``sample_shape + batch_shape + event_shape``.

        Returns
        -------
        ndarray of shape ``sample_shape + batch_shape``
        """
        terms = np.stack([self.component(s).log_prob(value) for s in range(self.n_draws)])
        return logsumexp(terms, axis=0) - np.log(self.n_draws)

    def _compute_moments(self) -> tuple[np.ndarray, np.ndarray]:
        if self._moments is None:
            mean = np.zeros(np.shape(self._first.mean))
            second = np.zeros_like(mean)
            for s in range(self.n_draws):
                comp = self.component(s)
                m = np.asarray(comp.mean)
                mean += m
                second += np.asarray(comp.variance) + m * m
            mean /= self.n_draws
            second /= self.n_draws
            self._moments = (mean, np.maximum(second - mean * mean, 0.0))
        return self._moments

    @property
    def mean(self) -> np.ndarray:
        """Average of the components' means (for discrete latents, the label probabilities)."""
        return self._compute_moments()[0]

    @property
    def variance(self) -> np.ndarray:
        """Law of total variance: mean of the components' variances plus the variance of their means."""
        return self._compute_moments()[1]

    @property
    def marginals(self) -> np.ndarray:
        """Per-frame state probabilities averaged over parameter draws (HMM components), shape (T, K)."""
        if not hasattr(self._first, "marginals"):
            raise AttributeError(f"components of type {type(self._first).__name__} have no marginals")
        return self.mean

    @property
    def mode(self) -> np.ndarray:
        """Most probable label of each observation under the averaged probabilities (independent labels only).

        For paths (Markov chain components) the most probable whole path of a
        mixture has no closed form, and this raises ``NotImplementedError``.
        """
        if self.event_shape != ():
            raise NotImplementedError(f"{type(self).__name__} over {type(self._first).__name__} has no closed-form "
                                      "mode; use the model's predict (Viterbi at the posterior-mean parameters).")
        return np.argmax(self.mean, axis=-1)

    def entropy(self, n_samples: int = 2000, random_state: Any = 0) -> np.ndarray:
        """Entropy of each batch entry's marginal.

        Exact for independent labels (the entropy of the averaged label
        probabilities); a Monte Carlo estimate ``-mean(log_prob(draws))`` from
        ``n_samples`` seeded draws otherwise (paths).

        Parameters
        ----------
        n_samples : int, default=2000
            Draws of the Monte Carlo estimate.
        random_state : None, int or numpy.random.Generator, default=0
            Seed of the estimate (fixed by default, so repeated calls agree).

        Returns
        -------
        ndarray of shape ``batch_shape``
        """
        if self.event_shape == ():
            p = self.mean
            with np.errstate(divide="ignore", invalid="ignore"):
                return -np.where(p > 0, p * np.log(p), 0.0).sum(axis=-1)
        draws = self.sample(n_samples, random_state=random_state)
        return -np.mean(self.log_prob(draws), axis=0)
