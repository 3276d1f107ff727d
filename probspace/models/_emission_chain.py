"""Shared parts of the HMM variants fitted by probspace's own EM over any registered emission.

:class:`probspace.InputDrivenHMM` and :class:`probspace.SemiMarkovHMM` differ
from :class:`probspace.HMM` in their latent chain (covariate-driven
transitions; explicit durations) but share the observation side: an emission
component from :mod:`probspace.emissions`, chosen by name, started by its
``init`` and re-estimated by its closed-form ``m_step`` from the state
marginals. That part lives here, once; the chain, its kernels and its
posterior live in each family's module. The fitted emission arrays are kept in
``emission_arrays_`` and read as attributes named after them (``means_``,
``covars_``, ``lambdas_``...), as on :class:`probspace.HMM`.

Known states (``labels``, one int per frame, -1 unknown) work as on the HMM
families (:mod:`probspace.models.hmm._constraints`): they mask the emission
log-likelihoods (``-inf`` for every state other than a known label), so the
posterior of the masked chain is exactly ``p(z | x, z_S = labels_S)``, its
likelihood ``p(x, z_S = labels_S)``, and EM (and Gibbs) fit semi-supervised.
The public methods taking ``labels`` live here; each family applies the mask
in its hooks, which receive the validated labels as ``labels``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._base import LatentModel
from .._bayes import permute as _permute
from .._random import child_generator
from .._tags import ModelTags
from .._validation import Interval, warn_unconverged
from ..emissions import Emission, registered_emission
from ..emissions._base import _REGISTRY
from .hmm._constraints import check_labels, label_mask, label_permutation, lead_by_labels

__all__ = ["EmissionChain", "CHAIN_CONSTRAINTS"]

CHAIN_CONSTRAINTS = {
    "n_components": [Interval("int", 1, None)],
    "emission": [str],
    "emission_params": [None, dict],
    "max_iter": [Interval("int", 1, None)],
    "tol": [Interval("real", 0, None)],
    "random_state": ["random_state"],
    "progress": ["boolean"],
}


class EmissionChain(LatentModel):
    """A latent chain over frames with an emission component (private base; see the module docstring)."""

    _latent_name = "path"
    _arviz_class_dim = "state"
    _conformance_params = {"n_components": 2, "max_iter": 30}

    # -- the emission ---------------------------------------------------------------------
    def _emission_class(self) -> type[Emission]:
        return _REGISTRY.get(self.emission, Emission) if isinstance(self.emission, str) else Emission

    def _model_tags(self) -> ModelTags:
        cls = self._emission_class()
        return ModelTags(sequential=True, allow_nan=True, discrete_latent=True, non_negative=cls.non_negative,
                         min_samples=cls.min_samples, conditional=self._conditional)

    #: Whether the family takes per-frame covariates ``y`` (``ModelTags.conditional``).
    _conditional = False

    def _owner(self) -> str:
        return f"{type(self).__name__}(emission={self.emission!r})"

    def _emission(self, X: np.ndarray | None = None) -> Emission:
        """Return the fitted emission (``X`` None), or one built from the constructor settings and sized from ``X``."""
        cls = registered_emission(self.emission)
        if X is None:
            return cls(**self.emission_settings_)
        try:
            emission = cls(**(self.emission_params or {}))
        except TypeError as err:
            raise ValueError(f"emission_params={self.emission_params!r} do not fit {cls.__name__}: {err}.") from None
        return emission.for_data(X)

    def _emission_point(self) -> dict[str, np.ndarray]:
        return dict(self.emission_arrays_)

    def _log_frameprob(self, X: np.ndarray, emission_arrays: dict[str, np.ndarray] | None = None) -> np.ndarray:
        arrays = self.emission_arrays_ if emission_arrays is None else emission_arrays
        return self._emission().log_frames(X, arrays)

    def __getattr__(self, name: str) -> Any:
        # The fitted emission arrays (``means_``, ``probs_``...) are read from ``emission_arrays_``.
        arrays = self.__dict__.get("emission_arrays_")
        if name.endswith("_") and not name.startswith("_") and arrays is not None and name[:-1] in arrays:
            return arrays[name[:-1]]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- known states (labels) ---------------------------------------------------------------
    def _label_kwargs(self, labels: Any, n: int) -> dict[str, np.ndarray | None]:
        """Validate known states (``check_labels``); they reach the hooks as ``labels`` (also the ArviZ bridge's)."""
        return {"labels": check_labels(labels, n, self.n_components, type(self).__name__)}

    def _labelled_input(self, X, y, lengths, labels):
        """Validate ``X`` (and ``lengths``); return them with the keyword arguments of the covariates and labels."""
        X, lengths = self._check_input(X, lengths)
        cond = self._condition_kwargs(y, X.shape[0], fitting=False)
        return X, lengths, {**cond, **self._label_kwargs(labels, X.shape[0])}

    def _masked(self, log_frameprob: np.ndarray, labels: np.ndarray | None) -> np.ndarray:
        """Emission log-likelihoods with ``-inf`` for the states that known ``labels`` rule out."""
        return log_frameprob if labels is None else log_frameprob + label_mask(labels, self.n_components)

    def _fit_labels(self, n: int) -> np.ndarray | None:
        """Return the validated ``labels`` of the current ``fit`` (None outside ``fit`` or without them)."""
        return self._label_kwargs(self.__dict__.get("_fit_label_request"), n)["labels"]

    def _start_from_labels(self, labels: np.ndarray | None, frames, m_step, held: bool) -> None:
        """Start EM where the known labels point: states renumbered to match them, the emission led by them.

        An EM start has an arbitrary state order, so the starting emission's
        states are first renumbered to agree best with the labels (an
        assignment problem on the per-frame state responsibilities; skipped
        when held entries fix the order). Then one emission M-step on the
        label-masked responsibilities in which the labelled frames carry as
        much weight as all the others, so a few labels lead the start (as for
        the HMM families). ``frames(arrays)`` gives the emission
        log-likelihoods (T, K), ``m_step(gamma, arrays)`` the updated arrays.
        """
        from scipy.special import logsumexp

        known = None if labels is None else labels >= 0
        if known is None or not known.any():
            return
        K = self.n_components
        arrays = dict(self.emission_arrays_)
        if not held:
            logf = frames(arrays)
            with np.errstate(invalid="ignore"):
                resp = logf - logsumexp(logf, axis=1, keepdims=True)
            perm = label_permutation(labels[known], np.nan_to_num(np.maximum(resp[known], -700.0), nan=-700.0), K)
            tied = getattr(self._emission(), "covariance_type", "") == "tied"
            moved = _permute({k: v for k, v in arrays.items() if np.ndim(v) and np.shape(v)[0] == K
                              and not (tied and k == "covars")}, perm)
            arrays.update(moved)
        logf = self._masked(frames(arrays), labels)
        with np.errstate(invalid="ignore"):
            gamma = np.exp(logf - logsumexp(logf, axis=1, keepdims=True))
        if not np.all(np.isfinite(gamma)):
            return  # a frame no state explains: reported by the EM loop
        lead_by_labels(gamma, known)
        self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in m_step(gamma, arrays).items()}

    def fit(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None) -> EmissionChain:
        """Fit the model to ``X``, optionally with known states (semi-supervised).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated along the first axis.
        y : array-like, optional
            Covariates, one row per frame (families that take them); ignored by the others.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame, ``-1`` where unknown: the fit conditions
            every path on them exactly (EM maximises ``log p(x, known states)``).

        Returns
        -------
        self
        """
        self._fit_label_request = labels
        try:
            return super().fit(X, y, lengths=lengths)
        finally:
            self.__dict__.pop("_fit_label_request", None)

    def posterior(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None):
        """Posterior over the state paths of ``X``, optionally conditioned on known states.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : array-like, optional
            Covariates, one row per frame (families that take them).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown). The posterior is then
            exactly ``p(z | x, z_t = labels_t for the known t)``: marginals,
            MAP path, joint draws and path probabilities all condition on them.

        Returns
        -------
        Posterior
            The family's exact path posterior (a mixture of them over the draws of an MCMC fit).
        """
        if labels is None:
            return super().posterior(X, y, lengths=lengths)
        X, lengths, kw = self._labelled_input(X, y, lengths, labels)
        post = self._posterior(X, lengths, **kw)
        post._rng = child_generator(self.rng_)
        return post

    def log_likelihood(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None) -> np.ndarray:
        """Log-likelihood of each sequence; with ``labels``, the joint ``log p(x, known states)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : array-like, optional
            Covariates, one row per frame (families that take them).
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
        X, lengths, kw = self._labelled_input(X, y, lengths, labels)
        return np.asarray(self._log_likelihood(X, lengths, **kw), dtype=np.float64)

    def score(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None) -> float:
        """Mean log-likelihood per sequence (of ``x`` and the known states with ``labels``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : array-like, optional
            Covariates for families that take them; ignored by the others (as in scikit-learn).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown).

        Returns
        -------
        float
        """
        y = y if self._model_tags().conditional else None
        return float(np.mean(self.log_likelihood(X, y, lengths=lengths, labels=labels)))

    def predict(self, X: Any, y: Any = None, *, lengths: Any = None, labels: Any = None) -> np.ndarray:
        """Most probable state path (MAP), optionally keeping known states.

        Under the fitted point parameters (for an MCMC fit, the posterior means).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Observations, sequences concatenated.
        y : array-like, optional
            Covariates, one row per frame (families that take them).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown); the path keeps them.

        Returns
        -------
        ndarray of shape (n_samples,)
            The MAP path.
        """
        X, lengths, kw = self._labelled_input(X, y, lengths, labels)
        return self._point_posterior(X, lengths, **kw).map()

    def _point_posterior(self, X, lengths, labels=None, **cond):
        """Return the exact path posterior under the fitted point parameters (families override)."""
        return self._posterior(X, lengths, labels=labels, **cond)

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
        y : array-like, optional
            Covariates, one row per frame (families that take them).
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only; without it the draws continue the model's ``rng_``.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X``.
        labels : array-like of int, shape (n_samples,), optional
            Known state of each frame (``-1``: unknown). The path draws,
            pointwise log-likelihood and posterior predictive then answer for
            ``p(z | x, known states)`` (as :meth:`posterior` and
            :meth:`log_likelihood` with the same ``labels``); the labels and
            the conditioned state marginals are written to ``constant_data``.

        Returns
        -------
        arviz.InferenceData or xarray.DataTree
        """
        from ..diagnostics import to_inference_data

        return to_inference_data(self, X, n_draws=n_samples, random_state=random_state, lengths=lengths, y=y,
                                 labels=labels)

    # -- validation and fitting helpers ----------------------------------------------------
    def _check_X(self, X, lengths, *, reset):
        X, lengths = super()._check_X(X, lengths, reset=reset)
        (self._emission(X) if reset else self._emission()).check_data(X, self._owner())
        return X, lengths

    def _start_emission(self, X: np.ndarray, rng: np.random.Generator) -> Emission:
        """Check the data against ``n_components`` and missing values; set ``emission_settings_``."""
        if self.n_components > X.shape[0]:
            raise ValueError(f"n_components={self.n_components} must be at most the number of frames in X "
                             f"(n_samples={X.shape[0]}).")
        emission = self._emission(X)
        missing = np.isnan(X)
        if missing.any() and not emission.missing_supported(missing):
            raise ValueError(f"{self._owner()}.fit accepts whole missing frames (rows of NaN) with this emission, "
                             "not partly missing rows; posterior and log_likelihood accept NaN anywhere.")
        if (~missing.any(axis=1)).sum() < self.n_components:
            raise ValueError(f"X has fewer complete frames than n_components={self.n_components}.")
        self.emission_settings_ = emission.settings()
        return emission

    def _finish_fit(self, trace: list[float], converged: bool, n_frames: int, what: str) -> None:
        """Set ``n_iter_``, ``converged_``, ``history_`` and ``backend_`` (last: the model counts as fitted)."""
        self.n_iter_ = len(trace)
        self.converged_ = converged
        self.history_ = np.asarray(trace) / n_frames
        self.backend_ = None
        if not converged:
            gain = np.diff(trace[-2:]) if len(trace) > 1 else np.zeros(0)
            detail = f"the last iteration raised the {what} by {gain[0]:.3g}" if gain.size else ""
            warn_unconverged(self, self.max_iter, f"{detail} (tol={self.tol:g})")

    def _get_parameters(self) -> dict[str, Any]:
        params = {name: getattr(self, name) for name in self._chain_parameter_names}
        params.update({f"{name}_": value for name, value in self.emission_arrays_.items()})
        return params

    #: Public fitted arrays of the chain (checked for finiteness after each fit).
    _chain_parameter_names: tuple[str, ...] = ("startprob_",)

    # -- ArviZ ---------------------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"path": ("time",), "x": ("time", "feature"), "state_marginals": ("time", "state"), "labels": ("time",),
                **self._emission().dims()}

    def _posterior_predictive(self, X, latents, params, rng, labels=None, **cond):
        # the latents already keep the known states
        n_draws, n_obs = latents.shape
        emission = self._emission()
        return emission.sample(self.emission_arrays_, np.asarray(latents).ravel().astype(np.int64),
                               rng).reshape(n_draws, n_obs, -1)

    def _arviz_constant_data(self, X, lengths, labels=None, **cond):
        if labels is None:
            return None
        return {"labels": labels, "state_marginals": self._posterior(X, lengths, labels=labels, **cond).mean}


def sequence_starts(lengths: np.ndarray) -> np.ndarray:
    """Index of the first frame of each sequence."""
    return np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
