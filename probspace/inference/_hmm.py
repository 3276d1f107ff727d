"""HMM inference kernels: pure functions over arrays, compiled with numba.

Every function takes the initial distribution ``startprob`` (K,), the
transition matrix ``transmat`` (K, K), per-frame emission log-likelihoods
``log_frameprob`` (T, K) and hmmlearn-style ``lengths`` (sequences
concatenated along the first axis), and returns arrays. No model objects.

Numerics: forward-backward runs in probability space with per-step
normalisation (each frame is rescaled by its largest emission likelihood, and
each filtered vector by its sum), which is exact in float64 and does not
underflow at any length. A sequence whose normaliser hits zero (a transition
structure that forbids every state the data allows) is recomputed in log
space. Viterbi runs in log space.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numba
import numpy as np

from .._docstrings import fill
from ._threads import in_pool_thread, map_blocks, resolve_threads, submit

__all__ = [
    "ForwardBackward",
    "entropy",
    "forward_backward",
    "pairwise_marginals",
    "path_log_prob",
    "sample_paths",
    "sequence_bounds",
    "sequence_groups",
    "viterbi",
    "viterbi_streamed",
]

_HMM_PARAMS = """\
    startprob : ndarray of shape (K,)
        Initial state probabilities.
    transmat : ndarray of shape (K, K)
        Transition matrix; rows sum to one.
    log_frameprob : ndarray of shape (T, K)
        Emission log-likelihoods ``log p(x_t | z_t = k)``; a row of zeros is a missing frame.
    lengths : ndarray of int or None
        Lengths of the concatenated sequences (``None``: one sequence)."""

_JIT = {"cache": True, "nogil": True, "fastmath": False}


class ForwardBackward(NamedTuple):
    """Result of :func:`forward_backward`.

    Parameters
    ----------
    marginals : ndarray of shape (T, K)
        Smoothed marginals ``p(z_t = k | x_{1:T})`` of each sequence.
    filtered : ndarray of shape (T, K)
        Filtered distributions ``p(z_t = k | x_{1:t})``.
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(x)`` of each sequence.
    transition_counts : ndarray of shape (n_sequences, K, K)
        Expected number of ``i -> j`` transitions in each sequence.
    log_predictive : ndarray of shape (T,)
        One-step-ahead terms ``log p(x_t | x_{1:t-1})``; per sequence they sum
        to ``log_likelihood``.
    """

    marginals: np.ndarray
    filtered: np.ndarray
    log_likelihood: np.ndarray
    transition_counts: np.ndarray
    log_predictive: np.ndarray


def sequence_bounds(lengths: np.ndarray | None, n_frames: int) -> np.ndarray:
    """Start offsets of each sequence plus the end, shape (n_sequences + 1,)."""
    if lengths is None:
        return np.array([0, n_frames], dtype=np.int64)
    return np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)


def log_terms(startprob: np.ndarray, transmat: np.ndarray, lengths: np.ndarray | None,
              n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return :func:`sequence_bounds` and ``log startprob``, ``log transmat`` (``-inf`` for zeros, no warning)."""
    bounds = sequence_bounds(lengths, n_frames)
    with np.errstate(divide="ignore"):
        return bounds, np.log(startprob), np.log(transmat)


#: Blocks of work: at most ``_PATH_CHUNK`` joint paths, over groups of whole sequences of at least
#: ``_GROUP_FRAMES`` frames (fewer only at the end); each block of paths has its own random streams.
_PATH_CHUNK = 25
_GROUP_FRAMES = 1 << 16


