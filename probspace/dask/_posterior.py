"""Lazy posteriors over dask arrays: one in-memory posterior per block, built only when computed."""

from __future__ import annotations

import numbers
import pickle
from typing import Any

import dask
import dask.array as da
import numpy as np

from .._validation import check_lengths
from ..inference import _hmm
from ..posteriors import Bernoulli, Categorical, DiagonalNormal, Dirichlet, MarkovChain, MultivariateNormal
from ._keyed import keyed_generator, keyed_normals, keyed_uniforms

__all__ = ["LazyPosterior", "chunk_sequences", "posterior"]

#: Posterior attributes laid out one row per observation (per frame for sequences).
_ROW_FIELDS = ("mean", "variance", "mode", "probs", "marginals", "filtered", "log_predictive", "concentration", "loc")


#: Objects up to this size (pickled) travel inside every task instead of as one graph node.
_EMBED_BYTES = 1 << 20


def shared(obj: Any) -> Any:
    """Return ``obj`` for the tasks of a graph: itself when small, else one ``dask.delayed`` node.

    Embedded in every task, a small object (a model, the parameters of an EM
    step) leaves each task depending on its data block alone, so the
    distributed scheduler runs it where that block lives; as a shared node,
    every task would also depend on the worker that holds the node, which
    tilts the placement (and work stealing) towards that worker. A large
    object is sent once per worker as a node.
    """
    try:
        small = len(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)) <= _EMBED_BYTES
    except Exception:  # unpicklable by pickle (cloudpickle may still send it as a node)
        small = False
    return obj if small else dask.delayed(obj, pure=True, traverse=False)


def is_dask_array(X: Any) -> bool:
    """Whether ``X`` is a dask array (checked without importing dask)."""
    return type(X).__module__.split(".")[0] == "dask" and hasattr(X, "chunks")


def check_dask_rows(model: Any, X: Any, name: str = "X") -> da.Array:
    """Validate a 2-D dask array with known row chunks; return it with the features in one chunk."""
    if not is_dask_array(X):
        raise TypeError(f"{name} must be a dask.array.Array; got {type(X).__name__}.")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features); got a dask array of shape {X.shape}.")
    if any(np.isnan(c) for c in X.chunks[0]) or np.isnan(X.shape[1]):
        raise ValueError(f"{name} has unknown chunk sizes; call {name}.compute_chunk_sizes() first.")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 rows); at least one observation is needed.")
    model._check_fitted()
    n_in = getattr(model, "n_features_in_", None)
    if n_in is not None and X.shape[1] != n_in:
        raise ValueError(f"{name} has {X.shape[1]} features, but {type(model).__name__} is expecting {n_in} "
                         "features as input.")
    return X.rechunk({1: -1}) if X.numblocks[1] > 1 else X


def chunk_sequences(X: Any, lengths: Any, chunk_size: int | None = None) -> da.Array:
    """Chunk concatenated sequences into blocks that end on sequence boundaries.

    Each block holds whole sequences and about ``chunk_size`` rows (a
    sequence longer than ``chunk_size`` is a block of its own), so each block
    is an independent set of sequences whose ``lengths`` follow from the chunk
    grid: :func:`block_lengths` recovers them.

    Parameters
    ----------
    X : array-like or dask.array.Array of shape (n_samples, n_features)
        Sequences concatenated along the first axis.
    lengths : array-like of int
        Lengths of the sequences; they add up to ``n_samples``.
    chunk_size : int, optional
        Target rows per block (default: the first row chunk of a dask ``X``,
        else 100,000).

    Returns
    -------
    dask.array.Array
        ``X`` rechunked on sequence boundaries.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.dask import chunk_sequences
    >>> X = chunk_sequences(np.zeros((10, 1)), [3, 3, 4], chunk_size=6)
    >>> X.chunks[0]
    (6, 4)
    """
    if not is_dask_array(X):
        X = da.from_array(np.asarray(X))
    lengths = check_lengths(lengths, X.shape[0], sequential=True, owner="chunk_sequences")
    if chunk_size is None:
        chunk_size = int(X.chunks[0][0]) if X.numblocks[0] > 1 else 100_000
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, numbers.Integral) or chunk_size < 1:
        raise ValueError(f"'chunk_size' must be a positive int; got {chunk_size!r}.")
    chunks, rows = [], 0
    for n in lengths:
        if rows and rows + n > chunk_size:
            chunks.append(rows)
            rows = 0
        rows += int(n)
    chunks.append(rows)
    return X.rechunk({0: tuple(chunks), 1: -1})


