r"""Random dot product graphs: spectral embedding, Procrustes alignment and a compiled position sampler.

The model (a Bernoulli random dot product graph): node ``i`` has a latent
position :math:`x_i \in \mathbb{R}^d`, and the dyads of a simple undirected
graph are independent given the positions,
:math:`A_{ij} \mid x \sim \mathrm{Bernoulli}(x_i \cdot x_j)` for
:math:`i < j`. A priori :math:`x_i \sim \mathcal{N}(0, s^2 I_d)`, truncated to
the RDPG's support: configurations whose dot products all lie in
:math:`[0, 1]` (a move that leaves it is rejected). Probabilities are
clipped to :math:`[\epsilon, 1 - \epsilon]` for the logarithms only.

The sampler is Metropolis-within-Gibbs: each sweep visits every node and
proposes a Gaussian random-walk move of its whole position (a ``d``-vector,
per-node step size adapted during warmup towards an acceptance rate of
0.35), then proposes one group move of all positions at once,
``X -> X exp(delta S)`` with ``S`` a random symmetric matrix (Liu and
Sabatti's generalised Gibbs, as a Metropolis step with the Jacobian
``det(M)^N``): it moves along the collective stretches of the
configuration that single-node moves cross slowly (a weak latent
dimension). The log acceptance ratio needs the node's ``N - 1`` dyads; it is
computed as a ratio of running products of Bernoulli probabilities (one
logarithm per block of 32 dyads instead of one per dyad). The chain's
total log-likelihood is tracked by the accepted increments and recomputed
exactly at the start of each call. Random numbers are drawn by the caller
(numpy), so a chain is reproducible from its generator alone.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["EPS", "adjacency_spectral_embedding", "procrustes_align", "orthogonal_procrustes", "run_chain",
           "support_start"]

#: Edge probabilities are clipped to ``[EPS, 1 - EPS]``.
EPS = 1e-6
_BLOCK = 32  # dyads per logarithm: products of 32 factors in [EPS, 1] stay far above float64's smallest normal
_JIT = {"cache": True, "nogil": True}


def adjacency_spectral_embedding(A: np.ndarray, n_components: int) -> np.ndarray:
    r"""Adjacency spectral embedding (ASE): the deterministic estimate of RDPG positions.

    The top ``n_components`` eigenpairs (largest eigenvalues) of the
    diagonally augmented adjacency matrix ``A + diag(degree / (N - 1))``
    give :math:`\hat X = U |\Lambda|^{1/2}`. Each column's sign is fixed
    so that it sums to a non-negative number.

    Parameters
    ----------
    A : ndarray of shape (N, N)
        Symmetric adjacency matrix (its diagonal is ignored).
    n_components : int
        Latent dimension ``d``.

    Returns
    -------
    ndarray of shape (N, n_components)

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.inference._rdpg import adjacency_spectral_embedding
    >>> A = np.ones((4, 4)) - np.eye(4)
    >>> np.round(adjacency_spectral_embedding(A, 1)[:, 0], 6)
    array([1., 1., 1., 1.])
    """
    A = np.array(A, dtype=np.float64)
    N = A.shape[0]
    np.fill_diagonal(A, 0.0)
    if N > 1:
        np.fill_diagonal(A, A.sum(axis=1) / (N - 1))
    if N > 400 and n_components < N // 4:
        from scipy.sparse.linalg import eigsh

        vals, vecs = eigsh(A, k=n_components, which="LA", v0=np.full(N, 1.0 / np.sqrt(N)))
    else:
        vals, vecs = np.linalg.eigh(A)
        vals, vecs = vals[N - n_components:], vecs[:, N - n_components:]
    order = np.argsort(vals)[::-1]
    vals, vecs = vals[order], vecs[:, order]
    X = vecs * np.sqrt(np.maximum(vals, 0.0))
    signs = np.where(X.sum(axis=0) < 0, -1.0, 1.0)
    return np.ascontiguousarray(X * signs)


def orthogonal_procrustes(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Orthogonal matrices ``R`` minimising ``||X R - reference||_F``, one per configuration.

    The solution is ``R = U V^T`` from the SVD ``X^T reference = U S V^T``;
    reflections are allowed (the RDPG likelihood is invariant under the whole
    orthogonal group).

    Parameters
    ----------
    X : ndarray of shape (..., N, d)
        Configurations to align.
    reference : ndarray of shape (N, d)
        Target configuration.

    Returns
    -------
    ndarray of shape (..., d, d)
    """
    M = np.swapaxes(X, -1, -2) @ reference
    U, _, Vt = np.linalg.svd(M)
    return U @ Vt


