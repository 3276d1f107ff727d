"""GMMHMM: Markov chain + Gaussian-mixture emissions (:class:`~probspace.emissions.GaussianMixtureEmission`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._docstrings import fill
from ..._validation import Interval, Options, check_gaussian_scale
from ...emissions import GaussianMixtureEmission
from . import _adapter
from ._base import _HMM, COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS, standard_units
from ._gaussian import GaussianHMM

__all__ = ["GMMHMM"]


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
    fixed : dict, optional
        Parameters held during the EM fit, by name without the trailing
        underscore (``"startprob"``, ``"transmat"``, ``"weights"``,
        ``"means"``, ``"covars"``, the last as full matrices (n_components,
        n_mix, n_features, n_features)): finite entries are held, NaN entries
        estimated, a held 0 of a probability row is a structural zero. Such a
        fit starts from a few hmmlearn EM iterations and continues with
        probspace's constrained EM, the one of ``HMM(emission="gmm")``
        (free entries of a probability row share the mass left; ``means``
        and ``covars`` are held per state, all entries of a state or none).
    topology : {"ergodic", "left-to-right", "banded"}, optional
        Allowed transitions (forbidden ones are structural zeros), as for :class:`HMM`.
    bandwidth : int, optional
        Width of the band (``"banded"``: default 1; ``"left-to-right"``: no limit).
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
        **COMMON_CONSTRAINTS,
        "n_mix": [Interval("int", 1, None)],
        "covariance_type": [Options("diag", "full", "tied", "spherical")],
        "min_covar": [Interval("real", 0, None, "neither")],
        **CONSTRAINT_CONSTRAINTS,
    }
    _conformance_params = {"n_components": 2, "n_mix": 2}
    _conformance_alt_params = {"covariance_type": "full", "n_mix": 1}

    def __init__(self, n_components: int = 1, *, n_mix: int = 1, covariance_type: str = "diag",
                 bayesian: bool = False, min_covar: float = 1e-3, fixed: dict | None = None,
                 topology: str | None = None, bandwidth: int | None = None, max_iter: int = 100, tol: float = 1e-2,
                 implementation: str = "log", random_state: Any = None, verbose: bool = False,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.n_mix = n_mix
        self.covariance_type = covariance_type
        self.bayesian = bayesian
        self.min_covar = min_covar
        self.fixed = fixed
        self.topology = topology
        self.bandwidth = bandwidth
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
        return _adapter.GuardedGMMHMM, {"n_mix": self.n_mix, "covariance_type": self.covariance_type,
                            "min_covar": self.min_covar}

    weights_ = property(lambda self: self.backend_.weights_, doc="Mixture weights (K, M).")
    means_ = property(lambda self: self.backend_.means_, doc="Component means (K, M, D).")

    _missing_fit_rule = (".fit does not accept missing values (NaN): the mixture's missing-value M-step is not "
                         "implemented. Fit on complete frames (or impute);")

    def _check_data(self, X):
        check_gaussian_scale(X, type(self).__name__)

    def _check_constraint_request(self, X, labels, weight):
        if labels is not None or weight is not None:
            raise ValueError("GMMHMM.fit takes no labels or sequence_weight (hmmlearn's GMMHMM has no such EM); use "
                             "HMM(emission='gmm'), which fits both (posterior, predict and log_likelihood of a "
                             "fitted GMMHMM do take labels).")
        super()._check_constraint_request(X, labels, weight)

    def _em_units(self, X):
        return standard_units(X, centre=True)

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

    def _emission(self, X=None):
        # min_covar in the units EM runs in (the constrained EM's M-step adds it, as hmmlearn's does)
        return GaussianMixtureEmission(self.covariance_type, n_mix=self.n_mix,
                                       min_covar=self._fit_units("min_covar", self.min_covar))

    def _set_point(self, params):
        """Write parameters into the backend, full covariances in hmmlearn's ``covariance_type`` layout."""
        params = dict(params)
        if "covars" in params:
            cov = np.asarray(params["covars"])
            if self.covariance_type == "diag":
                cov = np.diagonal(cov, axis1=-2, axis2=-1).copy()
            elif self.covariance_type == "spherical":
                cov = np.diagonal(cov, axis1=-2, axis2=-1).mean(axis=-1)
            elif self.covariance_type == "tied":
                cov = cov[:, 0].copy()
            params["covars"] = cov
        super()._set_point(params)

    def _emission_point(self):
        return {"weights": self.weights_, "means": self.means_, "covars": self.covars_}


GMMHMM.__doc__ = fill(GMMHMM.__doc__)
