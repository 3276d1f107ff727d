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
        Structure of the component covariances (``covars`` are full matrices in every case; ``"tied"``: one
        matrix per state, shared by its components).
    n_mix : int, default=1
        Number of Gaussian components per state (used by :meth:`init`).
    min_covar : float, default=1e-3
        Added to the variances by the M-step.
    """

    name = "gmm"
    min_samples = 2
    names = ("weights", "means", "covars")
    key = "means"

    def __init__(self, covariance_type: str = "diag", n_mix: int = 1, min_covar: float = 1e-3) -> None:
        self.covariance_type = covariance_type
        self.n_mix = n_mix
        self.min_covar = min_covar

    def dims(self):
        return {"weights": ("state", "mix"), "means": ("state", "mix", "feature"),
                "covars": ("state", "mix", "feature", "feature_bis")}

    def check_data(self, X, owner):
        GaussianEmission(self.covariance_type).check_data(X, owner)

    conformance_data = staticmethod(GaussianEmission.conformance_data)

    def init(self, X, K, rng):
        """Each state's components scattered around a Gaussian start (k-means means), equal weights."""
        start = GaussianEmission("diag").init(X, K, rng)
        M, D = self.n_mix, X.shape[1]
        var = start["covars"]
        means = start["means"][:, None, :] + 0.1 * np.sqrt(var)[:, None, :] * rng.normal(size=(K, M, D))
        covars = np.einsum("kd,de->kde", var, np.eye(D))[:, None].repeat(M, axis=1)
        return {"weights": np.full((K, M), 1.0 / M), "means": means, "covars": covars}

    def m_step(self, X, gamma, params, means=None):
        """Weighted EM update of every state's mixture: component responsibilities within each state's ``gamma``.

        ``means`` (K, M, D), optional, holds the component means at its finite
        entries (NaN: estimated); the covariances are then the maximisers
        around the held means (an exact M-step with those entries fixed).
        """
        w, mu, cov = params["weights"], params["means"], params["covars"]
        K, M, D = mu.shape
        full = GaussianEmission("full")
        with np.errstate(divide="ignore"):
            log_w = np.log(w)
        parts = np.stack([full.log_frames(X, {"means": mu[:, m], "covars": cov[:, m]}) + log_w[:, m]
                          for m in range(M)], axis=2)  # (N, K, M)
        resp = gamma[:, :, None] * np.exp(parts - logsumexp(parts, axis=2, keepdims=True))
        n = resp.sum(axis=0)  # (K, M)
        safe = np.where(n > 0, n, 1.0)
        new_w = np.where(n.sum(axis=1, keepdims=True) > 0, n / np.maximum(n.sum(axis=1, keepdims=True), 1e-300), w)
        new_mu = np.where((n > 0)[..., None], np.einsum("nkm,nd->kmd", resp, X) / safe[..., None], mu)
        if means is not None:
            new_mu = np.where(np.isnan(means), new_mu, means)
        diff = X[:, None, None, :] - new_mu[None]  # (N, K, M, D)
        scatter = np.einsum("nkm,nkmd,nkme->kmde", resp, diff, diff)
        eye = np.eye(D)
        if self.covariance_type == "tied":
            tot = np.maximum(n.sum(axis=1), 1e-300)[:, None, None]
            S = (scatter.sum(axis=1) / tot)[:, None].repeat(M, axis=1)
        else:
            S = np.where((n > 0)[..., None, None], scatter / safe[..., None, None], cov)
            if self.covariance_type == "diag":
                S = np.diagonal(S, axis1=2, axis2=3)[..., None] * eye
            elif self.covariance_type == "spherical":
                S = np.diagonal(S, axis1=2, axis2=3).mean(axis=2)[..., None, None] * eye
        return {"weights": new_w, "means": new_mu, "covars": S + self.min_covar * eye}

    simplex = ("weights",)

    def shapes(self, K, D):
        """Layout of the arrays (held entries of ``HMM(fixed=...)`` are checked against it; no MCMC here)."""
        M = self.n_mix
        return {"weights": (K, M), "means": (K, M, D), "covars": (K, M, D, D)}

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
