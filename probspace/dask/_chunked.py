"""Exact inference on one long sequence split into chunks: transfer matrices, a boundary scan, parallel smoothing.

For a chunk covering frames ``[a, b)``, the transfer matrix
``M[i, j] = p(x_a..x_{b-1}, z_{b-1} = j | z_{a-1} = i)`` serves both directions:
the filtered distribution at the chunk's end is ``alpha_{a-1} M`` (normalised)
and the backward message before it is ``M beta_{b-1}``. Each chunk computes its
``M`` independently (``K`` scaled forward passes, one per state at ``a - 1``;
row ``i`` is stored normalised with its log scale, so no row underflows), a
cheap sequential scan over the ``C`` chunks gives the boundary messages, and
each chunk then smooths its own frames from its two boundary messages. The
result equals the monolithic forward-backward of
:mod:`probspace.inference._hmm` to rounding.

Joint path draws are exact: the states at the chunk ends are drawn first,
backwards, from ``p(z_{a-1} = i | z_{b-1} = j, x_{<b}) ∝ alpha_{a-1}(i) M[i, j]``;
then each chunk draws its interior given both ends by forward filtering from
its start state and backward sampling towards its fixed end state.
"""

from __future__ import annotations

import numbers
import operator
from typing import Any

import dask
import dask.array as da
import numba
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph

from ..inference import _hmm
from ..posteriors import MarkovChain
from ._keyed import keyed_generator

__all__ = ["ChunkedMarkovChain", "chunked_forward_backward"]

_JIT = {"cache": True, "nogil": True}


@numba.njit(**_JIT)
def _forward_rows(P0, transmat, frame, shift, keep):
    """Scaled forward passes from each row of P0 (R, K): last filtered rows, log-likelihoods, and (keep) all."""
    R, K = P0.shape
    T = frame.shape[0]
    last = np.zeros((R, K))
    logs = np.empty(R)
    filt = np.zeros((R, T if keep else 1, K))
    v = np.empty(K)
    w = np.empty(K)
    for r in range(R):
        total = 0.0
        s = 0.0
        for k in range(K):
            v[k] = P0[r, k] * frame[0, k]
            s += v[k]
        ok = s > 0.0
        for t in range(T):
            if t > 0:
                s = 0.0
                for j in range(K):
                    acc = 0.0
                    for i in range(K):
                        acc += v[i] * transmat[i, j]
                    w[j] = acc * frame[t, j]
                    s += w[j]
                for j in range(K):
                    v[j] = w[j]
                if not (s > 0.0):
                    ok = False
            if not ok:
                break
            total += np.log(s) + shift[t]
            for k in range(K):
                v[k] /= s
                if keep:
                    filt[r, t, k] = v[k]
        if ok:
            logs[r] = total
            for k in range(K):
                last[r, k] = v[k]
        else:
            logs[r] = -np.inf
    return last, logs, filt


@numba.njit(**_JIT)
def _smooth_chunk(p0, transmat, frame, shift, beta_end, prev, marginals, filtered, logpred, counts):
    """Scaled forward-backward on one chunk from predictive p0, ending in beta_end; prev: filtered before it."""
    T, K = frame.shape
    c = np.empty(T)
    for t in range(T):
        s = 0.0
        for j in range(K):
            if t == 0:
                v = p0[j] * frame[0, j]
            else:
                acc = 0.0
                for i in range(K):
                    acc += filtered[t - 1, i] * transmat[i, j]
                v = acc * frame[t, j]
            filtered[t, j] = v
            s += v
        c[t] = s
        for j in range(K):
            filtered[t, j] /= s
        logpred[t] = np.log(s) + shift[t]
    beta = np.empty(K)
    norm = 0.0
    for k in range(K):
        norm += filtered[T - 1, k] * beta_end[k]
    for k in range(K):
        beta[k] = beta_end[k] / norm
        marginals[T - 1, k] = filtered[T - 1, k] * beta[k]
    nxt = np.empty(K)
    for t in range(T - 2, -1, -1):
        for j in range(K):
            nxt[j] = frame[t + 1, j] * beta[j] / c[t + 1]
        for i in range(K):
            acc = 0.0
            for j in range(K):
                w = transmat[i, j] * nxt[j]
                acc += w
                counts[i, j] += filtered[t, i] * w
            beta[i] = acc
        for i in range(K):
            marginals[t, i] = filtered[t, i] * beta[i]
    if prev.shape[0] == K:  # the transition into the chunk, from the last frame of the one before
        for j in range(K):
            nxt[j] = frame[0, j] * beta[j] / c[0]
        for i in range(K):
            for j in range(K):
                counts[i, j] += prev[i] * transmat[i, j] * nxt[j]


