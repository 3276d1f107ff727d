"""The HMM families' shared machinery: initial + transition + emission, fitted by EM or MCMC.

A family is a thin subclass of :class:`_HMM` that names its hmmlearn backend
(``_backend_class``), builds its emission component (``_emission``, from
:mod:`probspace.emissions`) and reads the fitted emission parameters
(``_emission_point``). Everything else is here, once: EM through hmmlearn
(on standardised data where the family says so), probspace's own EM for
missing values (E-step by forward-backward, M-step by the emission), MCMC by
composition (``mcmc_``, a :class:`probspace._bayes.MCMC`), and the hooks of
:class:`~probspace.LatentModel`, which ask :meth:`_HMM._answers` (the one
place that knows how the model was fitted) and never branch themselves.
That is a second level of inheritance, against STYLE's depth-1 rule, because
the alternative is the same hooks copied into every family.
"""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any

import numpy as np

from ... import _bayes
from ..._base import LatentModel
from ..._random import child_generator, sklearn_seed
from ..._tags import ModelTags
from ..._validation import Interval, Options, check_n_samples, warn_unconverged
from ...emissions import Emission
from ...emissions._base import check_counts
from ...inference import _hmm
from ...inference._progress import progress_bar
from . import _adapter

COMMON_CONSTRAINTS = {
    "n_components": [Interval("int", 1, None)],
    "bayesian": ["boolean"],
    "max_iter": [Interval("int", 1, None)],
    "tol": [Interval("real", 0, None)],
    "implementation": [Options("log", "scaling")],
    "random_state": ["random_state"],
    "verbose": ["boolean"],
    "progress": ["boolean"],
}