def sequence_groups(bounds: np.ndarray, min_frames: int = _GROUP_FRAMES) -> list[tuple[int, int]]:
    """Cut consecutive sequences into groups: ``(first, stop)`` sequence indices.

    A group holds the sequences that start in one window of ``min_frames``
    frames. The cut depends on the lengths only, so blocks of work built on it
    (and their random streams) are the same whatever the number of threads.
    """
    n_seq = bounds.shape[0] - 1
    if n_seq < 1:
        return []
    keys = bounds[:-1] // min_frames
    starts = np.flatnonzero(np.r_[True, keys[1:] != keys[:-1]])
    stops = np.r_[starts[1:], n_seq]
    return [(int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


#: Below this many path steps (or frames times states), work stays in the calling thread.
_PARALLEL_MIN = 1 << 17


@numba.njit(**_JIT)
def _fb_scaled(startprob, transmat, frame, shift, lo, hi, filtered, marginals, counts, logpred):
    """Scaled forward-backward on frames [lo, hi). Returns False if a normaliser vanished."""
    K = startprob.shape[0]
    c = np.empty(hi - lo)
    # forward
    s = 0.0
    for k in range(K):
        v = startprob[k] * frame[lo, k]
        filtered[lo, k] = v
        s += v
    if not (s > 0.0) or not np.isfinite(s):
        return False
    c[0] = s
    for k in range(K):
        filtered[lo, k] /= s
    for t in range(lo + 1, hi):
        s = 0.0
        for j in range(K):
            acc = 0.0
            for i in range(K):
                acc += filtered[t - 1, i] * transmat[i, j]
            v = acc * frame[t, j]
            filtered[t, j] = v
            s += v
        if not (s > 0.0) or not np.isfinite(s):
            return False
        c[t - lo] = s
        for j in range(K):
            filtered[t, j] /= s
    for t in range(lo, hi):
        logpred[t] = np.log(c[t - lo]) + shift[t]
    # backward: beta_{T-1} = 1; marginals = filtered * beta
    beta = np.ones(K)
    nxt = np.empty(K)
    for k in range(K):
        marginals[hi - 1, k] = filtered[hi - 1, k]
    for t in range(hi - 2, lo - 1, -1):
        inv = 1.0 / c[t + 1 - lo]
        for j in range(K):
            nxt[j] = frame[t + 1, j] * beta[j] * inv
        for i in range(K):
            acc = 0.0
            fi = filtered[t, i]
            for j in range(K):
                w = transmat[i, j] * nxt[j]
                acc += w
                counts[i, j] += fi * w
            beta[i] = acc
        for i in range(K):
            marginals[t, i] = filtered[t, i] * beta[i]
    return True


@numba.njit(**_JIT)
def _logsumexp(v):
    m = -np.inf
    for x in v:
        if x > m:
            m = x
    if m == -np.inf:
        return m
    s = 0.0
    for x in v:
        s += np.exp(x - m)
    return m + np.log(s)


@numba.njit(**_JIT)
def _fb_log(log_start, log_trans, logb, lo, hi, filtered, marginals, counts, logpred):
    """Log-space forward-backward on frames [lo, hi) (the robust fallback)."""
    K = log_start.shape[0]
    T = hi - lo
    la = np.empty((T, K))
    tmp = np.empty(K)
    for k in range(K):
        la[0, k] = log_start[k] + logb[lo, k]
    prev = 0.0
    for t in range(1, T):
        for j in range(K):
            for i in range(K):
                tmp[i] = la[t - 1, i] + log_trans[i, j]
            la[t, j] = _logsumexp(tmp) + logb[lo + t, j]
    for t in range(T):
        norm = _logsumexp(la[t])
        logpred[lo + t] = norm - prev
        prev = norm
        for k in range(K):
            filtered[lo + t, k] = np.exp(la[t, k] - norm)
    total = prev
    lb = np.zeros((T, K))
    for t in range(T - 2, -1, -1):
        for i in range(K):
            for j in range(K):
                tmp[j] = log_trans[i, j] + logb[lo + t + 1, j] + lb[t + 1, j]
            lb[t, i] = _logsumexp(tmp)
    for t in range(T):
        for k in range(K):
            marginals[lo + t, k] = np.exp(la[t, k] + lb[t, k] - total)
    for t in range(T - 1):
        for i in range(K):
            for j in range(K):
                counts[i, j] += np.exp(la[t, i] + log_trans[i, j] + logb[lo + t + 1, j] + lb[t + 1, j] - total)


@numba.njit(**_JIT)
def _fb_frames(log_frameprob, lo, hi, frame, shift):
    """Frames [lo, hi) rescaled by their largest likelihood: ``frame = exp(log_frameprob - shift)``."""
    K = log_frameprob.shape[1]
    for t in range(lo, hi):
        m = -np.inf
        for k in range(K):
            if log_frameprob[t, k] > m:
                m = log_frameprob[t, k]
        if m == -np.inf:
            m = 0.0
        shift[t] = m
        for k in range(K):
            frame[t, k] = np.exp(log_frameprob[t, k] - m)


@numba.njit(**_JIT)
def _fb_sequences(startprob, transmat, log_frameprob, frame, shift, bounds, first, stop, filtered, marginals, counts,
                  logpred):
    """Forward-backward of sequences ``first`` to ``stop - 1`` (scaled; log space where scaling fails)."""
    K = log_frameprob.shape[1]
    log_start = np.log(startprob)
    log_trans = np.log(transmat)
    for s in range(first, stop):
        lo, hi = bounds[s], bounds[s + 1]
        ok = _fb_scaled(startprob, transmat, frame, shift, lo, hi, filtered, marginals, counts[s], logpred)
        if ok:
            for t in range(lo, hi):
                for k in range(K):
                    if not np.isfinite(marginals[t, k]):
                        ok = False
        if not ok:
            counts[s, :, :] = 0.0
            _fb_log(log_start, log_trans, log_frameprob, lo, hi, filtered, marginals, counts[s], logpred)


def forward_backward(
    startprob: np.ndarray, transmat: np.ndarray, log_frameprob: np.ndarray, lengths: np.ndarray | None = None,
    *, n_threads: int | None = None,
) -> ForwardBackward:
    """Smoothed and filtered state marginals and the log-likelihood of each sequence.

    Sequences are processed in parallel threads, in groups of whole
    sequences of at least 65,536 frames (and the emission rescaling in
    blocks of frames); each sequence is computed exactly as alone, so the
    result does not depend on ``n_threads``.

    Parameters
    ----------
    {hmm_params}
    n_threads : int, optional
        Threads to use (default: ``PROBSPACE_NUM_THREADS``, else every usable CPU).

    Returns
    -------
    ForwardBackward
        Marginals, filtered distributions, log-likelihoods, expected transition counts.
    """
    log_frameprob = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T, K = log_frameprob.shape
    bounds = sequence_bounds(lengths, T)
    filtered = np.empty((T, K))
    marginals = np.empty((T, K))
    counts = np.zeros((bounds.shape[0] - 1, K, K))
    logpred = np.empty(T)
    start = np.ascontiguousarray(startprob, dtype=np.float64)
    trans = np.ascontiguousarray(transmat, dtype=np.float64)
    threads = n_threads if T * K >= _PARALLEL_MIN else 1
    shift = np.empty(T)
    frame = np.empty((T, K))
    map_blocks(lambda b: _fb_frames(log_frameprob, b, min(b + _GROUP_FRAMES, T), frame, shift),
               range(0, T, _GROUP_FRAMES), threads)
    map_blocks(lambda g: _fb_sequences(start, trans, log_frameprob, frame, shift, bounds, g[0], g[1], filtered,
                                       marginals, counts, logpred), sequence_groups(bounds), threads)
    loglik = np.add.reduceat(logpred, bounds[:-1]) if T else np.zeros(0)
    return ForwardBackward(marginals, filtered, loglik, counts, logpred)


@numba.njit(**_JIT)
def _viterbi_forward(log_start, log_trans, logb, lo, hi, first, last, delta, back, best, final, seq):
    """Viterbi recursion over frames [lo, hi), ``logb`` holding their rows; ``delta`` carries across calls.

    ``first[t]`` / ``last[t]`` mark the frames that begin / end a sequence;
    at an end, the best final state and score of sequence ``seq[0]`` are
    stored in ``final`` and ``best`` and the counter moves on.
    """
    K = log_start.shape[0]
    new = np.empty(K)
    for t in range(lo, hi):
        r = t - lo
        if first[t]:
            for k in range(K):
                delta[k] = log_start[k] + logb[r, k]
        else:
            for j in range(K):
                arg = 0
                m = -np.inf
                for i in range(K):
                    v = delta[i] + log_trans[i, j]
                    if v > m:
                        m = v
                        arg = i
                new[j] = m + logb[r, j]
                back[t, j] = arg
            for j in range(K):
                delta[j] = new[j]
        if last[t]:
            arg = 0
            m = -np.inf
            for k in range(K):
                if delta[k] > m:
                    m = delta[k]
                    arg = k
            best[seq[0]] = m
            final[seq[0]] = arg
            seq[0] += 1


@numba.njit(**_JIT)
def _viterbi_backtrack(bounds, back, final, path):
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        if hi == lo:
            continue
        path[hi - 1] = final[s]
        for t in range(hi - 1, lo, -1):
            path[t - 1] = back[t, path[t]]


#: Frames per block of a streamed Viterbi pass (emission rows computed a block at a time).
_VITERBI_BLOCK = 1 << 15


def viterbi_streamed(startprob: np.ndarray, transmat: np.ndarray, emit: Any, n_frames: int,
                     lengths: np.ndarray | None = None, *,
                     n_threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Viterbi path with the emission log-likelihoods computed block by block, overlapping the recursion.

    ``emit(lo, hi)`` returns the (hi - lo, K) emission log-likelihoods of
    frames [lo, hi). While the recursion runs over one block, a helper
    thread computes the next, and no (T, K) array of densities is ever
    held; the result is the same as :func:`viterbi` on the whole array.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial state probabilities.
    transmat : ndarray of shape (K, K)
        Transition matrix.
    emit : callable
        ``emit(lo, hi) -> ndarray (hi - lo, K)``, safe to call from another thread.
    n_frames : int
        Total number of frames ``T``.
    lengths : ndarray of int or None
        Lengths of the concatenated sequences.
    n_threads : int, optional
        With one thread the blocks are computed in turn.

    Returns
    -------
    path : ndarray of shape (T,), int
        The concatenated MAP paths.
    log_joint : ndarray of shape (n_sequences,)
        ``log p(x, path)`` of each sequence.
    """
    T = int(n_frames)
    K = np.shape(startprob)[0]
    bounds = sequence_bounds(lengths, T)
    n_seq = bounds.shape[0] - 1
    first = np.zeros(T, dtype=np.bool_)
    last = np.zeros(T, dtype=np.bool_)
    nonempty = bounds[1:] > bounds[:-1]
    first[bounds[:-1][nonempty]] = True
    last[bounds[1:][nonempty] - 1] = True
    with np.errstate(divide="ignore"):
        log_start = np.log(np.asarray(startprob, dtype=np.float64))
        log_trans = np.ascontiguousarray(np.log(np.asarray(transmat, dtype=np.float64)))
    delta = np.empty(K)
    back = np.empty((T, K), dtype=np.int32)
    best = np.full(n_seq, -np.inf)
    final = np.zeros(n_seq, dtype=np.int64)
    seq = np.zeros(1, dtype=np.int64)
    # empty sequences are skipped by the recursion: point the counter past them as it goes
    order = np.flatnonzero(nonempty)
    found = np.empty(order.shape[0])
    found_final = np.zeros(order.shape[0], dtype=np.int64)
    blocks = [(lo, min(lo + _VITERBI_BLOCK, T)) for lo in range(0, T, _VITERBI_BLOCK)]

    def get(block):
        return np.ascontiguousarray(emit(*block), dtype=np.float64)

    helper = resolve_threads(n_threads) > 1 and len(blocks) > 1 and not in_pool_thread()
    pending = submit(get, blocks[0]) if helper else None
    for b, (lo, hi) in enumerate(blocks):
        logb = pending.result() if helper else get((lo, hi))
        if helper and b + 1 < len(blocks):
            pending = submit(get, blocks[b + 1])
        _viterbi_forward(log_start, log_trans, logb, lo, hi, first, last, delta, back, found, found_final, seq)
    best[order] = found
    final[order] = found_final
    path = np.empty(T, dtype=np.int64)
    _viterbi_backtrack(bounds, back, final, path)
    return path, best


def viterbi(
    startprob: np.ndarray, transmat: np.ndarray, log_frameprob: np.ndarray, lengths: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Most probable state path of each sequence (Viterbi, log space).

    Parameters
    ----------
    {hmm_params}

    Returns
    -------
    path : ndarray of shape (T,), int
        The concatenated MAP paths.
    log_joint : ndarray of shape (n_sequences,)
        ``log p(x, path)`` of each sequence.
    """
    log_frameprob = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    return viterbi_streamed(startprob, transmat, lambda lo, hi: log_frameprob[lo:hi], log_frameprob.shape[0],
                            lengths, n_threads=1)


_U64 = numba.uint64


@numba.njit(**_JIT)
def _rotl(x, k):
    return (x << _U64(k)) | (x >> _U64(64 - k))


@numba.njit(**_JIT)
def _xoshiro(s0, s1, s2, s3):
    """One step of xoshiro256** (Blackman and Vigna): a uniform on [0, 1) with 53 random bits, and the new state."""
    result = _rotl(s1 * _U64(5), 7) * _U64(9)
    t = s1 << _U64(17)
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, 45)
    return np.float64(result >> _U64(11)) * (1.0 / 9007199254740992.0), s0, s1, s2, s3


@numba.njit(**_JIT)
def _ffbs_range(filtered, transmat, last, state, out, t_lo, t_hi):
    """Backward sampling of frames ``t_hi - 1`` down to ``t_lo`` for every row (path) of ``out``.

    ``last[t]`` marks the last frame of a sequence, drawn from ``filtered[t]``
    alone; any other frame is drawn from ``filtered[t, i] transmat[i, j]``
    given the next frame's state ``j``. Per frame, the cumulative weights of
    every ``j`` are tabulated once; each path then takes the state whose
    cumulative-weight interval holds its scaled uniform, by counting (no
    data-dependent branches). Path ``s`` draws its uniforms from its own
    xoshiro256** state ``state[s]``, one per frame, in descending frame order.
    """
    K = transmat.shape[0]
    n = out.shape[0]
    cdf = np.empty((K, K))
    for t in range(t_hi - 1, t_lo - 1, -1):
        if last[t]:
            acc = 0.0
            for i in range(K):
                acc += filtered[t, i]
                for j in range(K):
                    cdf[i, j] = acc
        else:
            for j in range(K):
                cdf[0, j] = filtered[t, 0] * transmat[0, j]
            for i in range(1, K):
                f = filtered[t, i]
                for j in range(K):
                    cdf[i, j] = cdf[i - 1, j] + f * transmat[i, j]
        for s in range(n):
            u, state[s, 0], state[s, 1], state[s, 2], state[s, 3] = _xoshiro(
                state[s, 0], state[s, 1], state[s, 2], state[s, 3])
            j = 0 if last[t] else out[s, t + 1]
            x = u * cdf[K - 1, j]
            pick = 0
            for i in range(K - 1):
                pick += x >= cdf[i, j]
            if pick == K - 1:  # x rounded up to the total: step back over trailing zero weights
                while pick > 0 and cdf[pick, j] == cdf[pick - 1, j]:
                    pick -= 1
            out[s, t] = pick


@numba.njit(**_JIT)
def _ffbs_block(filtered, transmat, u, out, t_hi, t_lo, seq_end):
    """Backward sampling over frames t_hi-1 down to t_lo (u row r is frame t_lo + r), driven by given uniforms.

    Used by ``probspace.dask``'s chunked path draws, whose uniforms are keyed by sequence (not by thread block).
    """
    K = transmat.shape[0]
    n = out.shape[0]
    cdf = np.empty(K)
    table = np.empty((K, K))
    t = t_hi - 1
    if t_hi == seq_end:
        acc = 0.0
        for k in range(K):
            acc += filtered[t, k]
            cdf[k] = acc
        for s in range(n):
            x = u[t - t_lo, s] * acc
            k = 0
            while k < K - 1 and x >= cdf[k]:
                k += 1
            out[s, t] = k
        t -= 1
    while t >= t_lo:
        # table[j] = cumulative of filtered[t, i] * transmat[i, j] over i
        for j in range(K):
            acc = 0.0
            for i in range(K):
                acc += filtered[t, i] * transmat[i, j]
                table[j, i] = acc
        for s in range(n):
            j = out[s, t + 1]
            x = u[t - t_lo, s] * table[j, K - 1]
            k = 0
            while k < K - 1 and x >= table[j, k]:
                k += 1
            out[s, t] = k
        t -= 1


def sample_paths(
    filtered: np.ndarray,
    transmat: np.ndarray,
    lengths: np.ndarray | None,
    n_samples: int,
    rng: np.random.Generator,
    *,
    block: int = _GROUP_FRAMES,
    n_threads: int | None = None,
) -> np.ndarray:
    """Joint draws of whole state paths by forward filtering, backward sampling.

    ``z_T ~ p(z_T | x_{1:T})`` and then ``z_t | z_{t+1} ~ p(z_t | x_{1:t}) A[z_t, z_{t+1}]``
    (normalised), which draws from the exact joint posterior ``p(z_{1:T} | x)``.

    The draws are cut into independent blocks (at most 25 paths each, over
    groups of whole sequences of at least 65,536 frames), each with its own
    random stream (xoshiro256**, seeded from ``rng`` up front through
    :class:`numpy.random.SeedSequence`), and the blocks run in parallel
    threads. The cut depends only on ``n_samples`` and ``lengths``, so the
    result is the same, bit for bit, for every ``n_threads``.

    Parameters
    ----------
    filtered : ndarray of shape (T, K)
        Filtered distributions from :func:`forward_backward`.
    transmat : ndarray of shape (K, K)
        Transition matrix.
    lengths : ndarray of int or None
        Lengths of the concatenated sequences.
    n_samples : int
        Number of joint path draws.
    rng : numpy.random.Generator
        Seeds the random streams of the blocks (four 63-bit integers drawn from it).
    block : int, default=65536
        Frames per group of whole sequences (a group holds the sequences
        that start in one window of ``block`` frames); part of what a seed
        reproduces.
    n_threads : int, optional
        Threads to use (default: ``PROBSPACE_NUM_THREADS``, else every usable CPU).

    Returns
    -------
    ndarray of shape (n_samples, T)
        ``int8`` when ``K <= 127``, else ``int32``.
    """
    T, K = filtered.shape
    dtype = np.int8 if K <= 127 else np.int32
    out = np.empty((n_samples, T), dtype=dtype)
    filtered = np.ascontiguousarray(filtered, dtype=np.float64)
    transmat = np.ascontiguousarray(transmat, dtype=np.float64)
    bounds = sequence_bounds(lengths, T)
    last = np.zeros(T, dtype=np.bool_)
    last[bounds[1:][bounds[1:] > bounds[:-1]] - 1] = True
    n_chunks = -(-n_samples // _PATH_CHUNK)
    cuts = [n_samples * c // n_chunks for c in range(n_chunks + 1)]  # balanced blocks of paths
    groups = [(int(bounds[g0]), int(bounds[g1])) for g0, g1 in sequence_groups(bounds, block)]
    units = [(lo, hi, c0, c1) for lo, hi in groups for c0, c1 in zip(cuts[:-1], cuts[1:], strict=True)]
    root = np.random.SeedSequence([int(x) for x in rng.integers(0, 2**63, size=4)])
    states = [child.generate_state(4 * (c1 - c0), np.uint64).reshape(c1 - c0, 4)
              for child, (_, _, c0, c1) in zip(root.spawn(len(units)), units, strict=True)]
    threads = n_threads if n_samples * T >= _PARALLEL_MIN else 1
    def run(i):
        lo, hi, c0, c1 = units[i]
        _ffbs_range(filtered, transmat, last, states[i], out[c0:c1], lo, hi)

    map_blocks(run, range(len(units)), threads)
    return out


def path_log_prob(
    paths: np.ndarray,
    startprob: np.ndarray,
    transmat: np.ndarray,
    log_frameprob: np.ndarray,
    lengths: np.ndarray | None,
    log_likelihood: np.ndarray,
) -> np.ndarray:
    """Exact log posterior ``log p(z | x)`` of whole paths, per sequence.

    Parameters
    ----------
    paths : ndarray of int, shape (..., T)
        Whole state paths, laid out like the frames.
    {hmm_params}
    log_likelihood : ndarray of shape (n_sequences,)
        ``log p(x)`` per sequence.

    Returns
    -------
    ndarray of shape (..., n_sequences)
    """
    paths = np.asarray(paths, dtype=np.intp)
    T = log_frameprob.shape[0]
    bounds = sequence_bounds(lengths, T)
    with np.errstate(divide="ignore"):
        log_start, log_trans = np.log(startprob), np.log(transmat)
    emit = np.take_along_axis(np.broadcast_to(log_frameprob, paths.shape + (log_frameprob.shape[1],)),
                              paths[..., None], axis=-1)[..., 0]
    step = np.empty(paths.shape)
    step[..., 1:] = log_trans[paths[..., :-1], paths[..., 1:]]
    starts = bounds[:-1]
    step[..., starts] = log_start[paths[..., starts]]
    joint = np.add.reduceat(step + emit, starts, axis=-1)
    return joint - log_likelihood


def entropy(
    fb: ForwardBackward, startprob: np.ndarray, transmat: np.ndarray, log_frameprob: np.ndarray,
    lengths: np.ndarray | None,
) -> np.ndarray:
    """Exact entropy of the posterior over whole paths, per sequence (nats).

    ``H = log p(x) - E_q[log p(x, z)]``, with the expectation from the
    smoothed and pairwise marginals; terms with zero probability contribute 0.

    Parameters
    ----------
    fb : ForwardBackward
        Output of :func:`forward_backward` for the same arguments.
    {hmm_params}

    Returns
    -------
    ndarray of shape (n_sequences,)
    """
    T = log_frameprob.shape[0]
    bounds = sequence_bounds(lengths, T)
    with np.errstate(divide="ignore"):
        log_start, log_trans = np.log(startprob), np.log(transmat)
    with np.errstate(invalid="ignore"):
        return _entropy_terms(fb, log_start, log_trans, log_frameprob, bounds)


def _entropy_terms(fb, log_start, log_trans, log_frameprob, bounds):
    first = fb.marginals[bounds[:-1]]
    e_start = np.where(first > 0, first * log_start, 0.0).sum(axis=1)
    e_trans = np.where(fb.transition_counts > 0, fb.transition_counts * log_trans, 0.0).sum(axis=(1, 2))
    per_frame = np.where(fb.marginals > 0, fb.marginals * log_frameprob, 0.0).sum(axis=1)
    e_emit = np.add.reduceat(per_frame, bounds[:-1])
    return fb.log_likelihood - (e_start + e_trans + e_emit)


def pairwise_marginals(fb: ForwardBackward, transmat: np.ndarray, log_frameprob: np.ndarray,
                       lengths: np.ndarray | None) -> np.ndarray:
    """Pairwise marginals ``p(z_t = i, z_{t+1} = j | x)`` of consecutive frames.

    Parameters
    ----------
    fb : ForwardBackward
        Output of :func:`forward_backward`.
    transmat : ndarray of shape (K, K)
        Transition matrix.
    log_frameprob : ndarray of shape (T, K)
        Emission log-likelihoods (used for their shape).
    lengths : ndarray of int or None
        Lengths of the concatenated sequences.

    Returns
    -------
    ndarray of shape (T, K, K)
        Entry ``t`` pairs frame ``t`` with ``t + 1``; the last frame of each
        sequence has an all-zero entry.
    """
    T, K = fb.marginals.shape
    bounds = sequence_bounds(lengths, T)
    out = np.zeros((T, K, K))
    pred = fb.filtered[:-1] @ transmat  # p(z_{t+1} | x_{1:t})
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pred > 0, fb.marginals[1:] / pred, 0.0)
    out[:-1] = fb.filtered[:-1, :, None] * transmat[None] * ratio[:, None, :]
    out[bounds[1:-1] - 1] = 0.0
    out[-1] = 0.0
    return out


@numba.njit(**_JIT)
def _chain_kernel(p0, transmat, u, out):
    K = p0.shape[1]
    n_paths, T = out.shape
    for s in range(n_paths):
        acc = 0.0
        x = u[s, 0]
        k = K - 1
        for i in range(K):
            acc += p0[s, i]
            if x < acc:
                k = i
                break
        out[s, 0] = k
        for t in range(1, T):
            prev = out[s, t - 1]
            acc = 0.0
            x = u[s, t]
            k = K - 1
            for i in range(K):
                acc += transmat[prev, i]
                if x < acc:
                    k = i
                    break
            out[s, t] = k


def sample_chain(initial: np.ndarray, transmat: np.ndarray, n_steps: int, rng: np.random.Generator) -> np.ndarray:
    """Draw state paths from a Markov chain.

    Parameters
    ----------
    initial : ndarray of shape (K,) or (n_paths, K)
        Distribution of the first state (one per path when 2-D).
    transmat : ndarray of shape (K, K)
        Transition matrix.
    n_steps : int
        Length of each path.
    rng : numpy.random.Generator
        Source of the uniforms.

    Returns
    -------
    ndarray of shape (n_steps,) or (n_paths, n_steps), int64
    """
    p0 = np.atleast_2d(np.asarray(initial, dtype=np.float64))
    out = np.empty((p0.shape[0], n_steps), dtype=np.int64)
    _chain_kernel(np.ascontiguousarray(p0), np.ascontiguousarray(transmat, dtype=np.float64),
                  rng.random((p0.shape[0], n_steps)), out)
    return out[0] if np.ndim(initial) == 1 else out


for _func in (forward_backward, viterbi, path_log_prob, entropy):
    _func.__doc__ = fill(_func.__doc__, hmm_params=_HMM_PARAMS)
