"""GaussianHMM: Markov chain + Gaussian emissions (:class:`~probspace.emissions.GaussianEmission`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _bayes
from ..._docstrings import fill
from ..._validation import Interval, Options, check_gaussian_scale
from ...emissions import GaussianEmission
from . import _adapter
from ._base import _HMM, COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS, standard_units, two_state_data

__all__ = ["GaussianHMM"]


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
        below apply to EM fits). ``sample_parameters`` then draws from the
        variational posterior (see :ref:`bayesian-fits`).
    min_covar : float, default=1e-3
        Floor on the covariance diagonals.
    startprob_prior, transmat_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
    means_prior, means_weight, covars_prior, covars_weight : float
        Normal and inverse-gamma/Wishart priors of the EM fit (hmmlearn's).
    {held_params}
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
        **COMMON_CONSTRAINTS,
        "covariance_type": [Options("diag", "full", "tied", "spherical")],
        "min_covar": [Interval("real", 0, None, "neither")],
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "means_prior": [Interval("real", None, None), "array-like"],
        "means_weight": [Interval("real", 0, None), "array-like"],
        "covars_prior": [Interval("real", 0, None), "array-like"],
        "covars_weight": [Interval("real", None, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
        **CONSTRAINT_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_alt_params = {"covariance_type": "full", "bayesian": True}

    def __init__(self, n_components: int = 1, *, covariance_type: str = "diag", bayesian: bool = False,
                 min_covar: float = 1e-3, startprob_prior: Any = 1.0, transmat_prior: Any = 1.0,
                 means_prior: Any = 0.0, means_weight: Any = 0.0, covars_prior: Any = 1e-2, covars_weight: Any = 1.0,
                 fixed: dict | None = None, topology: str | None = None,
                 bandwidth: int | None = None, sampler: str | None = None, n_chains: int = 4,
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
        self.implementation = implementation
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    @staticmethod
    def _conformance_data(rng):
        means = np.array([[-2.0, 0.0], [2.0, 1.0]])
        return two_state_data(rng, lambda z, r: means[z] + r.normal(size=(len(z), 2)))

    def _backend_class(self):
        if self.bayesian:
            return _adapter.VariationalGaussianHMM, {"covariance_type": self.covariance_type}
        return _adapter.KernelEStepGaussianHMM, {
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
        return standard_units(X, centre=not np.any(np.asarray(self.means_weight) != 0))

    def _to_data_units(self, shift, scale):
        self.backend_.means_ = self.backend_.means_ * scale + shift
        _adapter.scale_covars(self.backend_, scale**2)

    @property
    def covars_(self) -> np.ndarray:
        """State covariances as full matrices, shape (K, D, D)."""
        covs = self.backend_.covars_
        K, D = self.backend_.means_.shape
        if covs.shape[0] == K * D and K * D != K:  # hmmlearn 0.3.3 spherical bug: each state repeated D times
            covs = covs[::D]
        return covs

    _variational_draws = True

    def _draw_emission(self, n_samples, rng):
        """Means and covariances from hmmlearn's variational Normal-Wishart posterior.

        ``"full"``/``"tied"``: precision ``Lambda ~ Wishart(dof_posterior_,
        inv(scale_posterior_))`` (one per state, or one shared), covariance
        ``inv(Lambda)``; ``"diag"``/``"spherical"``: each precision entry
        ``~ Gamma(dof_posterior_ / 2, rate=scale_posterior_ / 2)``, the
        marginal of the diagonal of that Wishart. Then
        ``mu_k | Sigma_k ~ N(means_posterior_[k], Sigma_k / beta_posterior_[k])``.
        So ``E[Lambda] = inv(covars_)``, hmmlearn's ``covars_ = scale_posterior_ / dof_posterior_``.
        """
        b = self.backend_
        m, beta = np.asarray(b.means_posterior_, dtype=np.float64), np.asarray(b.beta_posterior_, dtype=np.float64)
        K, D = m.shape
        dof, scale = np.asarray(b.dof_posterior_, dtype=np.float64), np.asarray(b.scale_posterior_, dtype=np.float64)
        ct = self.covariance_type
        if ct in ("diag", "spherical"):
            shape = (n_samples, K, D) if ct == "diag" else (n_samples, K)
            dof_b = dof[:, None] if ct == "diag" else dof
            cov = 1.0 / rng.gamma(0.5 * dof_b, 2.0 / scale, size=shape)
            var = cov if ct == "diag" else np.repeat(cov[..., None], D, axis=-1)
            means = m + np.sqrt(var / beta[:, None]) * rng.standard_normal((n_samples, K, D))
            return {"means": means, "covars": cov}
        dofs = np.broadcast_to(dof, (K,)) if ct == "full" else dof.reshape(1)
        scales = scale if ct == "full" else scale[None]
        covs = np.empty((n_samples, dofs.size, D, D))
        for k in range(dofs.size):
            covs[:, k] = np.linalg.inv(_wishart(dofs[k], np.linalg.inv(scales[k]), n_samples, rng))
        full = covs if ct == "full" else np.repeat(covs, K, axis=1)
        chol = np.linalg.cholesky(full / beta[:, None, None])
        means = m + np.einsum("nkde,nke->nkd", chol, rng.standard_normal((n_samples, K, D)))
        return {"means": means, "covars": covs if ct == "full" else covs[:, 0]}

    def _emission(self, X=None):
        return GaussianEmission(self.covariance_type, "covars", min_covar=self._fit_units("min_covar", self.min_covar))

    def _emission_point(self):
        full = self.covars_
        cov = {"diag": lambda: np.diagonal(full, axis1=1, axis2=2).copy(), "spherical": lambda: full[:, 0, 0].copy(),
               "tied": lambda: full[0], "full": lambda: full}[self.covariance_type]()
        return {"means": self.means_, "covars": cov}


def _wishart(dof: float, W: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` draws of ``Wishart(dof, W)`` (mean ``dof * W``) by the Bartlett decomposition, shape (n, D, D)."""
    D = W.shape[0]
    L = np.linalg.cholesky(W)
    A = np.tril(rng.standard_normal((n, D, D)), -1)
    A[:, np.arange(D), np.arange(D)] = np.sqrt(rng.chisquare(dof - np.arange(D), size=(n, D)))
    LA = L @ A
    return LA @ np.swapaxes(LA, -1, -2)


GaussianHMM.__doc__ = fill(GaussianHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                           mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
