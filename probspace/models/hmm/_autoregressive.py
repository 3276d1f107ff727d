"""Autoregressive HMM: state-dependent linear dynamics on the previous ``order`` frames."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._docstrings import fill
from ..._validation import Interval, check_n_samples
from ...emissions._autoregressive import AutoregressiveEmission, lagged_rows
from ...inference import _hmm
from ._base import COMMON_CONSTRAINTS
from ._generic import HMM

__all__ = ["AutoregressiveHMM"]


def _ar_conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two sequences (70 and 50 frames) switching between a persistent and an oscillating AR(1) regime."""
    lengths = np.array([70, 50])
    states = _hmm.sample_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.15, 0.85]]), lengths.sum(), rng)
    coef, icpt = np.array([0.8, -0.6]), np.array([0.5, 3.0])
    X = np.empty((lengths.sum(), 1))
    start = 0
    for n in lengths:
        prev = 0.0
        for t in range(start, start + n):
            prev = coef[states[t]] * prev + icpt[states[t]] + 0.3 * rng.standard_normal()
            X[t, 0] = prev
        start += n
    return X, lengths


class AutoregressiveHMM(HMM):
    r"""Autoregressive Gaussian HMM: a Markov chain switching between linear dynamics.

    The model: :math:`z_t` a Markov chain (``startprob_``, ``transmat_``) and

    .. math:: x_t \mid z_t = k \sim \mathcal N\Big(\sum_{j=1}^{p} A_k^{(j)} x_{t-j} + b_k,\ \Sigma_k\Big),

    so each state has its own vector autoregression of order :math:`p`
    (``order``). The first :math:`p` frames of each sequence are
    **conditioned on**: they have no emission term, their states are
    informed by the chain alone, and ``log_likelihood`` is
    :math:`\log p(x_{p+1:T} \mid x_{1:p})` per sequence (the convention of
    conditional maximum likelihood, as in statsmodels' ``MarkovAutoregression``).
    Given the parameters the posterior over state paths is exact (a
    :class:`~probspace.posteriors.MarkovChain`: marginals, Viterbi, joint
    path draws), by the same forward-backward kernels as every HMM. EM's
    M-step is a weighted least-squares regression per state (closed form).

    ``sample`` starts each generated sequence from ``order`` frames drawn
    from a Gaussian with the training data's mean and covariance
    (``presample_mean_``, ``presample_covar_``), then runs the recursion.
    ``forecast`` continues the last sequence from its own last frames.
    Missing values are not accepted. In ArviZ output the observed ``x``
    holds each frame followed by its lags (``D * (order + 1)`` columns, NaN
    where a lag precedes the sequence); the posterior predictive replicates
    the frame given its observed lags and copies the lags.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    order : int, default=1
        Number of lags :math:`p`.
    min_covar : float, default=1e-3
        Added to the diagonal of each fitted noise covariance.
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet priors of the EM (MAP) fit (1: maximum likelihood).
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    {random_state}
    verbose : bool, default=False
        Unused.
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
    transmat_ : ndarray of shape (n_components, n_components)
    coefs_ : ndarray of shape (n_components, n_features, n_features * order)
        ``[A_k^(1), ..., A_k^(p)]`` side by side.
    intercepts_ : ndarray of shape (n_components, n_features)
    covars_ : ndarray of shape (n_components, n_features, n_features)
        Noise covariances.
    presample_mean_, presample_covar_ : ndarray
        Mean (n_features,) and covariance of the training frames, used to start generated sequences.
    emission_settings_ : dict
        The emission's settings (``order``, ``n_features``, ``min_covar``).
    {common_attributes}

    See Also
    --------
    GaussianHMM : The special case ``coefs_ = 0`` (up to the conditioned first frames).

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import AutoregressiveHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.cumsum(rng.normal(size=(200, 1)), axis=0) * 0.1
    >>> model = AutoregressiveHMM(2, order=1, random_state=0).fit(X)
    >>> model.coefs_.shape
    (2, 1, 1)
    >>> model.posterior(X).marginals.shape
    (200, 2)
    """

    _parameter_constraints = {
        **{k: v for k, v in COMMON_CONSTRAINTS.items() if k not in ("bayesian", "implementation")},
        "order": [Interval("int", 1, None)],
        "min_covar": [Interval("real", 0, None)],
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
    }
    _supports_mcmc = False
    _conformance_data = staticmethod(_ar_conformance_data)
    _conformance_alt_params = {"order": 2, "startprob_prior": 2.0}
    sampler = None

    def __init__(self, n_components: int = 1, *, order: int = 1, min_covar: float = 1e-3,
                 startprob_prior: Any = 1.0, transmat_prior: Any = 1.0, max_iter: int = 100, tol: float = 1e-2,
                 random_state: Any = None, verbose: bool = False, progress: bool = False) -> None:
        self.n_components = n_components
        self.order = order
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    emission = "autoregressive"
    emission_params = None

    coefs_ = property(lambda self: self.backend_.coefs_, doc="Lag coefficients (K, D, D * order).")
    intercepts_ = property(lambda self: self.backend_.intercepts_, doc="Intercepts (K, D).")
    covars_ = property(lambda self: self.backend_.covars_, doc="Noise covariances (K, D, D).")
    presample_mean_ = property(lambda self: self.backend_.presample_mean_, doc="Mean of the training frames.")
    presample_covar_ = property(lambda self: self.backend_.presample_covar_, doc="Covariance of the training frames.")

    def _emission_class(self):
        return AutoregressiveEmission

    def _owner(self) -> str:
        return type(self).__name__

    def _model_tags(self):
        tags = super()._model_tags()
        return type(tags)(**{**vars(tags), "allow_nan": False, "min_samples": 2})

    def _emission(self, X: np.ndarray | None = None) -> AutoregressiveEmission:
        if X is None:
            return AutoregressiveEmission(**self.emission_settings_)
        return AutoregressiveEmission(order=self.order, n_features=X.shape[1] // (self.order + 1),
                                      min_covar=self.min_covar)

    # -- lagged rows ------------------------------------------------------------------------------
    def _check_X(self, X, lengths, *, reset):
        X, lengths = super(HMM, self)._check_X(X, lengths, reset=reset)
        return lagged_rows(X, lengths, self.order if reset else self.emission_settings_["order"]), lengths

    def _fit(self, X, lengths, rng):
        D = self.n_features_in_
        informative = int((~np.isnan(X[:, D:]).any(axis=1)).sum())
        if informative < self.n_components:
            raise ValueError(f"X has {informative} frames with all {self.order} lags inside their sequence; "
                             f"{type(self).__name__} needs at least n_components={self.n_components} (use longer "
                             "sequences or a smaller order).")
        super()._fit(X, lengths, rng)
        frames = X[:, :D]
        self.backend_.presample_mean_ = frames.mean(axis=0)
        self.backend_.presample_covar_ = np.atleast_2d(np.cov(frames, rowvar=False, bias=True)) + \
            self.min_covar * np.eye(D)

    def _fit_em(self, X, lengths, rng, n_iter):
        self._fit_backend(X, lengths, rng, n_iter)  # no standardising, no missing values: lags carry NaN by design

    # -- generation -------------------------------------------------------------------------------
    def _run(self, x0: np.ndarray, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Continue the recursion from the frames ``x0`` (p, D) along ``states``; returns (len(states), D)."""
        p = self._emission().order
        A, b, cov = self.coefs_, self.intercepts_, self.covars_
        chol = np.linalg.cholesky(cov)
        hist = list(x0[::-1][:p])  # most recent first
        out = np.empty((len(states), b.shape[1]))
        for t, k in enumerate(states):
            lags = np.concatenate(hist)
            out[t] = A[k] @ lags + b[k] + chol[k] @ rng.standard_normal(b.shape[1])
            hist = [out[t]] + hist[:-1]
        return out

    def _sample(self, n_samples, rng):
        p = self._emission().order
        states = _hmm.sample_chain(self.startprob_, self.transmat_, n_samples, rng)
        head = rng.multivariate_normal(self.presample_mean_, self.presample_covar_, size=p)
        X = np.vstack([head, self._run(head, states[p:], rng)])[:n_samples]
        return X, states

    def forecast(self, X: Any, n_steps: int, n_samples: int = 100, *, lengths: Any = None,
                 random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample continuations of the last sequence in ``X``: future states and observations.

        The state after the observed prefix is drawn from the filtered
        distribution at its last frame, then the chain and the autoregression
        run forward from the last ``order`` frames of that sequence.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observed prefix (the last sequence is continued; it needs at least ``order`` frames).
        n_steps : int
            Number of future frames.
        n_samples : int, default=100
            Number of independent continuations.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only.

        Returns
        -------
        X_future : ndarray of shape (n_samples, n_steps, n_features)
        Z_future : ndarray of shape (n_samples, n_steps)
        """
        n_steps = check_n_samples(n_steps, name="n_steps")
        n_samples = check_n_samples(n_samples)
        rows, lengths = self._check_input(X, lengths)
        rng = self._generator(random_state)
        p, D = self._emission().order, self.n_features_in_
        last = int(lengths[-1]) if lengths is not None else rows.shape[0]
        if last < p:
            raise ValueError(f"the last sequence of X has {last} frames; forecast needs at least order={p}.")
        filtered = self.posterior(rows[:, :D], lengths=lengths).filtered[-1]
        pred = filtered @ self.transmat_
        Z = _hmm.sample_chain(np.broadcast_to(pred, (n_samples, pred.size)), self.transmat_, n_steps, rng)
        x0 = rows[-p:, :D]
        return np.stack([self._run(x0, z, rng) for z in Z]), Z

    def _posterior_predictive(self, X, latents, params, rng, labels=None):
        emission = self._emission()
        x, lags, ok = emission.split(X)
        point = self._emission_point()
        means = emission.conditional_means(np.nan_to_num(lags), point)  # (N, K, D)
        chol = np.linalg.cholesky(point["covars"])
        out = np.broadcast_to(X, (latents.shape[0],) + X.shape).copy()
        for s, z in enumerate(latents.astype(np.int64)):
            noise = np.einsum("nde,ne->nd", chol[z], rng.standard_normal(x.shape))
            draw = means[np.arange(len(z)), z] + noise
            out[s, ok, :x.shape[1]] = draw[ok]
        return out


AutoregressiveHMM.__doc__ = fill(AutoregressiveHMM.__doc__)
