"""Exact posterior over hidden state paths when the transition matrix changes from frame to frame."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..inference import _hmm, _iohmm
from ._base import Posterior

__all__ = ["TimeVaryingMarkovChain"]


class TimeVaryingMarkovChain(Posterior):
    """Posterior over the state paths of an HMM whose transition matrix depends on the frame.

    The posterior of :class:`probspace.InputDrivenHMM` (input-output HMM):
    ``transmats[t]`` is the transition matrix into frame ``t``, computed from
    that frame's covariates. As for :class:`MarkovChain`, everything is exact:
    smoothed ``marginals``, Viterbi ``map``, joint path draws (forward
    filtering, backward sampling), ``log_prob`` of whole paths and the entropy
    over paths. Several sequences are concatenated along the time axis.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial state probabilities.
    transmats : ndarray of shape (T, K, K)
        ``transmats[t, i, j] = p(z_t = j | z_{t-1} = i)``; the entry at the first frame of a sequence is unused.
    log_frameprob : ndarray of shape (T, K)
        ``log p(x_t | z_t = k)``; a row of zeros marks a missing frame.
    lengths : ndarray of int, optional
        Sequence lengths summing to ``T``; ``None`` is one sequence.
    method : {"exact", "variational"}, default="exact"
        How the parameters were obtained.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import TimeVaryingMarkovChain
    >>> A = np.array([[[0.9, 0.1], [0.1, 0.9]], [[0.5, 0.5], [0.2, 0.8]], [[0.6, 0.4], [0.3, 0.7]]])
    >>> logb = np.log([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    >>> post = TimeVaryingMarkovChain(np.array([0.5, 0.5]), A, logb)
    >>> post.sample(4, random_state=0).shape
    (4, 3)
    >>> post.map()
    array([0, 1, 1])
    """

    def __init__(self, startprob: Any, transmats: Any, log_frameprob: Any, lengths: Any = None, *,
                 method: str = "exact", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        self.startprob = np.asarray(startprob, dtype=np.float64)
        self.transmats = np.ascontiguousarray(transmats, dtype=np.float64)
        self.log_frameprob = np.ascontiguousarray(log_frameprob, dtype=np.float64)
        T, K = self.log_frameprob.shape
        if self.startprob.shape != (K,) or self.transmats.shape != (T, K, K):
            raise ValueError(f"startprob must have shape ({K},) and transmats ({T}, {K}, {K}) to match "
                             f"log_frameprob's shape {(T, K)}; got {self.startprob.shape} and {self.transmats.shape}.")
        self.lengths = np.array([T], dtype=np.int64) if lengths is None else np.asarray(lengths, dtype=np.int64)
        if self.lengths.sum() != T:
            raise ValueError(f"lengths add up to {self.lengths.sum()}, but log_frameprob has {T} frames.")
        if not np.all(np.isfinite(self._fb.log_likelihood)):
            raise ValueError("The observations have zero probability under the model (log-likelihood is -inf).")

    @cached_property
    def _fb(self) -> _iohmm.TimeVaryingFB:
        return _iohmm.forward_backward(self.startprob, self.transmats, self.log_frameprob, self.lengths)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``()``: all sequences form one joint draw."""
        return ()

    @property
    def event_shape(self) -> tuple[int, ...]:
        """``(T,)``: one state per frame, sequences concatenated."""
        return (self.log_frameprob.shape[0],)

    @property
    def n_states(self) -> int:
        """Number of hidden states ``K``."""
        return self.startprob.shape[0]

    @property
    def marginals(self) -> np.ndarray:
        """Smoothed marginals ``p(z_t = k | x)``, shape (T, K)."""
        return self._fb.marginals

    @property
    def filtered(self) -> np.ndarray:
        """Filtered marginals ``p(z_t = k | x_1..x_t)``, shape (T, K)."""
        return self._fb.filtered

    @property
    def log_likelihood(self) -> np.ndarray:
        """``log p(x)`` of each sequence, shape (n_sequences,)."""
        return self._fb.log_likelihood

    @property
    def log_predictive(self) -> np.ndarray:
        """One-step-ahead ``log p(x_t | x_1..x_{t-1})`` per frame, shape (T,)."""
        return self._fb.log_predictive

    def pairwise_marginals(self) -> np.ndarray:
        """Pairwise marginals ``p(z_t = i, z_{t+1} = j | x)``.

        Returns
        -------
        ndarray of shape (T, K, K)
            Entry ``t`` pairs frame ``t`` with ``t + 1`` (the layout of :meth:`MarkovChain.pairwise_marginals`);
            zero at the last frame of each sequence.
        """
        out = np.zeros_like(self._fb.pairwise)
        out[:-1] = self._fb.pairwise[1:]
        return out

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _iohmm.sample_paths(self._fb.filtered, self.transmats, self.lengths, n, rng)

    def sequence_log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior probability of whole paths, per sequence.

        Parameters
        ----------
        value : array-like of int, shape (..., T)
            Paths laid out like ``X``.

        Returns
        -------
        ndarray of shape (..., n_sequences)
        """
        z = self._split_value(value)
        if not np.issubdtype(z.dtype, np.integer):
            raise ValueError(f"paths passed to log_prob must be integers; got dtype {z.dtype}.")
        if z.size and (z.min() < 0 or z.max() >= self.n_states):
            raise ValueError(f"states in paths passed to log_prob must lie in [0, {self.n_states - 1}].")
        return _iohmm.path_log_prob(z, self.startprob, self.transmats, self.log_frameprob, self.lengths,
                                    self._fb.log_likelihood)

    def log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior probability of whole paths (all sequences jointly).

        Parameters
        ----------
        value : array-like of int, shape (..., T)
            Paths laid out like ``X``.

        Returns
        -------
        ndarray of shape (...)
        """
        return self.sequence_log_prob(value).sum(axis=-1)

    @property
    def mean(self) -> np.ndarray:
        """The smoothed ``marginals`` (expected one-hot state), shape (T, K)."""
        return self._fb.marginals

    @property
    def variance(self) -> np.ndarray:
        """Variance of the one-hot state code, shape (T, K)."""
        m = self._fb.marginals
        return np.clip(m * (1.0 - m), 0.0, None)

    @cached_property
    def _viterbi(self) -> tuple[np.ndarray, np.ndarray]:
        return _iohmm.viterbi(self.startprob, self.transmats, self.log_frameprob, self.lengths)

    @property
    def mode(self) -> np.ndarray:
        """The most probable whole path (Viterbi), shape (T,)."""
        return self._viterbi[0]

    def map(self) -> np.ndarray:
        """Most probable state path (Viterbi).

        Returns
        -------
        ndarray of shape (T,)
        """
        return self.mode

    def sequence_entropy(self) -> np.ndarray:
        """Entropy (nats) of the posterior over whole paths of each sequence.

        Returns
        -------
        ndarray of shape (n_sequences,)
        """
        return _iohmm.entropy(self._fb, self.startprob, self.transmats, self.log_frameprob, self.lengths)

    def entropy(self) -> np.ndarray:
        """Entropy (nats) of the posterior over whole paths, all sequences jointly.

        Returns
        -------
        ndarray of shape ()
        """
        return np.asarray(self.sequence_entropy().sum())

    @property
    def sequences(self) -> list[TimeVaryingMarkovChain]:
        """One posterior per sequence, in order."""
        bounds = _hmm.sequence_bounds(self.lengths, self.log_frameprob.shape[0])
        return [TimeVaryingMarkovChain(self.startprob, self.transmats[lo:hi], self.log_frameprob[lo:hi], None,
                                       method=self.method, random_state=self._rng)
                for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
