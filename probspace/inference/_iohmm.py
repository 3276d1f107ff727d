"""Kernels of HMMs with time-varying transition matrices (input-driven HMMs): pure functions over arrays.

Every function takes the initial distribution ``startprob`` (K,), one
transition matrix per frame ``transmats`` (T, K, K), where ``transmats[t, i, j]``
is ``p(z_t = j | z_{t-1} = i)`` (the entry at the first frame of each sequence
is never read), per-frame emission log-likelihoods ``log_frameprob`` (T, K) and
hmmlearn-style ``lengths``. Forward-backward runs in probability space with
per-frame rescaling (each frame by its largest emission likelihood, each
filtered vector by its sum), exact in float64 at any length; Viterbi runs in
log space. With every ``transmats[t]`` equal to one matrix these are the
ordinary HMM recursions of :mod:`probspace.inference._hmm` (tested equal).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from ._hmm import log_terms, sequence_bounds

__all__ = ["TimeVaryingFB", "entropy", "forward_backward", "path_log_prob", "sample_paths", "viterbi"]

_JIT = {"cache": True, "nogil": True}


class TimeVaryingFB(NamedTuple):
    """Result of :func:`forward_backward`.

    Parameters
    ----------
    marginals : ndarray of shape (T, K)
        Smoothed marginals ``p(z_t = k | x)``.
    filtered : ndarray of shape (T, K)
        Filtered distributions ``p(z_t = k | x_{1:t})``.
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(x)`` of each sequence.
    pairwise : ndarray of shape (T, K, K)
        ``p(z_{t-1} = i, z_t = j | x)`` (entry ``t``; zero at each sequence's first frame).
    log_predictive : ndarray of shape (T,)
        One-step-ahead ``log p(x_t | x_{1:t-1})``; per sequence they sum to ``log_likelihood``.
    """

    marginals: np.ndarray
    filtered: np.ndarray
    log_likelihood: np.ndarray
    pairwise: np.ndarray
    log_predictive: np.ndarray


@numba.njit(**_JIT)
def _fb_kernel(startprob, transmats, logb, bounds, filtered, marginals, pairwise, logpred):  # pragma: no cover
    T, K = logb.shape
    frame = np.empty((T, K))
    shift = np.empty(T)
    for t in range(T):
        m = -np.inf
        for k in range(K):
            if logb[t, k] > m:
                m = logb[t, k]
        if m == -np.inf:
            m = 0.0
        shift[t] = m
        for k in range(K):
            frame[t, k] = np.exp(logb[t, k] - m)
    c = np.empty(T)
    beta = np.empty(K)
    nxt = np.empty(K)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        ok = True
        for t in range(lo, hi):
            tot = 0.0
            for j in range(K):
                if t == lo:
                    acc = startprob[j]
                else:
                    acc = 0.0
                    for i in range(K):
                        acc += filtered[t - 1, i] * transmats[t, i, j]
                v = acc * frame[t, j]
                filtered[t, j] = v
                tot += v
            c[t] = tot
            logpred[t] = np.log(tot) + shift[t]
            if not (tot > 0.0) or not np.isfinite(tot):
                ok = False
                for u in range(t, hi):
                    logpred[u] = -np.inf if u == t else 0.0
                    for k in range(K):
                        filtered[u, k] = np.nan
                        marginals[u, k] = np.nan
                break
            for j in range(K):
                filtered[t, j] /= tot
        if not ok:
            continue
        for k in range(K):
            beta[k] = 1.0
            marginals[hi - 1, k] = filtered[hi - 1, k]
        for t in range(hi - 2, lo - 1, -1):
            inv = 1.0 / c[t + 1]
            for j in range(K):
                nxt[j] = frame[t + 1, j] * beta[j] * inv
            for i in range(K):
                acc = 0.0
                fi = filtered[t, i]
                for j in range(K):
                    w = transmats[t + 1, i, j] * nxt[j]
                    acc += w
                    pairwise[t + 1, i, j] = fi * w
                beta[i] = acc
            for i in range(K):
                marginals[t, i] = filtered[t, i] * beta[i]


def forward_backward(startprob: np.ndarray, transmats: np.ndarray, log_frameprob: np.ndarray,
                     lengths: np.ndarray | None = None) -> TimeVaryingFB:
    """Smoothed, filtered and pairwise marginals and the log-likelihood, with one transition matrix per frame.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial state probabilities.
    transmats : ndarray of shape (T, K, K)
        ``transmats[t, i, j] = p(z_t = j | z_{t-1} = i)``.
    log_frameprob : ndarray of shape (T, K)
        Emission log-likelihoods; a row of zeros is a missing frame.
    lengths : ndarray of int or None
        Lengths of the concatenated sequences.

    Returns
    -------
    TimeVaryingFB
        A sequence with zero probability has log-likelihood ``-inf`` and NaN marginals.
    """
    logb = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T, K = logb.shape
    bounds = sequence_bounds(lengths, T)
    filtered, marginals = np.empty((T, K)), np.empty((T, K))
    pairwise, logpred = np.zeros((T, K, K)), np.empty(T)
    _fb_kernel(np.ascontiguousarray(startprob, dtype=np.float64), np.ascontiguousarray(transmats, dtype=np.float64),
               logb, bounds, filtered, marginals, pairwise, logpred)
    loglik = np.add.reduceat(logpred, bounds[:-1]) if T else np.zeros(0)
    return TimeVaryingFB(marginals, filtered, loglik, pairwise, logpred)


@numba.njit(**_JIT)
def _viterbi_kernel(log_start, log_trans, logb, bounds, path, best):  # pragma: no cover
    T, K = logb.shape
    delta = np.empty(K)
    new = np.empty(K)
    back = np.empty((T, K), dtype=np.int64)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        for k in range(K):
            delta[k] = log_start[k] + logb[lo, k]
        for t in range(lo + 1, hi):
            for j in range(K):
                arg = 0
                m = -np.inf
                for i in range(K):
                    v = delta[i] + log_trans[t, i, j]
                    if v > m:
                        m = v
                        arg = i
                new[j] = m + logb[t, j]
                back[t, j] = arg
            delta[:] = new
        arg = 0
        m = -np.inf
        for k in range(K):
            if delta[k] > m:
                m = delta[k]
                arg = k
        best[s] = m
        path[hi - 1] = arg
        for t in range(hi - 1, lo, -1):
            path[t - 1] = back[t, path[t]]


def viterbi(startprob: np.ndarray, transmats: np.ndarray, log_frameprob: np.ndarray,
            lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Most probable state path of each sequence (log space).

    Parameters
    ----------
    startprob, transmats, log_frameprob, lengths
        As in :func:`forward_backward`.

    Returns
    -------
    path : ndarray of shape (T,)
        The concatenated MAP paths.
    log_joint : ndarray of shape (n_sequences,)
        ``log p(x, path)`` of each sequence.
    """
    logb = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T = logb.shape[0]
    bounds = sequence_bounds(lengths, T)
    path, best = np.empty(T, dtype=np.int64), np.empty(bounds.shape[0] - 1)
    with np.errstate(divide="ignore"):
        _viterbi_kernel(np.log(startprob), np.ascontiguousarray(np.log(transmats)), logb, bounds, path, best)
    return path, best


@numba.njit(**_JIT)
def _backward_sample(filtered, transmats, u, bounds, out):  # pragma: no cover
    T, K = filtered.shape
    w = np.empty(K)
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        for n in range(out.shape[0]):
            for t in range(hi - 1, lo - 1, -1):
                tot = 0.0
                for i in range(K):
                    if t == hi - 1:
                        tot += filtered[t, i]
                    else:
                        tot += filtered[t, i] * transmats[t + 1, i, out[n, t + 1]]
                    w[i] = tot
                x = u[n, t] * tot
                k = 0
                while k < K - 1 and x >= w[k]:
                    k += 1
                out[n, t] = k


def sample_paths(filtered: np.ndarray, transmats: np.ndarray, lengths: np.ndarray | None, n_samples: int,
                 rng: np.random.Generator) -> np.ndarray:
    """Joint draws of whole paths by forward filtering, backward sampling.

    ``z_T ~ p(z_T | x)``, then ``z_{t} | z_{t+1} ~ p(z_t | x_{1:t}) A_{t+1}[z_t, z_{t+1}]`` (normalised).

    Parameters
    ----------
    filtered : ndarray of shape (T, K)
        Filtered distributions from :func:`forward_backward`.
    transmats : ndarray of shape (T, K, K)
        The transition matrices.
    lengths : ndarray of int or None
        Lengths of the concatenated sequences.
    n_samples : int
        Number of draws.
    rng : numpy.random.Generator
        Source of the uniforms.

    Returns
    -------
    ndarray of shape (n_samples, T), int64
    """
    T = filtered.shape[0]
    out = np.empty((n_samples, T), dtype=np.int64)
    _backward_sample(np.ascontiguousarray(filtered), np.ascontiguousarray(transmats, dtype=np.float64),
                     rng.random((n_samples, T)), sequence_bounds(lengths, T), out)
    return out


def path_log_prob(paths: np.ndarray, startprob: np.ndarray, transmats: np.ndarray, log_frameprob: np.ndarray,
                  lengths: np.ndarray | None, log_likelihood: np.ndarray) -> np.ndarray:
    """Exact ``log p(z | x)`` of whole paths, per sequence.

    Parameters
    ----------
    paths : ndarray of int, shape (..., T)
        Whole state paths.
    startprob, transmats, log_frameprob, lengths
        As in :func:`forward_backward`.
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(x)`` of each sequence.

    Returns
    -------
    ndarray of shape (..., n_sequences)
    """
    paths = np.asarray(paths, dtype=np.intp)
    T = log_frameprob.shape[0]
    bounds, log_start, log_trans = log_terms(startprob, transmats, lengths, T)
    emit = np.take_along_axis(np.broadcast_to(log_frameprob, paths.shape + (log_frameprob.shape[1],)),
                              paths[..., None], axis=-1)[..., 0]
    step = np.empty(paths.shape)
    frames = np.arange(1, T)
    step[..., 1:] = log_trans[frames, paths[..., :-1], paths[..., 1:]]
    starts = bounds[:-1]
    step[..., starts] = log_start[paths[..., starts]]
    return np.add.reduceat(step + emit, starts, axis=-1) - log_likelihood


def entropy(fb: TimeVaryingFB, startprob: np.ndarray, transmats: np.ndarray, log_frameprob: np.ndarray,
            lengths: np.ndarray | None) -> np.ndarray:
    """Exact entropy (nats) of the posterior over whole paths, per sequence: ``log p(x) - E[log p(x, z)]``.

    Parameters
    ----------
    fb : TimeVaryingFB
        Output of :func:`forward_backward` for the same arguments.
    startprob, transmats, log_frameprob, lengths
        As in :func:`forward_backward`.

    Returns
    -------
    ndarray of shape (n_sequences,)
    """
    T = log_frameprob.shape[0]
    bounds, log_start, log_trans = log_terms(startprob, transmats, lengths, T)
    with np.errstate(invalid="ignore"):
        first = fb.marginals[bounds[:-1]]
        e_start = np.where(first > 0, first * log_start, 0.0).sum(axis=1)
        per_frame = (np.where(fb.pairwise > 0, fb.pairwise * log_trans, 0.0).sum(axis=(1, 2))
                     + np.where(fb.marginals > 0, fb.marginals * log_frameprob, 0.0).sum(axis=1))
    return fb.log_likelihood - e_start - np.add.reduceat(per_frame, bounds[:-1])
