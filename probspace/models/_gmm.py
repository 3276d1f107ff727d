"""Gaussian mixtures over scikit-learn's ``GaussianMixture`` and ``BayesianGaussianMixture``."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn import config_context, mixture

from .. import _bayes
from .._base import LatentModel
from .._docstrings import fill
from .._random import child_generator, sklearn_seed
from .._tags import ModelTags
from .._validation import Interval, Options, check_gaussian_scale
from ..emissions import GaussianEmission
from ..inference import _mixture
from ..inference._gaussian import (
    as_full,
    log_gaussian,
    sample_components,
    sample_normal_wishart,
    sample_stick_breaking,
)
from ..inference._progress import progress_bar
from ..models.hmm._constraints import check_sequence_weight
from ..posteriors import Categorical
from ..posteriors._categorical import sample_categorical

__all__ = ["GaussianMixture"]

_PRIORS = ("weight_concentration_prior", "mean_precision_prior", "mean_prior",
           "degrees_of_freedom_prior", "covariance_prior")


class GaussianMixture(LatentModel):
    r"""Gaussian mixture with an exact posterior over each observation's component label.

    The model: :math:`z_i \sim \mathrm{Categorical}(w)` and
    :math:`x_i \mid z_i = k \sim \mathcal{N}(\mu_k, \Sigma_k)`. Fitted by EM with
    :class:`sklearn.mixture.GaussianMixture`, or by variational Bayes with
    :class:`sklearn.mixture.BayesianGaussianMixture` when ``bayesian=True``.
    :meth:`posterior` returns :class:`~probspace.posteriors.Categorical`
    responsibilities :math:`p(z_i = k \mid x_i)`: exact given EM parameters,
    variational for a Bayesian fit, whose posterior over weights, means and
    precisions :meth:`sample_parameters` draws from. With ``sampler="gibbs"``
    or ``"nuts"`` the fit is fully Bayesian by MCMC: ``draws_`` holds
    ``n_chains`` chains of parameter draws and :meth:`posterior` averages the
    exact label posterior over them.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components.
    covariance_type : {"full", "tied", "diag", "spherical"}, default="full"
        Shape of the component covariances.
    bayesian : bool, default=False
        Fit by variational Bayes, with a posterior over the parameters.
    tol : float, default=1e-3
        Convergence threshold on the per-sample lower bound.
    reg_covar : float, default=1e-6
        Non-negative ridge added to the covariance diagonals.
    max_iter : int, default=100
        EM (or VB) iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the best is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default="kmeans"
        How responsibilities are initialised.
    weight_concentration_prior_type : {"dirichlet_process", "dirichlet_distribution"}, default="dirichlet_process"
        Prior over the weights (``bayesian=True`` only).
    weight_concentration_prior, mean_precision_prior : float, optional
        Scalar priors of the Bayesian fit; ``None`` takes scikit-learn's defaults.
        Setting any prior without ``bayesian=True`` is an error.
    mean_prior : array-like of shape (n_features,), optional
        Prior mean of the component means (``bayesian=True`` only).
    degrees_of_freedom_prior : float, optional
        Prior degrees of freedom of the precision (``bayesian=True`` only).
    covariance_prior : float or array-like, optional
        Prior on the covariances (``bayesian=True`` only).
    {mcmc_params}
    {random_state}
    verbose : int, default=0
        Verbosity passed to the backend.
    progress : bool, default=False
        Show a progress bar during an MCMC fit.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights (the variational posterior mean for a Bayesian fit).
    means_ : ndarray of shape (n_components, n_features)
        Component means.
    covariances_ : ndarray
        Component covariances, shaped by ``covariance_type``.
    precisions_ : ndarray
        Inverses of ``covariances_``.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    sklearn.mixture.GaussianMixture : The EM backend.
    probspace.posteriors.Categorical : The posterior over labels.

    Notes
    -----
    ``log_likelihood`` is exact for EM fits; for a Bayesian fit it is the
    mixture density at the variational posterior means of the parameters (a
    plug-in value, not a marginal likelihood). For an MCMC fit,
    ``weights_``, ``means_`` and ``covariances_`` are posterior means of the
    draws, ``log_likelihood`` is the log posterior predictive density
    :math:`\log \frac1S \sum_s p(x_i \mid \theta_s)` (a Monte Carlo
    estimate over the draws), ``sample`` generates from one parameter draw
    picked at random, and ``history_`` is the trace of the EM fit that
    started the first chain. MCMC supports ``covariance_type`` ``"full"`` and
    ``"diag"`` (NUTS: ``"diag"``, or ``"full"`` with one feature). Label draws use the smallest
    integer dtype that holds the labels (``int8`` up to 127 components).
    Example: ``examples/mixture/plot_old_faithful.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import GaussianMixture
    >>> X = np.r_[np.random.default_rng(0).normal(-3, 1, (50, 1)), np.random.default_rng(1).normal(3, 1, (50, 1))]
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> post = gm.posterior(X)
    >>> post.sample(10).shape
    (10, 100)
    >>> post.mean.shape
    (100, 2)
    """

    _latent_name = "label"
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "covariance_type": [Options("full", "tied", "diag", "spherical")],
        "bayesian": ["boolean"],
        "tol": [Interval("real", 0, None)],
        "reg_covar": [Interval("real", 0, None)],
        "max_iter": [Interval("int", 1, None)],
        "n_init": [Interval("int", 1, None)],
        "init_params": [Options("kmeans", "k-means++", "random", "random_from_data")],
        "weight_concentration_prior_type": [Options("dirichlet_process", "dirichlet_distribution")],
        "weight_concentration_prior": [None, Interval("real", 0, None, "neither")],
        "mean_precision_prior": [None, Interval("real", 0, None, "neither")],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, Interval("real", 0, None, "neither")],
        "covariance_prior": [None, Interval("real", 0, None, "neither"), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
        "random_state": ["random_state"],
        "verbose": [Interval("int", 0, None)],
        "progress": ["boolean"],
    }

    def __init__(self, n_components: int = 1, *, covariance_type: str = "full", bayesian: bool = False,
                 tol: float = 1e-3, reg_covar: float = 1e-6, max_iter: int = 100, n_init: int = 1,
                 init_params: str = "kmeans", weight_concentration_prior_type: str = "dirichlet_process",
                 weight_concentration_prior: float | None = None, mean_precision_prior: float | None = None,
                 mean_prior: Any = None, degrees_of_freedom_prior: float | None = None,
                 covariance_prior: Any = None, sampler: str | None = None, n_chains: int = 4, n_draws: int = 1000,
                 n_warmup: int = 1000, prior: dict | None = None, random_state: Any = None, verbose: int = 0,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.bayesian = bayesian
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    # Fit recipe for probspace.testing: fast settings, non-default settings, data.
    _conformance_params = {"n_components": 2, "max_iter": 50}
    _conformance_alt_params = {"covariance_type": "diag", "bayesian": True, "max_iter": 30,
                               "weight_concentration_prior_type": "dirichlet_distribution"}

    def _conformance_alt(self, alt: dict) -> dict:
        """Non-default settings for the conformance suite; an MCMC fit cannot also be variational."""
        return {k: v for k, v in alt.items() if k != "bayesian"} if self.sampler is not None else alt

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        centres = np.array([[-2.0, 0.0], [2.0, 0.5]])
        X = centres[rng.integers(0, 2, 60)] + rng.normal(scale=1.0, size=(60, 2))
        return X, None

    def _model_tags(self) -> ModelTags:
        point = not self.bayesian and self.sampler is None
        return ModelTags(discrete_latent=True, exact_posterior=point, exact_log_likelihood=point,
                         parameter_posterior=not point)

    # -- fitted parameters: read-only views of the backend ---------------------
    weights_ = property(lambda self: self.backend_.weights_, doc="Mixing weights.")
    means_ = property(lambda self: self.backend_.means_, doc="Component means.")
    covariances_ = property(lambda self: self.backend_.covariances_, doc="Component covariances.")
    precisions_ = property(lambda self: self.backend_.precisions_, doc="Component precisions.")

    def _new_backend(self, params: dict[str, Any]) -> Any:
        cls = mixture.BayesianGaussianMixture if self.bayesian else mixture.GaussianMixture
        return cls(**params)

    draws_ = _bayes.engine_field("draws", "MCMC parameter draws (n_chains, n_draws, ...), or None.")
    sample_stats_ = _bayes.engine_field("stats", "MCMC per-draw statistics (n_chains, n_draws), or None.")
    prior_ = _bayes.engine_field("prior", "The prior of an MCMC fit (defaults filled in), or None.")
    _unsaved = (*LatentModel._unsaved, "mcmc_")

    def _get_state(self) -> dict[str, Any]:
        return _bayes.add_engine_state(self, super()._get_state())

    def _set_state(self, state: dict[str, Any]) -> None:
        state, engine = _bayes.split_engine_state(state)
        super()._set_state(state)
        _bayes.restore_engine(self, engine)

    def _get_parameters(self) -> dict[str, Any]:
        params = {"weights_": self.weights_, "means_": self.means_, "covariances_": self.covariances_}
        if self.draws_ is not None:
            params.update({f"draws_[{k!r}]": v for k, v in self.draws_.items()})
        return params

    # -- per-observation weights ----------------------------------------------------
    def fit(self, X: Any, y: Any = None, *, lengths: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """Fit the mixture to ``X``, optionally with per-observation weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : None
            Ignored (scikit-learn convention).
        lengths : None
            Not accepted (independent observations); a value is a ``ValueError``.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weight of each observation in the EM objective
            ``sum_i w_i log p(x_i)``: an integer weight counts the observation
            that many times. scikit-learn's mixtures take no weights, so a
            weighted fit starts from scikit-learn's initialisation and runs
            probspace's weighted EM (E-step responsibilities times the weights,
            the same closed-form M-step). EM fits only (``bayesian=False``,
            no ``sampler``).

        Returns
        -------
        self
        """
        self._fit_weight_raw = sample_weight
        try:
            return super().fit(X, y, lengths=lengths)
        finally:
            self.__dict__.pop("_fit_weight_raw", None)

    def score(self, X: Any, y: Any = None, *, lengths: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood per observation, weighted by ``sample_weight`` when given.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : None
            Ignored.
        lengths : None
            Not accepted (independent observations).
        sample_weight : array-like of shape (n_samples,), optional
            Weights: the score is ``sum_i w_i log p(x_i) / sum_i w_i``.

        Returns
        -------
        float
        """
        ll = self.log_likelihood(X, lengths=lengths)
        w = check_sequence_weight(sample_weight, ll.shape[0], type(self).__name__, "observation")
        return float(np.mean(ll) if w is None else (w @ ll) / w.sum())

    def _fit_weighted(self, X: np.ndarray, w: np.ndarray, rng: np.random.Generator) -> None:
        """scikit-learn's initialisation (one EM step), then weighted EM from there."""
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        start = mixture.GaussianMixture(self.n_components, covariance_type=self.covariance_type, tol=self.tol,
                                        reg_covar=self.reg_covar, max_iter=1, n_init=self.n_init,
                                        init_params=self.init_params, random_state=sklearn_seed(rng))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            self.backend_ = start.fit(X)
        params = {"weights": start.weights_, "means": start.means_, "covariances": start.covariances_}
        emission = GaussianEmission(self.covariance_type, "covariances", min_covar=self.reg_covar)
        params, trace, converged = weighted_mixture_em(emission, X, w, params, self.max_iter, self.tol,
                                                       self.progress)
        self._set_point(params)
        self.n_iter_ = len(trace)
        self.converged_ = converged
        self.history_ = np.asarray(trace)

    # -- hooks ------------------------------------------------------------------
    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        if self.n_components > X.shape[0]:
            raise ValueError(
                f"n_components={self.n_components} must be at most the number of samples in X "
                f"(n_samples={X.shape[0]})."
            )
        if self.prior is not None and self.sampler is None:
            raise ValueError(f"prior={self.prior!r} applies only to MCMC fits; set sampler='gibbs' or 'nuts' "
                             "(EM and variational fits take their priors as constructor parameters).")
        if self.sampler is not None:
            _bayes.check_request(self._structure(), self.sampler, self.prior, X, self.n_components,
                                 type(self).__name__, self.bayesian)
        check_gaussian_scale(X, type(self).__name__)
        weight = check_sequence_weight(getattr(self, "_fit_weight_raw", None), X.shape[0], type(self).__name__,
                                       "observation")
        if weight is not None:
            if self.bayesian or self.sampler is not None:
                raise ValueError("sample_weight passed to GaussianMixture.fit applies to EM fits (bayesian=False, "
                                 "sampler=None).")
            self.mcmc_ = None
            self._fit_weighted(X, weight, rng)
            return
        common = dict(n_components=self.n_components, covariance_type=self.covariance_type, tol=self.tol,
                      reg_covar=self.reg_covar, max_iter=self.max_iter, n_init=self.n_init,
                      init_params=self.init_params, random_state=sklearn_seed(rng), verbose=self.verbose)
        if self.bayesian:
            priors = {name: getattr(self, name) for name in _PRIORS}
            backend = mixture.BayesianGaussianMixture(
                weight_concentration_prior_type=self.weight_concentration_prior_type, **priors, **common)
        else:
            given = [name for name in _PRIORS if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{', '.join(given)} only apply with bayesian=True; got bayesian=False.")
            backend = mixture.GaussianMixture(**common)
        self.backend_ = backend.fit(X)
        self.n_iter_ = int(backend.n_iter_)
        self.converged_ = bool(backend.converged_)
        # sklearn's EM bound is per sample already; its variational bound is a total.
        scale = X.shape[0] if self.bayesian else 1
        self.history_ = np.asarray(backend.lower_bounds_, dtype=np.float64) / scale
        self.mcmc_ = None
        if self.sampler is not None:
            starts = [self._em_start(X, child_generator(rng)) for _ in range(self.n_chains)]
            self.mcmc_ = _bayes.MCMC.run(self._structure(), X, None, starts, sampler=self.sampler, prior=self.prior,
                                         n_draws=self.n_draws, n_warmup=self.n_warmup, rng=rng,
                                         progress=self.progress, owner=type(self).__name__)
            self._set_point(self.mcmc_.point())

    # -- composition: the Gaussian emission, labels instead of a Markov chain ---------------
    def _structure(self) -> _bayes.Structure:
        return _bayes.Structure(GaussianEmission(self.covariance_type, "covariances"), hmm=False)

    def _em_start(self, X, rng):
        """One chain's start: a maximum-likelihood fit from ``rng``."""
        em = mixture.GaussianMixture(self.n_components, covariance_type=self.covariance_type, tol=self.tol,
                                     reg_covar=self.reg_covar, max_iter=self.max_iter, init_params=self.init_params,
                                     random_state=sklearn_seed(rng)).fit(X)
        return {"weights": em.weights_, "means": em.means_, "covariances": em.covariances_}

    def _set_point(self, p: dict[str, np.ndarray]) -> None:
        """Write posterior means into the backend, precisions included, where the fitted attributes read them."""
        b = self.backend_
        b.weights_, b.means_, b.covariances_ = p["weights"], p["means"], p["covariances"]
        if self.covariance_type in ("diag", "spherical"):
            b.precisions_cholesky_ = 1.0 / np.sqrt(p["covariances"])
            b.precisions_ = 1.0 / p["covariances"]
        else:
            chol = np.linalg.cholesky(p["covariances"])
            b.precisions_cholesky_ = np.swapaxes(np.linalg.inv(chol), -1, -2)
            b.precisions_ = b.precisions_cholesky_ @ np.swapaxes(b.precisions_cholesky_, -1, -2)

    def _answers(self) -> _bayes.MCMC | _PointMixture:
        """Return the answers: the MCMC engine, or scikit-learn's fit (the one place that asks which)."""
        mcmc = getattr(self, "mcmc_", None)
        return mcmc if mcmc is not None else _PointMixture(self)

    # -- hooks: asked of the answers --------------------------------------------------------
    def _posterior(self, X: np.ndarray, lengths: None) -> Categorical:
        return self._answers().posterior(X, lengths)

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        return self._answers().log_likelihood(X, lengths)

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return self._answers().sample(n_samples, rng)

    def _sample_parameters(self, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return self._answers().sample_parameters(n_samples, rng)

    # -- extras -------------------------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """Most probable component of each observation (``posterior(X).mode``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        X, _ = self._check_input(X, None)
        return self._posterior(X, None).mode

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior probability of each component (``posterior(X).probs``).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).

        Returns
        -------
        ndarray of shape (n_samples, n_components)
        """
        X, _ = self._check_input(X, None)
        return np.asarray(self._posterior(X, None).mean)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion of an EM fit on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).

        Returns
        -------
        float
        """
        return self._criterion(X, "bic")

    def aic(self, X: Any) -> float:
        """Akaike information criterion of an EM fit on ``X`` (lower is better).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data, one row per observation (per time step for sequences).

        Returns
        -------
        float
        """
        return self._criterion(X, "aic")

    def _criterion(self, X: Any, name: str) -> float:
        X, _ = self._check_input(X, None)
        if self.bayesian or self.sampler is not None:
            raise ValueError(f"{name} needs a maximum-likelihood (EM) fit; this model is Bayesian "
                             "(bayesian=True or a sampler). Compare Bayesian fits with to_arviz and arviz.loo.")
        return float(getattr(self.backend_, name)(X))

    # -- ArviZ hooks ----------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        prec = {"full": ("component", "feature", "feature_bis"), "tied": ("feature", "feature_bis"),
                "diag": ("component", "feature"), "spherical": ("component",)}[self.covariance_type]
        cov = prec if self.covariance_type != "diag" else ("component", "feature")
        return {"label": ("obs",), "weights": ("component",), "means": ("component", "feature"),
                "precisions": prec, "covariances": cov, "x": ("obs", "feature")}

    def _pointwise_log_likelihood(self, X, lengths, params):
        return self._answers().pointwise_log_likelihood(X, lengths, params)

    def _posterior_predictive(self, X, latents, params, rng):
        return self._answers().posterior_predictive(X, latents, params, rng)


