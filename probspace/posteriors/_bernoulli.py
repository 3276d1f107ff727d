"""Independent Bernoulli units: the exact posterior over an RBM's hidden layer."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from ._base import Posterior

__all__ = ["Bernoulli"]


class Bernoulli(Posterior):
    r"""Independent binary units per observation: :math:`q(h_i) = \prod_j p_{ij}^{h_{ij}} (1 - p_{ij})^{1 - h_{ij}}`.

    The exact posterior over the hidden units of a restricted Boltzmann
    machine given its visible units (:class:`probspace.RBM`): the units are
    conditionally independent, with :math:`p_{ij} = \sigma(b_j + W_j x_i)`.
    Draws are 0/1 floats (as in :class:`torch.distributions.Bernoulli`), one
    vector of ``H`` units per observation.

    Parameters
    ----------
    probs : array-like of shape (N, H), optional
        Probability that each unit is on. Give ``probs`` or ``logits``.
    logits : array-like of shape (N, H), optional
        Log-odds of each unit (used for accurate ``log_prob`` and ``entropy`` near 0 and 1).
    method : {"exact", "variational", "amortized_variational", "mcmc"}, default="exact"
        How the probabilities were obtained (``"variational"`` for a deep belief
        network's factorised upward pass).
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded draws.

    Attributes
    ----------
    probs : ndarray of shape (N, H)
        Probability that each unit is on.
    logits : ndarray of shape (N, H)
        Log-odds of each unit.

    See Also
    --------
    probspace.posteriors.Categorical : One label out of ``K`` per observation.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import Bernoulli
    >>> post = Bernoulli(np.array([[0.5, 0.9], [0.1, 0.2]]))
    >>> post.sample(4).shape
    (4, 2, 2)
    >>> np.round(post.log_prob(np.array([[1.0, 1.0], [0.0, 0.0]])), 4)
    array([-0.7985, -0.3285])
    >>> post.mode
    array([[0., 1.],
           [0., 0.]])
    """

    def __init__(self, probs: Any = None, *, logits: Any = None, method: str = "exact",
                 random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        if (probs is None) == (logits is None):
            raise ValueError("Give exactly one of 'probs' and 'logits'.")
        if logits is not None:
            logits = np.asarray(logits, dtype=np.float64)
            if logits.ndim != 2 or np.isnan(logits).any():
                raise ValueError(f"'logits' must be a (N, H) array without NaN; got shape {logits.shape}.")
            probs = expit(logits)
        else:
            probs = np.asarray(probs, dtype=np.float64)
            if probs.ndim != 2 or not np.all((probs >= 0.0) & (probs <= 1.0)):
                raise ValueError(f"'probs' must be a (N, H) array of probabilities; got shape {probs.shape}.")
            with np.errstate(divide="ignore"):
                logits = np.log(probs) - np.log1p(-probs)
        self.probs = probs
        self.logits = logits

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(N,)``: one vector of units per observation."""
        return self.probs.shape[:1]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(H,)``: the number of units."""
        return self.probs.shape[1:]

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return (rng.random((n,) + self.probs.shape) < self.probs).astype(np.float64)

    def _log_on_off(self) -> tuple[np.ndarray, np.ndarray]:
        # log p = -softplus(-l), log(1 - p) = -softplus(l), exact also for infinite logits
        return -np.logaddexp(0.0, -self.logits), -np.logaddexp(0.0, self.logits)

    def log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior mass of binary unit vectors.

        Parameters
        ----------
        value : array-like of shape (..., N, H)
            0/1 values.

        Returns
        -------
        ndarray of shape (..., N)
        """
        z = self._split_value(value, dtype=np.float64)
        if not np.all((z == 0.0) | (z == 1.0)):
            raise ValueError("values passed to Bernoulli.log_prob must be 0 or 1.")
        log_on, log_off = self._log_on_off()
        return np.where(z == 1.0, log_on, log_off).sum(axis=-1)

    @property
    def mean(self) -> np.ndarray:
        """``probs``, shape (N, H)."""
        return self.probs

    @property
    def variance(self) -> np.ndarray:
        """``probs * (1 - probs)``, shape (N, H)."""
        return self.probs * (1.0 - self.probs)

    @property
    def mode(self) -> np.ndarray:
        """Most probable unit vector (units with ``probs > 0.5`` on), shape (N, H)."""
        return (self.probs > 0.5).astype(np.float64)

    def entropy(self) -> np.ndarray:
        """Entropy in nats per observation: the sum over units.

        Returns
        -------
        ndarray of shape (N,)
        """
        log_on, log_off = self._log_on_off()
        p, q = self.probs, 1.0 - self.probs
        terms = np.multiply(p, log_on, out=np.zeros_like(p), where=p > 0)
        terms += np.multiply(q, log_off, out=np.zeros_like(q), where=q > 0)
        return -terms.sum(axis=-1)
