"""Diagonal Gaussian posterior over continuous codes."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Posterior

__all__ = ["DiagonalNormal"]


class DiagonalNormal(Posterior):
    """A Gaussian with diagonal covariance per observation: the VAE's amortised posterior over codes.

    Parameters
    ----------
    loc : array-like of shape (N, d)
        Means.
    scale : array-like of shape (N, d)
        Standard deviations (positive).
    method : {"exact", "variational", "amortized_variational"}, default="amortized_variational"
        How the parameters were obtained (a VAE's encoder: amortised variational).
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    loc : ndarray of shape (N, d)
        Means.
    scale : ndarray of shape (N, d)
        Standard deviations.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import DiagonalNormal
    >>> post = DiagonalNormal(np.zeros((3, 2)), np.ones((3, 2)))
    >>> post.sample(4, random_state=0).shape
    (4, 3, 2)
    >>> np.round(post.entropy(), 4)
    array([2.8379, 2.8379, 2.8379])
    """

    def __init__(self, loc: Any, scale: Any, *, method: str = "amortized_variational", random_state: Any = None):
        super().__init__(method=method, random_state=random_state)
        self.loc = np.asarray(loc, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)
        if self.loc.ndim != 2 or self.loc.shape != self.scale.shape:
            raise ValueError(f"'loc' and 'scale' must both have shape (N, d); got {self.loc.shape} and "
                             f"{self.scale.shape}.")
        if not (np.all(np.isfinite(self.loc)) and np.all(np.isfinite(self.scale)) and np.all(self.scale > 0)):
            raise ValueError("'loc' must be finite and 'scale' finite and positive.")

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(N,)``: one code per observation."""
        return self.loc.shape[:1]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(d,)``: the code dimension."""
        return self.loc.shape[1:]

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.loc + self.scale * rng.standard_normal((n,) + self.loc.shape)

    def log_prob(self, value: Any) -> np.ndarray:
        """Log density of codes.

        Parameters
        ----------
        value : array-like of shape (..., N, d)
            Codes.

        Returns
        -------
        ndarray of shape (..., N)
        """
        z = self._split_value(value, dtype=np.float64)
        u = (z - self.loc) / self.scale
        return (-0.5 * u**2 - np.log(self.scale) - 0.5 * np.log(2 * np.pi)).sum(axis=-1)

    @property
    def mean(self) -> np.ndarray:
        """``loc``, shape (N, d)."""
        return self.loc

    @property
    def variance(self) -> np.ndarray:
        """``scale ** 2``, shape (N, d)."""
        return self.scale**2

    @property
    def mode(self) -> np.ndarray:
        """``loc``, shape (N, d)."""
        return self.loc

    def entropy(self) -> np.ndarray:
        """Differential entropy (nats) per observation.

        Returns
        -------
        ndarray of shape (N,)
        """
        return (0.5 * np.log(2 * np.pi * np.e) + np.log(self.scale)).sum(axis=-1)