class _PointMixture:
    """The answers of an EM or variational fit, from the scikit-learn backend (see ``GaussianMixture._answers``)."""

    def __init__(self, model: GaussianMixture) -> None:
        self.model = model
        self.backend = model.backend_

    def posterior(self, X, lengths):
        if self.model.bayesian:
            with config_context(assume_finite=True):  # X was validated by the base class
                return Categorical._trusted(self.backend.predict_proba(X), "variational")
        b = self.backend  # compiled, row by row: no (N, K) temporaries (scikit-learn's predict_proba to ~1e-15)
        parts = _mixture.layout(b.weights_, b.means_, b.precisions_cholesky_, self.model.covariance_type)
        return Categorical._trusted(_mixture.responsibilities(X, parts), "exact")

    def log_likelihood(self, X, lengths):
        with config_context(assume_finite=True):
            return self.backend.score_samples(X)

    def sample(self, n_samples, rng):
        b, covariance_type = self.backend, self.model.covariance_type
        labels = sample_categorical(b.weights_[None, :], n_samples, rng)[:, 0]
        return sample_components(b.means_, b.covariances_, covariance_type, labels, rng), labels

    def sample_parameters(self, n_samples, rng):
        """Draws from the variational posterior (``bayesian=True``)."""
        b, covariance_type = self.backend, self.model.covariance_type
        if self.model.weight_concentration_prior_type == "dirichlet_process":
            weights = sample_stick_breaking(*b.weight_concentration_, n_samples, rng)
        else:
            weights = rng.dirichlet(b.weight_concentration_, size=n_samples)
        means, precisions = sample_normal_wishart(b.means_, b.mean_precision_, b.covariances_,
                                                  b.degrees_of_freedom_, covariance_type, n_samples, rng)
        return {"weights": weights, "means": means, "precisions": precisions}

    def pointwise_log_likelihood(self, X, lengths, params):
        if params is None:
            return self.log_likelihood(X, lengths)
        out = np.empty((params["weights"].shape[0], X.shape[0]))
        for s in range(out.shape[0]):
            logp = log_gaussian(X, params["means"][s], params["precisions"][s], self.model.covariance_type)
            logp += np.log(params["weights"][s])
            top = logp.max(axis=1, keepdims=True)
            out[s] = (top + np.log(np.exp(logp - top).sum(axis=1, keepdims=True)))[:, 0]
        return out

    def posterior_predictive(self, X, latents, params, rng):
        b, covariance_type = self.backend, self.model.covariance_type
        n_draws, n_obs = latents.shape
        if params is None:
            flat = sample_components(b.means_, b.covariances_, covariance_type, latents.ravel(), rng)
            return flat.reshape(n_draws, n_obs, -1)
        K, D = b.means_.shape
        out = np.empty((n_draws, n_obs, D))
        for s in range(n_draws):
            cov = np.linalg.inv(as_full(params["precisions"][s], covariance_type, K, D))
            out[s] = sample_components(params["means"][s], cov, "full", latents[s], rng)
        return out


