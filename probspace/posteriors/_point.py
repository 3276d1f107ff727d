"""Point mass: the 'posterior' of a deterministic embedding."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Posterior

__all__ = ["PointMass"]


class PointMass(Posterior):
    r"""All probability on one vector per observation: :math:`\delta_{f(x_i)}`.

    What a deterministic embedding :math:`z_i = f(x_i)` becomes when read as a
    posterior (:class:`probspace.Embedding`). Under that degenerate model the
    answer is exact, and it carries no uncertainty: the variance is zero, the
    entropy :math:`-\infty`, and every draw equals ``loc``. Put it beside a
    real posterior to see what an embedding leaves out.

    Parameters
    ----------
    loc : array-like of shape (N, d)
        The embedded vectors.
    method : {"exact", "variational", "amortized_variational", "mcmc"}, default="exact"
        How ``loc`` was obtained (a deterministic map: exact under its own model).
    random_state : None, int or numpy.random.Generator, optional
        Accepted for the common interface; draws use no randomness.

    Attributes
    ----------
    loc : ndarray of shape (N, d)
        The embedded vectors.

    See Also
    --------
    probspace.posteriors.MultivariateNormal : A posterior with uncertainty.

    Notes
    -----
    ``log_prob`` is the log *mass* (with respect to counting measure on the
    atom), as for Pyro's and TensorFlow Probability's ``Delta``: ``0`` at
    ``loc`` and ``-inf`` anywhere else. A point mass has no density with
    respect to Lebesgue measure, so these values cannot be compared with a
    continuous posterior's ``log_prob``. ``entropy()`` is the differential
    entropy, :math:`-\infty`, the limit of a Gaussian's as its variance
    shrinks to zero.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import PointMass
    >>> post = PointMass(np.array([[0.0, 1.0], [2.0, 3.0]]))
    >>> post.sample(3).shape
    (3, 2, 2)
    >>> post.log_prob(np.array([[0.0, 1.0], [2.0, 4.0]]))
    array([  0., -inf])
    >>> post.entropy()
    array([-inf, -inf])
    """

    def __init__(self, loc: Any, *, method: str = "exact", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        loc = np.asarray(loc, dtype=np.float64)
        if loc.ndim != 2:
            raise ValueError(f"'loc' must have shape (N, d); got shape {loc.shape}.")
        if not np.all(np.isfinite(loc)):
            raise ValueError("'loc' must be finite.")
        self.loc = loc

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(N,)``: one vector per observation."""
        return self.loc.shape[:1]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(d,)``: the embedding dimension."""
        return self.loc.shape[1:]

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return np.broadcast_to(self.loc, (n,) + self.loc.shape).copy()

    def log_prob(self, value: Any) -> np.ndarray:
        """Log mass of ``value``: 0 where it equals ``loc`` exactly, ``-inf`` elsewhere.

        Parameters
        ----------
        value : array-like of shape (..., N, d)
            Vectors.

        Returns
        -------
        ndarray of shape (..., N)
        """
        z = self._split_value(value, dtype=np.float64)
        return np.where(np.all(z == self.loc, axis=-1), 0.0, -np.inf)

    @property
    def mean(self) -> np.ndarray:
        """``loc``, shape (N, d)."""
        return self.loc

    @property
    def variance(self) -> np.ndarray:
        """Zeros, shape (N, d)."""
        return np.zeros_like(self.loc)

    @property
    def mode(self) -> np.ndarray:
        """``loc``, shape (N, d)."""
        return self.loc

    def entropy(self) -> np.ndarray:
        """Differential entropy per observation: ``-inf``.

        Returns
        -------
        ndarray of shape (N,)
        """
        return np.full(self.batch_shape, -np.inf)

    def credible_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Every credible interval of a point mass is the point itself.

        Parameters
        ----------
        level : float, default=0.95
            Probability inside the interval, in (0, 1).

        Returns
        -------
        lower, upper : ndarray of shape (N, d)
            Both equal to ``loc``.
        """
        if not 0.0 < level < 1.0:
            raise ValueError(f"'level' must lie in (0, 1); got {level!r}.")
        return self.loc.copy(), self.loc.copy()
