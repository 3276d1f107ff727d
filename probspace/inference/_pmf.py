"""Kernels of probabilistic matrix factorisation: conjugate Gaussian row updates and Normal-Wishart draws.

One compiled kernel, :func:`row_conditionals`, serves the Gibbs sampler,
alternating least squares (its means), the fold-in posterior of new rows and
the marginal log-likelihood of a row: for each row ``i`` of a CSR rating
matrix it forms the exact Gaussian conditional of that row's free factor
coordinates given the other side's factors.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["row_conditionals", "sum_squared_errors", "normal_wishart_posterior", "sample_normal_wishart",
           "sample_wishart", "rescale_factors"]

_JIT = {"cache": True, "nogil": True}
_LOG_2PI = math.log(2.0 * math.pi)


@numba.njit(**_JIT)
def row_conditionals(indptr, indices, y, other, free, fixcol, mu, lam, alpha, z, mean, sample, prec, loglik):
    r"""Exact Gaussian conditional of each row's free factor coordinates.

    Row ``i`` has ratings ``y[k]`` (``k`` in ``indptr[i]:indptr[i+1]``) of
    columns ``indices[k]``; the model is ``y = x_j . f + c_j + noise``, with
    ``x_j = other[j, free]``, ``c_j = other[j, fixcol]`` (0 when ``fixcol <
    0``), noise precision ``alpha`` and prior ``f ~ N(mu, lam^{-1})``. Writes
    the conditional ``mean``, the precision ``prec`` ``(n, D, D)``, a draw
    ``sample = mean + L^{-T} z`` (``prec = L L^T``) and ``loglik``, the log
    marginal density of the row's ratings with ``f`` integrated out.
    """
    n, D = mean.shape
    b = np.empty(D)
    s = np.empty(D)
    lam_mu = lam @ mu
    L0 = np.linalg.cholesky(lam)
    logdet_lam = 0.0
    for a in range(D):
        logdet_lam += 2.0 * math.log(L0[a, a])
    x = np.empty(D)
    L = np.empty((D, D))
    w = np.empty(D)
    for i in range(n):
        P = prec[i]
        for a in range(D):
            b[a] = lam_mu[a]
            s[a] = 0.0
            for c in range(D):
                P[a, c] = lam[a, c]
        rr = 0.0
        m = indptr[i + 1] - indptr[i]
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            t = y[k]
            if fixcol >= 0:
                t -= other[j, fixcol]
            r = t
            for a in range(D):
                x[a] = other[j, free[a]]
                r -= x[a] * mu[a]
            rr += r * r
            for a in range(D):
                b[a] += alpha * t * x[a]
                s[a] += r * x[a]
                for c in range(a + 1):
                    P[a, c] += alpha * x[a] * x[c]
        for a in range(D):
            for c in range(a):
                P[c, a] = P[a, c]
        # Cholesky P = L L^T
        for a in range(D):
            for c in range(a + 1):
                acc = P[a, c]
                for e in range(c):
                    acc -= L[a, e] * L[c, e]
                if a == c:
                    L[a, a] = math.sqrt(acc)
                else:
                    L[a, c] = acc / L[c, c]
            for c in range(a + 1, D):
                L[a, c] = 0.0
        logdet_p = 0.0
        for a in range(D):
            logdet_p += 2.0 * math.log(L[a, a])
        # mean = P^{-1} b ; quad = s^T P^{-1} s
        for a in range(D):  # forward: L w = b
            acc = b[a]
            for e in range(a):
                acc -= L[a, e] * w[e]
            w[a] = acc / L[a, a]
        for a in range(D - 1, -1, -1):  # backward: L^T mean = w
            acc = w[a]
            for e in range(a + 1, D):
                acc -= L[e, a] * mean[i, e]
            mean[i, a] = acc / L[a, a]
        quad = 0.0
        for a in range(D):  # forward: L w = s
            acc = s[a]
            for e in range(a):
                acc -= L[a, e] * w[e]
            w[a] = acc / L[a, a]
            quad += w[a] * w[a]
        for a in range(D - 1, -1, -1):  # backward: L^T v = z
            acc = z[i, a]
            for e in range(a + 1, D):
                acc -= L[e, a] * w[e]
            w[a] = acc / L[a, a]
        for a in range(D):
            sample[i, a] = mean[i, a] + w[a]
        # Woodbury: r^T C^{-1} r = alpha r.r - alpha^2 s^T P^{-1} s, log|C| = -m log alpha + log|P| - log|lam|
        loglik[i] = -0.5 * (m * _LOG_2PI - m * math.log(alpha) + logdet_p - logdet_lam
                            + alpha * rr - alpha * alpha * quad)


@numba.njit(**_JIT)
def sum_squared_errors(indptr, indices, y, U, V):
    """Sum over the ratings of ``(y - U[i] . V[j])^2`` for a CSR matrix ``y`` (rows of ``U``)."""
    total = 0.0
    K = U.shape[1]
    for i in range(indptr.shape[0] - 1):
        for k in range(indptr[i], indptr[i + 1]):
            j = indices[k]
            r = y[k]
            for a in range(K):
                r -= U[i, a] * V[j, a]
            total += r * r
    return total


def normal_wishart_posterior(F: np.ndarray, mu0: np.ndarray, beta0: float, nu0: float, W0: np.ndarray):
    """Posterior ``(mu, beta, nu, W)`` of a Normal-Wishart prior given rows ``F`` ``(n, D)`` from ``N(mu, Lambda^-1)``.

    The prior is ``Lambda ~ Wishart(W0, nu0)``, ``mu | Lambda ~ N(mu0, (beta0 Lambda)^-1)``
    (Salakhutdinov and Mnih, 2008, eq. 14).
    """
    n = F.shape[0]
    xbar = F.mean(axis=0)
    diff = F - xbar
    S = diff.T @ diff
    beta = beta0 + n
    dev = (mu0 - xbar)[:, None]
    W_inv = np.linalg.inv(W0) + S + (beta0 * n / beta) * (dev @ dev.T)
    W = np.linalg.inv(W_inv)
    return (beta0 * mu0 + n * xbar) / beta, beta, nu0 + n, 0.5 * (W + W.T)


def sample_wishart(W: np.ndarray, nu: float, rng: np.random.Generator) -> np.ndarray:
    """One draw of ``Wishart(W, nu)`` (mean ``nu W``) by the Bartlett decomposition."""
    D = W.shape[0]
    L = np.linalg.cholesky(W)
    A = np.tril(rng.standard_normal((D, D)), -1)
    A[np.diag_indices(D)] = np.sqrt(rng.chisquare(nu - np.arange(D)))
    LA = L @ A
    return LA @ LA.T


def sample_normal_wishart(F: np.ndarray, rng: np.random.Generator, beta0: float = 2.0,
                          nu0: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(mu, Lambda)`` from the Normal-Wishart conditional given rows ``F`` (``mu0 = 0``, ``W0 = I``)."""
    D = F.shape[1]
    mu_n, beta, nu, W = normal_wishart_posterior(F, np.zeros(D), beta0, D if nu0 is None else nu0, np.eye(D))
    lam = sample_wishart(W, nu, rng)
    R = np.linalg.cholesky(beta * lam)
    mu = mu_n + np.linalg.solve(R.T, rng.standard_normal(D))
    return mu, lam