def block_lengths(row_chunks: tuple[int, ...], lengths: np.ndarray) -> list[np.ndarray] | None:
    """Return the ``lengths`` of each block, or None where a block boundary falls inside a sequence."""
    ends = np.cumsum(lengths)
    out, first = [], 0
    for stop in np.cumsum(row_chunks):
        last = int(np.searchsorted(ends, stop))
        if last >= len(ends) or ends[last] != stop:
            return None
        out.append(np.asarray(lengths[first:last + 1], dtype=np.int64))
        first = last + 1
    return out


def _has(post: Any, name: str) -> bool:
    try:
        getattr(post, name)
    except (AttributeError, NotImplementedError):
        return False
    return True


def _block_posterior(model, block, lengths):
    X, lengths = model._check_input(np.asarray(block), lengths)
    return model._posterior(X, lengths)


def _block_field(model, block, lengths, name):
    value = getattr(_block_posterior(model, block, lengths), name)
    return np.asarray(value() if callable(value) else value)


def _block_call(block, model, lengths, func, *args, block_id=None):
    return func(model, block, None if lengths is None else lengths[block_id[0]], *args)


def _block_log_likelihood(model, block, lengths):
    X, lengths = model._check_input(np.asarray(block), lengths)
    return np.asarray(model._log_likelihood(X, lengths))


def _probe(model, X, lengths):
    """Return the in-memory posterior of a little data, for the layout (``method``, shapes, dtypes) of the lazy one.

    Rows of zeros first (no round trip to the cluster); where the model
    rejects them (zeros outside its support, a sequence too short), the first
    row (the first sequence) of ``X``.
    """
    n = 1 if lengths is None else min(int(lengths[0][0]), 8)
    try:
        return _block_posterior(model, np.zeros((n, X.shape[1]), dtype=X.dtype), None if lengths is None else [n])
    except (ValueError, FloatingPointError):
        first = np.asarray(X[: 1 if lengths is None else int(lengths[0][0])].compute())
        return _block_posterior(model, first, None if lengths is None else lengths[0][:1])