def procrustes_align(X: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Rotate (or reflect) each configuration in ``X`` onto ``reference`` (orthogonal Procrustes).

    Parameters
    ----------
    X : ndarray of shape (..., N, d)
        Configurations to align (for example MCMC draws of node positions).
    reference : ndarray of shape (N, d)
        Target configuration (for example the adjacency spectral embedding).

    Returns
    -------
    ndarray of shape (..., N, d)
        ``X @ R`` with ``R`` from :func:`orthogonal_procrustes`.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.inference._rdpg import procrustes_align
    >>> ref = np.random.default_rng(0).normal(size=(5, 2))
    >>> c, s = np.cos(0.7), np.sin(0.7)
    >>> rotated = ref @ np.array([[c, -s], [s, c]])
    >>> bool(np.allclose(procrustes_align(rotated, ref), ref))
    True
    """
    return X @ orthogonal_procrustes(X, reference)


@numba.njit(fastmath=True, **_JIT)
def _node_delta(A, X, i, y, cur, prop):
    """Log-likelihood change of moving node ``i`` to ``y``; fills ``cur``/``prop`` with its edge probabilities.

    ``-inf`` when ``y`` leaves the support (a dot product with another node outside ``[0, 1]``).
    """
    N, d = X.shape
    lo, hi = EPS, 1.0 - EPS
    lowest = 0.5
    highest = 0.5
    for j in range(N):
        c = 0.0
        p = 0.0
        for k in range(d):
            c += X[i, k] * X[j, k]
            p += y[k] * X[j, k]
        q = p if j != i else 0.5
        lowest = min(lowest, q)
        highest = max(highest, q)
        cur[j] = min(max(c, lo), hi)
        prop[j] = min(max(p, lo), hi)
    cur[i] = 0.5  # node i's own entry cancels (A's diagonal is zero)
    prop[i] = 0.5
    if lowest < 0.0 or highest > 1.0:
        return -np.inf
    total = 0.0
    start = 0
    while start < N:
        stop = min(start + _BLOCK, N)
        num = 1.0
        den = 1.0
        for j in range(start, stop):
            a = A[i, j] != 0
            num *= prop[j] if a else 1.0 - prop[j]
            den *= cur[j] if a else 1.0 - cur[j]
        total += math.log(num) - math.log(den)
        start = stop
    return total


@numba.njit(fastmath=True, **_JIT)
def _total_log_likelihood(A, X):
    """``log p(A | X)`` over the dyads ``i < j`` (products of 32 factors per logarithm); ``-inf`` off the support."""
    N, d = X.shape
    lo, hi = EPS, 1.0 - EPS
    total = 0.0
    lowest = 0.5
    highest = 0.5
    for i in range(N):
        start = i + 1
        while start < N:
            stop = min(start + _BLOCK, N)
            prod = 1.0
            for j in range(start, stop):
                p = 0.0
                for k in range(d):
                    p += X[i, k] * X[j, k]
                lowest = min(lowest, p)
                highest = max(highest, p)
                p = min(max(p, lo), hi)
                prod *= p if A[i, j] != 0 else 1.0 - p
            total += math.log(prod)
            start = stop
    if lowest < 0.0 or highest > 1.0:
        return -np.inf
    return total


def support_start(X: np.ndarray, rng: np.random.Generator | None = None, jitter: float = 0.0) -> np.ndarray:
    """Return a configuration near ``X`` (up to rotation) with every dot product in ``[0, 1]``: a chain start.

    ``X`` is rotated towards the positive orthant (alternating a Procrustes
    rotation onto its positive part, a few times), optionally jittered, moved
    into the orthant (coordinates at least 1e-3, so every dot product is
    positive) and shrunk as a whole until its largest dot product is 0.95.

    Parameters
    ----------
    X : ndarray of shape (N, d)
        Positions (the spectral embedding).
    rng : numpy.random.Generator, optional
        Source of the jitter.
    jitter : float, default=0.0
        Standard deviation of Gaussian noise added to every coordinate.

    Returns
    -------
    ndarray of shape (N, d)
    """
    Y = np.array(X, dtype=np.float64)
    for _ in range(20):
        Y = Y @ orthogonal_procrustes(Y, np.maximum(Y, 0.0))
    if jitter > 0:
        Y = Y + jitter * rng.standard_normal(Y.shape)
    Y = np.maximum(Y, 1e-3)
    G = Y @ Y.T
    np.fill_diagonal(G, 0.0)
    top = G.max() if Y.shape[0] > 1 else 0.0
    return np.ascontiguousarray(Y * np.sqrt(0.95 / top) if top > 0.95 else Y)


@numba.njit(**_JIT)
def _sweeps(A, X, log_step, prior_precision, normals, uniforms, group_vecs, group_vals, n_adapt_done, n_adapt,
            out_X, out_ll, out_acc, trace_ll, p_sum):
    N, d = X.shape
    n_sweeps = normals.shape[0]
    n_keep = out_X.shape[0]
    first_kept = n_sweeps - n_keep
    cur = np.empty(N)
    prop = np.empty(N)
    y = np.empty(d)
    Xp = np.empty((N, d))
    M = np.empty((d, d))
    ll = _total_log_likelihood(A, X)
    for t in range(n_sweeps):
        accepted = 0
        keep = t >= first_kept
        for i in range(N):
            step = math.exp(log_step[i])
            sq_old = 0.0
            sq_new = 0.0
            for k in range(d):
                y[k] = X[i, k] + step * normals[t, i, k]
                sq_old += X[i, k] * X[i, k]
                sq_new += y[k] * y[k]
            dll = _node_delta(A, X, i, y, cur, prop)
            log_ratio = dll - 0.5 * prior_precision * (sq_new - sq_old)
            accept = math.log(uniforms[t, i]) < log_ratio
            if accept:
                for k in range(d):
                    X[i, k] = y[k]
                ll += dll
                accepted += 1
            if keep:
                if accept:
                    for j in range(N):
                        p_sum[i, j] += prop[j]
                else:
                    for j in range(N):
                        p_sum[i, j] += cur[j]
            it = n_adapt_done + t
            if it < n_adapt:  # Robbins-Monro on the log step towards acceptance 0.35
                rate = (1.0 if accept else 0.0) - 0.35
                log_step[i] += rate * (it + 1.0) ** -0.6
        # Group move: X -> X M, M = exp(delta S) for a random symmetric S = Q diag(lam) Q^T. M and M^-1 are
        # equally likely, so the acceptance ratio is the posterior ratio times the Jacobian det(M)^N.
        delta = math.exp(log_step[N])
        log_det = 0.0
        for k in range(d):
            log_det += delta * group_vals[t, k]
        for a in range(d):
            for b in range(d):
                v = 0.0
                for k in range(d):
                    v += group_vecs[t, a, k] * math.exp(delta * group_vals[t, k]) * group_vecs[t, b, k]
                M[a, b] = v
        sq_old = 0.0
        sq_new = 0.0
        for i in range(N):
            for b in range(d):
                v = 0.0
                for a in range(d):
                    v += X[i, a] * M[a, b]
                Xp[i, b] = v
                sq_old += X[i, b] * X[i, b]
                sq_new += v * v
        ll_p = _total_log_likelihood(A, Xp)
        log_ratio = ll_p - ll - 0.5 * prior_precision * (sq_new - sq_old) + N * log_det
        accept = math.log(uniforms[t, N]) < log_ratio
        if accept:
            X[:] = Xp
            ll = ll_p
        it = n_adapt_done + t
        if it < n_adapt:
            log_step[N] += ((1.0 if accept else 0.0) - 0.3) * (it + 1.0) ** -0.6
        trace_ll[t] = ll
        if keep:
            r = t - first_kept
            out_X[r] = X
            out_ll[r] = ll
            out_acc[r] = accepted / N
    return ll


def initial_log_steps(A: np.ndarray, X: np.ndarray, prior_precision: float) -> np.ndarray:
    """Per-node random-walk scales from the Fisher information of each node's position at ``X`` (log scale).

    Parameters
    ----------
    A : ndarray of shape (N, N)
        Adjacency matrix.
    X : ndarray of shape (N, d)
        Positions (the spectral embedding).
    prior_precision : float
        ``1 / prior_scale**2``.

    Returns
    -------
    ndarray of shape (N + 1,)
        Node scales, then the group move's (``0.5 / sqrt(N)``).
    """
    N, d = X.shape
    P = np.clip(X @ X.T, 0.02, 0.98)
    W = 1.0 / (P * (1.0 - P))
    np.fill_diagonal(W, 0.0)
    info = (W @ (X * X)).sum(axis=1) / d + prior_precision  # mean diagonal of sum_j w_ij x_j x_j^T
    return np.append(np.log(2.38 / np.sqrt(d) / np.sqrt(info)), np.log(0.5 / np.sqrt(N)))


def run_chain(A: np.ndarray, X: np.ndarray, log_step: np.ndarray, prior_precision: float, n_sweeps: int,
              n_keep: int, n_adapt_done: int, n_adapt: int, rng: np.random.Generator,
              p_sum: np.ndarray) -> dict:
    """Run ``n_sweeps`` Metropolis-within-Gibbs sweeps of one chain, keeping the last ``n_keep``.

    Parameters
    ----------
    A : ndarray of int8, shape (N, N)
        Symmetric 0/1 adjacency (the diagonal is never read).
    X : ndarray of shape (N, d)
        Current positions, updated in place (so a chain runs in chunks).
    log_step : ndarray of shape (N + 1,)
        Log random-walk scales of each node's moves and (last) of the group
        move's ``delta``, adapted in place while ``n_adapt_done + t < n_adapt``.
    prior_precision : float
        Precision of the isotropic Gaussian prior on each position.
    n_sweeps, n_keep : int
        Sweeps to run and how many of the last ones to record.
    n_adapt_done, n_adapt : int
        Sweeps of adaptation already run (earlier chunks) and in total.
    rng : numpy.random.Generator
        Source of the proposals and acceptance draws.
    p_sum : ndarray of shape (N, N)
        Running sums of edge probabilities: row ``i`` gains node ``i``'s edge
        probabilities after each of its updates in a kept sweep (in place).

    Returns
    -------
    dict
        ``positions`` (n_keep, N, d), ``log_likelihood`` and ``acceptance_rate``
        (n_keep,), ``trace`` (n_sweeps,) the log-likelihood after every sweep.
    """
    N, d = X.shape
    normals = rng.standard_normal((n_sweeps, N, d))
    uniforms = rng.random((n_sweeps, N + 1))
    S = rng.standard_normal((n_sweeps, d, d))
    group_vals, group_vecs = np.linalg.eigh((S + np.swapaxes(S, 1, 2)) / 2.0)
    out = {"positions": np.empty((n_keep, N, d)), "log_likelihood": np.empty(n_keep),
           "acceptance_rate": np.empty(n_keep), "trace": np.empty(n_sweeps)}
    _sweeps(A, X, log_step, float(prior_precision), normals, uniforms, group_vecs, group_vals, int(n_adapt_done),
            int(n_adapt),
            out["positions"], out["log_likelihood"], out["acceptance_rate"], out["trace"], p_sum)
    return out


@numba.njit(**_JIT)
def _node_log_likelihoods(A, X, out):
    """``out[i] = sum_{j != i} log p(A_ij | x_i, x_j)`` for one configuration."""
    N, d = X.shape
    lo, hi = EPS, 1.0 - EPS
    for i in range(N):
        out[i] = 0.0
    for i in range(N):
        for j in range(i + 1, N):
            p = 0.0
            for k in range(d):
                p += X[i, k] * X[j, k]
            p = min(max(p, lo), hi)
            v = math.log(p) if A[i, j] else math.log(1.0 - p)
            out[i] += v
            out[j] += v


@numba.njit(**_JIT)
def node_log_likelihoods(A, draws):
    """Per-draw, per-node log-likelihoods ``(S, N)`` of ``A`` given position draws ``(S, N, d)``.

    Each node's term sums its ``N - 1`` dyads, so every dyad counts in two
    nodes' terms.
    """
    S, N = draws.shape[0], draws.shape[1]
    out = np.empty((S, N))
    for s in range(S):
        _node_log_likelihoods(A, draws[s], out[s])
    return out


def edge_probabilities(X: np.ndarray) -> np.ndarray:
    """Clipped dot products ``clip(x_i . x_j, EPS, 1 - EPS)`` with a zero diagonal, for ``(..., N, d)`` positions."""
    P = np.clip(X @ np.swapaxes(X, -1, -2), EPS, 1.0 - EPS)
    idx = np.arange(X.shape[-2])
    P[..., idx, idx] = 0.0
    return P


def sample_graphs(P: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Symmetric 0/1 graphs without loops, each dyad ``i < j`` drawn Bernoulli(``P[..., i, j]``).

    Parameters
    ----------
    P : ndarray of shape (..., n, n)
        Edge probabilities (only the upper triangle is read).
    rng : numpy.random.Generator
        Source of randomness.

    Returns
    -------
    ndarray of int8, shape (..., n, n)
    """
    n = P.shape[-1]
    upper = np.triu(rng.random(P.shape) < P, k=1)
    return (upper | np.swapaxes(upper, -1, -2)).astype(np.int8) if n else upper.astype(np.int8)
