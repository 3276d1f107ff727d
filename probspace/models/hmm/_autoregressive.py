"""Autoregressive HMM: state-dependent linear dynamics on the previous ``order`` frames."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _bayes
from ..._docstrings import fill
from ..._validation import Interval, check_n_samples
from ...emissions._autoregressive import AutoregressiveEmission, lagged_rows
from ...inference import _hmm
from ._base import COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS
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


def _frame_mean(rows: np.ndarray, emission: AutoregressiveEmission) -> np.ndarray:
    """Mean of the frames that have all their lags (the centre of the state-ordering key)."""
    x, _, ok = emission.split(rows)
    return x[ok].mean(axis=0) if ok.any() else np.zeros(x.shape[1])


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

    ``sampler="gibbs"`` fits the full posterior by blocked Gibbs (see
    :ref:`bayesian-fits`): state paths by forward filtering, backward
    sampling, ``startprob``/``transmat`` rows from their Dirichlet
    conditionals, and each state's :math:`(A_k, b_k, \Sigma_k)` from its
    matrix-normal-inverse-Wishart conditional (Bayesian multivariate
    regression of the frames of state :math:`k` on their lags), compiled.
    Prior: with :math:`\bar x` the training mean frame, the regression of
    :math:`x_t - \bar x` on :math:`r_t = [x_{t-1} - \bar x; \dots; x_{t-p} -
    \bar x; 1]` has coefficients :math:`B_k = [A_k, b_k + \sum_j A_k^{(j)}
    \bar x - \bar x]^\top` (the same model, centred), and :math:`B_k \mid
    \Sigma_k \sim \mathcal{MN}(M_0, V_0, \Sigma_k)`, :math:`\Sigma_k \sim
    \mathcal{IW}(\nu_0, \Psi_0)`; ``prior`` entries ``coefs_mean``
    (default 0) and ``intercepts_mean`` (default :math:`\bar x`) give
    :math:`M_0`, ``regression_precision`` is :math:`V_0^{-1}` (a number
    :math:`w`, default 1, for :math:`w` times the mean of :math:`r_t
    r_t^\top`, a unit-information prior in the data's units; or an
    :math:`(Dp + 1)`-square matrix), ``dof`` (default :math:`D + 2`) and
    ``scale`` (default the frames' variances over :math:`K^2`), plus
    Dirichlet concentrations under ``startprob`` and ``transmat`` (default
    1). ``pyro.distributions.Delta`` under ``covars``, or under ``coefs``
    and ``intercepts`` together, holds those arrays. Draws are relabelled by
    sorting the states by :math:`A_k [\bar x; \dots; \bar x] + b_k`
    (first feature; :math:`\bar x` the training mean frame): each state's
    one-step prediction from the data's centre. MCMC fits report posterior
    means as ``coefs_``...; ``sample`` and ``forecast`` draw a parameter
    set from the chains for each sequence.

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
    fixed : dict, optional
        Parameters held during fitting, by name without the trailing
        underscore (``"startprob"``, ``"transmat"``, ``"coefs"``,
        ``"intercepts"``, ``"covars"``): an array of the parameter's shape
        whose finite entries are held and whose NaN entries are estimated (a
        held 0 of ``startprob``/``transmat`` is a structural zero). The
        regression arrays are coupled within a state, so ``coefs``,
        ``intercepts`` and ``covars`` are held per state (all entries of a
        state or none); EM's M-step then fits the free arrays of a state
        given its held ones (intercepts given held coefficients, and so on).
        ``sampler="gibbs"`` holds entries of ``startprob``/``transmat`` and
        whole emission arrays (``covars``, or ``coefs`` and ``intercepts``
        together).
    topology : {"ergodic", "left-to-right", "banded"}, optional
        Allowed transitions (forbidden ones are structural zeros), as for :class:`HMM`.
    bandwidth : int, optional
        Width of the band (``"banded"``: default 1; ``"left-to-right"``: no limit).
    {mcmc_params}
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
    {mcmc_attributes}
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
        **_bayes.MCMC_CONSTRAINTS,
        **CONSTRAINT_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_data = staticmethod(_ar_conformance_data)
    _conformance_alt_params = {"order": 2, "startprob_prior": 2.0}

    def __init__(self, n_components: int = 1, *, order: int = 1, min_covar: float = 1e-3,
                 startprob_prior: Any = 1.0, transmat_prior: Any = 1.0, fixed: dict | None = None,
                 topology: str | None = None, bandwidth: int | None = None, sampler: str | None = None,
                 n_chains: int = 4, n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None,
                 max_iter: int = 100, tol: float = 1e-2,
                 random_state: Any = None, verbose: bool = False, progress: bool = False) -> None:
        self.n_components = n_components
        self.order = order
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.fixed = fixed
        self.topology = topology
        self.bandwidth = bandwidth
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
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
            emission = AutoregressiveEmission(**self.emission_settings_)
            emission.centre = self.__dict__.get("_centre")
            return emission
        emission = AutoregressiveEmission(order=self.order, n_features=X.shape[1] // (self.order + 1),
                                          min_covar=self.min_covar)
        emission.centre = _frame_mean(X, emission)
        return emission

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
        if self.sampler is not None:
            held = {k for k, v in (self.prior or {}).items() if _bayes._point_mass(v) is not None}
            if len(held & {"coefs", "intercepts"}) == 1:
                raise ValueError(f"prior of {type(self).__name__}(sampler='gibbs') holds {sorted(held)[0]!r} "
                                 "alone; the conjugate update holds 'coefs' and 'intercepts' together (both as "
                                 "pyro.distributions.Delta) or neither.")
            held = set(self.fixed or {}) & {"coefs", "intercepts"}
            if len(held) == 1:
                raise ValueError(f"fixed of {type(self).__name__}(sampler='gibbs') holds {sorted(held)[0]!r} "
                                 "alone; the conjugate update holds 'coefs' and 'intercepts' together or neither "
                                 "(EM holds either).")
        self._centre = _frame_mean(X, self._emission(X))
        super()._fit(X, lengths, rng)
        frames = X[:, :D]
        self.backend_.presample_mean_ = frames.mean(axis=0)
        self.backend_.presample_covar_ = np.atleast_2d(np.cov(frames, rowvar=False, bias=True)) + \
            self.min_covar * np.eye(D)

    def _fit_em(self, X, lengths, rng, n_iter):
        self._fit_backend(X, lengths, rng, n_iter)  # no standardising, no missing values: lags carry NaN by design

    def _constrained_m_step(self, X, gamma, cons):
        """Run the regression M-step of each state given its held arrays (exact maximiser over the free ones)."""
        held = {k: v for k, v in cons.held.items() if k in ("coefs", "intercepts", "covars")}
        return self._emission().m_step(X, gamma, self._emission_point(), held=held)

    # -- generation -------------------------------------------------------------------------------
    def _draw_or_point(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Parameters for one generated sequence: a random MCMC draw (MCMC fits) or the fitted point."""
        mcmc = getattr(self, "mcmc_", None)
        if mcmc is None:
            return self._point()
        return _bayes._draw(mcmc.flat, int(rng.integers(0, mcmc.n_total)))

    def _run(self, x0: np.ndarray, states: np.ndarray, rng: np.random.Generator,
             params: dict[str, np.ndarray] | None = None) -> np.ndarray:
        """Continue the recursion from the frames ``x0`` (p, D) along ``states``; returns (len(states), D)."""
        p = self._emission().order
        params = self._point() if params is None else params
        A, b, cov = params["coefs"], params["intercepts"], params["covars"]
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
        params = self._draw_or_point(rng)
        states = _hmm.sample_chain(params["startprob"], params["transmat"], n_samples, rng)
        head = rng.multivariate_normal(self.presample_mean_, self.presample_covar_, size=p)
        X = np.vstack([head, self._run(head, states[p:], rng, params)])[:n_samples]
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
        x0 = rows[-p:, :D]
        if getattr(self, "mcmc_", None) is None:
            filtered = self.posterior(rows[:, :D], lengths=lengths).filtered[-1]
            pred = filtered @ self.transmat_
            Z = _hmm.sample_chain(np.broadcast_to(pred, (n_samples, pred.size)), self.transmat_, n_steps, rng)
            return np.stack([self._run(x0, z, rng) for z in Z]), Z
        # MCMC fits: each continuation under its own parameter draw (filtered state under that draw)
        em, out, Z = self._emission(), [], np.empty((n_samples, n_steps), dtype=np.int64)
        for s in range(n_samples):
            params = self._draw_or_point(rng)
            f = em.log_frames(rows, params)
            last = _hmm.forward_backward(params["startprob"], params["transmat"], f, lengths).filtered[-1]
            Z[s] = _hmm.sample_chain(last @ params["transmat"], params["transmat"], n_steps, rng)
            out.append(self._run(x0, Z[s], rng, params))
        return np.stack(out), Z

    def _arviz_dims(self):
        # a lagged row has D * (order + 1) columns: its own dimension, apart from the D features of the parameters
        return {**super()._arviz_dims(), "x": ("time", "frame_and_lags")}

    def _posterior_predictive(self, X, latents, params, rng, labels=None):
        emission = self._emission()
        x, lags, ok = emission.split(X)
        point = self._emission_point()
        means = emission.conditional_means(np.nan_to_num(lags), point)  # (N, K, D)
        chol = np.linalg.cholesky(point["covars"])
        out = np.broadcast_to(X, (latents.shape[0],) + X.shape).copy()
        for s, z in enumerate(latents.astype(np.int64)):
            if params is not None:  # draw s emits under parameter draw s (MCMC fits)
                draw = _bayes._draw(params, s)
                means = emission.conditional_means(np.nan_to_num(lags), draw)
                chol = np.linalg.cholesky(draw["covars"])
            noise = np.einsum("nde,ne->nd", chol[z], rng.standard_normal(x.shape))
            draw = means[np.arange(len(z)), z] + noise
            out[s, ok, :x.shape[1]] = draw[ok]
        return out


AutoregressiveHMM.__doc__ = fill(AutoregressiveHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                                 mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
