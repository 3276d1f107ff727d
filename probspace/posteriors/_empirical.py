"""Sample-based posterior: the empirical distribution of MCMC draws, with their chains."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._base import Posterior

__all__ = ["Empirical", "EllipticalRegions"]


class EllipticalRegions(NamedTuple):
    """Elliptical credible regions, one per batch entry: ``(z - center)^T covariance^-1 (z - center) <= radius2``.

    Parameters
    ----------
    center : ndarray of shape (N, d)
        Posterior means.
    covariance : ndarray of shape (N, d, d)
        Posterior covariances (of the draws).
    radius2 : ndarray of shape (N,)
        Squared Mahalanobis radius holding the requested share of each entry's draws.
    level : float
        Credible level.
    """

    center: np.ndarray
    covariance: np.ndarray
    radius2: np.ndarray
    level: float

    def mahalanobis2(self, points: Any) -> np.ndarray:
        """Squared Mahalanobis distance of ``points`` (``(..., N, d)``) from each region's center.

        Parameters
        ----------
        points : array-like of shape (..., N, d)
            One point per batch entry (or several sets of them).

        Returns
        -------
        ndarray of shape (..., N)
        """
        diff = np.asarray(points, dtype=np.float64) - self.center
        sol = np.linalg.solve(self.covariance, diff[..., None])[..., 0]
        return np.einsum("...i,...i->...", diff, sol)

    def contains(self, points: Any) -> np.ndarray:
        """Whether each point lies inside its entry's region.

        Parameters
        ----------
        points : array-like of shape (..., N, d)
            One point per batch entry.

        Returns
        -------
        ndarray of bool, shape (..., N)
        """
        return self.mahalanobis2(points) <= self.radius2

    def boundary(self, n_points: int = 100) -> np.ndarray:
        """Points on each 2-D region's boundary, for plotting.

        Parameters
        ----------
        n_points : int, default=100
            Points per ellipse.

        Returns
        -------
        ndarray of shape (N, n_points, 2)
        """
        if self.center.shape[-1] != 2:
            raise ValueError(f"boundary draws 2-D ellipses; these regions have dimension {self.center.shape[-1]}.")
        t = np.linspace(0.0, 2.0 * np.pi, n_points)
        circle = np.stack([np.cos(t), np.sin(t)], axis=-1)  # (n_points, 2)
        chol = np.linalg.cholesky(self.covariance)  # (N, 2, 2)
        return self.center[:, None, :] + np.sqrt(self.radius2)[:, None, None] * circle @ np.swapaxes(chol, -1, -2)


class Empirical(Posterior):
    """The empirical distribution of MCMC draws of whole latent configurations, kept by chain.

    A joint draw picks one stored configuration uniformly at random from all
    chains, so the latents of all batch entries come from the same MCMC
    state. ``mean`` and ``variance`` are those of the stored draws (so
    ``sample`` reproduces them exactly, up to Monte Carlo error);
    ``interval`` gives equal-tailed credible intervals per coordinate and
    ``credible_region`` elliptical regions per batch entry. A set of draws
    defines no density: ``log_prob`` and ``entropy`` raise
    ``NotImplementedError``.

    Parameters
    ----------
    draws : array-like of shape (n_chains, n_draws) + batch_shape + event_shape
        MCMC draws, by chain.
    event_ndim : int, default=1
        How many trailing axes form one latent value (1: a vector per batch entry).
    method : str, default="mcmc"
        How the draws were made.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    draws : ndarray of shape (n_chains, n_draws) + batch_shape + event_shape
        The stored draws.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import Empirical
    >>> draws = np.random.default_rng(0).normal(size=(2, 500, 3, 2))  # 2 chains, 3 entries in 2-D
    >>> post = Empirical(draws)
    >>> post.sample(4, random_state=0).shape
    (4, 3, 2)
    >>> post.interval(0.9)[0].shape
    (3, 2)
    """

    def __init__(self, draws: Any, *, event_ndim: int = 1, method: str = "mcmc", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        draws = np.asarray(draws)
        if draws.ndim < 2 + event_ndim:
            raise ValueError(f"'draws' must have shape (n_chains, n_draws, *batch_shape, *event_shape) with "
                             f"{event_ndim} event axes; got shape {draws.shape}.")
        if draws.shape[0] < 1 or draws.shape[1] < 1:
            raise ValueError(f"'draws' must hold at least one chain and one draw; got shape {draws.shape}.")
        self.draws = draws
        self._event_ndim = int(event_ndim)
        self._moments: tuple[np.ndarray, np.ndarray] | None = None

    @property
    def n_chains(self) -> int:
        """Number of chains."""
        return self.draws.shape[0]

    @property
    def n_draws(self) -> int:
        """Draws per chain."""
        return self.draws.shape[1]

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """One entry per observation (node)."""
        return self.draws.shape[2:self.draws.ndim - self._event_ndim]

    @property
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one latent value."""
        return self.draws.shape[self.draws.ndim - self._event_ndim:]

    def _flat(self) -> np.ndarray:
        return self.draws.reshape((-1,) + self.draws.shape[2:])

    def sample_at(self, index: Any, rng: np.random.Generator | None = None) -> np.ndarray:
        """Return the stored draws at flat indices ``chain * n_draws + draw``.

        Parameters
        ----------
        index : array-like of int, shape (n,)
            Flat indices into the pooled chains.
        rng : numpy.random.Generator, optional
            Unused (the draws are stored); accepted for the ArviZ bridge.

        Returns
        -------
        ndarray of shape ``(n,) + batch_shape + event_shape``
        """
        return self._flat()[np.asarray(index, dtype=np.int64)]

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.sample_at(rng.integers(0, self.n_chains * self.n_draws, size=n))

    def log_prob(self, value: Any) -> np.ndarray:
        """Not defined: a set of draws has no density.

        Parameters
        ----------
        value : array-like
            Latent values (not read).

        Returns
        -------
        ndarray
            Never: the call raises.

        Raises
        ------
        NotImplementedError
            Always; use the draws, ``mean``, ``variance``, ``interval`` or ``credible_region``.
        """
        raise NotImplementedError(
            f"{type(self).__name__} is a set of MCMC draws and defines no density, so it has no log_prob; use "
            "sample, mean, variance, interval or credible_region (or a density estimate of the draws)."
        )

    def entropy(self) -> np.ndarray:
        """Not defined: a set of draws has no density.

        Raises
        ------
        NotImplementedError
            Always.
        """
        raise NotImplementedError(f"{type(self).__name__} is a set of MCMC draws and defines no density, so it has "
                                  "no entropy.")

    def _compute_moments(self) -> tuple[np.ndarray, np.ndarray]:
        if self._moments is None:
            flat = self._flat()
            mean = flat.mean(axis=0)
            self._moments = (mean, np.mean((flat - mean) ** 2, axis=0))
        return self._moments

    @property
    def mean(self) -> np.ndarray:
        """Mean of the draws, shape ``batch_shape + event_shape``."""
        return self._compute_moments()[0]

    @property
    def variance(self) -> np.ndarray:
        """Variance of the draws (elementwise, about their mean), shape ``batch_shape + event_shape``."""
        return self._compute_moments()[1]

    def interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Equal-tailed credible interval of every coordinate.

        Parameters
        ----------
        level : float, default=0.9
            Posterior probability inside each interval.

        Returns
        -------
        lower, upper : ndarray of shape ``batch_shape + event_shape``
        """
        level = _check_level(level)
        lo, hi = np.quantile(self._flat(), [(1 - level) / 2, (1 + level) / 2], axis=0)
        return lo, hi

    def hpd_interval(self, level: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Highest-posterior-density interval of every coordinate, from the draws.

        The shortest interval between two sorted draws that holds
        ``floor(level * S)`` further draws (``S`` draws in all chains), the
        sample definition ArviZ's ``hdi`` uses; for a skewed or bounded
        marginal it is shorter than :meth:`interval`, for a unimodal one it
        is the one interval of highest density (a multimodal marginal's
        highest-density set may be several intervals; this gives one).

        Parameters
        ----------
        level : float, default=0.9
            Share of the draws inside each interval.

        Returns
        -------
        lower, upper : ndarray of shape ``batch_shape + event_shape``
        """
        level = _check_level(level)
        ordered = np.sort(self._flat(), axis=0)
        n = ordered.shape[0]
        k = min(int(np.floor(level * n)), n - 1)
        start = np.argmin(ordered[k:] - ordered[: n - k], axis=0)[None]
        return (np.take_along_axis(ordered, start, axis=0)[0], np.take_along_axis(ordered, start + k, axis=0)[0])

    def credible_region(self, level: float = 0.9) -> EllipticalRegions:
        """Elliptical credible region of each batch entry's latent vector.

        The ellipse is centred at the posterior mean and shaped by the
        posterior covariance of the entry's draws; its radius is the
        ``level`` quantile of the draws' squared Mahalanobis distances, so it
        holds that share of the draws whatever their shape (for a Gaussian
        posterior it is the highest-density region).

        Parameters
        ----------
        level : float, default=0.9
            Share of the posterior inside each region.

        Returns
        -------
        EllipticalRegions
            ``center`` (N, d), ``covariance`` (N, d, d), ``radius2`` (N,) and
            ``contains(points)``.
        """
        level = _check_level(level)
        if self._event_ndim != 1 or len(self.batch_shape) != 1:
            raise ValueError(f"credible_region needs one vector per batch entry; event shape {self.event_shape}, "
                             f"batch shape {self.batch_shape}.")
        flat = self._flat()  # (S, N, d)
        center = self.mean
        diff = flat - center
        cov = np.einsum("sni,snj->nij", diff, diff) / flat.shape[0]
        d = cov.shape[-1]
        cov = cov + np.eye(d) * (1e-12 * np.maximum(np.trace(cov, axis1=1, axis2=2) / d, 1e-300))[:, None, None]
        regions = EllipticalRegions(center, cov, np.zeros(cov.shape[0]), level)
        radius2 = np.quantile(regions.mahalanobis2(flat), level, axis=0)
        return regions._replace(radius2=radius2)


def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float, np.floating)) or not 0 < level < 1:
        raise ValueError(f"'level' must be a float strictly between 0 and 1; got {level!r}.")
    return float(level)
