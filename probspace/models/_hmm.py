"""Hidden Markov models over hmmlearn: Gaussian, categorical, Poisson and GMM emissions.

The four families share one private base, ``_HMM``: everything but the
emission model (fitting through hmmlearn, the exact state-path posterior,
sampling, forecasting and the ArviZ hooks) is the same for all of them. That
is a second level of inheritance, against STYLE's depth-1 rule, because the
alternative is the same eight hooks copied four times.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from abc import abstractmethod
from typing import Any

import numpy as np
from hmmlearn import base as hmm_base
from hmmlearn import hmm, vhmm
from scipy.special import gammaln, logsumexp

from .. import _bayes
from .._base import LatentModel
from .._docstrings import fill
from .._random import sklearn_seed
from .._tags import ModelTags
from .._validation import Interval, Options, check_gaussian_scale, check_n_samples, warn_unconverged
from ..inference import _hmm
from ..inference._gaussian import diag_log_density, sample_components
from ..posteriors import MarkovChain

__all__ = ["CategoricalHMM", "GMMHMM", "GaussianHMM", "PoissonHMM"]

_COMMON_CONSTRAINTS = {
    "n_components": [Interval("int", 1, None)],
    "bayesian": ["boolean"],
    "max_iter": [Interval("int", 1, None)],
    "tol": [Interval("real", 0, None)],
    "implementation": [Options("log", "scaling")],
    "random_state": ["random_state"],
    "verbose": ["boolean"],
    "progress": ["boolean"],
}


class _RecordingMonitor(hmm_base.ConvergenceMonitor):
    """hmmlearn's public convergence monitor, keeping the whole objective trace and a progress bar."""

    def __init__(self, tol, n_iter, verbose, progress, n_frames):
        super().__init__(tol, n_iter, verbose)
        self.trace: list[float] = []
        self.n_frames = n_frames
        self.bar = None
        if progress:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=n_iter, desc="EM", unit="iter", leave=False)

    def report(self, log_prob):
        super().report(log_prob)
        self.trace.append(float(log_prob))
        if self.bar is not None:
            self.bar.set_postfix(loglik_per_frame=f"{log_prob / self.n_frames:.4f}")
            self.bar.update(1)


def _gaussian_frames(X, means, covs):
    """Log N(x_t | means[k], covs[k]) for every frame and state, marginalising NaN entries.

    ``covs`` are full matrices (K, D, D). Rows with some NaN use the marginal
    Gaussian of their observed coordinates; all-NaN rows give 0.
    """
    T, D = X.shape
    K = means.shape[0]
    out = np.zeros((T, K))
    missing = np.isnan(X)
    patterns, inverse = np.unique(missing, axis=0, return_inverse=True)
    for p, pattern in enumerate(patterns):
        rows = np.flatnonzero(inverse.ravel() == p)
        obs = ~pattern
        if not obs.any():
            continue
        x = X[np.ix_(rows, obs)]
        for k in range(K):
            cov = covs[k][np.ix_(obs, obs)]
            chol = np.linalg.cholesky(cov)
            y = np.linalg.solve(chol, (x - means[k, obs]).T)
            out[rows, k] = -0.5 * (y * y).sum(axis=0) - np.log(np.diag(chol)).sum() - 0.5 * obs.sum() * np.log(
                2 * np.pi)
    return out


def _diag_frames(X, means, var):
    """Log N(x_t | means[k], diag(var[k])) summed over the observed (non-NaN) entries, shape (T, K)."""
    return diag_log_density(X, means, var)


#: Per-state parameter arrays of hmmlearn backends that an M-step can leave undefined (0/0).
_STATE_ARRAYS = ("startprob_", "transmat_", "means_", "_covars_", "covars_", "weights_", "lambdas_", "emissionprob_")


