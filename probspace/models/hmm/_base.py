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

import copy
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
from ._constraints import (
    Constraints,
    check_labels,
    check_sequence_weight,
    check_topology,
    constrained_emission_m_step,
    label_mask,
    label_permutation,
    lead_by_labels,
)
from ._filter import StreamingFilter

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
#: Constructor parameters of the constraints (``fixed``, ``topology``, ``bandwidth``), checked at fit.
CONSTRAINT_CONSTRAINTS = {"fixed": [None, dict], "topology": [None, str], "bandwidth": [None, Interval("int", 0, None)]}


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
        """Non-default settings for the conformance suite; an MCMC or constrained fit cannot also be variational."""
        constrained = getattr(self, "fixed", None) or getattr(self, "topology", None) not in (None, "ergodic")
        return {k: v for k, v in alt.items() if k != "bayesian"} if self._mcmc_requested() or constrained else alt

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

    def _check_frame(self, X: np.ndarray) -> None:
        """Check one streamed frame (float, inf already rejected) as ``_check_X`` checks data, without sklearn."""
        self._check_data(X)

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
        labels, weight = self._check_extras(X, lengths, *getattr(self, "_fit_extras", (None, None)))
        self._fit_labels, self._fit_weight, self._fit_X = labels, weight, X
        self._check_constraint_request(X, labels, weight)
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
                                         progress=self.progress, owner=name,
                                         log_mask=label_mask(labels, self.n_components), held=self._constraints())
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
                elif self._native_em_needed():
                    self._fit_constrained(Xf, lengths, rng, n_iter)
                else:
                    self._fit_backend(Xf, lengths, rng, n_iter)
        finally:
            del self._units
        if units is not None:
            self._to_data_units(*units)
            # log p(x) = log p(z) - log(scale) per observed entry
            weight = self._frame_weights(lengths)
            n_obs = (~missing).sum() if weight is None else (weight[:, None] * ~missing).sum()
            frames = X.shape[0] if weight is None else weight.sum()
            self.history_ = self.history_ - n_obs * np.log(units[1]) / frames
        cons = self._constraints()
        if cons:  # held entries bit for bit in the units of X
            self._set_point(cons.restore(self._point()))

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
        """EM from the backend's current parameters: forward-backward, Dirichlet MAP updates, the emission's M-step.

        Known ``labels`` mask the emission log-likelihoods, sequence weights
        scale each sequence's expected counts (and its log-likelihood in the
        objective), and held entries (``fixed``, ``topology``) are kept by
        :meth:`Constraints.project` after each M-step: the exact maximiser
        over the free entries, so the objective never decreases.
        """
        bounds = np.r_[0, np.cumsum(lengths)]
        cons = self._fit_constraints()
        mask = label_mask(getattr(self, "_fit_labels", None), self.n_components)
        seq_w = getattr(self, "_fit_weight", None)
        frame_w = None if seq_w is None else np.repeat(seq_w, lengths)
        if mask is not None:
            self._align_to_labels(X, lengths, mask)
        if cons:
            self._set_point(cons.project(self._point()))
        trace = []
        converged = False
        with progress_bar(self.progress, n_iter, desc, "iter") as bar:
            for _ in range(n_iter):
                logf = self._log_frameprob(X)
                if mask is not None:
                    logf = logf + mask
                fb = _hmm.forward_backward(self.startprob_, self.transmat_, logf, lengths)
                if (cons or mask is not None) and not np.all(np.isfinite(fb.log_likelihood)):
                    self.__dict__.pop("backend_", None)
                    raise ValueError(f"{type(self).__name__}.fit: a sequence has zero probability under the "
                                     "constraints (labels, fixed entries or topology rule out every path).")
                ll, gamma, counts = fb.log_likelihood, fb.marginals, fb.transition_counts
                if seq_w is not None:
                    ll, gamma, counts = ll * seq_w, gamma * frame_w[:, None], counts * seq_w[:, None, None]
                total = float(ll.sum())
                trace.append(total)
                bar.set_postfix(loglik_per_frame=f"{total / X.shape[0]:.4f}")
                bar.update(1)
                if len(trace) > 1 and trace[-1] - trace[-2] < self.tol:
                    converged = True
                    break
                b = self.backend_
                start = np.maximum(b.startprob_prior - 1.0 + gamma[bounds[:-1]].sum(axis=0), 0.0)
                trans = np.maximum(b.transmat_prior - 1.0 + counts.sum(axis=0), 0.0)
                new_start = start / start.sum()
                rows = trans.sum(axis=1, keepdims=True)
                new_trans = np.where(rows > 0, trans / np.where(rows > 0, rows, 1.0), b.transmat_)
                if cons:
                    emission = self._constrained_m_step(X, gamma, cons)
                    self._set_point(cons.project({"startprob": new_start, "transmat": new_trans, **emission}))
                else:
                    b.startprob_, b.transmat_ = new_start, new_trans
                    self._m_step(X, gamma)
        self.n_iter_ = len(trace)
        self.converged_ = converged
        self.history_ = np.asarray(trace) / (X.shape[0] if frame_w is None else frame_w.sum())

    # -- constraints, labels and weights ---------------------------------------------------
    def _align_to_labels(self, X, lengths, mask):
        """Start EM where the known labels point: states renumbered to match them, emissions led by them.

        An EM start has arbitrary state order, so the starting states are first
        renumbered to agree best with the labels (an assignment problem on the
        unlabelled posterior; skipped when held entries fix the order). Then one
        emission M-step on the labelled posterior in which the labelled frames
        carry as much weight as all the others, so a few labels lead the start.
        """
        labels = self._fit_labels
        known = labels >= 0
        if not known.any():
            return
        K = self.n_components
        if not self._constraints():
            fb = _hmm.forward_backward(self.startprob_, self.transmat_, self._log_frameprob(X), lengths)
            perm = label_permutation(labels[known], np.log(np.maximum(fb.marginals[known], 1e-300)), K)
            params = self._point()
            tied = getattr(self._emission(), "covariance_type", "") == "tied"
            moved = _bayes.permute({k: v for k, v in params.items() if not (tied and k == "covars")}, perm)
            self._set_point({**params, **moved})
        fb = _hmm.forward_backward(self.startprob_, self.transmat_, self._log_frameprob(X) + mask, lengths)
        if not np.all(np.isfinite(fb.log_likelihood)):
            return  # reported by the EM loop
        gamma = lead_by_labels(fb.marginals.copy(), known)
        cons = self._fit_constraints()
        if cons:
            self._set_point(cons.project(self._constrained_m_step(X, gamma, cons)))
        else:
            self._m_step(X, gamma)

    def _constraints(self) -> Constraints:
        """Return the held entries of ``fixed`` and ``topology``, in the units of X (empty when neither is set)."""
        fixed, topology, bandwidth = (getattr(self, n, None) for n in ("fixed", "topology", "bandwidth"))
        if not fixed and topology in (None, "ergodic"):
            check_topology(topology, bandwidth, type(self).__name__)
            return Constraints({}, ())
        X = getattr(self, "_fit_X", None)
        structure = self._structure(X) if X is not None else self._structure()
        shapes = structure.shapes(self.n_components, self.n_features_in_)
        em = structure.emission
        return Constraints.build(fixed, topology, bandwidth, shapes, structure.simplex, em.positive,
                                 type(self).__name__, self._whole_state_arrays(em),
                                 em.held_support(self.n_components, self.n_features_in_))

    def _whole_state_arrays(self, emission: Emission) -> dict[str, str]:
        """Arrays held only per state, with the reason (coupled entries have no entry-wise M-step)."""
        coupled = getattr(emission, "covariance_type", "diag") in ("full", "tied") or len(emission.names) > 2
        if not coupled:
            return {}
        why = "the entries of a state are coupled through its covariance"
        return {n: why for n in emission.names if n not in emission.simplex}

    def _fit_constraints(self) -> Constraints:
        """Return the constraints in the units EM runs in (Gaussian means shifted and scaled, covariances scaled)."""
        cons = self._constraints()
        units = getattr(self, "_units", None)
        if not cons or units is None:
            return cons
        shift, scale = units
        held = dict(cons.held)
        if "means" in held:
            held["means"] = (held["means"] - shift) / scale
        if "covars" in held:
            held["covars"] = held["covars"] / scale**2
        return Constraints(held, cons.simplex)

    def _constrained_m_step(self, X: np.ndarray, gamma: np.ndarray, cons: Constraints) -> dict[str, np.ndarray]:
        """Run the emission's M-step with held arrays respected (Gaussian covariances around the held means)."""
        return constrained_emission_m_step(self._emission(), X, gamma, self._emission_point(), cons.held)

    def _native_em_needed(self) -> bool:
        """Whether the fit needs probspace's EM (labels, weights, held entries): hmmlearn has none of them."""
        return (getattr(self, "_fit_labels", None) is not None or getattr(self, "_fit_weight", None) is not None
                or bool(self._constraints()))

    def _fit_constrained(self, X, lengths, rng, n_iter):
        """Hmmlearn's initialisation and one EM step (unconstrained), then probspace's constrained EM."""
        self._fit_backend(X, lengths, rng, min(5, n_iter) if not self._native_backend else n_iter)
        if not self._native_backend:
            self._em_loop(X, lengths, n_iter, "EM (constrained)")

    #: Whether ``_fit_backend`` already runs probspace's EM loop (families on :class:`NativeHMM`).
    _native_backend = False

    def _check_constraint_request(self, X, labels, weight) -> None:
        """Reject constraints, labels or weights where the fit cannot honour them."""
        name = type(self).__name__
        cons = self._constraints()
        if not (cons or labels is not None or weight is not None):
            return
        if self.bayesian:
            raise ValueError(f"{name}(bayesian=True) takes no labels, sequence_weight, fixed or topology: the "
                             "variational backend has no constrained update. Use bayesian=False (EM) or a sampler.")
        if self._mcmc_requested():
            if weight is not None:
                raise ValueError(f"sequence_weight passed to {name}.fit applies to EM fits; an MCMC fit (sampler="
                                 f"{self.sampler!r}) samples the posterior of the data as given.")
            if self.sampler != "gibbs":  # NUTS holds entries of every array it samples (on Pyro's engine)
                if labels is not None:
                    raise ValueError(f"{name}(sampler={self.sampler!r}) takes no labels (known states); use "
                                     "sampler='gibbs'.")
                return
            partial = [k for k in cons.names() if k not in ("startprob", "transmat") and k not in cons.whole()]
            em = self._emission(X)
            unheld = [k for k in partial if k not in em.gibbs_entry_holds]
            if unheld:
                raise ValueError(f"{name}(sampler='gibbs') holds single entries of {list(em.gibbs_entry_holds)} "
                                 f"for this emission; fixed{unheld} have NaN entries. Hold the whole array, or "
                                 "fit by EM.")

    def _frame_weights(self, lengths):
        seq_w = getattr(self, "_fit_weight", None)
        return None if seq_w is None else np.repeat(seq_w, lengths)

    def _check_extras(self, X, lengths, labels, sequence_weight):
        """Validate ``labels`` and per-sequence ``sequence_weight`` for the rows of ``X``."""
        name = type(self).__name__
        labels = check_labels(labels, X.shape[0], self.n_components, name)
        weight = check_sequence_weight(sequence_weight, len(lengths), name, arg="sequence_weight")
        return labels, weight

    def fit(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None,
            sequence_weight: Any = None) -> _HMM:
        """Fit the model to ``X``, optionally with known states and per-sequence weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated along the first axis.
        y : None
            Ignored (scikit-learn convention).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame, ``-1`` where unknown (semi-supervised
            fitting): EM and Gibbs condition every path on them exactly.
        sequence_weight : array-like of shape (n_sequences,), optional
            Non-negative weight of each sequence in the EM objective
            ``sum_s w_s log p(x_s)``; an integer weight counts the sequence
            that many times.

        Returns
        -------
        self
        """
        self._fit_extras = (labels, sequence_weight)
        try:
            return super().fit(X, y, lengths=lengths)
        finally:
            for name in ("_fit_extras", "_fit_labels", "_fit_weight", "_fit_X"):
                self.__dict__.pop(name, None)

    # -- known states at prediction time --------------------------------------------------------
    def _labelled_answers(self, X, lengths, labels):
        """Return the answers with the emission masked by the known ``labels`` of the rows of ``X``."""
        answers = self._answers()
        labels = check_labels(labels, X.shape[0], self.n_components, type(self).__name__)
        if labels is None:
            return answers
        answers = copy.copy(answers)
        answers.structure = _bayes.Structure(_MaskedEmission(answers.structure.emission,
                                                             label_mask(labels, self.n_components)), hmm=True)
        return answers

    def posterior(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None):
        """Posterior over the state paths of ``X``, optionally conditioned on known states.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : None
            Ignored.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown). The posterior is then
            exactly ``p(z | x, z_t = labels_t for the known t)``: marginals,
            Viterbi path, joint draws and path probabilities all condition on them.

        Returns
        -------
        MarkovChain
            (A mixture of them over the draws of an MCMC fit.)
        """
        if labels is None:
            return super().posterior(X, y, lengths=lengths)
        X, lengths = self._check_input(X, lengths)
        post = self._labelled_answers(X, lengths, labels).posterior(X, lengths)
        post._rng = child_generator(self.rng_)
        return post

    def log_likelihood(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None) -> np.ndarray:
        """Log-likelihood of each sequence; with ``labels``, the joint ``log p(x, known states)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : None
            Ignored.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown).

        Returns
        -------
        ndarray of shape (n_sequences,)
        """
        if labels is None:
            return super().log_likelihood(X, y, lengths=lengths)
        X, lengths = self._check_input(X, lengths)
        return np.asarray(self._labelled_answers(X, lengths, labels).log_likelihood(X, lengths), dtype=np.float64)

    def score(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None,
              sequence_weight: Any = None) -> float:
        """Mean log-likelihood per sequence, weighted by ``sequence_weight`` when given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : None
            Ignored.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown).
        sequence_weight : array-like of shape (n_sequences,), optional
            Weight of each sequence: the score is ``sum_s w_s log p(x_s) / sum_s w_s``.

        Returns
        -------
        float
        """
        ll = self.log_likelihood(X, lengths=lengths, labels=labels)
        w = check_sequence_weight(sequence_weight, ll.shape[0], type(self).__name__, arg="sequence_weight")
        return float(np.mean(ll) if w is None else (w @ ll) / w.sum())

    def to_arviz(self, X: Any, n_samples: int = 500, *, y: Any = None, random_state: Any = None,
                 lengths: Any = None, labels: Any = None):
        """Posterior draws for ``X`` as an ArviZ object, optionally conditioned on known states.

        A thin wrapper of :func:`probspace.to_inference_data`.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        n_samples : int, default=500
            Number of joint path draws (per chain for an MCMC fit).
        y : None
            Ignored.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only; without it the draws continue the model's ``rng_``.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown). The path draws, state
            marginals, pointwise log-likelihood and posterior predictive then
            answer for ``p(z | x, known states)`` (as :meth:`posterior` and
            :meth:`log_likelihood` with the same ``labels``); the labels are
            written to ``constant_data``.

        Returns
        -------
        arviz.InferenceData or xarray.DataTree

        Examples
        --------
        >>> import numpy as np
        >>> from probspace import GaussianHMM
        >>> X = np.r_[np.zeros((10, 1)), np.full((10, 1), 4.0)] + np.random.default_rng(0).normal(size=(20, 1))
        >>> model = GaussianHMM(2, random_state=0).fit(X)
        >>> labels = np.full(20, -1)
        >>> labels[0] = 1
        >>> data = model.to_arviz(X, n_samples=5, labels=labels, random_state=0)
        >>> bool((data["latent_posterior"]["path"].values[..., 0] == 1).all())
        True
        """
        from ...diagnostics import to_inference_data

        return to_inference_data(self, X, n_draws=n_samples, random_state=random_state, lengths=lengths, y=y,
                                 labels=labels)

    def _posterior(self, X: np.ndarray, lengths: np.ndarray, labels: np.ndarray | None = None):
        return self._labelled_answers(X, lengths, labels).posterior(X, lengths)

    def _log_likelihood(self, X: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        return self._answers().log_likelihood(X, lengths)

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._answers().sample(n_samples, rng)

    def _sample_parameters(self, n_samples, rng):
        return self._answers().sample_parameters(n_samples, rng)

    def predict(self, X: Any, *, lengths: Any = None, labels: Any = None) -> np.ndarray:
        """Most probable state path (Viterbi), as hmmlearn's ``predict``.

        For an MCMC fit, the Viterbi path under the posterior-mean parameters.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown); the path keeps them.

        Returns
        -------
        ndarray of shape (n_samples,)
            The MAP path.
        """
        X, lengths = self._check_input(X, lengths)
        mask = label_mask(check_labels(labels, X.shape[0], self.n_components, type(self).__name__),
                          self.n_components)
        # emission densities a block at a time on a helper thread, overlapping the recursion (no (T, K) array)
        emission, point = self._emission(), self._emission_point()
        if mask is None:
            frames = lambda lo, hi: emission.log_frames(X[lo:hi], point)
        else:
            frames = lambda lo, hi: emission.log_frames(X[lo:hi], point) + mask[lo:hi]
        path, log_joint = _hmm.viterbi_streamed(self.startprob_, self.transmat_, frames, X.shape[0], lengths)
        if not np.all(np.isfinite(log_joint)):
            raise ValueError("The observations have zero probability under the model (log-likelihood is -inf).")
        return path

    def filter(self, lag: int | None = None) -> StreamingFilter:
        """Return a streaming filter: feed frames one at a time, get the state distribution after each.

        ``f = model.filter(); step = f.update(x_t)`` returns the filtered
        ``p(z_t | x_1..x_t)``, the one-step predictive ``p(z_{t+1} | x_1..x_t)``
        and the running log-likelihood, in O(K^2) per frame, equal to the
        ``filtered`` marginals of :meth:`posterior` on the frames seen so far.

        Parameters
        ----------
        lag : int, optional
            Fixed-lag smoothing: each step also returns ``p(z_{t-lag} | x_1..x_t)``
            (``O(lag K^2)`` per frame), the batch smoother's answer on the data so far.

        Returns
        -------
        StreamingFilter

        Examples
        --------
        >>> import numpy as np
        >>> from probspace import GaussianHMM
        >>> X = np.r_[np.zeros((20, 1)), np.full((20, 1), 5.0)] + np.random.default_rng(0).normal(size=(40, 1))
        >>> model = GaussianHMM(2, random_state=0).fit(X)
        >>> f = model.filter()
        >>> steps = [f.update(x) for x in X]
        >>> bool(np.allclose(steps[-1].filtered, model.posterior(X).filtered[-1]))
        True
        """
        self._check_fitted()
        if lag is not None and (isinstance(lag, bool) or not isinstance(lag, (int, np.integer)) or lag < 0):
            raise ValueError(f"lag must be a non-negative integer or None; got {lag!r}.")
        return StreamingFilter(self, lag)

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
        return {"path": ("time",), "x": ("time", "feature"), "state_marginals": ("time", "state"), "labels": ("time",),
                "startprob": ("state",), "transmat": ("state", "state_to"), "means": ("state", "feature"),
                "covars": ("state", "feature", "feature_bis") if full else ("state", "feature"),
                "lambdas": ("state", "feature"), "emissionprob": ("state", "symbol")}

    def _label_kwargs(self, labels: Any, n: int) -> dict[str, np.ndarray]:
        """Validate known states for the ArviZ bridge; they reach the hooks below as ``labels``."""
        return {"labels": check_labels(labels, n, self.n_components, type(self).__name__)}

    def _pointwise_log_likelihood(self, X, lengths, params, labels=None):
        # One-step-ahead terms log p(x_t | x_1..x_{t-1}), which sum to each sequence's log-likelihood
        # (with labels: log p(x_t, known z_t | the past), summing to log p(x, known states)).
        return self._labelled_answers(X, lengths, labels).pointwise_log_likelihood(X, lengths, params)

    def _posterior_predictive(self, X, latents, params, rng, labels=None):
        return self._answers().posterior_predictive(X, latents, params, rng)

    def _arviz_constant_data(self, X, lengths, labels=None, **cond):
        data = {"state_marginals": self._posterior(X, lengths, labels).mean}
        if labels is not None:
            data["labels"] = labels
        return data


class _MaskedEmission:
    """An emission whose log-likelihoods carry a label mask (-inf for states a known label rules out)."""

    def __init__(self, inner: Emission, mask: np.ndarray) -> None:
        self.inner = inner
        self.mask = mask

    def log_frames(self, X: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        return self.inner.log_frames(X, params) + self.mask

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


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
