"""Gaussian-mixture emissions (GMMHMM): ``x | z = k ~ sum_m w_km N(mu_km, Sigma_km)``.

Parameters: ``weights`` (K, M), ``means`` (K, M, D) and ``covars`` as full
matrices (K, M, D, D). The density is the log-sum-exp over components of the
Gaussian emission's own compiled kernels (no second Gaussian density), so
missing entries are marginalised the same way. No conjugate sampler.
"""

from __future__ import annotations

import numpy as np
from scipy.special import logsumexp

from ..inference._gaussian import sample_components
from ._base import Emission, inverse_cdf
from ._gaussian import GaussianEmission

__all__ = ["GaussianMixtureEmission"]


class GaussianMixtureEmission(Emission):
    """Gaussian-mixture emissions (see the module docstring).

    Parameters
    ----------
    covariance_type : {"full", "diag", "tied", "spherical"}
        Structure of the component covariances (``covars`` are full matrices in every case).
    """

    names = ("weights", "means", "covars")
    key = "means"

    def __init__(self, covariance_type: str = "diag") -> None:
        self.covariance_type = covariance_type

    def shapes(self, K, D):
        raise NotImplementedError("GaussianMixtureEmission has no MCMC layout.")

    def order_key(self, params):
        return params["means"][..., 0, 0]

    def log_frames(self, X, params):
        diagonal = self.covariance_type in ("diag", "spherical")
        component = GaussianEmission("diag" if diagonal else "full")
        covs = params["covars"]
        with np.errstate(divide="ignore"):
            log_w = np.log(params["weights"])
        parts = []
        for m in range(log_w.shape[1]):
            cov = np.diagonal(covs[:, m], axis1=1, axis2=2) if diagonal else covs[:, m]
            parts.append(component.log_frames(X, {"means": params["means"][:, m], "covars": cov}) + log_w[:, m])
        return logsumexp(np.stack(parts), axis=0)

    def sample(self, params, states, rng):
        w = params["weights"]
        K, M, D = params["means"].shape
        flat = states * M + inverse_cdf(w[states], rng)
        return sample_components(params["means"].reshape(K * M, D), params["covars"].reshape(K * M, D, D), "full",
                                 flat, rng)

    def missing_supported(self, missing):
        return False
