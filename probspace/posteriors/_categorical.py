"""Categorical posterior over one discrete label per observation."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Posterior

__all__ = ["Categorical", "sample_categorical"]

# Uniforms per block when drawing labels: keeps the block's uniforms, the
# comparison mask and the running label counts in cache while scanning the
# K-1 cumulative columns (2**18 doubles = 2 MiB).
_BLOCK_ELEMENTS = 2**18


def _label_dtype(n_categories: int) -> np.dtype:
    return np.dtype(np.int8) if n_categories <= 127 else np.dtype(np.int32)


def sample_categorical(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` independent labels for every row of ``probs``.

    Inverse-CDF sampling, one pass per category over a block of observations,
    so the cost is ``O(n * N * K)`` simple comparisons with no ``(n, N, K)``
    temporary.

    Parameters
    ----------
    probs : ndarray of shape (N, K)
        Rows are probability vectors.
    n : int
        Number of draws per row.
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n, N), integer
        ``int8`` when ``K <= 127`` (labels are small), else ``int32``.
    """
    N, K = probs.shape
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    cdf = cdf[:, :-1].T.copy()  # (K-1, N): contiguous columns
    out = np.zeros((n, N), dtype=_label_dtype(K))
    block = max(64, _BLOCK_ELEMENTS // max(n, 1))
    for start in range(0, N, block):
        stop = min(start + block, N)
        u = rng.random((n, stop - start))
        step = np.empty(u.shape, dtype=bool)
        ob = out[:, start:stop]
        for k in range(K - 1):
            np.greater(u, cdf[k, start:stop], out=step)
            ob += step
    return out


class Categorical(Posterior):
    """One categorical distribution per observation over ``K`` labels.

    The posterior over mixture labels: ``probs[i, k]`` is the posterior
    probability that observation ``i`` came from component ``k``.

    Parameters
    ----------
    probs : array-like of shape (N, K)
        Rows must be non-negative and sum to one.
    method : {"exact", "variational", "amortized_variational"}, default="exact"
        How the probabilities were obtained.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    probs : ndarray of shape (N, K)

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import Categorical
    >>> post = Categorical(np.array([[0.9, 0.1], [0.5, 0.5]]))
    >>> post.sample(3, random_state=0).shape
    (3, 2)
    >>> np.round(post.entropy(), 3)
    array([0.325, 0.693])
    """

    def __init__(self, probs: Any, *, method: str = "exact", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        probs = np.asarray(probs, dtype=np.float64)
        if probs.ndim != 2 or probs.shape[1] < 1:
            raise ValueError(f"'probs' must have shape (N, K); got shape {probs.shape}.")
        if not np.all(np.isfinite(probs)) or np.any(probs < 0):
            raise ValueError("'probs' must be finite and non-negative.")
        if probs.shape[0] and not np.allclose(probs.sum(axis=1), 1.0, atol=1e-6):
            raise ValueError("Every row of 'probs' must sum to one.")
        self.probs = probs

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(N,)``: one label per observation."""
        return (self.probs.shape[0],)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``()``: a label is a scalar."""
        return ()

    @property
    def n_categories(self) -> int:
        """Number of labels ``K``."""
        return self.probs.shape[1]

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return sample_categorical(self.probs, n, rng)

    def log_prob(self, value: Any) -> np.ndarray:
        """Log posterior mass of labels.

        Parameters
        ----------
        value : array-like of int, shape (..., N)
            One label per observation, with any leading sample shape.

        Returns
        -------
        ndarray of shape (..., N)
        """
        z = self._split_value(value)
        if not np.issubdtype(z.dtype, np.integer):
            raise ValueError(f"labels passed to log_prob must be integers; got dtype {z.dtype}.")
        if z.size and (z.min() < 0 or z.max() >= self.n_categories):
            raise ValueError(f"labels passed to log_prob must lie in [0, {self.n_categories - 1}].")
        with np.errstate(divide="ignore"):
            logp = np.log(self.probs)
        return logp[np.arange(self.probs.shape[0]), z]

    @property
    def mean(self) -> np.ndarray:
        """Expected one-hot code: ``probs`` itself, shape (N, K)."""
        return self.probs

    @property
    def variance(self) -> np.ndarray:
        """Variance of the one-hot code, ``probs * (1 - probs)``, shape (N, K)."""
        return self.probs * (1.0 - self.probs)

    @property
    def mode(self) -> np.ndarray:
        """Most probable label per observation, shape (N,)."""
        return np.argmax(self.probs, axis=1)

    def entropy(self) -> np.ndarray:
        """Entropy in nats of each observation's label distribution.

        Returns
        -------
        ndarray of shape (N,)
        """
        p = self.probs
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(p > 0, p * np.log(p), 0.0)
        return -terms.sum(axis=1)
