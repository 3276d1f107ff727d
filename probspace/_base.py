"""``LatentModel``: the interface every probspace family shares."""

from __future__ import annotations

import inspect
import weakref
from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError

from ._random import as_generator, child_generator
from ._tags import ModelTags
from ._validation import check_lengths, check_n_samples, validate_params, validate_X
from .posteriors import Posterior

__all__ = ["LatentModel", "family_name", "registered_family"]

#: Every subclass of LatentModel, by :func:`family_name` (weak: a class that goes away leaves the registry).
_REGISTRY: weakref.WeakValueDictionary[str, type] = weakref.WeakValueDictionary()


def family_name(cls: type) -> str:
    """Return the name under which a family is registered and saved.

    The class name for probspace's own families, ``module.qualname`` for any other.
    """
    own = cls.__module__ == "probspace" or cls.__module__.startswith("probspace.")
    return cls.__qualname__ if own else f"{cls.__module__}.{cls.__qualname__}"


def registered_family(name: str) -> type | None:
    """Return the concrete family registered under ``name`` (see :func:`family_name`), or None.

    A family registers itself when its class is defined, so a family from
    another package is found once its module has been imported.
    """
    cls = _REGISTRY.get(name)
    return cls if cls is not None and not inspect.isabstract(cls) else None