def keyed_sample(post: Any, seed: int, first: int, n: int) -> np.ndarray:
    """Draws from an in-memory posterior whose batch entries have global indices ``first, first + 1, ...``.

    Each entry's draws depend on ``(seed, global index)`` only (see
    :mod:`probspace.dask._keyed`), so a dataset gives the same draws however
    it is chunked and whichever worker computes a block.

    Parameters
    ----------
    post : Posterior
        A ``Categorical``, ``Bernoulli``, ``MultivariateNormal``, ``DiagonalNormal``,
        ``Dirichlet`` or ``MarkovChain``.
    seed : int
        Root seed.
    first : int
        Global index of the first observation (first sequence for a ``MarkovChain``).
    n : int
        Number of joint draws.

    Returns
    -------
    ndarray of shape (n, *batch_shape, *event_shape)
        Laid out as the posterior's own ``sample(n)``.
    """
    if isinstance(post, Categorical):
        probs = post.probs
        idx = np.arange(first, first + probs.shape[0])
        cdf = np.cumsum(probs, axis=1)
        x = keyed_uniforms(seed, idx, n) * cdf[:, -1]
        labels = (x[..., None] >= cdf[None, :, :-1]).sum(axis=-1)
        return labels.astype(np.int8 if probs.shape[1] <= 127 else np.int32)
    if isinstance(post, Bernoulli):
        probs = post.probs
        idx = np.arange(first, first + probs.shape[0])
        u = np.stack([keyed_uniforms(seed, idx, n, j) for j in range(probs.shape[1])], axis=-1)
        return (u < probs).astype(np.float64)
    if isinstance(post, MultivariateNormal):
        loc = post.loc
        eps = keyed_normals(seed, np.arange(first, first + loc.shape[0]), n, loc.shape[1])
        # einsum's own loops (not BLAS): each row's arithmetic is the same whatever the block size
        if post.shared:
            return loc + np.einsum("ij,snj->sni", post.scale_tril, eps, optimize=False)
        return loc + np.einsum("nij,snj->sni", post.scale_tril, eps, optimize=False)
    if isinstance(post, DiagonalNormal):
        eps = keyed_normals(seed, np.arange(first, first + post.loc.shape[0]), n, post.loc.shape[1])
        return post.loc + post.scale * eps
    if isinstance(post, Dirichlet):
        alpha = post.concentration
        out = np.empty((n,) + alpha.shape)
        for i, a in enumerate(alpha):
            out[:, i] = keyed_generator(seed, first + i).dirichlet(a, size=n)
        return out
    if isinstance(post, MarkovChain):
        T, K = post.filtered.shape
        out = np.empty((n, T), dtype=np.int8 if K <= 127 else np.int32)
        bounds = _hmm.sequence_bounds(post.lengths, T)
        for s in range(len(post.lengths)):
            lo, hi = bounds[s], bounds[s + 1]
            out[:, lo:hi] = _hmm.sample_paths(post.filtered[lo:hi], post.transmat, None, n,
                                              keyed_generator(seed, first + s))
        return out
    raise NotImplementedError(f"Lazy draws are not implemented for {type(post).__name__} posteriors; "
                              "compute() the posterior and sample it in memory.")


def _block_sample(model, block, lengths, first, seed, n):
    return keyed_sample(_block_posterior(model, block, lengths), seed, first, n)


def root_seed(model: Any, random_state: Any) -> int:
    """Return an int seed: the given int, one drawn from a given generator, or one from the model's ``rng_``."""
    if random_state is None:
        return int(model.rng_.integers(2**63))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**63))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool) and random_state >= 0:
        return int(random_state)
    raise ValueError(f"'random_state' must be None, a non-negative int or a numpy.random.Generator; "
                     f"got {random_state!r}.")


