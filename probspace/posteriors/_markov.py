"""Exact posterior over hidden state paths of one or more sequences."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..inference import _hmm
from ._base import Posterior, _SequencePosterior

__all__ = ["MarkovChain"]


class _StatePathPosterior(_SequencePosterior):
    """Mixin: what the exact posteriors over discrete state paths share.

    The subclass sets ``startprob``, ``log_frameprob`` (T, K), ``lengths`` and a cached ``_fb`` holding
    ``marginals`` and ``log_likelihood``.
    """

    startprob: np.ndarray
    log_frameprob: np.ndarray

    def _check_log_likelihood(self) -> None:
        """Run the forward-backward pass now, so that impossible observations fail at construction."""
        if not np.all(np.isfinite(self._fb.log_likelihood)):
            raise ValueError("The observations have zero probability under the model (log-likelihood is -inf).")

    def _check_paths(self, value: Any) -> np.ndarray:
        """Return ``value`` as integer paths ending in ``event_shape``, with states in ``[0, K)``."""
        z = self._split_value(value)
        if not np.issubdtype(z.dtype, np.integer):
            raise ValueError(f"paths passed to log_prob must be integers; got dtype {z.dtype}.")
        if z.size and (z.min() < 0 or z.max() >= self.n_states):
            raise ValueError(f"states in paths passed to log_prob must lie in [0, {self.n_states - 1}].")
        return z

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
    def log_likelihood(self) -> np.ndarray:
        """``log p(x)`` of each sequence, shape (n_sequences,)."""
        return self._fb.log_likelihood

    @property
    def mean(self) -> np.ndarray:
        """The smoothed ``marginals`` (expected one-hot state), shape (T, K)."""
        return self._fb.marginals

    @property
    def variance(self) -> np.ndarray:
        """Variance of the one-hot state code, shape (T, K)."""
        m = self._fb.marginals
        return np.clip(m * (1.0 - m), 0.0, None)

    @property
    def mode(self) -> np.ndarray:
        """The most probable whole path (Viterbi), shape (T,); not the per-frame argmax."""
        return self._viterbi[0]

    def map(self) -> np.ndarray:
        """Most probable state path (Viterbi), shape (T,).

        Returns
        -------
        ndarray of shape (T,)
        """
        return self.mode

    def entropy(self) -> np.ndarray:
        """Entropy (nats) of the posterior over whole paths, all sequences jointly.

        Returns
        -------
        ndarray of shape ()
            The sum of :meth:`sequence_entropy` (sequences are independent).
        """
        return np.asarray(self.sequence_entropy().sum())

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


class MarkovChain(_StatePathPosterior, Posterior):
    """Posterior over the hidden state paths of an HMM, given the observations.

    The posterior of a hidden Markov model given its observations is itself
    a (non-homogeneous) Markov chain. This object holds what defines it
    (initial probabilities, transition matrix, per-frame emission
    log-likelihoods and the sequence ``lengths``) and computes everything
    exactly: smoothed ``marginals``, the Viterbi path (``map``), joint path
    draws by forward filtering and backward sampling, the log posterior of
    given paths and the entropy over paths.

    Several sequences are laid out as in hmmlearn: concatenated along the
    time axis. A draw is one path over all ``T`` frames (the sequences are
    independent given the parameters), so ``event_shape`` is ``(T,)`` and
    ``batch_shape`` is ``()``; ``sequences`` gives one posterior per
    sequence, and :meth:`sequence_log_prob` and :meth:`sequence_entropy`
    give per-sequence values.

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        Initial state probabilities.
    transmat : ndarray of shape (K, K)
        Transition matrix; rows sum to one.
    log_frameprob : ndarray of shape (T, K)
        ``log p(x_t | z_t = k)``; a row of zeros marks a missing frame.
    lengths : ndarray of int, optional
        Sequence lengths summing to ``T``; ``None`` is one sequence.
    method : {"exact", "variational"}, default="exact"
        ``"variational"`` when the parameters come from a variational fit.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    marginals : ndarray of shape (T, K)
        Smoothed marginals ``p(z_t = k | x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import MarkovChain
    >>> A = np.array([[0.9, 0.1], [0.1, 0.9]])
    >>> logb = np.log([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8]])
    >>> post = MarkovChain(np.array([0.5, 0.5]), A, logb)
    >>> post.sample(4, random_state=0).shape
    (4, 3)
    >>> post.map()
    array([0, 0, 0])
    """

    def __init__(self, startprob: Any, transmat: Any, log_frameprob: Any, lengths: Any = None, *,
                 method: str = "exact", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        self.startprob = np.asarray(startprob, dtype=np.float64)
        self.transmat = np.asarray(transmat, dtype=np.float64)
        self.log_frameprob = np.ascontiguousarray(log_frameprob, dtype=np.float64)
        T, K = self.log_frameprob.shape
        if self.startprob.shape != (K,) or self.transmat.shape != (K, K):
            raise ValueError(
                f"startprob must have shape ({K},) and transmat ({K}, {K}) to match log_frameprob's {K} states; "
                f"got {self.startprob.shape} and {self.transmat.shape}."
            )
        self._set_lengths(lengths, T, "log_frameprob")
        self._check_log_likelihood()

    @cached_property
    def _fb(self) -> _hmm.ForwardBackward:
        return _hmm.forward_backward(self.startprob, self.transmat, self.log_frameprob, self.lengths)

    # -- shapes -----------------------------------------------------------------
    # -- exact quantities -----------------------------------------------------------
    @property
    def filtered(self) -> np.ndarray:
        """Filtered marginals ``p(z_t = k | x_1..x_t)`` within each sequence, shape (T, K)."""
        return self._fb.filtered

    @property
    def log_predictive(self) -> np.ndarray:
        """One-step-ahead ``log p(x_t | x_1..x_{t-1})`` per frame; summing over a sequence gives its log-likelihood."""
        return self._fb.log_predictive

    def pairwise_marginals(self) -> np.ndarray:
        """Pairwise marginals ``p(z_t = i, z_{t+1} = j | x)``.

        Returns
        -------
        ndarray of shape (T, K, K)
            Entry ``t`` pairs frame ``t`` with ``t + 1``; zero at the last frame of each sequence.
        """
        return _hmm.pairwise_marginals(self._fb, self.transmat, self.log_frameprob, self.lengths)

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _hmm.sample_paths(self._fb.filtered, self.transmat, self.lengths, n, rng)

    def sequence_log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior probability of whole paths, per sequence.

        Parameters
        ----------
        value : array-like of int, shape (..., T)
            Paths laid out like ``X`` (sequences concatenated).

        Returns
        -------
        ndarray of shape (..., n_sequences)
        """
        z = self._check_paths(value)
        return _hmm.path_log_prob(z, self.startprob, self.transmat, self.log_frameprob, self.lengths,
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
            The sum of :meth:`sequence_log_prob` over sequences.
        """
        return self.sequence_log_prob(value).sum(axis=-1)

    @property
    def mean(self) -> np.ndarray:
        """Expected one-hot state of each frame: the smoothed ``marginals``, shape (T, K)."""
        return self._fb.marginals

    @cached_property
    def _viterbi(self) -> tuple[np.ndarray, np.ndarray]:
        return _hmm.viterbi(self.startprob, self.transmat, self.log_frameprob, self.lengths)

    def sequence_entropy(self) -> np.ndarray:
        """Entropy (nats) of the posterior over whole paths of each sequence.

        Returns
        -------
        ndarray of shape (n_sequences,)
        """
        return _hmm.entropy(self._fb, self.startprob, self.transmat, self.log_frameprob, self.lengths)

    @property
    def sequences(self) -> list[MarkovChain]:
        """One posterior per sequence, in order."""
        return [
            MarkovChain(self.startprob, self.transmat, self.log_frameprob[lo:hi], None, method=self.method,
                        random_state=None if self._rng is None else self._rng)
            for lo, hi in self._sequence_spans()
        ]
