"""Poisson emissions: independent counts ``x_d | z = k ~ Poisson(lambda_kd)``.

Parameter: ``lambdas`` (K, D). Conjugate prior ``lambda_kd ~ Gamma(a0_d, b0_d)``
(shape ``rate_shape``, rate ``rate_rate``; defaults 1 and 1 / mean count).
Missing entries are summed out anywhere, in fit too.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.special import gammaln, xlogy

from ._base import FRAMES, JIT, UPDATE, Emission, check_counts, state_sums

__all__ = ["PoissonEmission"]


@numba.njit(FRAMES, **JIT)
def _frames(X, aux, theta, out):  # pragma: no cover - compiled
    """``sum_d x log lambda - lambda - log x!`` over observed entries.

    ``aux`` holds ``sum log x!``; a zero rate gives ``x * -1e300`` for a positive count (zero
    probability, finite arithmetic).
    """
    N, D = X.shape
    K = out.shape[1]
    lam = theta[:K * D].reshape((K, D))
    for k in range(K):
        for i in range(N):
            s = -aux[i]
            for d in range(D):
                x = X[i, d]
                if x == x:
                    if x > 0.0:
                        s += x * (math.log(lam[k, d]) if lam[k, d] > 0.0 else -1e300)
                    s -= lam[k, d]
            out[i, k] = s


@numba.njit(UPDATE, **JIT)
def _update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """``lambda_kd | z ~ Gamma(a0_d + sum of counts, b0_d + n_k)``.

    ``fixed`` may carry ``K * D`` more flags (the entries held, row-major): the
    entries' conditionals are independent given the labels, so a held entry
    (a structural zero among them) is simply not drawn.
    """
    if fixed[0]:
        return
    D = X.shape[1]
    entrywise = fixed.shape[0] > 1
    lam = theta[:K * D].reshape((K, D))
    n, sums = state_sums(X, z, K)
    for k in range(K):
        for d in range(D):
            if entrywise and fixed[1 + k * D + d]:
                continue
            lam[k, d] = np.random.gamma(hyper[d] + sums[k, d], 1.0 / (hyper[D + d] + n[k]))


class PoissonEmission(Emission):
    """Poisson emissions (see the module docstring).

    Parameters
    ----------
    rate_prior, rate_weight : float or array-like, default=0.0
        hmmlearn's Gamma prior of the EM (MAP) rates, used by the missing-value M-step.
    """

    name = "poisson"
    non_negative = True
    names = ("lambdas",)
    key = "lambdas"
    positive = ("lambdas",)
    hyper_keys = {"rate_shape": "lambdas", "rate_rate": "lambdas"}
    frames_kernel = staticmethod(_frames)
    update_kernel = staticmethod(_update)
    samplers = ("gibbs", "nuts")
    gibbs_entry_holds = ("lambdas",)

    def __init__(self, rate_prior: float = 0.0, rate_weight: float = 0.0) -> None:
        self.rate_prior = rate_prior
        self.rate_weight = rate_weight

    def held_support(self, K, D):
        return {"lambdas": "nonnegative"}

    def shapes(self, K, D):
        return {"lambdas": (K, D)}

    def dims(self):
        return {"lambdas": ("state", "feature")}

    def check_data(self, X, owner):
        check_counts(X, owner, "counts")

    @staticmethod
    def conformance_data(states, rng):
        rates = np.array([[1.0, 4.0], [8.0, 0.5]])
        return rng.poisson(rates[states]).astype(float)

    def init(self, X, K, rng):
        """K random rows of ``X`` pulled halfway to the mean counts (NaN: the mean), jittered by up to 10%."""
        mean = np.nan_to_num(np.nanmean(X, axis=0), nan=1.0)
        mean = np.where(mean > 0, mean, 1.0)
        rows = X[rng.choice(X.shape[0], size=K, replace=False)]
        rows = np.where(np.isnan(rows), mean, rows)
        return {"lambdas": (0.5 * rows + 0.5 * mean) * rng.uniform(0.9, 1.1, size=rows.shape)}

    def aux(self, X):
        return (gammaln(np.where(np.isnan(X), 0.0, X) + 1.0)).sum(axis=1)

    def sample(self, params, states, rng):
        return rng.poisson(params["lambdas"][states]).astype(np.int64)

    def missing_supported(self, missing):
        return True

    def m_step(self, X, gamma, params):
        """Rate updates over the observed counts, with hmmlearn's Gamma prior per state."""
        return self.m_step_from_stats(self.suff_stats(X, gamma, params), params)

    def suff_stats(self, X, gamma, params):
        """Return ``num`` (K, D), expected counts per state, and ``den`` (K, D), their weight on observed entries."""
        obs = ~np.isnan(X)
        return {"num": gamma.T @ np.where(obs, X, 0.0), "den": gamma.T @ obs.astype(np.float64)}

    def m_step_from_stats(self, stats, params):
        num, den = stats["num"], stats["den"]
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = (self.rate_prior + num) / (self.rate_weight + den)
        return {"lambdas": np.where(den > 0, lam, params["lambdas"])}

    def resolve_hyper(self, reader, X, K):
        D = X.shape[1]
        mean = X.mean(axis=0)
        return {"rate_shape": reader.number("rate_shape", 1.0, (D,)),
                "rate_rate": reader.number("rate_rate", 1.0 / np.where(mean > 0, mean, 1.0), (D,))}

    def pack_hyper(self, hyper, D):
        return np.concatenate([hyper["rate_shape"], hyper["rate_rate"]])

    def log_prior(self, params, hyper, fixed=()):
        lam = np.asarray(params["lambdas"], dtype=np.float64)
        if "lambdas" in fixed:
            return np.zeros(lam.shape[0])
        a, b = np.asarray(hyper["rate_shape"]), np.asarray(hyper["rate_rate"])  # Gamma(shape a, rate b) per feature
        terms = a * np.log(b) - gammaln(a) + xlogy(a - 1.0, lam) - b * lam
        return terms.reshape(lam.shape[0], -1).sum(axis=1)

    def prepare_start(self, start, fixed, X, floor):
        if "lambdas" not in fixed:
            mean = X.mean(axis=0)
            start["lambdas"] = np.maximum(start["lambdas"], floor * np.where(mean > 0, mean, 1.0))

    def nuts_sites(self, hyper, dists, K, D, start):
        import pyro.distributions as pdist
        import torch

        from ..inference._nuts import Site

        prior = pdist.Gamma(torch.as_tensor(hyper["rate_shape"]), torch.as_tensor(hyper["rate_rate"]))
        return [Site("lambdas", (K, D), "positive", dists.get("lambdas", prior))]

    def torch_aux(self, Xt):
        import torch

        return torch.lgamma(Xt + 1.0).sum(dim=1, keepdim=True)

    def torch_frames(self, Xt, aux, values):
        import torch

        lam = values["lambdas"]
        if bool((lam > 0).all()):
            return Xt @ torch.log(lam).T - lam.sum(dim=1) - aux
        # a held zero rate (structural zero): 0 log 0 = 0, so a zero count keeps probability 1
        return torch.xlogy(Xt[:, None, :], lam[None]).sum(dim=2) - lam.sum(dim=1) - aux