def _transform(A, U, V, d, mu_u, lam_u, mu_v, lam_v):
    """Apply ``u -> u G``, ``v -> v G^{-T}`` in place (``G = diag(A, I)``, ``A`` on the first ``d`` coordinates).

    The hyperparameters move with the factors so every density stays consistent:
    ``mu -> mu G``, ``Lambda -> G^{-1} Lambda G^{-T}``.
    """
    A_inv = np.linalg.inv(A)
    for F, mu, lam, G, G_inv in ((U, mu_u, lam_u, A, A_inv), (V, mu_v, lam_v, A_inv.T, A.T)):
        F[:, :d] = F[:, :d] @ G
        mu[:d] = mu[:d] @ G
        lam[:d, :] = G_inv @ lam[:d, :]
        lam[:, :d] = lam[:, :d] @ G_inv.T
        lam[:] = 0.5 * (lam + lam.T)


def rescale_factors(U, V, d, mu_u, lam_u, mu_v, lam_v, rng):
    r"""Move along the directions the ratings cannot see: ``u -> u A``, ``v -> v A^{-T}`` (``A`` in GL(d)).

    ``u . v`` is unchanged, so only the hyperprior decides where along
    these directions the chain should be, and the alternating conditional
    updates crawl there (each side is pinned by the other through the
    data). This step is the generalised Gibbs move of Liu and Sabatti
    (2000) on the group, with ``A = Q diag(c) Q^T`` symmetric positive
    definite (scales and shears; the rotations, which the prior does not
    see either, are left alone so posterior means of the factors keep one
    orientation): rotate by a Haar-random ``Q`` (the Normal-Wishart prior
    with ``mu0 = 0``, ``W0 = I`` and the same ``nu0`` on both sides is
    invariant under it), draw the diagonal scaling ``diag(c)`` exactly
    from its conditional ``p(c) ∝ pi(A x) |J_A(x)|`` with respect to Haar
    measure, and rotate back by ``Q^T``. The rows' Gaussian densities and
    the ``mu | Lambda`` terms cancel their Jacobians, and so do the Wishart
    log-determinant terms and Jacobians of the two sides, which leaves
    ``t_k = c_k^2 ~ GIG(0, Lambda_V[k, k], Lambda_U[k, k])``: density
    :math:`\propto t^{-1} \exp(-(\Lambda_{U,kk}/t + \Lambda_{V,kk} t)/2)`,
    drawn exactly by :func:`_log_gig0`.

    ``U``, ``V`` (rows are factor vectors, the first ``d`` columns the
    factors), ``mu_*`` and ``lam_*`` (over the free coordinates, the
    first ``d`` the factors) are updated in place.
    """
    Q, Rq = np.linalg.qr(rng.standard_normal((d, d)))
    Q = Q * np.sign(np.diag(Rq))  # Haar-distributed orthogonal matrix
    _transform(Q, U, V, d, mu_u, lam_u, mu_v, lam_v)
    a = np.diag(lam_u)[:d].copy()
    b = np.diag(lam_v)[:d].copy()
    _transform(np.diag(np.exp(0.5 * _log_gig0(a, b, rng))), U, V, d, mu_u, lam_u, mu_v, lam_v)
    _transform(Q.T, U, V, d, mu_u, lam_u, mu_v, lam_v)  # rotate back: A = Q diag(c) Q^T, the orientation stays