def weighted_mixture_em(emission: GaussianEmission, X: np.ndarray, w: np.ndarray, params: dict[str, np.ndarray],
                        max_iter: int, tol: float, progress: bool = False) -> tuple[dict, list[float], bool]:
    """EM for a weighted mixture: maximise ``sum_i w_i log sum_k pi_k p(x_i | theta_k)`` from ``params``.

    E-step: responsibilities times the weights; M-step: the weights'
    normalised column sums and the emission's closed-form M-step. Returns
    the parameters, the weighted mean log-likelihood before each M-step
    (the last one after the final step) and whether the gain fell below ``tol``.
    """
    from scipy.special import logsumexp

    trace: list[float] = []
    converged = False
    total_w = w.sum()
    with progress_bar(progress, max_iter, "weighted EM", "iter") as bar:
        for _ in range(max_iter + 1):
            with np.errstate(divide="ignore"):
                logp = np.log(params["weights"]) + emission.log_frames(X, params)
            lse = logsumexp(logp, axis=1)
            trace.append(float(w @ lse / total_w))
            if len(trace) > 1 and abs(trace[-1] - trace[-2]) < tol:
                converged = True
                break
            if len(trace) > max_iter:
                break
            resp = np.exp(logp - lse[:, None]) * w[:, None]
            nk = resp.sum(axis=0)
            new = emission.m_step(X, resp, {"means": params["means"], "covariances": params["covariances"]})
            params = {"weights": nk / nk.sum(), **new}
            bar.update(1)
    return params, trace, converged


GaussianMixture.__doc__ = fill(GaussianMixture.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                               mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
