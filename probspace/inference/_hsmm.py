"""Kernels of hidden semi-Markov models (explicit state durations): pure functions over arrays, compiled with numba.

The model, per sequence of ``L`` frames: the first segment's state is drawn
from ``startprob``; a segment in state ``k`` lasts ``d`` frames with
probability ``duration_pmf[k, d - 1]`` (``1 <= d <= D``); the next segment's
state is drawn from row ``k`` of ``transmat`` (zero diagonal, so a state path
determines its segmentation); each frame emits given its segment's state. The
last segment is right-censored: it contributes ``P(duration >= its observed
length)``, so ``p(x)`` is the probability of the first ``L`` frames of an
unbounded process.

Everything runs in log space over segments, in ``O(T K D + T K^2)`` time:
``start[t, k] = log p(x_{<t}, a segment in state k starts at t)`` and
``end[t, k] = log p(x_{<=t}, a segment in state k ends at t)`` forward, the
matching backward quantities, and from them the posterior probability of every
segment ``(start s, length d, state k)``, the smoothed marginals, the expected
counts EM needs, Viterbi segmentations and exact joint draws of segmentations
(backward sampling over segments).
"""

from __future__ import annotations

from typing import NamedTuple

import numba
import numpy as np

from ._hmm import log_terms, sequence_bounds

__all__ = ["SemiMarkovFB", "duration_logs", "forward_backward", "path_log_prob", "sample_paths", "viterbi"]

_JIT = {"cache": True, "nogil": True}


class SemiMarkovFB(NamedTuple):
    """Result of :func:`forward_backward`.

    Parameters
    ----------
    marginals : ndarray of shape (T, K)
        Smoothed marginals ``p(z_t = k | x)``.
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(x)`` of each sequence.
    start_counts : ndarray of shape (K,)
        Expected number of sequences whose first segment is in state ``k`` (summed over sequences).
    transition_counts : ndarray of shape (K, K)
        Expected number of segment transitions ``i -> j``.
    duration_counts : ndarray of shape (K, D)
        Expected number of completed segments of state ``k`` and length ``d + 1``.
    censored_counts : ndarray of shape (K, D)
        Expected number of last (right-censored) segments of state ``k`` observed for ``d + 1`` frames.
    expected_log_joint : ndarray of shape (n_sequences,)
        ``E[log p(x, z) | x]`` (for the entropy ``log p(x) - E[log p(x, z)]``).
    start : ndarray of shape (T, K)
        Forward log-messages ``log p(x_{<t}, segment in k starts at t)``.
    end : ndarray of shape (T, K)
        Forward log-messages ``log p(x_{<=t}, segment in k ends at t)`` (completed segments).
    """

    marginals: np.ndarray
    log_likelihood: np.ndarray
    start_counts: np.ndarray
    transition_counts: np.ndarray
    duration_counts: np.ndarray
    censored_counts: np.ndarray
    expected_log_joint: np.ndarray
    start: np.ndarray
    end: np.ndarray