class _HMM(LatentModel):
    """Shared machinery of the HMM families (private)."""

    _latent_name = "path"
    _arviz_class_dim = "state"
    _conformance_params = {"n_components": 2}
    #: Whether the family has the MCMC parameters (``sampler``...) of probspace._bayes.
    _supports_mcmc = False
    #: Public names of the fitted emission parameters.
    _emission_names: tuple[str, ...] = ()
    #: Observations are non-negative (counts, symbols).
    _non_negative = False
    #: Fewest frames ``fit`` accepts (Gaussian covariances need two).
    _min_samples = 1
    #: Whether a variational fit (``bayesian=True``) draws parameters from its posterior (:meth:`_draw_variational`).
    _variational_draws = False
    _unsaved = (*LatentModel._unsaved, "mcmc_")

    def _mcmc_requested(self) -> bool:
        return self._supports_mcmc and self.sampler is not None

    def _conformance_alt(self, alt: dict) -> dict:
        """Non-default settings for the conformance suite; an MCMC fit cannot also be variational."""
        return {k: v for k, v in alt.items() if k != "bayesian"} if self._mcmc_requested() else alt

    def _model_tags(self) -> ModelTags:
        point = not self.bayesian and not self._mcmc_requested()
        return ModelTags(sequential=True, allow_nan=True, discrete_latent=True, exact_posterior=point,
                         exact_log_likelihood=point,
                         parameter_posterior=self._mcmc_requested() or (self.bayesian and self._variational_draws),
                         non_negative=self._non_negative, min_samples=self._min_samples)

    # -- what each family supplies ---------------------------------------------------
    @abstractmethod
    def _backend_class(self) -> tuple[type, dict[str, Any]]:
        """Return the hmmlearn class and its family-specific keyword arguments."""

    @abstractmethod
    def _emission(self, X: np.ndarray | None = None) -> Emission:
        """Return the emission component; before a fit (``X`` given) sized from the data, else from the fitted model."""

    @abstractmethod
    def _emission_point(self) -> dict[str, np.ndarray]:
        """Return the fitted emission parameters under the emission's names and layout."""

    def _check_data(self, X: np.ndarray) -> None:
        """Family-specific checks of validated data (integer symbols, counts)."""

    def _init_backend(self, backend: Any, X: np.ndarray) -> None:
        """Set starting values on an unfitted backend where hmmlearn's own initialisation fails."""

    # -- composition -----------------------------------------------------------------------
    def _structure(self, X: np.ndarray | None = None) -> _bayes.Structure:
        return _bayes.Structure(self._emission(X), hmm=True)

    def _point(self) -> dict[str, np.ndarray]:
        return {"startprob": self.startprob_, "transmat": self.transmat_, **self._emission_point()}

    def _set_point(self, params: dict[str, np.ndarray]) -> None:
        """Write parameters (public names, the emission's layout) into the backend."""
        for name, value in params.items():
            setattr(self.backend_, name + "_", value)

    def _answers(self) -> _bayes.MCMC | _bayes.PlugIn:
        """Return the answers: the MCMC engine, or the point fit's (the one place that asks which)."""
        mcmc = getattr(self, "mcmc_", None)
        if mcmc is not None:
            return mcmc
        if not self.bayesian:
            return _bayes.PlugIn(self._structure(), self._point(), "exact")
        draw = self._draw_variational if self._variational_draws else None
        return _bayes.PlugIn(self._structure(), self._point(), "variational", draw)

    def _draw_variational(self, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Parameter draws from the variational posterior, in the layout of MCMC ``draws_`` (leading draw axis).

        The initial and transition probabilities are Dirichlet in hmmlearn's
        variational posterior (``startprob_posterior_``, ``transmat_posterior_``
        rows); the family adds its emission draws (:meth:`_draw_emission`).
        """
        b = self.backend_
        A = np.stack([rng.dirichlet(row, size=n_samples) for row in b.transmat_posterior_], axis=1)
        return {"startprob": rng.dirichlet(b.startprob_posterior_, size=n_samples), "transmat": A,
                **self._draw_emission(n_samples, rng)}

    def _draw_emission(self, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} draws no emission parameters.")

    def _log_frameprob(self, X: np.ndarray) -> np.ndarray:
        """Per-frame emission log-likelihoods (T, K) under the fitted point; 0 for missing values."""
        return self._emission().log_frames(X, self._emission_point())

    # -- fitted parameters ------------------------------------------------------------
    startprob_ = property(lambda self: self.backend_.startprob_, doc="Initial state probabilities (K,).")
    transmat_ = property(lambda self: self.backend_.transmat_, doc="Transition matrix (K, K).")
    draws_ = _bayes.engine_field("draws", "MCMC parameter draws (n_chains, n_draws, ...), or None.")
    sample_stats_ = _bayes.engine_field("stats", "MCMC per-draw statistics (n_chains, n_draws), or None.")
    prior_ = _bayes.engine_field("prior", "The prior of an MCMC fit (defaults filled in), or None.")

    def _new_backend(self, params: dict[str, Any]) -> Any:
        return self._backend_class()[0](**params)

    def _backend_state(self, backend: Any) -> dict[str, Any]:
        state = super()._backend_state(backend)
        covars = _adapter.stored_covars(backend, lambda: self.covars_)
        if covars is not None:  # hmmlearn's GaussianHMM keeps covars_ behind a property
            state["covars_"] = covars
        return state

    def _get_state(self) -> dict[str, Any]:
        state = super()._get_state()
        return _bayes.add_engine_state(self, state) if self._supports_mcmc else state

    def _set_state(self, state: dict[str, Any]) -> None:
        state, engine = _bayes.split_engine_state(state)
        super()._set_state(state)
        if self._supports_mcmc:
            _bayes.restore_engine(self, engine)

    def _get_parameters(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in ("startprob_", "transmat_", *self._emission_names)}
        draws = getattr(self, "draws_", None)
        if draws is not None:
            params.update({f"draws_[{k!r}]": v for k, v in draws.items()})
        return params

    # -- fitting -----------------------------------------------------------------------
    def _check_X(self, X, lengths, *, reset):
        X, lengths = super()._check_X(X, lengths, reset=reset)
        self._check_data(X)
        return X, lengths

    def _fit(self, X: np.ndarray, lengths: np.ndarray, rng: np.random.Generator) -> None:
        if self.n_components > X.shape[0]:
            raise ValueError(f"n_components={self.n_components} must be at most the number of frames in X "
                             f"(n_samples={X.shape[0]}).")
        name = type(self).__name__
        if self._supports_mcmc:
            self.mcmc_ = None
            if self.prior is not None and self.sampler is None:
                raise ValueError(f"prior={self.prior!r} applies only to MCMC fits; set sampler='gibbs' or 'nuts' "
                                 "(EM and variational fits take their priors as constructor parameters).")
            if self.sampler is not None:
                _bayes.check_request(self._structure(X), self.sampler, self.prior, X, self.n_components, name,
                                     self.bayesian)
        self._fit_em(X, lengths, rng, self.max_iter)
        if self._mcmc_requested():
            starts = [self._em_start(X, lengths, child_generator(rng)) for _ in range(self.n_chains)]
            self.mcmc_ = _bayes.MCMC.run(self._structure(), X, lengths, starts, sampler=self.sampler,
                                         prior=self.prior, n_draws=self.n_draws, n_warmup=self.n_warmup, rng=rng,
                                         progress=self.progress, owner=name)
            self._set_point(self.mcmc_.point())
        elif not self.converged_:
            gain = np.diff(self.history_[-2:]) * X.shape[0]
            detail = f"the last iteration raised the log-likelihood by {gain[0]:.3g}" if gain.size else ""
            warn_unconverged(self, self.max_iter, f"{detail} (tol={self.tol:g})")

    def _em_start(self, X, lengths, rng) -> dict[str, np.ndarray]:
        """One chain's start: an EM fit from ``rng``, leaving the model's own fit in place."""
        saved = (self.backend_, self.n_iter_, self.converged_, self.history_)
        self._fit_em(X, lengths, rng, self.max_iter)
        start = self._point()
        self.backend_, self.n_iter_, self.converged_, self.history_ = saved
        return start

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
            with _adapter.hmmlearn_log_as_warnings(type(self).__name__):
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

    def _fit_backend(self, X, lengths, rng, n_iter):
        cls, kwargs = self._backend_class()
        data_kwargs = dict(kwargs)
        kwargs = {k: self._fit_units(k, v) for k, v in kwargs.items()}
        backend = cls(n_components=self.n_components, n_iter=n_iter, tol=self.tol,
                      implementation=self.implementation, random_state=sklearn_seed(rng), verbose=self.verbose,
                      **kwargs)
        self._init_backend(backend, X)
        n_done, trace = _adapter.fit_backend(backend, X, lengths, tol=self.tol, n_iter=n_iter, verbose=self.verbose,
                                             progress=self.progress)
        backend.set_params(**data_kwargs)  # the constructor values as given, in the units of X
        self.backend_ = backend
        self.n_iter_ = n_done
        # hmmlearn's monitor counts reaching n_iter as "converged"; ours means the gain fell below tol.
        self.converged_ = bool(len(trace) >= 2 and trace[-1] - trace[-2] < self.tol)
        self.history_ = np.asarray(trace, dtype=np.float64) / X.shape[0]

    # -- EM with missing values ---------------------------------------------------------
    #: What ``fit`` accepts in the way of missing values, completing "<class> ..." in the error message.
    _missing_fit_rule = (" with these settings fits with whole missing frames only (rows of NaN), not partly "
                         "missing rows; partly missing rows are fitted with diagonal or spherical Gaussian and "
                         "Poisson emissions.")

    def _m_step(self, X: np.ndarray, gamma: np.ndarray) -> None:
        """Run the emission's M-step given state responsibilities ``gamma``, written into the backend."""
        self._set_point(self._emission().m_step(X, gamma, self._emission_point()))

    def _fit_with_missing(self, X, lengths, rng, missing, n_iter):
        """Exact EM on the observed-data likelihood, missing values marginalised.

        hmmlearn cannot fit with NaN, so it initialises the parameters on the
        complete frames (a few EM iterations, gaps closed up); then probspace
        runs EM with its own E-step (forward-backward with the missing values
        summed out of the emissions) and closed-form M-steps (the emission's),
        writing the parameters back into the hmmlearn backend. With the hidden
        state as the only latent variable and missing values marginalised
        analytically, the M-step uses the observed values only, and the
        likelihood never decreases.
        """
        if self.bayesian:
            raise ValueError(f"{type(self).__name__}(bayesian=True).fit does not accept missing values (NaN); "
                             "the variational backend has no missing-data update. Use bayesian=False.")
        if not self._emission(X).missing_supported(missing):
            raise ValueError(f"{type(self).__name__}{self._missing_fit_rule} posterior, embed and log_likelihood "
                             "accept missing values anywhere.")
        complete = ~missing.any(axis=1)
        if complete.sum() < self.n_components:
            raise ValueError(f"X has {complete.sum()} complete frames; at least n_components={self.n_components} "
                             "are needed to initialise the fit.")
        bounds = np.r_[0, np.cumsum(lengths)]
        init_lengths = np.array([complete[lo:hi].sum() for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)])
        self._fit_backend(X[complete], init_lengths[init_lengths > 0], rng, min(5, n_iter))
        self._em_loop(X, lengths, n_iter, "EM (missing values)")

    def _em_loop(self, X, lengths, n_iter, desc):
        """EM from the backend's current parameters: forward-backward, Dirichlet MAP updates, the emission's M-step."""
        bounds = np.r_[0, np.cumsum(lengths)]
        trace = []
        converged = False
        with progress_bar(self.progress, n_iter, desc, "iter") as bar:
            for _ in range(n_iter):
                fb = _hmm.forward_backward(self.startprob_, self.transmat_, self._log_frameprob(X), lengths)
                total = float(fb.log_likelihood.sum())
                trace.append(total)
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
        self.n_iter_ = len(trace)
        self.converged_ = converged
        self.history_ = np.asarray(trace) / X.shape[0]

    # -- hooks: asked of the answers ---------------------------------------------------------
    def _posterior(self, X: np.ndarray, lengths: np.ndarray):
        return self._answers().posterior(X, lengths)

    def _log_likelihood(self, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self._answers().log_likelihood(X, lengths)

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._answers().sample(n_samples, rng)

    def _sample_parameters(self, n_samples, rng):
        return self._answers().sample_parameters(n_samples, rng)

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
        # emission densities a block at a time on a helper thread, overlapping the recursion (no (T, K) array)
        emission, point = self._emission(), self._emission_point()
        path, log_joint = _hmm.viterbi_streamed(self.startprob_, self.transmat_,
                                                lambda lo, hi: emission.log_frames(X[lo:hi], point), X.shape[0],
                                                lengths)
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
        return self._answers().forecast(X, lengths, n_steps, n_samples, self._generator(random_state))

    # -- ArviZ hooks ----------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        full = getattr(self, "covariance_type", "diag") == "full"
        return {"path": ("time",), "x": ("time", "feature"), "state_marginals": ("time", "state"),
                "startprob": ("state",), "transmat": ("state", "state_to"), "means": ("state", "feature"),
                "covars": ("state", "feature", "feature_bis") if full else ("state", "feature"),
                "lambdas": ("state", "feature"), "emissionprob": ("state", "symbol")}

    def _pointwise_log_likelihood(self, X, lengths, params):
        # Point fits: one-step-ahead terms log p(x_t | x_1..x_{t-1}), which sum to each sequence's log-likelihood.
        return self._answers().pointwise_log_likelihood(X, lengths, params)

    def _posterior_predictive(self, X, latents, params, rng):
        return self._answers().posterior_predictive(X, latents, params, rng)

    def _arviz_constant_data(self, X, lengths):
        return {"state_marginals": self._posterior(X, lengths).mean}


def two_state_data(rng: np.random.Generator, emit) -> tuple[np.ndarray, np.ndarray]:
    """Two sequences (lengths 70 and 50) from a sticky two-state chain, for the conformance suite."""
    lengths = np.array([70, 50])
    states = _hmm.sample_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.15, 0.85]]), lengths.sum(), rng)
    return emit(states, rng), lengths


def standard_units(X: np.ndarray, centre: bool) -> tuple[np.ndarray, float]:
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


def check_integer_values(model: LatentModel, X: np.ndarray, what: str, upper: int | None = None) -> None:
    """Reject values that are not non-negative integers (NaN allowed), or symbols beyond ``upper``."""
    check_counts(X, type(model).__name__, what, upper)
