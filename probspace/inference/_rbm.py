r"""Restricted Boltzmann machine kernels: free energy, log partition function (exact and AIS), block Gibbs.

Pure functions over numpy arrays. Parameters use scikit-learn's layout:
``W`` (H, D) (``components_``), hidden biases ``b`` (H,), visible biases ``c`` (D,).
The energy is :math:`E(v, h) = -c^\top v - b^\top h - h^\top W v`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy.special import expit, logsumexp

__all__ = ["LogPartition", "ais_log_partition", "free_energy", "gibbs_chains", "log_partition", "log_partition_exact"]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def free_energy(V: np.ndarray, W: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    r"""Free energy :math:`F(v) = -c^\top v - \sum_j \mathrm{softplus}(b_j + W_j v)`, one per row of ``V``."""
    return -(V @ c) - _softplus(V @ W.T + b).sum(axis=1)


def _configurations(n: int, start: int, stop: int) -> np.ndarray:
    """Binary configurations ``start..stop-1`` of ``n`` units, as rows of floats (bit k is unit k)."""
    idx = np.arange(start, stop, dtype=np.int64)
    return ((idx[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)


def log_partition_exact(W: np.ndarray, b: np.ndarray, c: np.ndarray, *, chunk: int = 1 << 14) -> float:
    r"""Exact :math:`\log Z`, summing out the smaller layer in closed form and enumerating the other.

    With hidden units enumerated, :math:`\log Z = \mathrm{logsumexp}_h [b^\top h +
    \sum_i \mathrm{softplus}(c_i + (W^\top h)_i)]`; with visible units, the same with
    the roles swapped. Cost :math:`2^{\min(H, D)} \max(H, D)`, in chunks, in log space.
    """
    H, D = W.shape
    if H <= D:
        n, weights, enum_bias, other_bias = H, W, b, c  # enumerate h: rows of h @ W give (W'h)
    else:
        n, weights, enum_bias, other_bias = D, W.T, c, b
    total = 1 << n
    parts = []
    for start in range(0, total, chunk):
        S = _configurations(n, start, min(start + chunk, total))
        parts.append(logsumexp(S @ enum_bias + _softplus(S @ weights + other_bias).sum(axis=1)))
    return float(logsumexp(parts))


class LogPartition(NamedTuple):
    """A log partition function and its standard error (0 when exact)."""

    log_z: float
    se: float
    exact: bool


def ais_log_partition(W: np.ndarray, b: np.ndarray, c: np.ndarray, rng: np.random.Generator, *,
                      n_chains: int = 100, n_betas: int = 1000) -> LogPartition:
    r"""Annealed importance sampling estimate of :math:`\log Z` with its standard error.

    Intermediate distributions :math:`p_\beta(v) \propto \exp(c^\top v) \prod_j (1 +
    e^{\beta (b_j + W_j v)})` (Salakhutdinov and Murray, 2008) from :math:`\beta = 0`
    (independent visible units, :math:`\log Z_0 = \sum_i \mathrm{softplus}(c_i) + H \log 2`)
    to :math:`\beta = 1`, one block Gibbs sweep per temperature. The estimate of :math:`Z`
    is unbiased, so that of :math:`\log Z` is biased low for short schedules; the standard
    error is the delta-method one of the log of the mean weight.
    """
    H, D = W.shape
    betas = np.linspace(0.0, 1.0, n_betas)
    V = (rng.random((n_chains, D)) < expit(c)).astype(np.float64)
    logw = np.zeros(n_chains)
    for k in range(1, n_betas):
        act = V @ W.T + b
        logw += (_softplus(betas[k] * act) - _softplus(betas[k - 1] * act)).sum(axis=1)
        if k < n_betas - 1:  # a transition leaving p_beta_k invariant
            Hs = (rng.random((n_chains, H)) < expit(betas[k] * act)).astype(np.float64)
            V = (rng.random((n_chains, D)) < expit(c + betas[k] * (Hs @ W))).astype(np.float64)
    log_z0 = float(_softplus(c).sum() + H * np.log(2.0))
    log_mean = float(logsumexp(logw) - np.log(n_chains))
    w = np.exp(logw - logw.max())
    se = float(w.std(ddof=1) / np.sqrt(n_chains) / w.mean()) if n_chains > 1 else float("inf")
    return LogPartition(log_z0 + log_mean, se, False)


def log_partition(W: np.ndarray, b: np.ndarray, c: np.ndarray, rng: np.random.Generator, *, max_exact: int = 20,
                  n_chains: int = 100, n_betas: int = 1000) -> LogPartition:
    r"""Exact :math:`\log Z` when ``min(H, D) <= max_exact``, else the AIS estimate."""
    if min(W.shape) <= max_exact:
        return LogPartition(log_partition_exact(W, b, c), 0.0, True)
    return ais_log_partition(W, b, c, rng, n_chains=n_chains, n_betas=n_betas)


def gibbs_chains(W: np.ndarray, b: np.ndarray, c: np.ndarray, rng: np.random.Generator, *, n_chains: int,
                 burn_in: int, n_draws: int = 1, thin: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Block Gibbs sampling of :math:`(v, h)` from the RBM, ``n_chains`` chains in parallel.

    Each chain starts from independent visible units with the model's visible
    biases, runs ``burn_in`` sweeps (h | v, then v | h), then records ``n_draws``
    states ``thin`` sweeps apart.

    Returns
    -------
    V : ndarray of shape (n_chains, n_draws, D)
    Hs : ndarray of shape (n_chains, n_draws, H)
    """
    H, D = W.shape
    V = (rng.random((n_chains, D)) < expit(c)).astype(np.float64)
    out_v = np.empty((n_chains, n_draws, D))
    out_h = np.empty((n_chains, n_draws, H))

    def sweep(V):
        Hs = (rng.random((n_chains, H)) < expit(V @ W.T + b)).astype(np.float64)
        return (rng.random((n_chains, D)) < expit(Hs @ W + c)).astype(np.float64)

    for _ in range(burn_in):
        V = sweep(V)
    for t in range(n_draws):
        if t:
            for _ in range(thin):
                V = sweep(V)
        out_v[:, t] = V
        out_h[:, t] = (rng.random((n_chains, H)) < expit(V @ W.T + b)).astype(np.float64)
    return out_v, out_h
