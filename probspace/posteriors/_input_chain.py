"""Exact posterior over hidden state paths when the transition matrix changes from frame to frame."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..inference import _iohmm
from ._base import Posterior
from ._markov import _StatePathPosterior

__all__ = ["TimeVaryingMarkovChain"]


class TimeVaryingMarkovChain(_StatePathPosterior, Posterior):
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
        self._set_lengths(lengths, T, "log_frameprob")
        self._check_log_likelihood()

    @cached_property
    def _fb(self) -> _iohmm.TimeVaryingFB:
        return _iohmm.forward_backward(self.startprob, self.transmats, self.log_frameprob, self.lengths)

    @property
    def filtered(self) -> np.ndarray:
        """Filtered marginals ``p(z_t = k | x_1..x_t)``, shape (T, K)."""
        return self._fb.filtered

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
        z = self._check_paths(value)
        return _iohmm.path_log_prob(z, self.startprob, self.transmats, self.log_frameprob, self.lengths,
                                    self._fb.log_likelihood)

    @cached_property
    def _viterbi(self) -> tuple[np.ndarray, np.ndarray]:
        return _iohmm.viterbi(self.startprob, self.transmats, self.log_frameprob, self.lengths)

    def sequence_entropy(self) -> np.ndarray:
        """Entropy (nats) of the posterior over whole paths of each sequence.

        Returns
        -------
        ndarray of shape (n_sequences,)
        """
        return _iohmm.entropy(self._fb, self.startprob, self.transmats, self.log_frameprob, self.lengths)

    @property
    def sequences(self) -> list[TimeVaryingMarkovChain]:
        """One posterior per sequence, in order."""
        return [TimeVaryingMarkovChain(self.startprob, self.transmats[lo:hi], self.log_frameprob[lo:hi], None,
                                       method=self.method, random_state=self._rng)
                for lo, hi in self._sequence_spans()]