class LatentModel(BaseEstimator, metaclass=ABCMeta):
    """Base class of probspace models: a posterior over latent variables.

    Subclasses implement the hooks ``_fit``, ``_posterior``,
    ``_log_likelihood`` and ``_sample``, and declare ``_parameter_constraints``
    and ``_tags``. Everything public (validation, fitted checks, randomness,
    shapes) lives here, once.

    Notes
    -----
    ``__init__`` of a subclass stores its keyword arguments verbatim and does
    nothing else; the backend is built in ``fit``.
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {}
    _tags: ClassVar[ModelTags] = ModelTags()
    #: Name of the latent variable in ArviZ output.
    _latent_name: ClassVar[str] = "z"
    #: ArviZ dim of a discrete latent's classes (``<latent>_share`` in the posterior group).
    _arviz_class_dim: ClassVar[str] = "component"
    # -- the conformance recipe, read by probspace.testing --------------------------
    #: ``{check_name: reason}`` of conformance checks expected to fail (strict xfail).
    _expected_failures: ClassVar[dict[str, str]] = {}
    #: Constructor settings that make the conformance suite's fits fast.
    _conformance_params: ClassVar[dict[str, Any]] = {}
    #: Non-default settings the suite also fits with (``check_fit_sets_only_fitted_attributes``).
    _conformance_alt_params: ClassVar[dict[str, Any]] = {}

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[Any, np.ndarray | None]:
        """Return ``(X, lengths)``: small data the family fits well (``lengths`` None unless sequential)."""
        raise NotImplementedError("a family run through probspace.testing declares _conformance_data")

    def _conformance_alt(self, alt: dict[str, Any]) -> dict[str, Any]:
        """Adapt the non-default settings to this instance (e.g. drop those its own settings exclude)."""
        return alt

    def _conformance_condition(self, n: int, rng: np.random.Generator) -> Any:
        """Return the condition ``y`` for ``n`` rows that the suite passes to every call, or None (no condition).

        Conditional families return covariates, inputs or classes here, so
        that the suite runs ``fit``, ``posterior``, ``log_likelihood``,
        ``sample``, ``to_arviz`` and save/load through their condition path.
        """
        return None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[family_name(cls)] = cls

    # -- tags -------------------------------------------------------------------
    def _model_tags(self) -> ModelTags:
        """Tags of this instance (may depend on its parameters)."""
        return self._tags

    def __sklearn_tags__(self):  # noqa: D105
        tags = super().__sklearn_tags__()
        mt = self._model_tags()
        tags.estimator_type = "density_estimator"
        tags.input_tags.allow_nan = mt.allow_nan and mt.allow_nan_in_fit
        tags.input_tags.sparse = mt.accept_sparse
        tags.input_tags.positive_only = mt.non_negative
        return tags

    def __sklearn_is_fitted__(self) -> bool:  # noqa: D105
        return hasattr(self, "backend_")

    # -- checks -----------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                "appropriate arguments before using this estimator."
            )

    def _check_X(self, X: Any, lengths: Any, *, reset: bool) -> tuple[Any, np.ndarray | None]:
        tags = self._model_tags()
        X = validate_X(
            self,
            X,
            reset=reset,
            allow_nan=tags.allow_nan,
            non_negative=tags.non_negative,
            accept_sparse=tags.accept_sparse,
            min_samples=tags.min_samples if reset else 1,
        )
        lengths = check_lengths(lengths, X.shape[0], sequential=tags.sequential, owner=type(self).__name__)
        return X, lengths

    def _check_input(self, X: Any, lengths: Any) -> tuple[Any, np.ndarray | None]:
        self._check_fitted()
        return self._check_X(X, lengths, reset=False)

    def _generator(self, random_state: Any) -> np.random.Generator:
        return self.rng_ if random_state is None else as_generator(random_state)

    # -- public API -------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, lengths: Any = None) -> LatentModel:
        """Fit the model to ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (for sequential families: sequences concatenated
            along the first axis).
        y : array-like, optional
            The condition of each row for conditional families (``CVAE``);
            ignored by the others, so that scikit-learn tools can pass it.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (sequential families only).

        Returns
        -------
        self
            The fitted model.
        """
        validate_params(self)
        X, lengths = self._check_X(X, lengths, reset=True)
        cond = self._condition_kwargs(y, X.shape[0], fitting=True)
        self.rng_ = as_generator(self.random_state)
        self._fit(X, lengths, self.rng_, **cond)
        self._check_fitted_parameters()
        return self

    def _check_fitted_parameters(self) -> None:
        """Raise ``ValueError`` (and leave the model unfitted) if a fitted parameter is NaN or infinite.

        Checked once, here, after every fit, so that no model ever holds
        non-finite parameters: a later call would fail with a misleading
        message, and ``save`` would write the broken model.
        """
        bad = [name for name, value in self._get_parameters().items()
               if value is not None and not np.all(np.isfinite(np.asarray(value, dtype=np.float64)))]
        if bad:
            del self.backend_
            raise ValueError(
                f"{type(self).__name__}.fit produced non-finite values (NaN or inf) in {', '.join(bad)}: the data "
                "cannot be fitted with these settings (degenerate or extreme values?). The model is left unfitted."
            )

    def _get_parameters(self) -> dict[str, Any]:
        """Return the fitted parameters by public name (checked for finiteness after every fit)."""
        return {}

    # -- state hooks: what save writes and load restores ----------------------------
    #: Constructor parameters a file cannot hold (e.g. a user's torch module): written as None, given again at load.
    _given_at_load: ClassVar[tuple[str, ...]] = ()
    #: Fitted attributes ``_get_state`` leaves out (objects rebuilt by ``_set_state``).
    _unsaved: ClassVar[tuple[str, ...]] = ("backend_", "rng_", "module_")

    def _get_state(self) -> dict[str, Any]:
        """Return the fitted state as JSON-able values and arrays (see :mod:`probspace._persistence`).

        The default covers a family whose fitted state is its public ``_``
        attributes plus, for a scikit-learn style backend (``get_params``),
        the backend's constructor parameters and *public* fitted attributes
        (never its private ones); ``_new_backend`` rebuilds it. Families with
        other state extend ``fitted`` or override both hooks.
        """
        fitted = {k: v for k, v in vars(self).items()
                  if k.endswith("_") and not k.startswith("_") and k not in self._unsaved}
        state: dict[str, Any] = {"fitted": fitted}
        backend = getattr(self, "backend_", None)
        if backend is not None and hasattr(backend, "get_params"):
            state["backend_params"] = {k: (None if isinstance(v, np.random.RandomState) else v)
                                       for k, v in backend.get_params(deep=False).items()}
            state["backend"] = self._backend_state(backend)
        return state

    def _backend_state(self, backend: Any) -> dict[str, Any]:
        """Return the backend's public fitted attributes (names ending in ``_``, plus hmmlearn's ``n_features``)."""
        return {k: v for k, v in vars(backend).items()
                if (k.endswith("_") or k == "n_features") and not k.startswith("_")
                and not isinstance(v, np.random.RandomState) and not hasattr(v, "report")}

    def _set_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`_get_state` returned onto an unfitted instance with the same parameters."""
        for name, value in state["fitted"].items():
            setattr(self, name, value)
        if "backend" in state:
            backend = self._new_backend(state["backend_params"])
            for name, value in state["backend"].items():
                setattr(backend, name, value)  # public attributes, through property setters where there are any
            self.backend_ = backend
        elif not hasattr(self, "backend_"):
            self.backend_ = None

    def _new_backend(self, params: dict[str, Any]) -> Any:
        """Return an unfitted backend built with ``params`` (families with a scikit-learn style backend)."""
        raise NotImplementedError(f"{type(self).__name__} does not rebuild a backend; override _set_state.")

    def posterior(self, X: Any, y: Any = None, *, lengths: Any = None) -> Posterior:
        """Posterior over the latent variables of ``X`` under the fitted model.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).
        y : array-like, optional
            Conditions, one per row (conditional families only).
        lengths : array-like of int, optional
            Sequence lengths (sequential families only).

        Returns
        -------
        Posterior
            A distribution object with ``sample``, ``mean``, ``log_prob`` and
            ``entropy``; its unseeded draws come from a child of ``rng_``.
            For a :class:`dask.array.Array` ``X``, a lazy posterior from
            :func:`probspace.dask.posterior` (needs the ``dask`` extra).
        """
        if type(X).__module__.split(".")[0] == "dask":  # a dask array: the lazy posterior of probspace.dask
            from .dask import posterior as lazy_posterior

            return lazy_posterior(self, X, y, lengths=lengths)
        X, lengths = self._check_input(X, lengths)
        post = self._posterior(X, lengths, **self._condition_kwargs(y, X.shape[0], fitting=False))
        post._rng = child_generator(self.rng_)
        return post

    def embed(self, X: Any, y: Any = None, *, lengths: Any = None) -> np.ndarray:
        """Deterministic point summary of the posterior: ``posterior(X).mean`` as 2-D.

        For discrete latents this is the posterior probability of each label
        (state, component); for continuous latents the posterior mean. It
        collapses a belief distribution to a point: use :meth:`posterior` to
        keep the uncertainty.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).
        y : array-like, optional
            Conditions, one per row (conditional families only).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (sequential families only).

        Returns
        -------
        ndarray of shape (n_samples, n_latent)
        """
        X, lengths = self._check_input(X, lengths)
        mean = np.asarray(self._posterior(X, lengths, **self._condition_kwargs(y, X.shape[0], fitting=False)).mean)
        return mean.reshape(mean.shape[0], -1)

    def sample(self, n_samples: int = 1, *, y: Any = None, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        """Draw new data from the fitted generative model.

        Latent variables are drawn from the prior first, then the data given
        them.

        Parameters
        ----------
        n_samples : int, default=1
            Number of observations (time steps, documents) to generate.
        y : array-like, optional
            Conditions, one per draw (conditional families only).
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call; without it the draw continues ``rng_``.

        Returns
        -------
        X : ndarray of shape (n_samples, n_features)
            Generated data.
        Z : ndarray
            The latent values that generated it, laid out as in
            :meth:`Posterior.sample`.
        """
        self._check_fitted()
        n_samples = check_n_samples(n_samples)
        cond = self._condition_kwargs(y, n_samples, fitting=False, generating=True)
        return self._sample(n_samples, self._generator(random_state), **cond)

    def log_likelihood(self, X: Any, y: Any = None, *, lengths: Any = None) -> np.ndarray:
        """Log-likelihood ``log p(x)`` of each observation (sequence, document).

        Exact unless the class docstring says it is a bound or an estimate.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).
        y : array-like, optional
            Conditions, one per row (conditional families only).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (sequential families only).

        Returns
        -------
        ndarray of shape (n_samples,) (or (n_sequences,))
        """
        X, lengths = self._check_input(X, lengths)
        cond = self._condition_kwargs(y, X.shape[0], fitting=False)
        return np.asarray(self._log_likelihood(X, lengths, **cond), dtype=np.float64)

    def score(self, X: Any, y: Any = None, *, lengths: Any = None) -> float:
        """Mean of :meth:`log_likelihood` (higher is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).
        y : array-like, optional
            Conditions for conditional families; ignored by the others (as in scikit-learn).
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (sequential families only).

        Returns
        -------
        float
        """
        y = y if self._model_tags().conditional else None
        return float(np.mean(self.log_likelihood(X, y, lengths=lengths)))

    def sample_parameters(self, n_samples: int = 1, *, random_state: Any = None) -> dict[str, np.ndarray]:
        """Draw model parameters from their posterior (Bayesian fits only).

        Parameters
        ----------
        n_samples : int, default=1
            Number of draws.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only; without it the draws continue the model's ``rng_``.

        Returns
        -------
        dict of str to ndarray
            Each array has a leading axis of length ``n_samples``.
        """
        self._check_fitted()
        if not self._model_tags().parameter_posterior:
            raise ValueError(
                f"This {type(self).__name__} has point estimates of its parameters, not a posterior "
                "over them; fit a Bayesian variant to draw parameters."
            )
        n_samples = check_n_samples(n_samples)
        return self._sample_parameters(n_samples, self._generator(random_state))

    def save(self, path: Any) -> None:
        """Write the fitted model to one file: arrays plus a versioned JSON header, no pickle.

        The file records the family, the constructor parameters, the fitted
        state (the backend's fitted attributes and the random stream) and the
        library versions. Read it back with :func:`probspace.load`.

        Parameters
        ----------
        path : str or path-like
            Destination (an ``.npz`` archive).
        """
        from ._persistence import save

        save(self, path)

    def to_arviz(self, X: Any, n_samples: int = 500, *, y: Any = None, random_state: Any = None,
                 lengths: Any = None):
        """Posterior draws for ``X`` as an ArviZ object.

        A thin wrapper of :func:`probspace.to_inference_data`: ``InferenceData``
        with ArviZ 0.x, ``xarray.DataTree`` with ArviZ 1.x.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).
        n_samples : int, default=500
            Number of posterior draws. For an MCMC fit (``sampler=...``), draws
            per chain: the fit's chains are kept, evenly thinned to at most
            ``n_samples`` draws each.
        y : array-like, optional
            Conditions, one per row (conditional families only).
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only; without it the draws continue the model's ``rng_``.
        lengths : array-like of int, optional
            Lengths of the sequences in ``X`` (sequential families only).

        Returns
        -------
        arviz.InferenceData or xarray.DataTree
        """
        from .diagnostics import to_inference_data

        return to_inference_data(self, X, n_draws=n_samples, random_state=random_state, lengths=lengths, y=y)

    # -- conditions ---------------------------------------------------------------
    def _condition_kwargs(self, y: Any, n: int, *, fitting: bool, generating: bool = False) -> dict[str, Any]:
        """Return ``{"cond": ...}`` for the hooks of a conditional family, ``{}`` otherwise.

        A non-conditional family ignores ``y`` in ``fit`` (scikit-learn passes
        it) and rejects it elsewhere, where it could only be a mistake.
        """
        if self._model_tags().conditional:
            return {"cond": self._check_condition(y, n, fitting=fitting, generating=generating)}
        if y is not None and not fitting:
            raise ValueError(f"{type(self).__name__} takes no condition y; got y of type {type(y).__name__}.")
        return {}

    def _check_condition(self, y: Any, n: int, *, fitting: bool, generating: bool = False) -> Any:
        """Validate and encode the condition ``y`` for ``n`` rows (conditional families override this).

        Called with ``fitting=True`` by ``fit`` (which may record what it
        learns, such as the classes), ``generating=True`` by ``sample`` (where
        a family may have a default condition), and with both false by every
        other method. The return value reaches the hooks as their ``cond``
        argument.
        """
        raise NotImplementedError(f"{type(self).__name__} declares conditional=True but no _check_condition.")

    # -- hooks for families -----------------------------------------------------
    # A conditional family's hooks (``_fit``, ``_posterior``, ``_log_likelihood``, ``_sample``, and the
    # ArviZ hooks ``_pointwise_log_likelihood``, ``_posterior_predictive`` and ``_arviz_constant_data``) also take
    # ``cond``: what ``_check_condition`` returned for the rows of the call.
    @abstractmethod
    def _fit(self, X: Any, lengths: np.ndarray | None, rng: np.random.Generator) -> None:
        """Fit the backend; set ``backend_``, ``n_iter_``, ``converged_``, ``history_``."""

    @abstractmethod
    def _posterior(self, X: Any, lengths: np.ndarray | None) -> Posterior:
        """Return the posterior for validated ``X``."""

    @abstractmethod
    def _log_likelihood(self, X: Any, lengths: np.ndarray | None) -> np.ndarray:
        """Return per-observation (per-sequence) log-likelihoods for validated ``X``."""

    @abstractmethod
    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(X, Z)`` drawn from the fitted generative model."""

    def _sample_parameters(self, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        raise NotImplementedError(f"{type(self).__name__} does not draw parameters.")

    # Hooks read by the ArviZ bridge (diagnostics/_arviz.py).
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        """Dims (after chain and draw) of each variable the bridge writes."""
        return {}

    def _pointwise_log_likelihood(
        self, X: Any, lengths: np.ndarray | None, params: dict[str, np.ndarray] | None, **cond: Any
    ) -> np.ndarray:
        """Pointwise log-likelihood: ``(n_draws, n_obs)`` given parameter draws, else ``(n_obs,)``."""
        return self._log_likelihood(X, lengths, **cond)

    def _n_observations(self, X: Any, lengths: np.ndarray | None) -> int:
        """Return how many values ``log_likelihood(X)`` gives: its observation unit (rows, sequences, ratings...)."""
        return X.shape[0] if lengths is None else len(lengths)

    def _arviz_observed_data(self, X: Any) -> np.ndarray:
        """Return the observations the pointwise log-likelihood scores (``observed_data``'s ``x``)."""
        return np.asarray(X.toarray() if hasattr(X, "toarray") else X)

    def _arviz_constant_data(self, X: Any, lengths: np.ndarray | None, **cond: Any) -> dict[str, np.ndarray] | None:
        """Exact quantities derived from ``X`` (no draw axis), written to ``constant_data``."""
        return None

    def _arviz_latent_extras(self, index: np.ndarray) -> dict[str, np.ndarray]:
        """Further latent draws for ``latent_posterior``, one per kept MCMC draw (flat index ``chain * n + draw``).

        For fits with ``draws_`` only; e.g. the item factors of a Gibbs matrix factorisation, which
        are latent variables but too many scalars for the ``posterior`` group.
        """
        return {}

    def _posterior_predictive(
        self,
        X: Any,
        latents: np.ndarray,
        params: dict[str, np.ndarray] | None,
        rng: np.random.Generator,
        **cond: Any,
    ) -> np.ndarray | None:
        """Replicated data given latent (and parameter) draws, ``(n_draws,) + X.shape``."""
        return None
