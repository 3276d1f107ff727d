"""Categorical posterior over one discrete label per observation."""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

from ._base import Posterior

__all__ = ["Categorical", "sample_categorical"]

# Uniforms per block when drawing labels: the block's uniforms and label
# counts stay in cache while the kernel scans the K-1 cumulative columns
# (2**18 doubles = 2 MiB).
_BLOCK_ELEMENTS = 2**18


def _label_dtype(n_categories: int) -> np.dtype:
    return np.dtype(np.int8) if n_categories <= 127 else np.dtype(np.int32)


@numba.njit(cache=True, nogil=True)
def _count_below(u, cdf, start, out):
    """out[j, start + i] = number of cumulative thresholds below u[j, i] (the inverse CDF)."""
    n, b = u.shape
    for j in range(n):
        row = out[j, start:start + b]
        uj = u[j]
        row[:] = 0
        for k in range(cdf.shape[0]):
            ck = cdf[k, start:start + b]
            for i in range(b):
                row[i] += uj[i] > ck[i]


def sample_categorical(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` independent labels for every row of ``probs``.

    Inverse-CDF sampling: one uniform per label, compared with the K-1
    cumulative thresholds of its row in a compiled loop over blocks of
    observations, so the cost is ``O(n * N * K)`` comparisons with no
    ``(n, N, K)`` temporary. A label of probability zero is never drawn.

    Parameters
    ----------
    probs : ndarray of shape (N, K)
        Rows are probability vectors.
    n : int
        Number of draws per row.
    rng : numpy.random.Generator
        Source of the uniforms.

    Returns
    -------
    ndarray of shape (n, N), integer
        ``int8`` when ``K <= 127`` (labels are small), else ``int32``.
    """
    N, K = probs.shape
    cdf = np.array(probs.T, dtype=np.float64, order="C", copy=True)  # (K, N); a copy: cumsum runs in place
    np.cumsum(cdf, axis=0, out=cdf)
    cdf[:-1] /= cdf[-1]
    cdf = cdf[:-1]
    out = np.empty((n, N), dtype=_label_dtype(K))
    if N == 0:
        return out
    block = max(64, _BLOCK_ELEMENTS // max(n, 1))
    buf = np.empty((n, min(block, N)))
    for start in range(0, N, block):
        stop = min(start + block, N)
        u = buf if stop - start == buf.shape[1] else np.empty((n, stop - start))
        rng.random(out=u)
        _count_below(u, cdf, start, out)
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

    @classmethod
    def _trusted(cls, probs: np.ndarray, method: str) -> Categorical:
        """Build from probabilities the library computed itself, skipping the O(NK) checks."""
        self = cls.__new__(cls)
        Posterior.__init__(self, method=method)
        self.probs = probs
        return self

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
        return np.clip(self.probs * (1.0 - self.probs), 0.0, None)

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
