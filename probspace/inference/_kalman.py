"""Kalman filter, RTS smoother and simulation smoother: pure functions over arrays, compiled with numba.

The model, for each sequence (hmmlearn-style ``lengths``, sequences
concatenated along the first axis)::

    x_1 ~ N(m0, P0),   x_t = A x_{t-1} + b_t + w_t,   w_t ~ N(0, Q)
                       y_t = C x_t + e_t + v_t,       v_t ~ N(0, R)

with ``x_t`` of dimension ``d``, ``y_t`` of dimension ``p`` and known offsets ``b_t`` and ``e_t``
(control inputs ``B u_t`` and ``D u_t``; zero unless given). A NaN entry
of ``y_t`` is missing: the update uses the observed rows of ``C`` and the
observed block of ``R`` (a frame with nothing observed is a pure prediction).

Numerics: the covariance update is in Joseph form,
``P = (I - K C) P (I - K C)' + K R K'``, which keeps ``P`` symmetric positive
semi-definite whatever the rounding of ``K``; the innovation covariance is
factored by Cholesky (its log-determinant and solves come from the factor).
The smoother's covariances are sums of positive semi-definite terms
(``P_t|T = S_t + J_t P_t+1|T J_t'`` with ``S_t = (I - J_t A) P_t|t (I - J_t
A)' + J_t Q J_t'``), so nothing is formed as a difference of two large
matrices, and long series (tested at T = 100,000) neither drift nor lose
symmetry.

The smoother also returns the exact posterior of the whole path as a
backward Markov chain, ``x_t | x_t+1, y ~ N(c_t + J_t x_t+1, S_t)`` (and
``x_T | y ~ N(m_T|T, P_T|T)`` at each sequence's end, where ``J = 0``): joint
path draws (forward filtering, backward sampling), the log density of a path
and the entropy all come from it.
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

__all__ = ["KalmanResult", "kalman_smoother", "path_log_prob", "path_entropy", "sample_paths"]

_JIT = {"cache": True, "nogil": True, "fastmath": False}
_LOG_2PI = float(np.log(2.0 * np.pi))


class KalmanResult(NamedTuple):
    """Result of :func:`kalman_smoother`.

    Parameters
    ----------
    predicted_mean, predicted_cov : ndarray of shape (T, d), (T, d, d)
        ``E[x_t | y_1..t-1]`` and its covariance (the prior at a sequence's first frame).
    filtered_mean, filtered_cov : ndarray of shape (T, d), (T, d, d)
        ``E[x_t | y_1..t]`` and its covariance.
    log_predictive : ndarray of shape (T,)
        ``log p(y_t | y_1..t-1)`` of the observed entries (0 for a frame with none); per sequence they add
        up to its log-likelihood (the prediction-error decomposition).
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(y)`` of each sequence.
    smoothed_mean, smoothed_cov : ndarray of shape (T, d), (T, d, d) or None
        ``E[x_t | y]`` and its covariance (None when only the filter ran).
    lag_cov : ndarray of shape (T, d, d) or None
        ``Cov(x_t+1, x_t | y)``; zero at the last frame of each sequence.
    gain, offset, cond_chol : ndarray of shape (T, d, d), (T, d), (T, d, d) or None
        The backward chain: ``x_t | x_t+1, y ~ N(offset_t + gain_t x_t+1, L_t L_t')``, ``L_t`` =
        ``cond_chol[t]``; ``gain`` is zero at each sequence's last frame.
    """

    predicted_mean: np.ndarray
    predicted_cov: np.ndarray
    filtered_mean: np.ndarray
    filtered_cov: np.ndarray
    log_predictive: np.ndarray
    log_likelihood: np.ndarray
    smoothed_mean: np.ndarray | None = None
    smoothed_cov: np.ndarray | None = None
    lag_cov: np.ndarray | None = None
    gain: np.ndarray | None = None
    offset: np.ndarray | None = None
    cond_chol: np.ndarray | None = None


# -- small dense linear algebra without allocation (d and p are small) -----------
@numba.njit(**_JIT)
def _chol(S, n, L):  # pragma: no cover - compiled
    """Lower Cholesky factor of S[:n, :n] into L[:n, :n]; False if not positive definite."""
    for i in range(n):
        for j in range(i + 1):
            s = S[i, j]
            for k in range(j):
                s -= L[i, k] * L[j, k]
            if i == j:
                if not s > 0.0:
                    return False
                L[i, i] = np.sqrt(s)
            else:
                L[i, j] = s / L[j, j]
        for j in range(i + 1, n):
            L[i, j] = 0.0
    return True


@numba.njit(**_JIT)
def _chol_solve(L, n, B, m):  # pragma: no cover - compiled
    """Overwrite B[:n, :m] with (L L')^{-1} B."""
    for c in range(m):
        for i in range(n):
            s = B[i, c]
            for k in range(i):
                s -= L[i, k] * B[k, c]
            B[i, c] = s / L[i, i]
        for i in range(n - 1, -1, -1):
            s = B[i, c]
            for k in range(i + 1, n):
                s -= L[k, i] * B[k, c]
            B[i, c] = s / L[i, i]


@numba.njit(**_JIT)
def _sandwich(M, P, d, N, out, add, buf):  # pragma: no cover - compiled
    """out[:d, :d] = M P M' (+ out if add), symmetric; M is (d, N), P is (N, N); buf is (d, N) scratch."""
    for i in range(d):
        for b in range(N):
            s = 0.0
            for a in range(N):
                s += M[i, a] * P[a, b]
            buf[i, b] = s
    for i in range(d):
        for j in range(i + 1):
            s = 0.0
            for b in range(N):
                s += buf[i, b] * M[j, b]
            if add:
                s += out[i, j]
            out[i, j] = s
            out[j, i] = s


@numba.njit(**_JIT)
def _run(Y, A, C, Q, R, m0, P0, bx, by, bounds, smooth, mp, Pp, mf, Pf, logpred, loglik, ms, Ps, lag, J, c, Lc):
    # pragma: no cover - compiled
    T, p = Y.shape
    d = A.shape[0]
    obs = np.empty(p, dtype=np.int64)
    S = np.empty((p, p))
    L = np.empty((p, p))
    KT = np.empty((p, d))  # K' = S^{-1} C_o P
    v = np.empty(p)
    IKC = np.empty((d, d))
    KRK = np.empty((d, d))
    Ro = np.empty((p, p))
    Ld = np.empty((d, d))
    Bd = np.empty((d, d))
    W = np.empty((d, d))
    buf = np.empty((d, d))
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        total = 0.0
        for t in range(lo, hi):
            if t == lo:
                for i in range(d):
                    mp[t, i] = m0[i]
                    for j in range(d):
                        Pp[t, i, j] = P0[i, j]
            else:
                for i in range(d):
                    acc = bx[t, i] if bx.shape[0] > 0 else 0.0
                    for j in range(d):
                        acc += A[i, j] * mf[t - 1, j]
                    mp[t, i] = acc
                for i in range(d):
                    for j in range(d):
                        Pp[t, i, j] = Q[i, j]
                _sandwich(A, Pf[t - 1], d, d, Pp[t], True, buf)
            k = 0
            for i in range(p):
                if not np.isnan(Y[t, i]):
                    obs[k] = i
                    k += 1
            if k == 0:
                mf[t] = mp[t]
                Pf[t] = Pp[t]
                logpred[t] = 0.0
                continue
            # innovation v = y_o - C_o m, covariance S = C_o P C_o' + R_o
            for a in range(k):
                acc = Y[t, obs[a]] - (by[t, obs[a]] if by.shape[0] > 0 else 0.0)
                for j in range(d):
                    acc -= C[obs[a], j] * mp[t, j]
                v[a] = acc
                for b in range(k):
                    Ro[a, b] = R[obs[a], obs[b]]
            for a in range(k):
                for j in range(d):
                    acc = 0.0
                    for i in range(d):
                        acc += C[obs[a], i] * Pp[t, i, j]
                    KT[a, j] = acc  # C_o P, becomes K' after the solve
            for a in range(k):
                for b in range(a + 1):
                    acc = Ro[a, b]
                    for j in range(d):
                        acc += KT[a, j] * C[obs[b], j]
                    S[a, b] = acc
                    S[b, a] = acc
            if not _chol(S, k, L):
                return t
            logdet = 0.0
            for a in range(k):
                logdet += 2.0 * np.log(L[a, a])
            # quadratic form v' S^{-1} v via the forward solve of L w = v
            quad = 0.0
            for a in range(k):
                acc = v[a]
                for b in range(a):
                    acc -= L[a, b] * v[b]
                v[a] = acc / L[a, a]
                quad += v[a] * v[a]
            # v now holds w = L^{-1} v; the gain needs S^{-1} v = L'^{-1} w
            for a in range(k - 1, -1, -1):
                acc = v[a]
                for b in range(a + 1, k):
                    acc -= L[b, a] * v[b]
                v[a] = acc / L[a, a]
            logpred[t] = -0.5 * (k * _LOG_2PI + logdet + quad)
            total += logpred[t]
            for i in range(d):  # m + P C_o' S^{-1} v, with KT still C_o P
                acc = mp[t, i]
                for a in range(k):
                    acc += KT[a, i] * v[a]
                mf[t, i] = acc
            _chol_solve(L, k, KT, d)
            # Joseph form: (I - K C_o) P (I - K C_o)' + K R_o K'
            for i in range(d):
                for j in range(d):
                    acc = 1.0 if i == j else 0.0
                    for a in range(k):
                        acc -= KT[a, i] * C[obs[a], j]
                    IKC[i, j] = acc
            for i in range(d):
                for j in range(i + 1):
                    acc = 0.0
                    for a in range(k):
                        row = 0.0
                        for b in range(k):
                            row += Ro[a, b] * KT[b, j]
                        acc += KT[a, i] * row
                    KRK[i, j] = acc
                    KRK[j, i] = acc
            for i in range(d):
                for j in range(d):
                    Pf[t, i, j] = KRK[i, j]
            _sandwich(IKC, Pp[t], d, d, Pf[t], True, buf)
        loglik[s] = total
        if not smooth:
            continue
        # RTS backward pass, with the backward chain of the path posterior
        for i in range(d):
            ms[hi - 1, i] = mf[hi - 1, i]
            c[hi - 1, i] = mf[hi - 1, i]
            for j in range(d):
                Ps[hi - 1, i, j] = Pf[hi - 1, i, j]
                J[hi - 1, i, j] = 0.0
                lag[hi - 1, i, j] = 0.0
        if not _chol(Pf[hi - 1], d, Lc[hi - 1]):
            return -(hi - 1) - 2
        for t in range(hi - 2, lo - 1, -1):
            # J = Pf A' Pp^{-1}: solve Pp J' = A Pf
            if not _chol(Pp[t + 1], d, Ld):
                return -(t + 1) - 2
            for i in range(d):
                for j in range(d):
                    acc = 0.0
                    for a in range(d):
                        acc += A[i, a] * Pf[t, a, j]
                    Bd[i, j] = acc
            _chol_solve(Ld, d, Bd, d)
            for i in range(d):
                for j in range(d):
                    J[t, i, j] = Bd[j, i]
            # S_t = (I - J A) Pf (I - J A)' + J Q J'
            for i in range(d):
                for j in range(d):
                    acc = 1.0 if i == j else 0.0
                    for a in range(d):
                        acc -= J[t, i, a] * A[a, j]
                    W[i, j] = acc
            _sandwich(J[t], Q, d, d, Bd, False, buf)
            _sandwich(W, Pf[t], d, d, Bd, True, buf)
            if not _chol(Bd, d, Lc[t]):
                # a singular conditional (deterministic state components): keep a zero factor there
                for i in range(d):
                    for j in range(d):
                        Lc[t, i, j] = 0.0
            for i in range(d):
                acc = mf[t, i]
                acc2 = mf[t, i]
                for a in range(d):
                    acc -= J[t, i, a] * mp[t + 1, a]
                    acc2 += J[t, i, a] * (ms[t + 1, a] - mp[t + 1, a])
                c[t, i] = acc
                ms[t, i] = acc2
            for i in range(d):
                for j in range(d):
                    Ps[t, i, j] = Bd[i, j]
            _sandwich(J[t], Ps[t + 1], d, d, Ps[t], True, buf)
            # Cov(x_t+1, x_t | y) = P_t+1|T J_t'
            for i in range(d):
                for j in range(d):
                    acc = 0.0
                    for a in range(d):
                        acc += Ps[t + 1, i, a] * J[t, j, a]
                    lag[t, i, j] = acc
    return -1


def _sequence_bounds(lengths: np.ndarray | None, n: int) -> np.ndarray:
    if lengths is None:
        return np.array([0, n], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def kalman_smoother(Y: np.ndarray, A: np.ndarray, C: np.ndarray, Q: np.ndarray, R: np.ndarray, m0: np.ndarray,
                    P0: np.ndarray, lengths: np.ndarray | None = None, *, state_offset: np.ndarray | None = None,
                    obs_offset: np.ndarray | None = None, smooth: bool = True) -> KalmanResult:
    """Kalman filter and (unless ``smooth=False``) RTS smoother of every sequence.

    Parameters
    ----------
    Y : ndarray of shape (T, p)
        Observations (NaN entries are missing).
    A, C, Q, R : ndarray of shape (d, d), (p, d), (d, d), (p, p)
        Transition matrix, observation matrix, transition and observation noise covariances.
    m0, P0 : ndarray of shape (d,), (d, d)
        Mean and covariance of the first state of each sequence.
    lengths : ndarray of int, optional
        Sequence lengths summing to ``T`` (``None``: one sequence).
    state_offset, obs_offset : ndarray of shape (T, d), (T, p), optional
        Known terms added to the transition into frame ``t`` (``B u_t``; unused at a sequence's first
        frame) and to the observation mean at frame ``t`` (``D u_t``).
    smooth : bool, default=True
        Run the backward pass too.

    Returns
    -------
    KalmanResult

    Raises
    ------
    ValueError
        When an innovation or predicted covariance is not positive definite.
    """
    Y = np.ascontiguousarray(Y, dtype=np.float64)
    T, p = Y.shape
    d = A.shape[0]
    args = [np.ascontiguousarray(a, dtype=np.float64) for a in (A, C, Q, R, m0, P0)]
    bounds = _sequence_bounds(lengths, T)
    bx = np.zeros((0, d)) if state_offset is None else np.ascontiguousarray(state_offset, dtype=np.float64)
    by = np.zeros((0, p)) if obs_offset is None else np.ascontiguousarray(obs_offset, dtype=np.float64)
    mp, mf = np.empty((T, d)), np.empty((T, d))
    Pp, Pf = np.empty((T, d, d)), np.empty((T, d, d))
    logpred = np.zeros(T)
    loglik = np.zeros(bounds.size - 1)
    shape = (T,) if smooth else (1,)
    ms, c = np.empty(shape + (d,)), np.empty(shape + (d,))
    Ps, lag, J, Lc = (np.empty(shape + (d, d)) for _ in range(4))
    code = _run(Y, *args, bx, by, bounds, smooth, mp, Pp, mf, Pf, logpred, loglik, ms, Ps, lag, J, c, Lc)
    if code >= 0:
        raise ValueError(f"the innovation covariance at frame {code} is not positive definite (check R and P0).")
    if code < -1:
        raise ValueError(f"the predicted state covariance at frame {-code - 2} is not positive definite "
                         "(check Q and P0).")
    result = KalmanResult(mp, Pp, mf, Pf, logpred, loglik)
    if smooth:
        result = result._replace(smoothed_mean=ms, smoothed_cov=Ps, lag_cov=lag, gain=J, offset=c, cond_chol=Lc)
    return result


@numba.njit(**_JIT)
def _backward(offset, gain, chol, eps, out):  # pragma: no cover - compiled
    n, T, d = eps.shape
    for r in range(n):
        for t in range(T - 1, -1, -1):
            for i in range(d):
                acc = offset[t, i]
                if t + 1 < T:
                    for a in range(d):
                        acc += gain[t, i, a] * out[r, t + 1, a]
                for a in range(i + 1):
                    acc += chol[t, i, a] * eps[r, t, a]
                out[r, t, i] = acc


def sample_paths(result: KalmanResult, n: int, rng: np.random.Generator) -> np.ndarray:
    """Exact joint draws of whole state paths from the smoother's backward chain (FFBS).

    Parameters
    ----------
    result : KalmanResult
        Output of :func:`kalman_smoother` (with ``smooth=True``).
    n : int
        Number of paths.
    rng : numpy.random.Generator
        Source of the standard normals.

    Returns
    -------
    ndarray of shape (n, T, d)
    """
    eps = rng.standard_normal((n,) + result.offset.shape)
    out = np.empty_like(eps)
    _backward(result.offset, result.gain, result.cond_chol, eps, out)
    return out


def _conditional_mean(result: KalmanResult, x: np.ndarray) -> np.ndarray:
    nxt = np.zeros_like(x)
    nxt[..., :-1, :] = x[..., 1:, :]  # the gain is zero at each sequence's last frame
    return result.offset + np.einsum("tij,...tj->...ti", result.gain, nxt)


def path_log_prob(result: KalmanResult, x: np.ndarray) -> np.ndarray:
    """Exact log posterior density of whole paths, one term per frame.

    Parameters
    ----------
    result : KalmanResult
        Output of :func:`kalman_smoother`.
    x : ndarray of shape (..., T, d)
        Paths.

    Returns
    -------
    ndarray of shape (..., T)
        ``log p(x_t | x_t+1, y)`` per frame (``log p(x_T | y)`` at a sequence's end); their sum over a
        sequence is the log density of its path.

    Raises
    ------
    ValueError
        When the posterior is degenerate (a state component is a deterministic function of the next).
    """
    L = result.cond_chol
    diag = np.diagonal(L, axis1=-2, axis2=-1)
    if np.any(diag <= 0.0):
        raise ValueError("the path posterior is degenerate (a state component is determined by the next state: "
                         "Q is singular), so it has no density; sample and mean still work.")
    r = x - _conditional_mean(result, x)
    u = np.einsum("tij,...tj->...ti", np.linalg.inv(L), r)
    return -0.5 * (u * u).sum(axis=-1) - np.log(diag).sum(axis=-1) - 0.5 * L.shape[-1] * _LOG_2PI


def path_entropy(result: KalmanResult) -> np.ndarray:
    """Differential entropy of the path posterior, per frame term (the backward chain's conditionals).

    Parameters
    ----------
    result : KalmanResult
        Output of :func:`kalman_smoother`.

    Returns
    -------
    ndarray of shape (T,)
        Sum over a sequence for the entropy of its whole path (nats); ``-inf`` at a deterministic frame.
    """
    d = result.cond_chol.shape[-1]
    diag = np.diagonal(result.cond_chol, axis1=-2, axis2=-1)
    with np.errstate(divide="ignore"):
        return 0.5 * d * (1.0 + _LOG_2PI) + np.log(diag).sum(axis=-1)