class LazyPosterior:
    """A posterior over the latent variables of a dask array, computed block by block.

    Returned by ``model.posterior(X)`` when ``X`` is a :class:`dask.array.Array`
    (or by :func:`probspace.dask.posterior`). Every block of rows (of whole
    sequences for HMMs) is an independent piece of the posterior: its
    summaries are dask arrays, built only when computed, and equal to the
    in-memory posterior's to rounding. Draws are keyed by each observation's
    (sequence's) global index, so they do not depend on the chunking or on
    the number of workers.

    Parameters
    ----------
    model : LatentModel
        A fitted model.
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked along rows (on sequence boundaries for HMMs).
    lengths : list of ndarray or None
        The sequence lengths of each block (sequential families), else None.

    Attributes
    ----------
    X : dask.array.Array
        The data, features in one chunk.
    block_lengths : list of ndarray or None
        Sequence lengths of each block.
    method : str
        How the posterior was obtained (``"exact"``, ``"variational"``...).
    batch_shape, event_shape : tuple of int
        As the in-memory posterior's.

    See Also
    --------
    probspace.dask.posterior : The function that builds it.

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from probspace import GaussianMixture
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> gm = GaussianMixture(2, random_state=0).fit(X)
    >>> post = gm.posterior(da.from_array(X, chunks=50))
    >>> post.mean.chunks
    ((50, 50, 50, 50), (2,))
    >>> bool(np.allclose(post.mean.compute(), gm.posterior(X).mean, rtol=0, atol=1e-12))
    True
    >>> post.sample(3, random_state=1).shape
    (3, 200)
    """

    def __init__(self, model: Any, X: da.Array, lengths: list[np.ndarray] | None) -> None:
        self.model = model
        self.X = X
        self.block_lengths = lengths
        self._model = shared(model)
        probe = _probe(model, X, lengths)
        self.method = probe.method
        self._sequential = lengths is not None
        n_batch = int(sum(len(L) for L in lengths)) if self._sequential else X.shape[0]
        self.batch_shape = (n_batch,)
        self.event_shape = probe.event_shape
        self._probe = probe
        self._seed = int(model.rng_.integers(2**63))

    def __repr__(self) -> str:
        return (f"LazyPosterior({type(self._probe).__name__}, batch_shape={self.batch_shape}, "
                f"event_shape={self.event_shape}, blocks={self.X.numblocks[0]})")

    # -- blockwise plumbing ---------------------------------------------------------------
    def _blocks(self):
        L = self.block_lengths or [None] * self.X.numblocks[0]
        return zip(self.X.to_delayed()[:, 0], L, self.X.chunks[0], strict=True)

    def _batch_sizes(self) -> list[int]:
        return [len(L) for L in self.block_lengths] if self._sequential else list(self.X.chunks[0])

    def _rows(self, func, *args, trailing=(), dtype=np.float64) -> da.Array:
        return self._blockwise(func, args, tuple(self.X.chunks[0]), tuple(trailing), dtype)

    def _per_batch(self, func, *args) -> da.Array:
        return self._blockwise(func, args, tuple(self._batch_sizes()), (), np.float64)

    def _blockwise(self, func, args, rows, trailing, dtype) -> da.Array:
        """One task per block of ``X`` (``func(model, block, lengths, *args)``), fused with what follows.

        ``map_blocks`` keeps the graph to one task per block, so a reduction
        of the result (``post.mean.sum(axis=0)``) runs in the same task as
        the block posterior and the per-row arrays never leave the worker.
        """
        lengths = None if self.block_lengths is None else dask.delayed(self.block_lengths, pure=True, traverse=False)
        extra = {} if len(trailing) < 2 else {"new_axis": list(range(2, 1 + len(trailing)))}
        if not trailing:
            extra["drop_axis"] = 1
        chunks = (rows, *((t,) for t in trailing))
        return da.map_blocks(_block_call, self.X, self._model, lengths, func, *args, chunks=chunks, dtype=dtype,
                             meta=np.empty((0,) * len(chunks), dtype=dtype), **extra)

    def field(self, name: str) -> da.Array:
        """Return a per-row attribute of the block posteriors as a dask array (``mean``, ``probs``, ``marginals``...).

        Parameters
        ----------
        name : str
            One of ``mean``, ``variance``, ``mode``, ``probs``, ``marginals``,
            ``filtered``, ``log_predictive``, ``concentration``, ``loc``
            (those the posterior has).

        Returns
        -------
        dask.array.Array
            One row per observation (per frame), concatenated over blocks.
        """
        if name not in _ROW_FIELDS or not _has(self._probe, name):
            have = [f for f in _ROW_FIELDS if _has(self._probe, f)]
            raise AttributeError(f"{type(self._probe).__name__} has no per-row attribute {name!r}; "
                                 f"one of {have} was expected.")
        meta = np.asarray(getattr(self._probe, name))
        return self._rows(_block_field, name, trailing=meta.shape[1:], dtype=meta.dtype)

    def __getattr__(self, name: str) -> Any:
        if name in _ROW_FIELDS and name != "mean":
            return self.field(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    @property
    def mean(self) -> da.Array:
        """Posterior mean per row (responsibilities / smoothed marginals for discrete latents)."""
        return self.field("mean")

    def entropy(self) -> da.Array:
        """Posterior entropy per batch entry, as a dask array.

        For HMMs one entry per sequence (the in-memory ``sequence_entropy``,
        whose sum is the in-memory ``entropy()``).

        Returns
        -------
        dask.array.Array of shape batch_shape
        """
        return self._per_batch(_block_field, "sequence_entropy" if self._sequential else "entropy")

    def log_likelihood(self) -> da.Array:
        """Return ``model.log_likelihood`` per observation (per sequence for HMMs), as a dask array.

        Returns
        -------
        dask.array.Array of shape batch_shape
        """
        return self._per_batch(_block_log_likelihood)

    def sample(self, n_samples: int = 1, *, random_state: Any = None) -> da.Array:
        """Joint posterior draws as a dask array, keyed by global index (independent of chunking and workers).

        Parameters
        ----------
        n_samples : int, default=1
            Number of draws.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call; None draws a seed from the posterior's own
            stream (consecutive calls differ).

        Returns
        -------
        dask.array.Array of shape ``(n_samples, *batch_shape, *event_shape)``
            For HMMs ``(n_samples, n_frames)``, laid out like ``X``.
        """
        if isinstance(n_samples, bool) or not isinstance(n_samples, numbers.Integral) or n_samples < 1:
            raise ValueError(f"'n_samples' must be a positive int; got {n_samples!r}.")
        seed = root_seed(self.model, random_state) if random_state is not None else self._next_seed()
        meta = keyed_sample(self._probe, 0, 0, 1)
        parts, first = [], 0
        for (b, L, rows), n_batch in zip(self._blocks(), self._batch_sizes(), strict=True):
            d = dask.delayed(_block_sample)(self._model, b, L, first, seed, int(n_samples))
            parts.append(da.from_delayed(d, (int(n_samples), rows, *meta.shape[2:]), dtype=meta.dtype))
            first += n_batch
        return da.concatenate(parts, axis=1)

    def _next_seed(self) -> int:
        rng = np.random.default_rng(self._seed)
        self._seed = int(rng.integers(2**63))
        return int(rng.integers(2**63))

    def compute(self, **kwargs: Any):
        """Compute the data and return the usual in-memory posterior.

        Parameters
        ----------
        **kwargs
            Passed to :meth:`dask.array.Array.compute` (``scheduler=`` ...).

        Returns
        -------
        Posterior
            Equal to ``model.posterior(X.compute(), lengths=...)``.
        """
        X = self.X.compute(**kwargs)
        lengths = None if self.block_lengths is None else np.concatenate(self.block_lengths)
        post = _block_posterior(self.model, X, lengths)
        post._rng = np.random.default_rng(self._seed)
        return post


def posterior(model: Any, X: Any, y: Any = None, *, lengths: Any = None):
    """Lazy posterior of a fitted model over a dask array.

    ``model.posterior(X)`` calls this when ``X`` is a dask array. For
    sequential families, blocks must hold whole sequences: chunks that cut
    a sequence are moved to the nearest sequence boundaries
    (:func:`chunk_sequences`). A single sequence (``lengths`` None or of
    length one) spread over several blocks is smoothed exactly across blocks
    by the chunked forward-backward (:class:`ChunkedMarkovChain`).

    Parameters
    ----------
    model : LatentModel
        A fitted probspace model.
    X : dask.array.Array of shape (n_samples, n_features)
        Data, chunked along rows.
    y : None
        Conditions are not supported on dask arrays (must be None).
    lengths : array-like of int, optional
        Sequence lengths (sequential families).

    Returns
    -------
    LazyPosterior or ChunkedMarkovChain
    """
    if y is not None:
        raise ValueError(f"y must be None for a dask array X; conditional posteriors ({type(model).__name__}) "
                         "are computed in memory.")
    X = check_dask_rows(model, X)
    if not model._model_tags().sequential:
        if lengths is not None:
            raise ValueError(f"lengths applies only to sequential families, not {type(model).__name__}.")
        return LazyPosterior(model, X, None)
    lengths = check_lengths(lengths, X.shape[0], sequential=True, owner=type(model).__name__)
    if len(lengths) == 1 and X.numblocks[0] > 1:
        from ._chunked import ChunkedMarkovChain

        return ChunkedMarkovChain.from_model(model, X)
    per_block = block_lengths(X.chunks[0], lengths)
    if per_block is None:
        X = chunk_sequences(X, lengths, int(max(X.chunks[0])))
        per_block = block_lengths(X.chunks[0], lengths)
    return LazyPosterior(model, X, per_block)