def duration_logs(duration_pmf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``log pmf`` and ``log P(duration >= d)`` (both (K, D)) of duration pmfs over ``1..D``."""
    pmf = np.asarray(duration_pmf, dtype=np.float64)
    surv = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore"):
        return np.log(pmf), np.log(np.minimum(surv, 1.0))


def _log_params(startprob, transmat, duration_pmf, lengths, T):
    """Sequence bounds and the contiguous logs of ``startprob``, ``transmat``, the duration pmf and survival."""
    bounds, log_start, log_trans = log_terms(startprob, transmat, lengths, T)
    log_dur, log_surv = duration_logs(duration_pmf)
    return bounds, *(np.ascontiguousarray(a) for a in (log_start, log_trans, log_dur, log_surv))


@numba.njit(**_JIT)
def _lse(a, b):  # pragma: no cover - compiled
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    if a > b:
        return a + np.log1p(np.exp(b - a))
    return b + np.log1p(np.exp(a - b))


@numba.njit(**_JIT)
def _forward(log_start, log_trans, log_dur, log_surv, logb, lo, hi, start, end):  # pragma: no cover - compiled
    """Forward messages on frames [lo, hi); returns log p(x_lo..x_hi-1)."""
    K, D = log_dur.shape
    for t in range(lo, hi):
        for k in range(K):
            if t == lo:
                start[t, k] = log_start[k]
            else:
                acc = -np.inf
                for i in range(K):
                    acc = _lse(acc, end[t - 1, i] + log_trans[i, k])
                start[t, k] = acc
        for k in range(K):
            acc = -np.inf
            emit = 0.0
            for d in range(1, min(D, t - lo + 1) + 1):
                s = t - d + 1
                emit += logb[s, k]
                acc = _lse(acc, start[s, k] + log_dur[k, d - 1] + emit)
            end[t, k] = acc
    total = -np.inf
    for k in range(K):
        emit = 0.0
        for d in range(1, min(D, hi - lo) + 1):
            s = hi - d
            emit += logb[s, k]
            total = _lse(total, start[s, k] + log_surv[k, d - 1] + emit)
    return total


@numba.njit(**_JIT)
def _estep(log_start, log_trans, log_dur, log_surv, logb, bounds, start, end, marginals, loglik, n_start, n_trans,
           n_dur, n_cens, elj):  # pragma: no cover - compiled
    T, K = logb.shape
    D = log_dur.shape[1]
    bstart = np.empty((T, K))
    bend = np.empty((T, K))
    diff = np.zeros((T + 1, K))
    for q in range(bounds.shape[0] - 1):
        lo, hi = bounds[q], bounds[q + 1]
        ll = _forward(log_start, log_trans, log_dur, log_surv, logb, lo, hi, start, end)
        loglik[q] = ll
        if not np.isfinite(ll):
            for t in range(lo, hi):
                for k in range(K):
                    marginals[t, k] = np.nan
            continue
        # backward: bend[t, k] = log p(x_{>t} | segment in k ended at t); bstart[t, k] = log p(x_{>=t} | starts at t)
        for t in range(hi - 1, lo - 1, -1):
            if t < hi - 1:
                for k in range(K):
                    acc = -np.inf
                    for j in range(K):
                        acc = _lse(acc, log_trans[k, j] + bstart[t + 1, j])
                    bend[t, k] = acc
            for k in range(K):
                acc = -np.inf
                emit = 0.0
                for d in range(1, min(D, hi - t) + 1):
                    e = t + d - 1
                    emit += logb[e, k]
                    if e == hi - 1:
                        acc = _lse(acc, log_surv[k, d - 1] + emit)
                    else:
                        acc = _lse(acc, log_dur[k, d - 1] + emit + bend[e, k])
                bstart[t, k] = acc
        e_joint = 0.0
        # segments: posterior weight of (start s, length d, state k)
        for s in range(lo, hi):
            for k in range(K):
                if start[s, k] == -np.inf:
                    continue
                emit = 0.0
                for d in range(1, min(D, hi - s) + 1):
                    e = s + d - 1
                    emit += logb[e, k]
                    if e == hi - 1:
                        lw = start[s, k] + log_surv[k, d - 1] + emit - ll
                        dur_term = log_surv[k, d - 1]
                    else:
                        lw = start[s, k] + log_dur[k, d - 1] + emit + bend[e, k] - ll
                        dur_term = log_dur[k, d - 1]
                    if lw == -np.inf:
                        continue
                    w = np.exp(lw)
                    diff[s, k] += w
                    if e + 1 < hi:
                        diff[e + 1, k] -= w
                    if e == hi - 1:
                        n_cens[k, d - 1] += w
                    else:
                        n_dur[k, d - 1] += w
                    e_joint += w * dur_term
        for k in range(K):
            w = np.exp(start[lo, k] + bstart[lo, k] - ll)
            n_start[k] += w
            if w > 0.0:
                e_joint += w * log_start[k]
        for t in range(lo, hi - 1):
            for i in range(K):
                if end[t, i] == -np.inf:
                    continue
                for j in range(K):
                    w = np.exp(end[t, i] + log_trans[i, j] + bstart[t + 1, j] - ll)
                    if w > 0.0:
                        n_trans[i, j] += w
                        e_joint += w * log_trans[i, j]
        acc_m = np.zeros(K)
        for t in range(lo, hi):
            for k in range(K):
                acc_m[k] += diff[t, k]
                # a frame impossible in state k (a known label elsewhere) has marginal 0 exactly, not round-off
                m = min(max(acc_m[k], 0.0), 1.0) if logb[t, k] > -np.inf else 0.0
                marginals[t, k] = m
                if m > 0.0:
                    e_joint += m * logb[t, k]
        elj[q] = e_joint


def forward_backward(startprob: np.ndarray, transmat: np.ndarray, duration_pmf: np.ndarray,
                     log_frameprob: np.ndarray, lengths: np.ndarray | None = None) -> SemiMarkovFB:
    """Exact segment forward-backward: marginals, log-likelihood and the expected counts of EM.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        State probabilities of the first segment.
    transmat : ndarray of shape (K, K)
        Segment-to-segment transition probabilities (zero diagonal).
    duration_pmf : ndarray of shape (K, D)
        ``duration_pmf[k, d - 1] = p(duration = d | state k)``, rows summing to one.
    log_frameprob : ndarray of shape (T, K)
        Emission log-likelihoods; a row of zeros is a missing frame.
    lengths : ndarray of int or None
        Lengths of the concatenated sequences.

    Returns
    -------
    SemiMarkovFB
        A sequence with zero probability has log-likelihood ``-inf`` and NaN marginals.
    """
    logb = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T, K = logb.shape
    D = np.shape(duration_pmf)[1]
    bounds, log_start, log_trans, log_dur, log_surv = _log_params(startprob, transmat, duration_pmf, lengths, T)
    start, end, marginals = np.empty((T, K)), np.empty((T, K)), np.empty((T, K))
    n_seq = bounds.shape[0] - 1
    loglik, elj = np.empty(n_seq), np.empty(n_seq)
    n_start, n_trans, n_dur, n_cens = np.zeros(K), np.zeros((K, K)), np.zeros((K, D)), np.zeros((K, D))
    _estep(log_start, log_trans, log_dur, log_surv, logb, bounds, start, end, marginals, loglik, n_start, n_trans,
           n_dur, n_cens, elj)
    return SemiMarkovFB(marginals, loglik, n_start, n_trans, n_dur, n_cens, elj, start, end)


@numba.njit(**_JIT)
def _viterbi_kernel(log_start, log_trans, log_dur, log_surv, logb, bounds, path, best):  # pragma: no cover
    T, K = logb.shape
    D = log_dur.shape[1]
    vstart = np.empty((T, K))
    vend = np.empty((T, K))
    prev = np.zeros((T, K), dtype=np.int64)
    dur = np.ones((T, K), dtype=np.int64)
    for q in range(bounds.shape[0] - 1):
        lo, hi = bounds[q], bounds[q + 1]
        for t in range(lo, hi):
            for k in range(K):
                if t == lo:
                    vstart[t, k] = log_start[k]
                else:
                    m, arg = -np.inf, 0
                    for i in range(K):
                        v = vend[t - 1, i] + log_trans[i, k]
                        if v > m:
                            m, arg = v, i
                    vstart[t, k] = m
                    prev[t, k] = arg
            for k in range(K):
                m, arg = -np.inf, 1
                emit = 0.0
                for d in range(1, min(D, t - lo + 1) + 1):
                    s = t - d + 1
                    emit += logb[s, k]
                    v = vstart[s, k] + log_dur[k, d - 1] + emit
                    if v > m:
                        m, arg = v, d
                vend[t, k] = m
                dur[t, k] = arg
        m, kbest, dbest = -np.inf, 0, 1
        for k in range(K):
            emit = 0.0
            for d in range(1, min(D, hi - lo) + 1):
                s = hi - d
                emit += logb[s, k]
                v = vstart[s, k] + log_surv[k, d - 1] + emit
                if v > m:
                    m, kbest, dbest = v, k, d
        best[q] = m
        e, k, d = hi - 1, kbest, dbest
        while True:
            s = e - d + 1
            for t in range(s, e + 1):
                path[t] = k
            if s == lo:
                break
            i = prev[s, k]
            e = s - 1
            k = i
            d = dur[e, k]


def viterbi(startprob: np.ndarray, transmat: np.ndarray, duration_pmf: np.ndarray, log_frameprob: np.ndarray,
            lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Most probable segmentation of each sequence, as a state path.

    Parameters
    ----------
    startprob, transmat, duration_pmf, log_frameprob, lengths
        As in :func:`forward_backward`.

    Returns
    -------
    path : ndarray of shape (T,)
        The MAP state paths, concatenated (segments are the runs of equal states).
    log_joint : ndarray of shape (n_sequences,)
        ``log p(x, path)`` of each sequence.
    """
    logb = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T = logb.shape[0]
    bounds, log_start, log_trans, log_dur, log_surv = _log_params(startprob, transmat, duration_pmf, lengths, T)
    path, best = np.zeros(T, dtype=np.int64), np.empty(bounds.shape[0] - 1)
    _viterbi_kernel(log_start, log_trans, log_dur, log_surv, logb, bounds, path, best)
    return path, best


@numba.njit(**_JIT)
def _pick(logw, n, u):  # pragma: no cover - compiled
    """Index in [0, n) drawn with probability proportional to exp(logw[:n]) (one uniform ``u``)."""
    m = -np.inf
    for i in range(n):
        if logw[i] > m:
            m = logw[i]
    tot = 0.0
    for i in range(n):
        tot += np.exp(logw[i] - m)
    x = u * tot
    acc = 0.0
    for i in range(n):
        acc += np.exp(logw[i] - m)
        if x < acc:
            return i
    return n - 1


@numba.njit(**_JIT)
def _sample_kernel(log_trans, log_dur, log_surv, logb, bounds, start, end, u, out):  # pragma: no cover - compiled
    T, K = logb.shape
    D = log_dur.shape[1]
    w = np.empty(K * D)
    wk = np.empty(K)
    for n in range(out.shape[0]):
        c = 0
        for q in range(bounds.shape[0] - 1):
            lo, hi = bounds[q], bounds[q + 1]
            # the last (censored) segment: joint draw of its state and length
            dmax = min(D, hi - lo)
            for k in range(K):
                emit = 0.0
                for d in range(1, dmax + 1):
                    emit += logb[hi - d, k]
                    w[k * dmax + d - 1] = start[hi - d, k] + log_surv[k, d - 1] + emit
            idx = _pick(w, K * dmax, u[n, c])
            c += 1
            k, d = idx // dmax, idx % dmax + 1
            s = hi - d
            while True:
                for t in range(s, s + d):
                    out[n, t] = k
                if s == lo:
                    break
                e = s - 1
                for i in range(K):
                    wk[i] = end[e, i] + log_trans[i, k]
                k = _pick(wk, K, u[n, c])
                c += 1
                dmax = min(D, e - lo + 1)
                emit = 0.0
                for d in range(1, dmax + 1):
                    emit += logb[e - d + 1, k]
                    w[d - 1] = start[e - d + 1, k] + log_dur[k, d - 1] + emit
                d = _pick(w, dmax, u[n, c]) + 1
                c += 1
                s = e - d + 1


def sample_paths(fb: SemiMarkovFB, transmat: np.ndarray, duration_pmf: np.ndarray, log_frameprob: np.ndarray,
                 lengths: np.ndarray | None, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Exact joint draws of whole segmentations (as state paths) by backward sampling over segments.

    The last segment's state and length are drawn from their joint posterior;
    then, going backwards, the state of the segment before (given the one
    after) and its length (given its end), each from the forward messages.

    Parameters
    ----------
    fb : SemiMarkovFB
        Output of :func:`forward_backward` for the same arguments.
    transmat, duration_pmf, log_frameprob, lengths
        As in :func:`forward_backward`.
    n_samples : int
        Number of draws.
    rng : numpy.random.Generator
        Source of the uniforms.

    Returns
    -------
    ndarray of shape (n_samples, T), int64
    """
    logb = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T = logb.shape[0]
    bounds = sequence_bounds(lengths, T)
    log_dur, log_surv = duration_logs(duration_pmf)
    with np.errstate(divide="ignore"):
        log_trans = np.ascontiguousarray(np.log(transmat))
    out = np.empty((n_samples, T), dtype=np.int64)
    chunk = max(1, (1 << 22) // max(1, 2 * T + 2 * len(bounds)))
    for lo in range(0, n_samples, chunk):
        hi = min(n_samples, lo + chunk)
        u = rng.random((hi - lo, 2 * T + len(bounds)))
        _sample_kernel(log_trans, np.ascontiguousarray(log_dur), np.ascontiguousarray(log_surv), logb, bounds,
                       fb.start, fb.end, u, out[lo:hi])
    return out


@numba.njit(**_JIT)
def _path_kernel(paths, log_start, log_trans, log_dur, log_surv, logb, bounds, out):  # pragma: no cover
    D = log_dur.shape[1]
    for n in range(paths.shape[0]):
        for q in range(bounds.shape[0] - 1):
            lo, hi = bounds[q], bounds[q + 1]
            acc = log_start[paths[n, lo]]
            s = lo
            for t in range(lo, hi):
                acc += logb[t, paths[n, t]]
                last = t == hi - 1
                if last or paths[n, t + 1] != paths[n, t]:
                    d = t - s + 1
                    k = paths[n, t]
                    if d > D:
                        acc = -np.inf
                    elif last:
                        acc += log_surv[k, d - 1]
                    else:
                        acc += log_dur[k, d - 1] + log_trans[k, paths[n, t + 1]]
                    s = t + 1
            out[n, q] = acc


def path_log_prob(paths: np.ndarray, startprob: np.ndarray, transmat: np.ndarray, duration_pmf: np.ndarray,
                  log_frameprob: np.ndarray, lengths: np.ndarray | None, log_likelihood: np.ndarray) -> np.ndarray:
    """Exact ``log p(z | x)`` of whole state paths (runs of equal states are the segments), per sequence.

    A run longer than the maximum duration ``D`` has probability zero (``-inf``).

    Parameters
    ----------
    paths : ndarray of int, shape (..., T)
        State paths.
    startprob, transmat, duration_pmf, log_frameprob, lengths
        As in :func:`forward_backward`.
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(x)`` of each sequence.

    Returns
    -------
    ndarray of shape (..., n_sequences)
    """
    paths = np.asarray(paths, dtype=np.int64)
    T = log_frameprob.shape[0]
    lead = paths.shape[:-1]
    flat = np.ascontiguousarray(paths.reshape(-1, T))
    bounds, log_start, log_trans, log_dur, log_surv = _log_params(startprob, transmat, duration_pmf, lengths, T)
    out = np.empty((flat.shape[0], bounds.shape[0] - 1))
    _path_kernel(flat, log_start, log_trans, log_dur, log_surv, np.ascontiguousarray(log_frameprob, dtype=np.float64),
                 bounds, out)
    return (out - log_likelihood).reshape(lead + (bounds.shape[0] - 1,))
