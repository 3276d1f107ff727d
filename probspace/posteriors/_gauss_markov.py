"""Exact posterior over the continuous state paths of a linear-Gaussian state space model."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..inference import _kalman
from ._base import Posterior, _SequencePosterior
from ._mvn import MultivariateNormal

__all__ = ["GaussMarkovChain"]


class GaussMarkovChain(_SequencePosterior, Posterior):
    r"""Posterior over the state paths of a linear-Gaussian state space model, given the observations.

    Given its observations ``y``, the hidden path of a linear-Gaussian state
    space model (:class:`probspace.LinearGaussianSSM`) is itself a Gaussian
    Markov chain. This object holds what defines it (the model's matrices,
    the observations and the sequence ``lengths``) and computes everything
    exactly with the Kalman filter and RTS smoother
    (:mod:`probspace.inference._kalman`): the smoothed marginals
    (``mean``, ``variance``, ``covariance``, ``marginals``), joint draws of
    whole paths by forward filtering, backward sampling (a simulation
    smoother), the log density of given paths and the entropy over paths.
    The path's backward factorisation
    :math:`p(x \mid y) = p(x_T \mid y) \prod_t p(x_t \mid x_{t+1}, y_{1:t})`
    gives draws, ``log_prob`` and ``entropy`` in :math:`O(T d^3)`.

    Several sequences are laid out as in hmmlearn: concatenated along the
    time axis. A draw is one path over all ``T`` frames (the sequences are
    independent), so ``event_shape`` is ``(T, d)`` and ``batch_shape`` is
    ``()``; ``sequences`` gives one posterior per sequence.

    Parameters
    ----------
    transition_matrix, observation_matrix : ndarray of shape (d, d), (p, d)
        ``A`` and ``C``.
    transition_covariance, observation_covariance : ndarray of shape (d, d), (p, p)
        ``Q`` and ``R`` (positive definite).
    initial_mean, initial_covariance : ndarray of shape (d,), (d, d)
        Distribution of the first state of each sequence.
    Y : ndarray of shape (T, p)
        Observations; NaN entries are missing.
    lengths : ndarray of int, optional
        Sequence lengths summing to ``T``; ``None`` is one sequence.
    state_offset, obs_offset : ndarray of shape (T, d), (T, p), optional
        Known terms of the transition into each frame and of each observation's mean (control inputs
        ``B u_t`` and ``D u_t``).
    method : {"exact", "variational", "mcmc"}, default="exact"
        How the parameters were obtained (the posterior given them is exact).
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(y)`` of each sequence (prediction-error decomposition).

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import GaussMarkovChain
    >>> one = np.eye(1)
    >>> post = GaussMarkovChain(one, one, one, one, np.zeros(1), one, np.array([[0.5], [np.nan], [1.0]]))
    >>> post.sample(4, random_state=0).shape
    (4, 3, 1)
    >>> np.round(post.mean[:, 0], 4)
    array([0.3571, 0.5714, 0.7857])
    """

    def __init__(self, transition_matrix: Any, observation_matrix: Any, transition_covariance: Any,
                 observation_covariance: Any, initial_mean: Any, initial_covariance: Any, Y: Any, lengths: Any = None,
                 *, state_offset: Any = None, obs_offset: Any = None, method: str = "exact",
                 random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        as_array = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
        self.params = tuple(as_array(a) for a in (transition_matrix, observation_matrix, transition_covariance,
                                                 observation_covariance, initial_mean, initial_covariance))
        self.Y = as_array(Y)
        A, C = self.params[:2]
        d, p = A.shape[0], C.shape[0]
        shapes = ((d, d), (p, d), (d, d), (p, p), (d,), (d, d))
        got = tuple(a.shape for a in self.params)
        if got != shapes or self.Y.ndim != 2 or self.Y.shape[1] != p:
            raise ValueError(f"inconsistent shapes: expected A, C, Q, R, m0, P0 of shapes {shapes} and Y of shape "
                             f"(T, {p}); got {got} and Y {self.Y.shape}.")
        T = self.Y.shape[0]
        self.state_offset = None if state_offset is None else as_array(state_offset)
        self.obs_offset = None if obs_offset is None else as_array(obs_offset)
        for name, off, k in (("state_offset", self.state_offset, d), ("obs_offset", self.obs_offset, p)):
            if off is not None and off.shape != (T, k):
                raise ValueError(f"{name} must have shape ({T}, {k}); got {off.shape}.")
        self._set_lengths(lengths, T, "Y")
        self._ks  # noqa: B018 - run the smoother now, so that bad parameters fail here

    @cached_property
    def _ks(self) -> _kalman.KalmanResult:
        return _kalman.kalman_smoother(self.Y, *self.params, self.lengths, state_offset=self.state_offset,
                                       obs_offset=self.obs_offset)

    # -- shapes -----------------------------------------------------------------
    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(T, d)``: one state vector per frame, sequences concatenated."""
        return self._ks.smoothed_mean.shape

    # -- exact quantities -------------------------------------------------------
    @property
    def mean(self) -> np.ndarray:
        """Smoothed means ``E[x_t | y]``, shape (T, d)."""
        return self._ks.smoothed_mean

    @property
    def covariance(self) -> np.ndarray:
        """Smoothed covariances ``Cov(x_t | y)``, shape (T, d, d)."""
        return self._ks.smoothed_cov

    @property
    def variance(self) -> np.ndarray:
        """Smoothed variances (the diagonals of :attr:`covariance`), shape (T, d)."""
        return np.diagonal(self._ks.smoothed_cov, axis1=-2, axis2=-1).copy()

    @property
    def lag_covariance(self) -> np.ndarray:
        """``Cov(x_t+1, x_t | y)``, shape (T, d, d); zero at the last frame of each sequence."""
        return self._ks.lag_cov

    @property
    def marginals(self) -> MultivariateNormal:
        """The smoothed marginal of every frame, a :class:`MultivariateNormal` with batch ``(T,)``."""
        return _mvn(self._ks.smoothed_mean, self._ks.smoothed_cov, self.method)

    @property
    def filtered(self) -> MultivariateNormal:
        """The filtered distributions ``p(x_t | y_1..t)`` within each sequence (batch ``(T,)``)."""
        return _mvn(self._ks.filtered_mean, self._ks.filtered_cov, self.method)

    @property
    def log_likelihood(self) -> np.ndarray:
        """``log p(y)`` of each sequence, shape (n_sequences,)."""
        return self._ks.log_likelihood

    @property
    def log_predictive(self) -> np.ndarray:
        """One-step-ahead ``log p(y_t | y_1..t-1)`` per frame (0 where nothing is observed), shape (T,)."""
        return self._ks.log_predictive

    @property
    def mode(self) -> np.ndarray:
        """The most probable whole path, which for a Gaussian is the mean, shape (T, d)."""
        return self._ks.smoothed_mean

    def map(self) -> np.ndarray:
        """Most probable state path (the smoothed means), shape (T, d).

        Returns
        -------
        ndarray of shape (T, d)
        """
        return self.mode

    def credible_interval(self, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
        """Central credible interval of each state coordinate at each frame, from its exact normal marginal.

        Parameters
        ----------
        level : float, default=0.95
            Probability inside the interval, in (0, 1).

        Returns
        -------
        lower, upper : ndarray of shape (T, d)
        """
        from scipy import stats

        if not 0.0 < level < 1.0:
            raise ValueError(f"'level' must lie in (0, 1); got {level!r}.")
        half = stats.norm.ppf(0.5 + level / 2.0) * np.sqrt(self.variance)
        return self.mean - half, self.mean + half

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _kalman.sample_paths(self._ks, n, rng)

    def sequence_log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior density of whole paths, per sequence.

        Parameters
        ----------
        value : array-like of shape (..., T, d)
            Paths laid out like the posterior's draws.

        Returns
        -------
        ndarray of shape (..., n_sequences)
        """
        x = self._split_value(value, dtype=np.float64)
        terms = _kalman.path_log_prob(self._ks, x)
        return np.add.reduceat(terms, self._bounds()[:-1], axis=-1)

    def log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior density of whole paths (all sequences jointly).

        Parameters
        ----------
        value : array-like of shape (..., T, d)
            Paths.

        Returns
        -------
        ndarray of shape (...)
        """
        return self.sequence_log_prob(value).sum(axis=-1)

    def sequence_entropy(self) -> np.ndarray:
        """Differential entropy (nats) of the posterior over whole paths of each sequence.

        Returns
        -------
        ndarray of shape (n_sequences,)
        """
        return np.add.reduceat(_kalman.path_entropy(self._ks), self._bounds()[:-1])

    def entropy(self) -> np.ndarray:
        """Differential entropy (nats) of the posterior over whole paths, all sequences jointly.

        Returns
        -------
        ndarray of shape ()
        """
        return np.asarray(self.sequence_entropy().sum())

    @property
    def sequences(self) -> list[GaussMarkovChain]:
        """One posterior per sequence, in order."""
        cut = lambda a, lo, hi: None if a is None else a[lo:hi]  # noqa: E731
        return [GaussMarkovChain(*self.params, self.Y[lo:hi], None, state_offset=cut(self.state_offset, lo, hi),
                                 obs_offset=cut(self.obs_offset, lo, hi), method=self.method, random_state=self._rng)
                for lo, hi in self._sequence_spans()]


def _mvn(loc: np.ndarray, cov: np.ndarray, method: str) -> MultivariateNormal:
    """Return a per-frame MultivariateNormal (a singular covariance gets a tiny jitter in its factor)."""
    d = cov.shape[-1]
    try:
        tril = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        scale = np.maximum(np.trace(cov, axis1=-2, axis2=-1) / d, 1e-300)
        tril = np.linalg.cholesky(cov + 1e-12 * scale[:, None, None] * np.eye(d))
    return MultivariateNormal._trusted(loc, cov, tril, method=method)