def _log_gig0(a: np.ndarray, b: np.ndarray, rng: np.random.Generator, batch: int = 32) -> np.ndarray:
    r"""Exact draws of ``s = log t`` for ``t ~ GIG(0, b, a)``.

    The density of ``s`` is proportional to :math:`\exp(-(a e^{-s} + b e^{s})/2)`.

    With ``w = sqrt(a b)`` and ``x = s - log(a / b) / 2`` the density is
    :math:`\propto \exp(-w \cosh x)`; since :math:`\cosh x \ge 1 + x^2/2`,
    rejection from ``N(0, 1/w)`` accepts with probability
    :math:`\exp(-w (\cosh x - 1 - x^2/2))`.
    """
    w = np.sqrt(a * b)
    x = np.full(w.shape, np.nan)
    with np.errstate(over="ignore", invalid="ignore"):
        while np.isnan(x).any():
            todo = np.flatnonzero(np.isnan(x))
            prop = rng.standard_normal((batch, todo.size)) / np.sqrt(w[todo])
            ok = np.log(rng.random((batch, todo.size))) < -w[todo] * (np.cosh(prop) - 1.0 - 0.5 * prop**2)
            hit = ok.any(axis=0)
            x[todo[hit]] = prop[ok.argmax(axis=0)[hit], np.flatnonzero(hit)]
    return 0.5 * np.log(a / b) + x
