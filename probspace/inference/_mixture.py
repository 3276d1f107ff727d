"""Compiled row-by-row kernels of a Gaussian mixture: responsibilities and E-step statistics.

Both walk the rows once and keep no per-row temporaries (scikit-learn's
``predict_proba`` builds several (N, K) and (N, D) arrays), which matters
most where memory is returned to the system after each task, as on Dask's
workers. Components come in scikit-learn's layout: Cholesky factors of the
precisions, upper triangular (``full``/``tied``), or per-feature precision
square roots (``diag``/``spherical``).
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["layout", "responsibilities", "statistics"]


def layout(weights, means, precisions_cholesky, covariance_type: str):
    """Return ``(log_w, means, prec, full)`` for the kernels.

    ``log_w`` folds the weights, the log-determinants and the Gaussian
    constant; ``prec`` is (K, D, D): the Cholesky precisions when ``full``
    (``full``/``tied``), else diagonal matrices of per-feature precision
    square roots.
    """
    means = np.ascontiguousarray(means, dtype=np.float64)
    K, D = means.shape
    full = covariance_type in ("full", "tied")
    pc = np.asarray(precisions_cholesky, dtype=np.float64)
    if full:
        prec = np.ascontiguousarray(np.broadcast_to(pc, (K, D, D)))
        logdet = np.log(np.diagonal(prec, axis1=1, axis2=2)).sum(axis=1)
    else:
        p = np.broadcast_to(pc.reshape(K, -1), (K, D))
        prec = np.zeros((K, D, D))
        prec[:, np.arange(D), np.arange(D)] = p
        logdet = np.log(p).sum(axis=1)
    log_w = np.log(np.asarray(weights, dtype=np.float64)) + logdet - 0.5 * D * np.log(2 * np.pi)
    return log_w, means, prec, full


@numba.njit(cache=True, nogil=True, inline="always")
def _row(X, i, log_w, means, prec, full, diff, lw):  # pragma: no cover - compiled
    """Fill ``diff`` (x_i - mu_k) and ``lw`` (exp(log w_k N(x_i) - top)); return (top, their sum)."""
    K, D = means.shape
    top = -np.inf
    for k in range(K):
        q = 0.0
        for d in range(D):
            diff[k, d] = X[i, d] - means[k, d]
        if full:
            for e in range(D):
                y = 0.0
                for d in range(e + 1):
                    y += diff[k, d] * prec[k, d, e]
                q += y * y
        else:
            for d in range(D):
                y = diff[k, d] * prec[k, d, d]
                q += y * y
        lw[k] = log_w[k] - 0.5 * q
        if lw[k] > top:
            top = lw[k]
    tot = 0.0
    for k in range(K):
        lw[k] = math.exp(lw[k] - top)
        tot += lw[k]
    return top, tot


@numba.njit(cache=True, nogil=True)
def _responsibilities(X, log_w, means, prec, full, out):  # pragma: no cover - compiled
    K, D = means.shape
    lw = np.empty(K)
    diff = np.empty((K, D))
    for i in range(X.shape[0]):
        _, tot = _row(X, i, log_w, means, prec, full, diff, lw)
        for k in range(K):
            out[i, k] = lw[k] / tot


@numba.njit(cache=True, nogil=True)
def _statistics(X, log_w, means, prec, full, n, s1, s2, loglik):  # pragma: no cover - compiled
    """Accumulate E-step statistics; sums go through partial sums of 1024 rows (rounding near NumPy's)."""
    K, D = means.shape
    lw = np.empty(K)
    diff = np.empty((K, D))
    pn = np.zeros(K)
    p1 = np.zeros((K, D))
    p2 = np.zeros(s2.shape)
    pll = 0.0
    N = X.shape[0]
    for i in range(N):
        top, tot = _row(X, i, log_w, means, prec, full, diff, lw)
        pll += top + math.log(tot)
        for k in range(K):
            r = lw[k] / tot
            pn[k] += r
            for d in range(D):
                rd = r * diff[k, d]
                p1[k, d] += rd
                if full:
                    for e in range(D):
                        p2[k, d, e] += rd * diff[k, e]
                else:
                    p2[k, d, d] += rd * diff[k, d]
        if (i + 1) % 1024 == 0 or i == N - 1:
            loglik[0] += pll
            pll = 0.0
            for k in range(K):
                n[k] += pn[k]
                pn[k] = 0.0
                for d in range(D):
                    s1[k, d] += p1[k, d]
                    p1[k, d] = 0.0
            s2 += p2
            p2[...] = 0.0


def responsibilities(X: np.ndarray, parts) -> np.ndarray:
    """Posterior component probabilities (N, K) of the rows of ``X``, for ``parts = layout(...)``."""
    X = np.ascontiguousarray(X, dtype=np.float64)
    log_w, means, prec, full = parts
    out = np.empty((X.shape[0], means.shape[0]))
    _responsibilities(X, log_w, means, prec, full, out)
    return out


def statistics(X: np.ndarray, parts) -> dict[str, np.ndarray]:
    """E-step statistics of the rows of ``X``: counts, moments around the means, total log-likelihood.

    Returns ``n`` (K,), ``s1`` (K, D), ``s2`` (K, D, D) for ``full`` layouts
    else (K, D), ``loglik`` () and ``rows`` ().
    """
    X = np.ascontiguousarray(X, dtype=np.float64)
    log_w, means, prec, full = parts
    K, D = means.shape
    n, s1, s2, loglik = np.zeros(K), np.zeros((K, D)), np.zeros((K, D, D)), np.zeros(1)
    if X.shape[0]:
        _statistics(X, log_w, means, prec, full, n, s1, s2, loglik)
    if not full:
        s2 = np.diagonal(s2, axis1=1, axis2=2).copy()
    return {"n": n, "s1": s1, "s2": s2, "loglik": np.array(loglik[0]), "rows": np.array(X.shape[0])}