def _scaled(log_frameprob: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lf = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    shift = lf.max(axis=1)
    shift = np.where(np.isfinite(shift), shift, 0.0)
    return np.exp(lf - shift[:, None]), shift


def _start_rows(startprob, transmat, first):
    return np.atleast_2d(startprob) if first else np.ascontiguousarray(transmat)


def chunk_transfer(startprob: np.ndarray, transmat: np.ndarray, log_frameprob: np.ndarray,
                   first: bool) -> tuple[np.ndarray, np.ndarray]:
    """Normalised transfer rows and their log scales for one chunk.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial probabilities.
    transmat : ndarray of shape (K, K)
        Transition matrix.
    log_frameprob : ndarray of shape (T_c, K)
        The chunk's emission log-likelihoods.
    first : bool
        Whether this is the first chunk (one row, from ``startprob``).

    Returns
    -------
    rows : ndarray of shape (R, K)
        Row ``i``: ``p(z_{b-1} = j | z_{a-1} = i, x_chunk)`` (``R = 1`` for the first chunk).
    log_scale : ndarray of shape (R,)
        ``log p(x_chunk | z_{a-1} = i)`` (``-inf`` where impossible).
    """
    frame, shift = _scaled(log_frameprob)
    last, logs, _ = _forward_rows(_start_rows(startprob, transmat, first), transmat, frame, shift, False)
    return last, logs


def _logsumexp(v: np.ndarray) -> tuple[float, np.ndarray]:
    m = np.max(v)
    if not np.isfinite(m):
        raise ValueError("The observations have zero probability under the model (log-likelihood is -inf).")
    e = np.exp(v - m)
    return m + np.log(e.sum()), e / e.sum()


def boundary_scan(transfers: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, float]:
    """Return the filtered and backward messages at each chunk's last frame, and the log-likelihood.

    Parameters
    ----------
    transfers : list of (rows, log_scale)
        :func:`chunk_transfer` of each chunk, in order.

    Returns
    -------
    alpha_end : ndarray of shape (C, K)
        Filtered distribution at the last frame of each chunk.
    beta_end : ndarray of shape (C, K)
        Backward message at the last frame of each chunk (scaled to max 1).
    log_likelihood : float
    """
    rows0, logs0 = transfers[0]
    C, K = len(transfers), rows0.shape[1]
    alpha = np.empty((C, K))
    if not np.isfinite(logs0[0]):
        raise ValueError("The observations have zero probability under the model (log-likelihood is -inf).")
    alpha[0] = rows0[0]
    total = float(logs0[0])
    with np.errstate(divide="ignore"):
        for c in range(1, C):
            rows, logs = transfers[c]
            inc, w = _logsumexp(np.log(alpha[c - 1]) + logs)
            total += inc
            alpha[c] = w @ rows
        beta = np.ones((C, K))
        for c in range(C - 1, 0, -1):
            rows, logs = transfers[c]
            lb = logs + np.log(rows @ beta[c])
            beta[c - 1] = np.exp(lb - np.max(lb))
    return alpha, beta, total


def chunk_smooth(startprob, transmat, log_frameprob, scan, c):
    """Smooth one chunk given the boundary messages: marginals, filtered, log-predictive, counts, emission term."""
    alpha, beta, _ = scan
    frame, shift = _scaled(log_frameprob)
    T, K = frame.shape
    prev = alpha[c - 1] if c > 0 else np.zeros(0)
    p0 = startprob if c == 0 else prev @ transmat
    marginals, filtered, logpred, counts = np.empty((T, K)), np.empty((T, K)), np.empty(T), np.zeros((K, K))
    _smooth_chunk(np.ascontiguousarray(p0, dtype=np.float64), transmat, frame, shift, beta[c], prev,
                  marginals, filtered, logpred, counts)
    with np.errstate(invalid="ignore"):
        e_emit = float(np.where(marginals > 0, marginals * log_frameprob, 0.0).sum())
    return marginals, filtered, logpred, counts, e_emit


def boundary_states(transfers, scan, n, rng) -> np.ndarray:
    """Joint draws of the states at each chunk's last frame, shape (n, C)."""
    alpha, _, _ = scan
    C, K = alpha.shape
    z = np.empty((n, C), dtype=np.int64)
    z[:, -1] = rng.choice(K, size=n, p=alpha[-1] / alpha[-1].sum())
    with np.errstate(divide="ignore"):
        for c in range(C - 1, 0, -1):
            rows, logs = transfers[c]
            logw = np.log(alpha[c - 1])[:, None] + logs[:, None] + np.log(rows)  # (i, j)
            for j in range(K):
                pick = z[:, c] == j
                if pick.any():
                    _, p = _logsumexp(logw[:, j])
                    z[pick, c - 1] = rng.choice(K, size=int(pick.sum()), p=p)
    return z


def chunk_paths(startprob, transmat, log_frameprob, ends, c, rng) -> np.ndarray:
    """Interior paths of chunk ``c`` given its start (end of chunk ``c - 1``) and end states, shape (n, T_c)."""
    frame, shift = _scaled(log_frameprob)
    T, K = frame.shape
    n = ends.shape[0]
    out = np.empty((n, T), dtype=np.int8 if K <= 127 else np.int32)
    out[:, -1] = ends[:, c]
    starts = np.zeros(n, dtype=np.int64) if c == 0 else ends[:, c - 1]
    _, _, filt = _forward_rows(_start_rows(startprob, transmat, c == 0), transmat, frame, shift, True)
    u = rng.random((max(T - 1, 0), n))
    for i in np.unique(starts):
        pick = np.flatnonzero(starts == i)
        sub = np.ascontiguousarray(out[pick])
        if T > 1:
            _hmm._ffbs_block(np.ascontiguousarray(filt[i]), transmat, np.ascontiguousarray(u[:, pick]), sub,
                             T - 1, 0, -1)
        out[pick] = sub
    return out


def _entropy(startprob, transmat, log_frameprob_first, first_marginals, counts, e_emit, loglik):
    with np.errstate(divide="ignore", invalid="ignore"):
        e_start = np.where(first_marginals > 0, first_marginals * np.log(startprob), 0.0).sum()
        e_trans = np.where(counts > 0, counts * np.log(transmat), 0.0).sum()
    return np.array([loglik - (e_start + e_trans + e_emit)])


def scan_tasks(token: str, startprob: Any, transmat: Any, frames: list) -> tuple[dict, str]:
    """Graph tasks of one sequence's chunk transfers and boundary scan, and the scan's key.

    ``frames`` are the keys (or tasks) of the chunks' emission log-likelihoods;
    ``startprob``/``transmat`` values or tasks. One flat dict: built from
    delayed calls, each call taking the scan would merge its whole graph
    again, quadratic in the number of chunks. The transfer of chunk ``c`` has
    key ``("chunk-transfer-" + token, c)``.
    """
    tr, sc = f"chunk-transfer-{token}", f"boundary-scan-{token}"
    dsk: dict = {(tr, c): (chunk_transfer, startprob, transmat, f, c == 0) for c, f in enumerate(frames)}
    dsk[sc] = (boundary_scan, [(tr, c) for c in range(len(frames))])
    return dsk, sc


class ChunkedMarkovChain:
    """Exact posterior over the state path of one long sequence, spread over the chunks of a dask array.

    Parallel per-chunk transfer matrices, a sequential scan of the ``C``
    boundary messages, then parallel smoothing of each chunk (see the module
    notes). Summaries are dask arrays; joint path draws are exact.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial probabilities.
    transmat : ndarray of shape (K, K)
        Transition matrix.
    log_frameprob : dask.array.Array of shape (T, K)
        Emission log-likelihoods, chunked along time (features in one chunk).
    method : str, default="exact"
        Reported as the posterior's ``method``.
    random_state : None, int or numpy.random.Generator
        Source of seeds for :meth:`sample` calls without their own.

    Attributes
    ----------
    marginals : dask.array.Array of shape (T, K)
        Smoothed marginals ``p(z_t | x_{1:T})`` (also ``mean``).
    filtered : dask.array.Array of shape (T, K)
        Filtered distributions ``p(z_t | x_{1:t})``.
    log_predictive : dask.array.Array of shape (T,)
        One-step-ahead terms ``log p(x_t | x_{<t})``.
    log_likelihood : dask.array.Array of shape (1,)
        ``log p(x_{1:T})``.
    transition_counts : dask.array.Array of shape (K, K)
        Expected number of ``i -> j`` transitions.

    See Also
    --------
    probspace.MarkovChain : The in-memory posterior (:meth:`compute`).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from probspace.dask import ChunkedMarkovChain
    >>> logb = np.log(np.random.default_rng(0).uniform(size=(30, 2)))
    >>> A = np.array([[0.9, 0.1], [0.2, 0.8]])
    >>> post = ChunkedMarkovChain(np.array([0.5, 0.5]), A, da.from_array(logb, chunks=(7, 2)))
    >>> from probspace import MarkovChain
    >>> ref = MarkovChain(np.array([0.5, 0.5]), A, logb)
    >>> bool(np.allclose(post.marginals.compute(), ref.marginals, rtol=0, atol=1e-12))
    True
    >>> post.sample(4, random_state=0).shape
    (4, 30)
    """

    def __init__(self, startprob: Any, transmat: Any, log_frameprob: da.Array, *, method: str = "exact",
                 random_state: Any = None) -> None:
        self.startprob = np.asarray(startprob, dtype=np.float64)
        self.transmat = np.ascontiguousarray(transmat, dtype=np.float64)
        if not hasattr(log_frameprob, "to_delayed") or log_frameprob.ndim != 2:
            raise ValueError("log_frameprob must be a 2-D dask array (n_frames, n_states).")
        K = self.startprob.shape[0]
        if log_frameprob.shape[1] != K or self.transmat.shape != (K, K):
            raise ValueError(f"startprob {self.startprob.shape}, transmat {self.transmat.shape} and "
                             f"log_frameprob {log_frameprob.shape} disagree on the number of states.")
        self.log_frameprob = log_frameprob.rechunk({1: -1})
        self.method = method
        self._rng = random_state if isinstance(random_state, np.random.Generator) else np.random.default_rng(
            random_state)
        self._build()

    @classmethod
    def from_model(cls, model: Any, X: da.Array) -> ChunkedMarkovChain:
        """Build the posterior of a fitted HMM over one sequence ``X`` (a dask array chunked along time).

        Parameters
        ----------
        model : HMM family
            A fitted probspace HMM (EM or variational point fit).
        X : dask.array.Array of shape (n_frames, n_features)
            One sequence.

        Returns
        -------
        ChunkedMarkovChain
        """
        if getattr(model, "mcmc_", None) is not None:
            raise NotImplementedError(f"{type(model).__name__} fitted by MCMC averages over parameter draws; the "
                                      "chunked posterior takes one parameter set (fit with sampler=None).")
        K = model.n_components
        logb = X.map_blocks(_block_log_frameprob, model, chunks=(X.chunks[0], (K,)), dtype=np.float64)
        return cls(model.startprob_, model.transmat_, logb, method="variational" if model.bayesian else "exact",
                   random_state=int(model.rng_.integers(2**63)))

    def _build(self) -> None:
        # One flat graph layer for the transfers, the scan and the smoothing passes: built with delayed calls,
        # each call would merge the scan's graph (all chunks) again, quadratic in the number of chunks.
        logb = self.log_frameprob
        pi, A = self.startprob, self.transmat
        K = A.shape[0]
        sizes = logb.chunks[0]
        frames = [k for (k,) in logb.__dask_keys__()]
        C = len(frames)
        token = dask.base.tokenize(logb, pi, A)
        tr, sm = f"chunk-transfer-{token}", f"chunk-smooth-{token}"
        dsk, sc = scan_tasks(token, pi, A, frames)
        dsk.update({(sm, c): (chunk_smooth, pi, A, f, sc, c) for c, f in enumerate(frames)})
        dsk[f"counts-{token}"] = (sum, [(operator.getitem, (sm, c), 3) for c in range(C)])
        dsk[f"emit-{token}"] = (sum, [(operator.getitem, (sm, c), 4) for c in range(C)])
        graph = HighLevelGraph.from_collections(sm, dsk, dependencies=[logb])
        core = Delayed(sc, graph, layer=sm)
        fields = {"marginals": (0, (K,)), "filtered": (1, (K,)), "log_predictive": (2, ())}
        for name, (i, tail) in fields.items():
            key = f"{name}-{token}"
            part = {(key, c, *((0,) * len(tail))): (operator.getitem, (sm, c), i) for c in range(C)}
            chunks = (sizes, *((t,) for t in tail))
            layer = HighLevelGraph.from_collections(key, part, dependencies=[core])
            setattr(self, name, da.Array(layer, key, chunks, dtype=np.float64))
        self._frames = frames
        self._transfers = [(tr, c) for c in range(C)]
        self._scan = sc
        counts = Delayed(f"counts-{token}", graph, layer=sm)
        self.transition_counts = da.from_delayed(counts, (K, K), dtype=float)
        self.log_likelihood = da.from_delayed(dask.delayed(np.atleast_1d)(core[2]), (1,), dtype=float)
        first = self.marginals[0]
        e_emit = Delayed(f"emit-{token}", graph, layer=sm)
        self._entropy = da.from_delayed(
            dask.delayed(_entropy)(pi, A, None, first, self.transition_counts, e_emit, core[2]), (1,),
            dtype=float)

    @property
    def mean(self) -> da.Array:
        """Smoothed marginals (the expectation of the one-hot state)."""
        return self.marginals

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``(1,)``: one sequence."""
        return (1,)

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(n_frames,)``: one state path."""
        return (self.log_frameprob.shape[0],)

    def entropy(self) -> da.Array:
        """Exact entropy of the posterior over whole paths (nats).

        Returns
        -------
        dask.array.Array of shape (1,)
        """
        return self._entropy

    def sample(self, n_samples: int = 1, *, random_state: Any = None) -> da.Array:
        """Exact joint path draws: boundary states first, then each chunk's interior given both ends.

        Parameters
        ----------
        n_samples : int, default=1
            Number of paths.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call. The same seed gives the same paths for the
            same chunking, whichever scheduler or number of workers runs it.

        Returns
        -------
        dask.array.Array of shape (n_samples, n_frames)
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"'n_samples' must be a positive int; got {n_samples!r}.")
        rng = self._rng if random_state is None else np.random.default_rng(random_state)
        seed = int(rng.integers(2**63))
        K = self.transmat.shape[0]
        dtype = np.int8 if K <= 127 else np.int32
        token = dask.base.tokenize(self._scan, seed, int(n_samples))
        ends, name = f"boundary-states-{token}", f"chunk-paths-{token}"
        dsk: dict = {ends: (boundary_states, list(self._transfers), self._scan, int(n_samples),
                            keyed_generator(seed, 0))}
        dsk.update({(name, 0, c): (chunk_paths, self.startprob, self.transmat, f, ends, c, keyed_generator(seed, c + 1))
                    for c, f in enumerate(self._frames)})
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[self.marginals])
        return da.Array(graph, name, ((int(n_samples),), self.log_frameprob.chunks[0]), dtype=dtype)

    def compute(self, **kwargs: Any) -> MarkovChain:
        """Return the in-memory :class:`~probspace.MarkovChain` of the same sequence.

        Parameters
        ----------
        **kwargs
            Passed to :meth:`dask.array.Array.compute`.

        Returns
        -------
        MarkovChain
        """
        return MarkovChain(self.startprob, self.transmat, self.log_frameprob.compute(**kwargs), method=self.method,
                           random_state=self._rng)


def _block_log_frameprob(block, model):
    X, _ = model._check_input(np.asarray(block), None)
    return model._log_frameprob(X)


def chunked_forward_backward(startprob: Any, transmat: Any, log_frameprob: Any, **compute_kwargs: Any
                             ) -> _hmm.ForwardBackward:
    """Forward-backward of one sequence computed chunk by chunk (exact); the result in memory.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial probabilities.
    transmat : ndarray of shape (K, K)
        Transition matrix.
    log_frameprob : dask.array.Array of shape (T, K)
        Emission log-likelihoods, chunked along time.
    **compute_kwargs
        Passed to :func:`dask.compute` (``scheduler=`` ...).

    Returns
    -------
    probspace.inference._hmm.ForwardBackward
        As the monolithic ``forward_backward`` for one sequence.
    """
    post = ChunkedMarkovChain(startprob, transmat, log_frameprob)
    m, f, ll, counts, lp = dask.compute(post.marginals, post.filtered, post.log_likelihood, post.transition_counts,
                                        post.log_predictive, **compute_kwargs)
    return _hmm.ForwardBackward(m, f, ll, counts[None], lp)
