"""Multivariate normal posterior over a continuous latent vector per observation."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._base import Posterior

__all__ = ["MultivariateNormal"]

_LOG_2PI = float(np.log(2.0 * np.pi))


class MultivariateNormal(Posterior):
    r"""A Gaussian over a latent vector per observation, with a full covariance.

    The exact posterior of linear-Gaussian models (:class:`probspace.FactorAnalysis`,
    :class:`probspace.PPCA`): :math:`z_i \mid x_i \sim \mathcal{N}(\mu_i, \Sigma_i)`.
    When every observation has the same covariance (complete data), it is stored
    once, with shape ``(d, d)``; otherwise there is one per observation,
    ``(N, d, d)``.

    Parameters
    ----------
    loc : array-like of shape (N, d)
        Means.
    covariance_matrix : array-like of shape (d, d) or (N, d, d), optional
        Covariances (symmetric positive definite). Give this or ``scale_tril``.
    scale_tril : array-like of shape (d, d) or (N, d, d), optional
        Lower Cholesky factors ``L`` of the covariances (``L @ L.T``), with a
        positive diagonal.
    method : {"exact", "variational", "amortized_variational", "mcmc"}, default="exact"
        How the parameters were obtained.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    loc : ndarray of shape (N, d)
        Means.
    covariance_matrix : ndarray of shape (d, d) or (N, d, d)
        Covariances, shared by all observations when 2-D.
    scale_tril : ndarray of shape (d, d) or (N, d, d)
        Their lower Cholesky factors.

    See Also
    --------
    probspace.posteriors.DiagonalNormal : Independent coordinates.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import MultivariateNormal
    >>> post = MultivariateNormal(np.zeros((3, 2)), np.array([[1.0, 0.5], [0.5, 1.0]]))
    >>> post.sample(4, random_state=0).shape
    (4, 3, 2)
    >>> post.covariance_matrix.shape  # shared: stored once
    (2, 2)
    >>> np.round(post.entropy(), 4)
    array([2.694, 2.694, 2.694])
    """

    def __init__(self, loc: Any, covariance_matrix: Any = None, *, scale_tril: Any = None, method: str = "exact",
                 random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        loc = np.asarray(loc, dtype=np.float64)
        if (covariance_matrix is None) == (scale_tril is None):
            raise ValueError("Give exactly one of 'covariance_matrix' and 'scale_tril'.")
        given = np.asarray(covariance_matrix if scale_tril is None else scale_tril, dtype=np.float64)
        name = "covariance_matrix" if scale_tril is None else "scale_tril"
        if loc.ndim != 2:
            raise ValueError(f"'loc' must have shape (N, d); got shape {loc.shape}.")
        d = loc.shape[1]
        if given.shape not in ((d, d), (loc.shape[0], d, d)):
            raise ValueError(f"'{name}' must have shape ({d}, {d}) or ({loc.shape[0]}, {d}, {d}) for 'loc' of "
                             f"shape {loc.shape}; got shape {given.shape}.")
        if not (np.all(np.isfinite(loc)) and np.all(np.isfinite(given))):
            raise ValueError(f"'loc' and '{name}' must be finite.")
        if scale_tril is None:
            if not np.allclose(given, np.swapaxes(given, -1, -2), rtol=1e-10, atol=1e-12):
                raise ValueError("'covariance_matrix' must be symmetric.")
            try:
                tril = np.linalg.cholesky(given)
            except np.linalg.LinAlgError as err:
                raise ValueError("'covariance_matrix' must be positive definite.") from err
            cov = given
        else:
            tril = np.tril(given)
            if not np.array_equal(tril, given) or not np.all(np.diagonal(given, axis1=-2, axis2=-1) > 0):
                raise ValueError("'scale_tril' must be lower triangular with a positive diagonal.")
            cov = tril @ np.swapaxes(tril, -1, -2)
        self._set(loc, cov, tril)

    @classmethod
    def _trusted(cls, loc: np.ndarray, covariance_matrix: np.ndarray, scale_tril: np.ndarray,
                 method: str = "exact") -> MultivariateNormal:
        """Build from parameters a model has already checked (no validation pass over ``loc``)."""
        post = cls.__new__(cls)
        Posterior.__init__(post, method=method)
        post._set(loc, covariance_matrix, scale_tril)
        return post

    def _set(self, loc: np.ndarray, cov: np.ndarray, tril: np.ndarray) -> None:
        self.loc = loc
        self.covariance_matrix = cov
        self.scale_tril = tril
        self._inv_tril = None

    @property
    def shared(self) -> bool:
        """Whether one covariance serves every observation (``covariance_matrix`` is 2-D)."""
        return self.covariance_matrix.ndim == 2

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(N,)``: one latent vector per observation."""
        return self.loc.shape[:1]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(d,)``: the latent dimension."""
        return self.loc.shape[1:]

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        eps = rng.standard_normal((n,) + self.loc.shape)
        if self.shared:
            return self.loc + eps @ self.scale_tril.T
        return self.loc + np.einsum("nij,snj->sni", self.scale_tril, eps)

    def _whiten(self, z: np.ndarray) -> np.ndarray:
        """Return ``L^{-1} (z - loc)`` for values ending in ``batch_shape + event_shape``."""
        if self._inv_tril is None:
            eye = np.broadcast_to(np.eye(self.loc.shape[1]), self.scale_tril.shape)
            self._inv_tril = np.linalg.solve(self.scale_tril, eye)
        diff = z - self.loc
        if self.shared:
            return diff @ self._inv_tril.T
        return np.einsum("nij,...nj->...ni", self._inv_tril, diff)

    def _half_log_det(self) -> np.ndarray:
        return np.log(np.diagonal(self.scale_tril, axis1=-2, axis2=-1)).sum(axis=-1)

    def log_prob(self, value: Any) -> np.ndarray:
        """Log density of latent vectors.

        Parameters
        ----------
        value : array-like of shape (..., N, d)
            Latent vectors.

        Returns
        -------
        ndarray of shape (..., N)
        """
        u = self._whiten(self._split_value(value, dtype=np.float64))
        d = self.loc.shape[1]
        return -0.5 * np.einsum("...i,...i->...", u, u) - self._half_log_det() - 0.5 * d * _LOG_2PI

    @property
    def mean(self) -> np.ndarray:
        """``loc``, shape (N, d)."""
        return self.loc

    @property
    def variance(self) -> np.ndarray:
        """Diagonal of the covariances, shape (N, d)."""
        var = np.diagonal(self.covariance_matrix, axis1=-2, axis2=-1)
        return np.broadcast_to(var, self.loc.shape).copy()

    @property
    def stddev(self) -> np.ndarray:
        """Square root of :attr:`variance`, shape (N, d)."""
        return np.sqrt(self.variance)

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
        d = self.loc.shape[1]
        h = 0.5 * d * (1.0 + _LOG_2PI) + self._half_log_det()
        return np.broadcast_to(h, self.batch_shape).copy()

    def credible_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central credible interval of each coordinate, from its exact normal marginal.

        Parameters
        ----------
        level : float, default=0.95
            Probability inside the interval, in (0, 1).

        Returns
        -------
        lower, upper : ndarray of shape (N, d)
        """
        from scipy import stats

        if not 0.0 < level < 1.0:
            raise ValueError(f"'level' must lie in (0, 1); got {level!r}.")
        half = stats.norm.ppf(0.5 + level / 2.0) * self.stddev
        return self.loc - half, self.loc + half