def _guarded_mstep(backend, stats, mstep) -> None:
    """Run hmmlearn's M-step ``mstep(stats)``; a state it leaves undefined keeps its parameters.

    A state with no posterior weight in an iteration makes hmmlearn divide
    0 by 0 (NaN rates, weights or means) or leave an all-zero transition
    row. Such a state is not used by the data, so keeping its previous
    parameters does not lower the EM objective, and the fit stays finite.
    """
    n_states = backend.n_components
    before = {n: np.array(vars(backend)[n], copy=True) for n in _STATE_ARRAYS if n in vars(backend)}
    with np.errstate(divide="ignore", invalid="ignore"):
        mstep(stats)
    for name, old in before.items():
        new = np.asarray(vars(backend)[name])
        if new.shape != old.shape:
            continue
        per_state = name != "startprob_" and new.ndim >= 1 and new.shape[0] == n_states
        flat = new.reshape(n_states if per_state else 1, -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if name == "transmat_":
            bad |= flat.sum(axis=1) == 0
        if bad.any():
            repaired = new.copy().reshape(flat.shape)
            repaired[bad] = old.reshape(flat.shape)[bad]
            vars(backend)[name] = repaired.reshape(new.shape)


def _floor_covariances(covs: np.ndarray, floor: float, covariance_type: str) -> np.ndarray:
    """Raise variances (eigenvalues of full and tied matrices) to at least ``floor``, in any stored layout."""
    if covariance_type in ("diag", "spherical"):
        return np.maximum(covs, floor)
    low = np.linalg.eigvalsh(covs)[..., 0]
    return covs + np.maximum(floor - low, 0.0)[..., None, None] * np.eye(covs.shape[-1])


class _GuardedPoissonHMM(hmm.PoissonHMM):
    """hmmlearn's PoissonHMM whose M-step keeps an unused state's rates (private; see ``_guarded_mstep``)."""

    def _do_mstep(self, stats):
        _guarded_mstep(self, stats, super()._do_mstep)


class _GuardedCategoricalHMM(hmm.CategoricalHMM):
    """hmmlearn's CategoricalHMM whose M-step keeps an unused state's parameters (private)."""

    def _do_mstep(self, stats):
        _guarded_mstep(self, stats, super()._do_mstep)


class _GuardedGMMHMM(hmm.GMMHMM):
    """hmmlearn's GMMHMM whose M-step keeps an unused state's mixture and floors variances at ``min_covar``.

    hmmlearn documents ``min_covar`` as a floor on the covariance diagonals
    but applies it only at initialisation: a component on constant data then
    gets variance 0 and an infinite likelihood. Here every M-step raises
    variances (eigenvalues for full and tied matrices) to at least
    ``min_covar``.
    """

    def _do_mstep(self, stats):
        _guarded_mstep(self, stats, super()._do_mstep)
        self.covars_ = _floor_covariances(self.covars_, self.min_covar, self.covariance_type)


@contextlib.contextmanager
def _hmmlearn_log_as_warnings(owner: str):
    """Collect hmmlearn's log lines during a fit and re-issue each kind once as a Python warning.

    hmmlearn reports through :mod:`logging` ("Model is not converging", "Some
    rows of transmat_ have zero sum", ...), often once per iteration. Inside
    this block they do not reach the user's log handlers; afterwards each
    distinct message becomes one warning (a ``ConvergenceWarning`` for a
    falling log-likelihood) with the number of times it occurred.
    """
    from sklearn.exceptions import ConvergenceWarning

    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("hmmlearn")
    handler = _Collect(level=logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    kinds: dict[str, list[str]] = {}
    for record in records:
        text = record.getMessage()
        kinds.setdefault(text.split(".")[0], []).append(text)
    for key, texts in kinds.items():
        category = ConvergenceWarning if "not converging" in key else UserWarning
        times = f" ({len(texts)} times)" if len(texts) > 1 else ""
        warnings.warn(f"hmmlearn, during {owner}.fit{times}: {texts[-1]}", category, stacklevel=4)


class _KernelEStepGaussianHMM(hmm.GaussianHMM):
    """hmmlearn's GaussianHMM with probspace's compiled E-step (same fit, about 4x faster).

    hmmlearn's initialisation, M-step and priors are untouched; only the
    E-step (emission log-likelihoods, forward-backward, expected transition
    counts) runs in probspace's float64 kernels. This overrides two private
    hmmlearn hooks (``_compute_log_likelihood`` and ``_do_estep``) and reads
    the private ``_covars_``, here and nowhere else;
    ``tests/models/test_hmm.py::test_kernel_e_step_reproduces_hmmlearn`` fails
    loudly if an hmmlearn release changes them.
    """

    def _compute_log_likelihood(self, X):
        if self.covariance_type == "diag":
            return _diag_frames(X, self.means_, self._covars_)
        if self.covariance_type == "spherical":
            # hmmlearn keeps spherical variances as (K,) after init but (K, D) after its M-step.
            var = self._covars_ if self._covars_.ndim == 2 else self._covars_[:, None]
            return _diag_frames(X, self.means_, np.broadcast_to(var, self.means_.shape))
        return super()._compute_log_likelihood(X)

    def _do_estep(self, X, lengths):
        stats = self._initialize_sufficient_statistics()
        fb = _hmm.forward_backward(self.startprob_, self.transmat_, self._compute_log_likelihood(X), lengths)
        bounds = _hmm.sequence_bounds(lengths, X.shape[0])
        post = fb.marginals
        stats["nobs"] = bounds.shape[0] - 1
        if "s" in self.params:
            stats["start"] += post[bounds[:-1]].sum(axis=0)
        if "t" in self.params:
            stats["trans"] += fb.transition_counts.sum(axis=0)
        if "m" in self.params or "c" in self.params:
            stats["post"] += post.sum(axis=0)
            stats["obs"] += post.T @ X
        if "c" in self.params:
            if self.covariance_type in ("spherical", "diag"):
                stats["obs**2"] += post.T @ X**2
            else:
                stats["obs*obs.T"] += np.einsum("ij,ik,il->jkl", post, X, X)
        return stats, float(fb.log_likelihood.sum())

    def _do_mstep(self, stats):
        # hmmlearn documents min_covar as a floor but applies it only at initialisation; a scalar
        # covars_prior with "full" or "tied" adds a constant matrix (singular on constant data).
        _guarded_mstep(self, stats, super()._do_mstep)
        self._covars_ = _floor_covariances(self._covars_, self.min_covar, self.covariance_type)


class _HMM(LatentModel):
    """Shared machinery of the HMM families (private)."""

    _latent_name = "path"
    _arviz_class_dim = "state"
    _conformance_params = {"n_components": 2}
    #: Whether the family has the MCMC parameters (``sampler``...) of probspace._bayes.
    _supports_mcmc = False

    def _mcmc(self) -> bool:
        return self._supports_mcmc and self.sampler is not None

    def _conformance_alt(self, alt: dict) -> dict:
        """Non-default settings for the conformance suite; an MCMC fit cannot also be variational."""
        return {k: v for k, v in alt.items() if k != "bayesian"} if self._mcmc() else alt

    def _model_tags(self) -> ModelTags:
        point = not self.bayesian and not self._mcmc()
        return ModelTags(sequential=True, allow_nan=True, discrete_latent=True, exact_posterior=point,
                         exact_log_likelihood=point, parameter_posterior=self._mcmc(),
                         non_negative=self._non_negative, min_samples=self._min_samples)

    # -- what each family supplies ---------------------------------------------------
    @abstractmethod
    def _backend_class(self) -> tuple[type, dict[str, Any]]:
        """Return the hmmlearn class and its family-specific keyword arguments."""

    @abstractmethod
    def _log_frameprob(self, X: np.ndarray) -> np.ndarray:
        """Per-frame emission log-likelihoods (T, K) from the public parameters; 0 for missing frames."""

    @abstractmethod
    def _emit(self, states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw one observation per state in the 1-D array ``states``, shape (len(states), n_features)."""

    def _check_data(self, X: np.ndarray) -> None:
        """Family-specific checks of validated data (integer symbols, counts)."""

    # -- fitted parameters ------------------------------------------------------------
    startprob_ = property(lambda self: self.backend_.startprob_, doc="Initial state probabilities (K,).")
    transmat_ = property(lambda self: self.backend_.transmat_, doc="Transition matrix (K, K).")
    #: Public names of the fitted emission parameters.
    _emission_names: tuple[str, ...] = ()
    #: Observations are non-negative (counts, symbols).
    _non_negative = False
    #: Fewest frames ``fit`` accepts (Gaussian covariances need two).
    _min_samples = 1

    def _new_backend(self, params: dict[str, Any]) -> Any:
        return self._backend_class()[0](**params)

    def _backend_state(self, backend: Any) -> dict[str, Any]:
        state = super()._backend_state(backend)
        if hasattr(backend, "_covars_"):  # hmmlearn's GaussianHMM keeps covars_ behind a property
            full = self.covars_
            layout = getattr(backend, "covariance_type", "full")
            state["covars_"] = {"diag": lambda: np.diagonal(full, axis1=1, axis2=2).copy(),
                                "spherical": lambda: full[:, 0, 0].copy(), "tied": lambda: full[0].copy(),
                                "full": lambda: full}[layout]()
        return state

    def _get_parameters(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in ("startprob_", "transmat_", *self._emission_names)}
        draws = getattr(self, "draws_", None)
        if draws is not None:
            params.update({f"draws_[{k!r}]": v for k, v in draws.items()})
        return params

    # -- hooks -----------------------------------------------------------------------
    def _check_X(self, X, lengths, *, reset):
        X, lengths = super()._check_X(X, lengths, reset=reset)
        self._check_data(X)
        return X, lengths

    def _fit(self, X: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> None:
        if self.n_components > X.shape[0]:
            raise ValueError(f"n_components={self.n_components} must be at most the number of frames in X "
                             f"(n_samples={X.shape[0]}).")
        if self._supports_mcmc:
            self.draws_ = self.sample_stats_ = self.prior_ = None
            if self.prior is not None and self.sampler is None:
                raise ValueError(f"prior={self.prior!r} applies only to MCMC fits; set sampler='gibbs' or 'nuts' "
                                 "(EM and variational fits take their priors as constructor parameters).")
            if self.sampler is not None:
                _bayes.check_request(self, X, self._mcmc_layout())
        self._fit_em(X, lengths, rng, self.max_iter)
        if self._mcmc():
            _bayes.fit(self, X, lengths, rng)
        elif not self.converged_:
            gain = np.diff(self.history_[-2:]) * X.shape[0]
            detail = f"the last iteration raised the log-likelihood by {gain[0]:.3g}" if gain.size else ""
            warn_unconverged(self, self.max_iter, f"{detail} (tol={self.tol:g})")

    # -- EM on standardised data ---------------------------------------------------------
    def _em_units(self, X: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Shift and scale under which EM runs, or None to fit ``X`` as it is (see ``_fit_em``)."""
        return None

    def _to_data_units(self, shift: np.ndarray, scale: float) -> None:
        """Map the fitted backend's parameters from standardised units back to the units of ``X``."""

    def _fit_em(self, X, lengths, rng, n_iter) -> None:
        """Fit by EM (hmmlearn, or probspace's missing-value EM), on standardised data where the family says so.

        Gaussian families fit ``(X - shift) / scale`` with ``shift`` the data
        mean and ``scale`` a power of two near the data's spread (exact in
        floating point), then map the parameters back. So data with a large
        offset fit exactly as well as centred data: hmmlearn's M-step and the
        emission densities never subtract two large, nearly equal numbers.
        """
        units = self._em_units(X)
        missing = np.isnan(X)
        Xf = X if units is None else (X - units[0]) / units[1]
        self._units = units
        try:
            with _hmmlearn_log_as_warnings(type(self).__name__):
                if missing.any():
                    self._fit_with_missing(Xf, lengths, rng, missing, n_iter)
                else:
                    self._fit_backend(Xf, lengths, rng, n_iter)
        finally:
            del self._units
        if units is not None:
            self._to_data_units(*units)
            # log p(x) = log p(z) - log(scale) per observed entry
            self.history_ = self.history_ - (~missing).sum() * np.log(units[1]) / X.shape[0]

    def _fit_units(self, name: str, value: Any) -> Any:
        """Return a constructor value in the units EM runs in (``min_covar`` and priors of Gaussian families)."""
        units = getattr(self, "_units", None)
        if units is None or value is None:
            return value
        shift, scale = units
        if name in ("min_covar", "covars_prior"):
            return np.asarray(value, dtype=np.float64) / scale**2
        if name == "means_prior":
            return (np.asarray(value, dtype=np.float64) - shift) / scale
        return value

    # -- MCMC hooks (see probspace._bayes) -----------------------------------------------
    def _emission_params(self) -> dict[str, np.ndarray]:
        """Return the fitted emission parameters under their public names (Gaussian ``covars`` in MCMC layout)."""
        raise NotImplementedError

    def _mcmc_em_start(self, X, lengths, rng):
        saved = (self.backend_, self.n_iter_, self.converged_, self.history_)
        self._fit_em(X, lengths, rng, self.max_iter)
        start = {"startprob": self.startprob_, "transmat": self.transmat_, **self._emission_params()}
        self.backend_, self.n_iter_, self.converged_, self.history_ = saved
        return start

    def _mcmc_set_point(self, p: dict[str, np.ndarray]) -> None:
        for name, value in p.items():
            setattr(self.backend_, name + "_", value)

    def _init_backend(self, backend: Any, X: np.ndarray) -> None:
        """Set starting values on an unfitted backend where hmmlearn's own initialisation fails."""

    def _fit_backend(self, X, lengths, rng, n_iter):
        cls, kwargs = self._backend_class()
        data_kwargs = dict(kwargs)
        kwargs = {k: self._fit_units(k, v) for k, v in kwargs.items()}
        backend = cls(n_components=self.n_components, n_iter=n_iter, tol=self.tol,
                      implementation=self.implementation, random_state=sklearn_seed(rng), verbose=self.verbose,
                      **kwargs)
        self._init_backend(backend, X)
        monitor = _RecordingMonitor(self.tol, n_iter, self.verbose, self.progress, X.shape[0])
        backend.monitor_ = monitor
        try:
            backend.fit(X, lengths)
        finally:
            if monitor.bar is not None:
                monitor.bar.close()
        backend.set_params(**data_kwargs)  # the constructor values as given, in the units of X
        self.backend_ = backend
        self.n_iter_ = int(monitor.iter)
        # hmmlearn's monitor counts reaching n_iter as "converged"; ours means the gain fell below tol.
        trace = monitor.trace
        self.converged_ = bool(len(trace) >= 2 and trace[-1] - trace[-2] < self.tol)
        self.history_ = np.asarray(monitor.trace, dtype=np.float64) / X.shape[0]

    # -- EM with missing values ---------------------------------------------------------
    #: What ``fit`` accepts in the way of missing values, completing "<class> ..." in the error message.
    _missing_fit_rule = (" with these settings fits with whole missing frames only (rows of NaN), not partly "
                         "missing rows; partly missing rows are fitted with diagonal or spherical Gaussian and "
                         "Poisson emissions.")

    def _missing_supported(self, missing: np.ndarray) -> bool:
        """Whether this family can fit with this missingness pattern (default: whole frames only)."""
        partial = missing.any(axis=1) & ~missing.all(axis=1)
        return not partial.any()

    def _m_step(self, X: np.ndarray, gamma: np.ndarray) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot fit with missing values.")

    def _fit_with_missing(self, X, lengths, rng, missing, n_iter):
        """Exact EM on the observed-data likelihood, missing values marginalised.

        hmmlearn cannot fit with NaN, so it initialises the parameters on the
        complete frames (a few EM iterations, gaps closed up); then probspace
        runs EM with its own E-step (forward-backward with the missing values
        summed out of the emissions) and closed-form M-steps, writing the
        parameters back into the hmmlearn backend. With the hidden state as
        the only latent variable and missing values marginalised analytically,
        the M-step uses the observed values only, and the likelihood never
        decreases.
        """
        if self.bayesian:
            raise ValueError(f"{type(self).__name__}(bayesian=True).fit does not accept missing values (NaN); "
                             "the variational backend has no missing-data update. Use bayesian=False.")
        if not self._missing_supported(missing):
            raise ValueError(f"{type(self).__name__}{self._missing_fit_rule} posterior, embed and log_likelihood "
                             "accept missing values anywhere.")
        complete = ~missing.any(axis=1)
        if complete.sum() < self.n_components:
            raise ValueError(f"X has {complete.sum()} complete frames; at least n_components={self.n_components} "
                             "are needed to initialise the fit.")
        bounds = np.r_[0, np.cumsum(lengths)]
        init_lengths = np.array([complete[lo:hi].sum() for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
        self._fit_backend(X[complete], init_lengths[init_lengths > 0], rng, min(5, n_iter))
        trace = []
        bar = None
        if self.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_iter, desc="EM (missing values)", unit="iter", leave=False)
        converged = False
        try:
            for _ in range(n_iter):
                fb = _hmm.forward_backward(self.startprob_, self.transmat_, self._log_frameprob(X), lengths)
                total = float(fb.log_likelihood.sum())
                trace.append(total)
                if bar is not None:
                    bar.set_postfix(loglik_per_frame=f"{total / X.shape[0]:.4f}")
                    bar.update(1)
                if len(trace) > 1 and trace[-1] - trace[-2] < self.tol:
                    converged = True
                    break
                b = self.backend_
                start = np.maximum(b.startprob_prior - 1.0 + fb.marginals[bounds[:-1]].sum(axis=0), 0.0)
                trans = np.maximum(b.transmat_prior - 1.0 + fb.transition_counts.sum(axis=0), 0.0)
                b.startprob_ = start / start.sum()
                rows = trans.sum(axis=1, keepdims=True)
                b.transmat_ = np.where(rows > 0, trans / np.where(rows > 0, rows, 1.0), b.transmat_)
                self._m_step(X, fb.marginals)
        finally:
            if bar is not None:
                bar.close()
        self.n_iter_ = len(trace)
        self.converged_ = converged
        self.history_ = np.asarray(trace) / X.shape[0]

    def _posterior(self, X: np.ndarray, lengths: np.ndarray) -> MarkovChain:
        if self._mcmc():
            return _bayes.posterior(self, X, lengths)
        return MarkovChain(self.startprob_, self.transmat_, self._log_frameprob(X), lengths,
                           method="variational" if self.bayesian else "exact")

    def _log_likelihood(self, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        if self._mcmc():
            return _bayes.log_likelihood(self, X, lengths)
        return self._posterior(X, lengths).log_likelihood

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        if self._mcmc():
            return _bayes.sample(self, n_samples, rng)
        states = _hmm.sample_chain(self.startprob_, self.transmat_, n_samples, rng)
        return self._emit(states, rng), states

    def predict(self, X: Any, *, lengths: Any = None) -> np.ndarray:
        """Most probable state path (Viterbi), as hmmlearn's ``predict``.

        For an MCMC fit, the Viterbi path under the posterior-mean parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.

        Returns
        -------
        ndarray of shape (n_samples,)
            The MAP path.
        """
        X, lengths = self._check_input(X, lengths)
        path, log_joint = _hmm.viterbi(self.startprob_, self.transmat_, self._log_frameprob(X), lengths)
        if not np.all(np.isfinite(log_joint)):
            raise ValueError("The observations have zero probability under the model (log-likelihood is -inf).")
        return path

    def forecast(self, X: Any, n_steps: int, n_samples: int = 100, *, lengths: Any = None,
                 random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Sample continuations of the last sequence in ``X``: future states and observations.

        The state after the observed prefix is drawn from the filtered
        distribution at its last frame, then the chain and the emissions run
        forward, so the spread of the draws is the forecast uncertainty. For
        an MCMC fit each continuation runs under its own parameter draw, so
        parameter uncertainty is part of that spread.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observed prefix (the last sequence is continued).
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
            Forecast observations.
        Z_future : ndarray of shape (n_samples, n_steps)
            The states behind them.
        """
        n_steps = check_n_samples(n_steps, name="n_steps")
        n_samples = check_n_samples(n_samples)
        X, lengths = self._check_input(X, lengths)
        rng = self._generator(random_state)
        if self._mcmc():
            return _bayes.forecast(self, X, lengths, n_steps, n_samples, rng)
        last = self._posterior(X, lengths).filtered[-1]
        predictive = last @ self.transmat_
        states = _hmm.sample_chain(np.broadcast_to(predictive, (n_samples, predictive.size)), self.transmat_,
                                   n_steps, rng)
        obs = self._emit(states.ravel(), rng).reshape(n_samples, n_steps, -1)
        return obs, states

    # -- ArviZ hooks ----------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        full = getattr(self, "covariance_type", "diag") == "full"
        return {"path": ("time",), "x": ("time", "feature"), "state_marginals": ("time", "state"),
                "startprob": ("state",), "transmat": ("state", "state_to"), "means": ("state", "feature"),
                "covars": ("state", "feature", "feature_bis") if full else ("state", "feature"),
                "lambdas": ("state", "feature"), "emissionprob": ("state", "symbol")}

    def _sample_parameters(self, n_samples, rng):
        if not self._mcmc():
            return super()._sample_parameters(n_samples, rng)
        return _bayes.sample_parameters(self, n_samples, rng)

    def _pointwise_log_likelihood(self, X, lengths, params):
        if params is not None and self._mcmc():
            return _bayes.pointwise_log_likelihood(self, X, lengths, params)
        # One-step-ahead terms log p(x_t | x_1..x_{t-1}): per sequence they sum to its log-likelihood.
        return self._posterior(X, lengths).log_predictive

    def _posterior_predictive(self, X, latents, params, rng):
        if params is not None and self._mcmc():
            return _bayes.posterior_predictive(self, X, latents, params, rng)
        n_draws, T = latents.shape
        return self._emit(latents.ravel(), rng).reshape(n_draws, T, -1)

    def _arviz_constant_data(self, X, lengths):
        return {"state_marginals": self._posterior(X, lengths).mean}


def _two_state_data(rng: np.random.Generator, emit) -> tuple[np.ndarray, np.ndarray]:
    """Two sequences (lengths 70 and 50) from a sticky two-state chain, for the conformance suite."""
    lengths = np.array([70, 50])
    states = _hmm.sample_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.15, 0.85]]), lengths.sum(), rng)
    return emit(states, rng), lengths


def _standard_units(X: np.ndarray, centre: bool) -> tuple[np.ndarray, float]:
    """Per-feature mean (zeros unless ``centre``) and a power-of-two scale near the spread of ``X`` (NaN ignored).

    Dividing by a power of two is exact in floating point, so standardising
    loses nothing; constant data keep scale 1.
    """
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
        shift = np.nanmean(X, axis=0) if centre else np.zeros(X.shape[1])
        shift = np.where(np.isfinite(shift), shift, 0.0)
        spread = float(np.nanstd(X - shift))
    scale = float(2.0 ** np.round(np.log2(spread))) if np.isfinite(spread) and spread > 0 else 1.0
    return shift, scale


class GaussianHMM(_HMM):
    r"""Hidden Markov model with Gaussian emissions and an exact posterior over state paths.

    The model: :math:`z_1 \sim \pi`, :math:`z_t \mid z_{t-1} \sim A_{z_{t-1}}` and
    :math:`x_t \mid z_t = k \sim \mathcal{N}(\mu_k, \Sigma_k)`. Fitted by EM with
    :class:`hmmlearn.hmm.GaussianHMM` (variational Bayes with
    :class:`hmmlearn.vhmm.VariationalGaussianHMM` when ``bayesian=True``).
    :meth:`posterior` returns a :class:`~probspace.posteriors.MarkovChain`, the
    exact posterior over whole state paths given the fitted parameters:
    smoothed marginals, the Viterbi path, joint path draws (forward filtering,
    backward sampling), path log-probabilities and entropy. Missing values
    (NaN) are marginalised out of the emissions in ``posterior``,
    ``log_likelihood`` and ``embed``, and in ``fit`` (whole frames for every
    ``covariance_type``, single entries for ``"diag"`` and ``"spherical"``):
    hmmlearn initialises on the complete frames, then probspace runs exact EM
    on the observed-data likelihood. A fully missing frame follows the
    dynamics alone.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
        Shape of the state covariances.
    bayesian : bool, default=False
        Fit by variational Bayes (hmmlearn's own priors; the prior parameters
        below apply to EM fits).
    min_covar : float, default=1e-3
        Floor on the covariance diagonals.
    startprob_prior, transmat_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
    means_prior, means_weight, covars_prior, covars_weight : float
        Normal and inverse-gamma/Wishart priors of the EM fit (hmmlearn's).
    {mcmc_params}
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    implementation : {"log", "scaling"}, default="log"
        hmmlearn's forward-backward, for calls made on ``backend_`` directly.
        EM fits (``bayesian=False``) run their E-step in probspace's float64
        kernels (the same fit as hmmlearn's, about 4x faster), and inference
        after the fit always uses probspace's kernels.
    {random_state}
    verbose : bool, default=False
        Print hmmlearn's per-iteration report.
    progress : bool, default=False
        Show a progress bar with the log-likelihood per frame during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition matrix.
    means_ : ndarray of shape (n_components, n_features)
        State means.
    covars_ : ndarray of shape (n_components, n_features, n_features)
        State covariances as full matrices, whatever ``covariance_type``.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    hmmlearn.hmm.GaussianHMM : The EM backend.
    probspace.posteriors.MarkovChain : The posterior over paths.

    Notes
    -----
    ``log_likelihood`` returns one exact value per sequence (a variational
    plug-in value when ``bayesian=True``); ``score`` is their mean, not their
    sum as in hmmlearn. MCMC fits (``sampler``) support ``"diag"`` and
    ``"full"`` covariances (NUTS: ``"diag"``); their fitted attributes are
    posterior means and ``log_likelihood`` is the log posterior predictive
    density of each sequence, averaged over the draws. hmmlearn 0.3.3 returns mis-shaped ``covars_`` for
    spherical models after a fit; probspace's ``covars_`` repairs that.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import GaussianHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.r_[rng.normal(0, 1, (60, 1)), rng.normal(5, 1, (40, 1))]
    >>> model = GaussianHMM(2, random_state=0).fit(X)
    >>> post = model.posterior(X)
    >>> post.sample(20).shape
    (20, 100)
    >>> post.marginals.shape
    (100, 2)
    """

    _min_samples = 2
    _emission_names = ("means_", "covars_")
    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "covariance_type": [Options("diag", "full", "tied", "spherical")],
        "min_covar": [Interval("real", 0, None, "neither")],
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "means_prior": [Interval("real", None, None), "array-like"],
        "means_weight": [Interval("real", 0, None), "array-like"],
        "covars_prior": [Interval("real", 0, None), "array-like"],
        "covars_weight": [Interval("real", None, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_alt_params = {"covariance_type": "full", "bayesian": True}

    def __init__(self, n_components: int = 1, *, covariance_type: str = "diag", bayesian: bool = False,
                 min_covar: float = 1e-3, startprob_prior: Any = 1.0, transmat_prior: Any = 1.0,
                 means_prior: Any = 0.0, means_weight: Any = 0.0, covars_prior: Any = 1e-2, covars_weight: Any = 1.0,
                 sampler: str | None = None, n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None,
                 max_iter: int = 100, tol: float = 1e-2, implementation: str = "log", random_state: Any = None,
                 verbose: bool = False, progress: bool = False) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.bayesian = bayesian
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol
        self.implementation = implementation
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    @staticmethod
    def _conformance_data(rng):
        means = np.array([[-2.0, 0.0], [2.0, 1.0]])
        return _two_state_data(rng, lambda z, r: means[z] + r.normal(size=(len(z), 2)))

    def _backend_class(self):
        if self.bayesian:
            return vhmm.VariationalGaussianHMM, {"covariance_type": self.covariance_type}
        return _KernelEStepGaussianHMM, {
            "covariance_type": self.covariance_type, "min_covar": self.min_covar,
            "startprob_prior": self.startprob_prior, "transmat_prior": self.transmat_prior,
            "means_prior": self.means_prior, "means_weight": self.means_weight,
            "covars_prior": self.covars_prior, "covars_weight": self.covars_weight,
        }

    means_ = property(lambda self: self.backend_.means_, doc="State means (K, D).")

    def _check_data(self, X):
        check_gaussian_scale(X, type(self).__name__)

    def _em_units(self, X):
        if self.bayesian:
            return None
        # A prior on the means has a location in the units of X: then scale only, no shift.
        return _standard_units(X, centre=not np.any(np.asarray(self.means_weight) != 0))

    def _to_data_units(self, shift, scale):
        b = self.backend_
        b.means_ = b.means_ * scale + shift
        b._covars_ = b._covars_ * scale**2  # hmmlearn's stored layout; every layout is in variance units

    def _mcmc_layout(self):
        from ..inference._gibbs import DIAG, FULL

        return _bayes.Layout(DIAG if self.covariance_type == "diag" else FULL, True, "startprob", "means", "covars")

    def _emission_params(self):
        covs = self.covars_
        return {"means": self.means_,
                "covars": np.diagonal(covs, axis1=1, axis2=2).copy() if self.covariance_type == "diag" else covs}

    @property
    def covars_(self) -> np.ndarray:
        """State covariances as full matrices, shape (K, D, D)."""
        covs = self.backend_.covars_
        K, D = self.backend_.means_.shape
        if covs.shape[0] == K * D and K * D != K:  # hmmlearn 0.3.3 spherical bug: each state repeated D times
            covs = covs[::D]
        return covs

    def _log_frameprob(self, X):
        means, covs = self.means_, self.covars_
        if self.covariance_type in ("diag", "spherical"):
            return _diag_frames(X, means, np.diagonal(covs, axis1=1, axis2=2))
        return _gaussian_frames(X, means, covs)

    def _emit(self, states, rng):
        return sample_components(self.means_, self.covars_, "full", states, rng)

    def _missing_supported(self, missing):
        return self.covariance_type in ("diag", "spherical") or super()._missing_supported(missing)

    def _m_step(self, X, gamma):
        """Weighted Gaussian updates over the observed values (missing ones are marginalised)."""
        obs = ~np.isnan(X)
        x0 = np.where(obs, X, 0.0)
        den = gamma.T @ obs  # (K, D): posterior weight of the observed entries
        num = gamma.T @ x0
        old_means = self.means_
        means = np.where(den > 0, num / np.where(den > 0, den, 1.0), old_means)
        b = self.backend_
        if self.covariance_type in ("diag", "spherical"):
            sq = gamma.T @ (x0**2) - 2 * means * num + means**2 * den
            if self.covariance_type == "diag":
                var = np.where(den > 0, sq / np.where(den > 0, den, 1.0), np.diagonal(self.covars_, axis1=1, axis2=2))
                b.means_, b.covars_ = means, var + self._fit_units("min_covar", self.min_covar)
            else:
                tot = den.sum(axis=1)
                var = np.where(tot > 0, sq.sum(axis=1) / np.where(tot > 0, tot, 1.0), self.covars_[:, 0, 0])
                b.means_, b.covars_ = means, var + self._fit_units("min_covar", self.min_covar)
            return
        rows = ~np.isnan(X).any(axis=1)  # only whole frames are missing here
        Xo, go = X[rows], gamma[rows]
        covs = np.empty((self.n_components, X.shape[1], X.shape[1]))
        for k in range(self.n_components):
            diff = Xo - means[k]
            covs[k] = (go[:, k, None] * diff).T @ diff / max(go[:, k].sum(), 1e-300)
        covs += self._fit_units("min_covar", self.min_covar) * np.eye(X.shape[1])
        if self.covariance_type == "tied":
            w = go.sum(axis=0)
            b.means_, b.covars_ = means, np.tensordot(w / w.sum(), covs, axes=1)
        else:
            b.means_, b.covars_ = means, covs


GaussianHMM.__doc__ = fill(GaussianHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                           mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)


#: Largest emission table (n_components x n_symbols) a CategoricalHMM allocates (800 MB of float64).
_MAX_EMISSION_ENTRIES = 10**8


def _check_integer_values(model: LatentModel, X: np.ndarray, what: str, upper: int | None = None) -> None:
    values = X[~np.isnan(X)]
    bad = values[(values < 0) | (values != np.round(values))]
    if bad.size:
        raise ValueError(f"X passed to {type(model).__name__} must hold non-negative integer {what} "
                         f"(NaN for missing); got values such as {bad[:3]}.")
    if upper is not None and values.size and values.max() >= upper:
        raise ValueError(f"X passed to {type(model).__name__} holds symbol {int(values.max())}, but the model "
                         f"knows {upper} symbols (0 to {upper - 1}).")


class CategoricalHMM(_HMM):
    r"""Hidden Markov model with categorical emissions (one symbol per frame).

    The model: :math:`z_t` a Markov chain as in :class:`GaussianHMM`, and
    :math:`x_t \mid z_t = k \sim \mathrm{Categorical}(B_k)` over ``n_symbols``
    symbols. Fitted by :class:`hmmlearn.hmm.CategoricalHMM` (EM), or by
    :class:`hmmlearn.vhmm.VariationalCategoricalHMM` when ``bayesian=True``.
    The posterior over state paths is an exact
    :class:`~probspace.posteriors.MarkovChain`. ``X`` has one column of
    integer symbols; NaN marks a missing frame.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_symbols : int, optional
        Size of the alphabet; inferred from the data (largest symbol + 1) when ``None``.
    bayesian : bool, default=False
        Fit by variational Bayes (with hmmlearn's default priors).
    startprob_prior, transmat_prior, emissionprob_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
    {mcmc_params}
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    implementation : {"log", "scaling"}, default="log"
        hmmlearn's forward-backward during the fit.
    {random_state}
    verbose : bool, default=False
        Print hmmlearn's per-iteration report.
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition matrix.
    emissionprob_ : ndarray of shape (n_components, n_symbols)
        Symbol probabilities of each state.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    hmmlearn.hmm.CategoricalHMM : The EM backend.
    GaussianHMM : Gaussian emissions.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import CategoricalHMM
    >>> X = np.array([[0, 0, 1, 0, 2, 2, 2, 1, 2, 2]]).T
    >>> model = CategoricalHMM(2, random_state=0).fit(X)
    >>> model.posterior(X).sample(3).shape
    (3, 10)
    """

    _non_negative = True
    _emission_names = ("emissionprob_",)
    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "n_symbols": [None, Interval("int", 1, None)],
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "emissionprob_prior": [Interval("real", 0, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_alt_params = {"bayesian": True, "n_symbols": 4}

    def __init__(self, n_components: int = 1, *, n_symbols: int | None = None, bayesian: bool = False,
                 startprob_prior: Any = 1.0, transmat_prior: Any = 1.0, emissionprob_prior: Any = 1.0,
                 sampler: str | None = None, n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None,
                 max_iter: int = 100, tol: float = 1e-2, implementation: str = "log", random_state: Any = None,
                 verbose: bool = False, progress: bool = False) -> None:
        self.n_components = n_components
        self.n_symbols = n_symbols
        self.bayesian = bayesian
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol
        self.implementation = implementation
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    @staticmethod
    def _conformance_data(rng):
        B = np.array([[0.7, 0.2, 0.05, 0.05], [0.05, 0.05, 0.3, 0.6]])
        return _two_state_data(rng, lambda z, r: (r.random(len(z))[:, None] > np.cumsum(B[z], axis=1)[:, :-1])
                               .sum(axis=1, keepdims=True).astype(float))

    def _check_data(self, X):
        if X.shape[1] != 1:
            raise ValueError(f"X passed to CategoricalHMM must have one column of symbols; got {X.shape[1]} columns.")
        fitted = hasattr(self, "backend_")
        upper = self.backend_.emissionprob_.shape[1] if fitted else self.n_symbols
        _check_integer_values(self, X, "symbols", upper)
        if not fitted:
            n_symbols = self.n_symbols if self.n_symbols is not None else int(np.nanmax(X, initial=-1)) + 1
            if n_symbols * self.n_components > _MAX_EMISSION_ENTRIES:
                raise ValueError(
                    f"CategoricalHMM would need an emission table of n_components x n_symbols = {self.n_components} "
                    f"x {n_symbols} entries (symbols are coded 0 to n_symbols - 1, and X holds symbol "
                    f"{n_symbols - 1}); the limit is {_MAX_EMISSION_ENTRIES:.0e}. Recode the symbols to 0..S-1, "
                    "for example with np.unique(X, return_inverse=True).")

    def _backend_class(self):
        if self.bayesian:
            return vhmm.VariationalCategoricalHMM, {"n_features": self.n_symbols}
        return _GuardedCategoricalHMM, {"n_features": self.n_symbols, "startprob_prior": self.startprob_prior,
                                    "transmat_prior": self.transmat_prior,
                                    "emissionprob_prior": self.emissionprob_prior}

    def _fit_backend(self, X, lengths, rng, n_iter):
        super()._fit_backend(X.astype(np.int64), lengths, rng, n_iter)

    emissionprob_ = property(lambda self: self.backend_.emissionprob_, doc="Symbol probabilities (K, n_symbols).")

    def _mcmc_layout(self):
        from ..inference._gibbs import CATEGORICAL

        return _bayes.Layout(CATEGORICAL, True, "startprob", "emissionprob", None)

    def _emission_params(self):
        return {"emissionprob": self.emissionprob_}

    def _log_frameprob(self, X):
        obs = ~np.isnan(X[:, 0])
        out = np.zeros((X.shape[0], self.n_components))
        with np.errstate(divide="ignore"):
            out[obs] = np.log(self.emissionprob_[:, X[obs, 0].astype(np.int64)]).T
        return out

    def _m_step(self, X, gamma):
        obs = ~np.isnan(X[:, 0])
        counts = np.zeros_like(self.emissionprob_)
        np.add.at(counts.T, X[obs, 0].astype(np.int64), gamma[obs])
        new = np.maximum(self.backend_.emissionprob_prior - 1.0 + counts, 0.0)
        rows = new.sum(axis=1, keepdims=True)
        self.backend_.emissionprob_ = np.where(rows > 0, new / np.where(rows > 0, rows, 1.0), self.emissionprob_)

    def _emit(self, states, rng):
        cdf = np.cumsum(self.emissionprob_, axis=1)[states]
        u = rng.random(len(states))[:, None] * cdf[:, -1:]
        return (u >= cdf[:, :-1]).sum(axis=1, keepdims=True).astype(np.int64)


CategoricalHMM.__doc__ = fill(CategoricalHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                              mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)


class PoissonHMM(_HMM):
    r"""Hidden Markov model with independent Poisson counts per feature.

    The model: :math:`z_t` a Markov chain and :math:`x_{td} \mid z_t = k \sim
    \mathrm{Poisson}(\lambda_{kd})`. Fitted by :class:`hmmlearn.hmm.PoissonHMM`
    (EM; hmmlearn has no variational Poisson HMM, so ``bayesian=True`` is an
    error). The posterior over state paths is an exact
    :class:`~probspace.posteriors.MarkovChain`; NaN entries are marginalised.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    bayesian : bool, default=False
        Must be False (no variational backend exists).
    startprob_prior, transmat_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
    lambdas_prior, lambdas_weight : float, default=0.0
        Gamma prior on the rates (hmmlearn's parametrisation).
    {mcmc_params}
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    implementation : {"log", "scaling"}, default="log"
        hmmlearn's forward-backward during the fit.
    {random_state}
    verbose : bool, default=False
        Print hmmlearn's per-iteration report.
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition matrix.
    lambdas_ : ndarray of shape (n_components, n_features)
        Poisson rates of each state.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    hmmlearn.hmm.PoissonHMM : The EM backend.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import PoissonHMM
    >>> X = np.array([[1, 0, 2, 1, 9, 12, 8, 11, 1, 0]]).T
    >>> model = PoissonHMM(2, random_state=0).fit(X)
    >>> model.posterior(X).map().shape
    (10,)
    """

    _non_negative = True
    _emission_names = ("lambdas_",)
    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "lambdas_prior": [Interval("real", 0, None), "array-like"],
        "lambdas_weight": [Interval("real", 0, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_alt_params = {"startprob_prior": 2.0, "implementation": "scaling"}

    def __init__(self, n_components: int = 1, *, bayesian: bool = False, startprob_prior: Any = 1.0,
                 transmat_prior: Any = 1.0, lambdas_prior: Any = 0.0, lambdas_weight: Any = 0.0,
                 sampler: str | None = None, n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None, max_iter: int = 100,
                 tol: float = 1e-2, implementation: str = "log", random_state: Any = None, verbose: bool = False,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.bayesian = bayesian
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol
        self.implementation = implementation
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    @staticmethod
    def _conformance_data(rng):
        rates = np.array([[1.0, 4.0], [8.0, 0.5]])
        return _two_state_data(rng, lambda z, r: r.poisson(rates[z]).astype(float))

    def _check_data(self, X):
        _check_integer_values(self, X, "counts")

    def _backend_class(self):
        if self.bayesian:
            raise ValueError("PoissonHMM has no Bayesian variant: hmmlearn offers no variational Poisson HMM. "
                             "Use bayesian=False.")
        return _GuardedPoissonHMM, {"startprob_prior": self.startprob_prior, "transmat_prior": self.transmat_prior,
                                "lambdas_prior": self.lambdas_prior, "lambdas_weight": self.lambdas_weight}

    lambdas_ = property(lambda self: self.backend_.lambdas_, doc="Poisson rates (K, D).")

    def _init_backend(self, backend, X):
        # hmmlearn draws starting rates from a Gamma matched to the mean and variance of X, which is
        # undefined for constant counts (variance 0): start every state at the mean count instead.
        if X.var() == 0:
            backend.lambdas_ = np.full((self.n_components, X.shape[1]), X.mean())
            backend.init_params = backend.init_params.replace("l", "")

    def _mcmc_layout(self):
        from ..inference._gibbs import POISSON

        return _bayes.Layout(POISSON, True, "startprob", "lambdas", None)

    def _emission_params(self):
        return {"lambdas": self.lambdas_}

    def _log_frameprob(self, X):
        lam = self.lambdas_
        obs = ~np.isnan(X)
        x0 = np.where(obs, X, 0.0)
        with np.errstate(divide="ignore"):
            log_lam = np.log(lam)
        # sum_d obs * (x log lam - lam - log x!), with 0 * log 0 = 0
        return (np.where(x0 > 0, x0, 0.0) @ np.where(np.isfinite(log_lam), log_lam, -1e300).T
                - obs @ lam.T - (gammaln(x0 + 1.0) * obs).sum(axis=1, keepdims=True))

    def _missing_supported(self, missing):
        return True

    def _m_step(self, X, gamma):
        """Rate updates over the observed counts, with hmmlearn's Gamma prior per state."""
        obs = ~np.isnan(X)
        num = gamma.T @ np.where(obs, X, 0.0)
        den = gamma.T @ obs
        lam = (self.lambdas_prior + num) / (self.lambdas_weight + den)
        self.backend_.lambdas_ = np.where(den > 0, lam, self.lambdas_)

    def _emit(self, states, rng):
        return rng.poisson(self.lambdas_[states]).astype(np.int64)


PoissonHMM.__doc__ = fill(PoissonHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                          mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)


class GMMHMM(_HMM):
    r"""Hidden Markov model whose states emit Gaussian mixtures.

    The model: :math:`z_t` a Markov chain and :math:`x_t \mid z_t = k \sim
    \sum_m w_{km} \mathcal{N}(\mu_{km}, \Sigma_{km})`. Fitted by
    :class:`hmmlearn.hmm.GMMHMM` (EM; no variational variant exists, so
    ``bayesian=True`` is an error). The posterior over state paths is an
    exact :class:`~probspace.posteriors.MarkovChain`, with the mixture
    component summed out; NaN entries are marginalised.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_mix : int, default=1
        Mixture components per state.
    covariance_type : {"diag", "full", "tied", "spherical"}, default="diag"
        Shape of the component covariances.
    bayesian : bool, default=False
        Must be False.
    min_covar : float, default=1e-3
        Floor on the covariance diagonals.
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    implementation : {"log", "scaling"}, default="log"
        hmmlearn's forward-backward during the fit.
    {random_state}
    verbose : bool, default=False
        Print hmmlearn's per-iteration report.
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition matrix.
    weights_ : ndarray of shape (n_components, n_mix)
        Mixture weights of each state.
    means_ : ndarray of shape (n_components, n_mix, n_features)
        Component means.
    covars_ : ndarray of shape (n_components, n_mix, n_features, n_features)
        Component covariances as full matrices.
    {common_attributes}

    See Also
    --------
    hmmlearn.hmm.GMMHMM : The EM backend.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import GMMHMM
    >>> X = np.random.default_rng(0).normal(size=(80, 2))
    >>> GMMHMM(2, n_mix=2, random_state=0).fit(X).posterior(X).marginals.shape
    (80, 2)
    """

    _min_samples = 2
    _emission_names = ("weights_", "means_", "covars_")
    _parameter_constraints = {
        **_COMMON_CONSTRAINTS,
        "n_mix": [Interval("int", 1, None)],
        "covariance_type": [Options("diag", "full", "tied", "spherical")],
        "min_covar": [Interval("real", 0, None, "neither")],
    }
    _conformance_params = {"n_components": 2, "n_mix": 2}
    _conformance_alt_params = {"covariance_type": "full", "n_mix": 1}

    def __init__(self, n_components: int = 1, *, n_mix: int = 1, covariance_type: str = "diag",
                 bayesian: bool = False, min_covar: float = 1e-3, max_iter: int = 100, tol: float = 1e-2,
                 implementation: str = "log", random_state: Any = None, verbose: bool = False,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.n_mix = n_mix
        self.covariance_type = covariance_type
        self.bayesian = bayesian
        self.min_covar = min_covar
        self.max_iter = max_iter
        self.tol = tol
        self.implementation = implementation
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    @staticmethod
    def _conformance_data(rng):
        return GaussianHMM._conformance_data(rng)

    def _backend_class(self):
        if self.bayesian:
            raise ValueError("GMMHMM has no Bayesian variant in hmmlearn. Use bayesian=False.")
        return _GuardedGMMHMM, {"n_mix": self.n_mix, "covariance_type": self.covariance_type,
                            "min_covar": self.min_covar}

    weights_ = property(lambda self: self.backend_.weights_, doc="Mixture weights (K, M).")
    means_ = property(lambda self: self.backend_.means_, doc="Component means (K, M, D).")

    _missing_fit_rule = (".fit does not accept missing values (NaN): the mixture's missing-value M-step is not "
                         "implemented. Fit on complete frames (or impute);")

    def _check_data(self, X):
        check_gaussian_scale(X, type(self).__name__)

    def _missing_supported(self, missing):
        return False

    def _em_units(self, X):
        return _standard_units(X, centre=True)

    def _to_data_units(self, shift, scale):
        b = self.backend_
        b.means_ = b.means_ * scale + shift
        b.covars_ = b.covars_ * scale**2

    @property
    def covars_(self) -> np.ndarray:
        """Component covariances as full matrices, shape (K, M, D, D)."""
        covs = self.backend_.covars_
        K, M, D = self.backend_.means_.shape
        eye = np.eye(D)
        if self.covariance_type == "diag":
            return covs[..., None] * eye
        if self.covariance_type == "spherical":
            return covs[..., None, None] * eye
        if self.covariance_type == "tied":
            return np.broadcast_to(covs[:, None], (K, M, D, D))
        return covs

    def _log_frameprob(self, X):
        covs = self.covars_
        with np.errstate(divide="ignore"):
            log_w = np.log(self.weights_)
        parts = [_gaussian_frames(X, self.means_[:, m], covs[:, m]) + log_w[:, m] for m in range(self.n_mix)]
        return logsumexp(np.stack(parts), axis=0)

    def _emit(self, states, rng):
        w = self.weights_[states]
        mix = (rng.random(len(states))[:, None] * w.sum(axis=1, keepdims=True) >= np.cumsum(w, axis=1)[:, :-1]).sum(1)
        flat = states * self.n_mix + mix
        K, M, D = self.means_.shape
        return sample_components(self.means_.reshape(K * M, D), self.covars_.reshape(K * M, D, D), "full", flat, rng)


GMMHMM.__doc__ = fill(GMMHMM.__doc__)
