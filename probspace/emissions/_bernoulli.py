"""Bernoulli emissions: independent binary features, ``x_d | z = k ~ Bernoulli(p_kd)``.

Parameter: ``probs`` (K, D). Conjugate prior ``p_kd ~ Beta(alpha_d, beta_d)``
(``prior={"alpha": ..., "beta": ...}``, default 1 and 1: uniform). Missing
entries are summed out anywhere, in fit too. Gibbs only (no NUTS sites).
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._base import FRAMES, JIT, UPDATE, Emission, state_sums

__all__ = ["BernoulliEmission"]

#: EM keeps probabilities inside [_EDGE, 1 - _EDGE], so a feature never seen on is not impossible later.
_EDGE = 1e-10


@numba.njit(FRAMES, **JIT)
def _frames(X, aux, theta, out):  # pragma: no cover - compiled
    """``sum_d x log p + (1 - x) log(1 - p)`` over observed entries (``-inf`` where the value is impossible)."""
    N, D = X.shape
    K = out.shape[1]
    p = theta[:K * D].reshape((K, D))
    for k in range(K):
        for i in range(N):
            s = 0.0
            for d in range(D):
                x = X[i, d]
                if x == x:
                    q = p[k, d] if x > 0.5 else 1.0 - p[k, d]
                    s += math.log(q) if q > 0.0 else -np.inf
            out[i, k] = s


@numba.njit(UPDATE, **JIT)
def _update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """``p_kd | z ~ Beta(alpha_d + ones, beta_d + zeros)`` over the points of state ``k``.

    ``fixed`` may carry ``K * D`` more flags (the entries held, row-major): the
    entries' conditionals are independent given the labels, so a held entry is
    simply not drawn.
    """
    if fixed[0]:
        return
    D = X.shape[1]
    entrywise = fixed.shape[0] > 1
    p = theta[:K * D].reshape((K, D))
    n, ones = state_sums(X, z, K)
    for k in range(K):
        for d in range(D):
            if entrywise and fixed[1 + k * D + d]:
                continue
            p[k, d] = np.random.beta(hyper[d] + ones[k, d], hyper[D + d] + n[k] - ones[k, d])


class BernoulliEmission(Emission):
    """Bernoulli emissions (see the module docstring).

    Parameters
    ----------
    probs_prior : float, default=1.0
        Symmetric Beta prior of the EM (MAP) fit: ``probs_prior - 1`` pseudo-counts of each value (1: maximum
        likelihood).
    """

    name = "bernoulli"
    non_negative = True
    names = ("probs",)
    key = "probs"
    positive = ("probs",)
    hyper_keys = {"alpha": "probs", "beta": "probs"}
    frames_kernel = staticmethod(_frames)
    update_kernel = staticmethod(_update)
    samplers = ("gibbs",)
    gibbs_entry_holds = ("probs",)

    def __init__(self, probs_prior: float = 1.0) -> None:
        self.probs_prior = probs_prior

    def held_support(self, K, D):
        return {"probs": "probability"}

    def shapes(self, K, D):
        return {"probs": (K, D)}

    def sample(self, params, states, rng):
        p = params["probs"][states]
        return (rng.random(p.shape) < p).astype(np.int64)

    def dims(self):
        return {"probs": ("state", "feature")}

    def check_data(self, X, owner):
        values = X[~np.isnan(X)]
        if np.any((values != 0) & (values != 1)):
            raise ValueError(f"X passed to {owner} must hold 0 and 1 (NaN for missing); got values such as "
                             f"{values[(values != 0) & (values != 1)][:3]}.")

    @staticmethod
    def conformance_data(states, rng):
        p = np.array([[0.9, 0.8, 0.1], [0.1, 0.3, 0.85]])
        return (rng.random((len(states), 3)) < p[states]).astype(float)

    def init(self, X: np.ndarray, K: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Return starting probabilities: K random rows of ``X`` pulled halfway to 1/2 (NaN: 1/2), jittered.

        The jitter (uniform, width 0.2) separates states that start from equal rows, which EM cannot.
        """
        rows = X[rng.choice(X.shape[0], size=K, replace=False)]
        return {"probs": np.where(np.isnan(rows), 0.5, 0.25 + 0.5 * rows) + rng.uniform(-0.1, 0.1, size=rows.shape)}

    def missing_supported(self, missing):
        return True

    def m_step(self, X, gamma, params):
        return self.m_step_from_stats(self.suff_stats(X, gamma, params), params)

    def suff_stats(self, X, gamma, params):
        """Return ``num`` (K, D), expected ones per state, and ``den`` (K, D), their weight on observed entries."""
        obs = ~np.isnan(X)
        return {"num": gamma.T @ np.where(obs, X, 0.0), "den": gamma.T @ obs.astype(np.float64)}

    def m_step_from_stats(self, stats, params):
        a = self.probs_prior - 1.0
        num = stats["num"] + a
        den = stats["den"] + 2.0 * a
        p = np.where(den > 0, num / np.where(den > 0, den, 1.0), params["probs"])
        return {"probs": np.clip(p, _EDGE, 1.0 - _EDGE)}

    def resolve_hyper(self, reader, X, K):
        D = X.shape[1]
        return {"alpha": reader.number("alpha", 1.0, (D,)), "beta": reader.number("beta", 1.0, (D,))}

    def pack_hyper(self, hyper, D):
        return np.concatenate([hyper["alpha"], hyper["beta"]])

    def log_prior(self, params, hyper, fixed=()):
        from scipy.special import betaln, xlog1py, xlogy

        p = np.asarray(params["probs"], dtype=np.float64)
        if "probs" in fixed:
            return np.zeros(p.shape[0])
        a, b = np.asarray(hyper["alpha"]), np.asarray(hyper["beta"])  # Beta(alpha_d, beta_d) per feature
        terms = xlogy(a - 1.0, p) + xlog1py(b - 1.0, -p) - betaln(a, b)
        return terms.reshape(p.shape[0], -1).sum(axis=1)

    def prepare_start(self, start, fixed, X, floor):
        if "probs" not in fixed:
            start["probs"] = np.clip(start["probs"], floor, 1.0 - floor)
