"""Categorical emissions: one symbol per frame, ``x | z = k ~ Categorical(B_k)``.

Parameter: ``emissionprob`` (K, n_symbols); ``X`` holds symbols 0..n_symbols-1
in its one column (NaN marks a missing frame). Conjugate prior: a Dirichlet
per row, whose concentration is the number given under ``prior["emissionprob"]``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from ._base import FRAMES, JIT, UPDATE, Emission, check_counts, dirichlet_free, dirichlet_log_density, inverse_cdf

__all__ = ["CategoricalEmission"]

#: Largest emission table (n_components x n_symbols) the emission allocates (800 MB of float64).
_MAX_TABLE = 10**8


@numba.njit(FRAMES, **JIT)
def _frames(X, aux, theta, out):  # pragma: no cover - compiled
    N = X.shape[0]
    K = out.shape[1]
    M = theta.shape[0] // K
    B = theta[:K * M].reshape((K, M))
    for k in range(K):
        for i in range(N):
            x = X[i, 0]
            if x == x:
                p = B[k, int(x)]
                out[i, k] = math.log(p) if p > 0.0 else -np.inf
            else:
                out[i, k] = 0.0


@numba.njit(UPDATE, **JIT)
def _update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """Each row ``B_k | z ~ Dirichlet(alpha + symbol counts of state k)``.

    ``fixed`` may carry ``K * M`` more flags (the entries held, row-major): a
    row's free entries are then ``(1 - held mass) * Dirichlet(alpha + counts)``
    over the free symbols, and held entries (structural zeros) keep their values.
    """
    if fixed[0]:
        return
    M = theta.shape[0] // K
    B = theta[:K * M].reshape((K, M))
    counts = np.zeros((K, M))
    for i in range(X.shape[0]):
        counts[z[i], int(X[i, 0])] += 1.0
    row = np.empty(M)
    free = np.ones(M, dtype=np.bool_)
    for k in range(K):
        if fixed.shape[0] > 1:
            for m in range(M):
                free[m] = not fixed[1 + k * M + m]
        row[:] = B[k]
        dirichlet_free(hyper + counts[k], free, row)
        B[k] = row


class CategoricalEmission(Emission):
    """Categorical emissions (see the module docstring).

    Parameters
    ----------
    n_symbols : int, optional
        Size of the alphabet (None: one more than the largest symbol of the data fitted).
    concentration : float or array-like, default=1.0
        Dirichlet prior of the EM (MAP) fit, used by the missing-value M-step.
    """

    name = "categorical"
    non_negative = True
    names = ("emissionprob",)
    key = "emissionprob"
    simplex = ("emissionprob",)
    frames_kernel = staticmethod(_frames)
    update_kernel = staticmethod(_update)
    samplers = ("gibbs", "nuts")
    gibbs_entry_holds = ("emissionprob",)

    def __init__(self, n_symbols: int | None = None, concentration: float = 1.0) -> None:
        self.n_symbols = n_symbols
        self.concentration = concentration

    def for_data(self, X):
        if self.n_symbols is not None:
            return self
        return type(self)(int(np.nanmax(X, initial=0)) + 1, self.concentration)

    def dims(self):
        return {"emissionprob": ("state", "symbol")}

    def check_data(self, X, owner):
        if X.shape[1] != 1:
            raise ValueError(f"X passed to {owner} must have one column of symbols; got {X.shape[1]} columns.")
        check_counts(X, owner, "symbols", self.n_symbols)

    @staticmethod
    def conformance_data(states, rng):
        B = np.array([[0.7, 0.2, 0.05, 0.05], [0.05, 0.05, 0.3, 0.6]])
        return (rng.random(len(states))[:, None] > np.cumsum(B[states], axis=1)[:, :-1]).sum(
            axis=1, keepdims=True).astype(float)

    def init(self, X, K, rng):
        """Symbol frequencies of ``X`` mixed half-and-half with random Dirichlet rows (distinct states)."""
        if K * self.n_symbols > _MAX_TABLE:  # refuse before allocating (X + 1e8 would ask for gigabytes)
            raise ValueError(
                f"The categorical emission would need a table of n_components x n_symbols = {K} x {self.n_symbols} "
                f"entries (symbols are coded 0 to n_symbols - 1); the limit is {_MAX_TABLE:.0e}. Recode the symbols "
                "to 0..S-1, for example with np.unique(X, return_inverse=True).")
        x = X[~np.isnan(X[:, 0]), 0].astype(np.int64)
        freq = np.bincount(x, minlength=self.n_symbols)[:self.n_symbols] + 1.0
        return {"emissionprob": 0.5 * freq / freq.sum() + 0.5 * rng.dirichlet(np.ones(self.n_symbols), size=K)}

    def shapes(self, K, D):
        return {"emissionprob": (K, self.n_symbols)}

    def order_key(self, params):
        B = params["emissionprob"]
        return B @ np.arange(B.shape[-1], dtype=np.float64)  # the mean symbol

    def sample(self, params, states, rng):
        return inverse_cdf(params["emissionprob"][states], rng)[:, None].astype(np.int64)

    def m_step(self, X, gamma, params):
        return self.m_step_from_stats(self.suff_stats(X, gamma, params), params)

    def suff_stats(self, X, gamma, params):
        """Return ``counts`` (K, n_symbols): the expected number of times each state emits each symbol."""
        obs = ~np.isnan(X[:, 0])
        counts = np.zeros(np.shape(params["emissionprob"]))
        np.add.at(counts.T, X[obs, 0].astype(np.int64), gamma[obs])
        return {"counts": counts}

    def m_step_from_stats(self, stats, params):
        B = params["emissionprob"]
        new = np.maximum(self.concentration - 1.0 + stats["counts"], 0.0)
        rows = new.sum(axis=1, keepdims=True)
        return {"emissionprob": np.where(rows > 0, new / np.where(rows > 0, rows, 1.0), B)}

    def resolve_hyper(self, reader, X, K):
        return {"emissionprob": reader.number("emissionprob", 1.0, (self.n_symbols,))}

    def pack_hyper(self, hyper, D):
        return np.asarray(hyper["emissionprob"], dtype=np.float64)

    def log_prior(self, params, hyper, fixed=()):
        B = np.asarray(params["emissionprob"], dtype=np.float64)
        if "emissionprob" in fixed:
            return np.zeros(B.shape[0])
        return dirichlet_log_density(B, hyper["emissionprob"]).sum(axis=-1)  # one Dirichlet per row

    def nuts_sites(self, hyper, dists, K, D, start):
        import pyro.distributions as pdist
        import torch

        from ..inference._nuts import Site

        prior = pdist.Dirichlet(torch.as_tensor(np.array(hyper["emissionprob"], dtype=np.float64)))
        return [Site("emissionprob", np.shape(start["emissionprob"]), "simplex", dists.get("emissionprob", prior))]

    def torch_frames(self, Xt, aux, values):
        import torch

        return torch.log(values["emissionprob"]).T[Xt[:, 0].long()]
