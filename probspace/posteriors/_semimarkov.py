"""Exact posterior over the segmentations of a hidden semi-Markov model."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from ..inference import _hmm, _hsmm
from ._base import Posterior
from ._markov import _StatePathPosterior

__all__ = ["SemiMarkovChain"]


class SemiMarkovChain(_StatePathPosterior, Posterior):
    """Posterior over the state paths (equivalently, the segmentations) of a hidden semi-Markov model.

    In a hidden semi-Markov model each visit to a state is a *segment* whose
    length is drawn from the state's duration distribution (``duration_pmf``,
    over ``1..D`` frames) and the next segment's state from ``transmat``
    (zero diagonal). The state path and the segmentation determine each other
    (segments are the runs of equal states), so a draw is an integer path of
    ``T`` states. Everything is exact: the smoothed ``marginals``, the Viterbi
    segmentation (``map``), joint draws of whole segmentations (backward
    sampling over segments), ``log_prob`` of whole paths (``-inf`` for a run
    longer than ``D``) and the entropy over segmentations. The last segment of
    each sequence is right-censored (it may continue past the data).

    Parameters
    ----------
    startprob : ndarray of shape (K,)
        State probabilities of the first segment.
    transmat : ndarray of shape (K, K)
        Segment transition probabilities; the diagonal must be zero.
    duration_pmf : ndarray of shape (K, D)
        ``duration_pmf[k, d - 1] = p(duration = d | state k)``; rows sum to one.
    log_frameprob : ndarray of shape (T, K)
        ``log p(x_t | z_t = k)``; a row of zeros marks a missing frame.
    lengths : ndarray of int, optional
        Sequence lengths summing to ``T``; ``None`` is one sequence.
    method : {"exact", "variational"}, default="exact"
        How the parameters were obtained.
    random_state : None, int or numpy.random.Generator, optional
        Source of randomness for unseeded :meth:`sample` calls.

    Attributes
    ----------
    marginals : ndarray of shape (T, K)
        Smoothed marginals ``p(z_t = k | x)``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.posteriors import SemiMarkovChain
    >>> pmf = np.array([[0.2, 0.8], [1.0, 0.0]])   # state 0 lasts 1 or 2 frames, state 1 exactly one
    >>> logb = np.log([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]])
    >>> post = SemiMarkovChain([0.5, 0.5], [[0.0, 1.0], [1.0, 0.0]], pmf, logb)
    >>> post.map()
    array([0, 0, 1])
    >>> post.sample(3, random_state=0).shape
    (3, 3)
    """

    def __init__(self, startprob: Any, transmat: Any, duration_pmf: Any, log_frameprob: Any, lengths: Any = None, *,
                 method: str = "exact", random_state: Any = None) -> None:
        super().__init__(method=method, random_state=random_state)
        self.startprob = np.asarray(startprob, dtype=np.float64)
        self.transmat = np.ascontiguousarray(transmat, dtype=np.float64)
        self.duration_pmf = np.ascontiguousarray(duration_pmf, dtype=np.float64)
        self.log_frameprob = np.ascontiguousarray(log_frameprob, dtype=np.float64)
        T, K = self.log_frameprob.shape
        if self.startprob.shape != (K,) or self.transmat.shape != (K, K) or self.duration_pmf.ndim != 2 \
                or self.duration_pmf.shape[0] != K:
            raise ValueError(f"startprob must have shape ({K},), transmat ({K}, {K}) and duration_pmf ({K}, D) to "
                             f"match log_frameprob's {K} states; got {self.startprob.shape}, {self.transmat.shape} "
                             f"and {self.duration_pmf.shape}.")
        if np.any(np.diag(self.transmat) != 0):
            raise ValueError("transmat of a semi-Markov chain must have a zero diagonal (a segment is followed "
                             "by a segment of another state).")
        self._set_lengths(lengths, T, "log_frameprob")
        self._check_log_likelihood()

    @cached_property
    def _fb(self) -> _hsmm.SemiMarkovFB:
        return _hsmm.forward_backward(self.startprob, self.transmat, self.duration_pmf, self.log_frameprob,
                                      self.lengths)

    @property
    def max_duration(self) -> int:
        """Longest possible segment ``D``."""
        return self.duration_pmf.shape[1]

    def expected_durations(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the expected numbers of segments of each state and length.

        Returns
        -------
        completed : ndarray of shape (K, D)
            Segments of length ``d + 1`` that end inside the data.
        censored : ndarray of shape (K, D)
            Last segments, observed for ``d + 1`` frames (they may continue).
        """
        return self._fb.duration_counts, self._fb.censored_counts

    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return _hsmm.sample_paths(self._fb, self.transmat, self.duration_pmf, self.log_frameprob, self.lengths, n,
                                  rng)

    def sequence_log_prob(self, value: Any) -> np.ndarray:
        """Exact log posterior probability of whole paths, per sequence.

        Parameters
        ----------
        value : array-like of int, shape (..., T)
            Paths laid out like ``X``.

        Returns
        -------
        ndarray of shape (..., n_sequences)
            ``-inf`` for a path the model cannot produce (a run longer than ``D``, a forbidden transition).
        """
        z = self._check_paths(value)
        return _hsmm.path_log_prob(z, self.startprob, self.transmat, self.duration_pmf, self.log_frameprob,
                                   self.lengths, self._fb.log_likelihood)

    @cached_property
    def _viterbi(self) -> tuple[np.ndarray, np.ndarray]:
        return _hsmm.viterbi(self.startprob, self.transmat, self.duration_pmf, self.log_frameprob, self.lengths)

    def segments(self, path: Any = None) -> np.ndarray:
        """Return the segments of a state path (by default the Viterbi segmentation), one row each.

        Parameters
        ----------
        path : array-like of int, shape (T,), optional
            A state path laid out like ``X`` (one of :meth:`sample`'s rows, say); ``None`` for :meth:`map`.

        Returns
        -------
        ndarray of shape (n_segments, 4), int
            Columns: sequence index, first frame (within ``X``), duration, state.

        Examples
        --------
        >>> import numpy as np
        >>> from probspace.posteriors import SemiMarkovChain
        >>> post = SemiMarkovChain([0.5, 0.5], [[0, 1], [1, 0]], [[0.5, 0.5], [0.5, 0.5]], np.zeros((4, 2)), [3, 1])
        >>> post.segments(np.array([0, 0, 1, 1]))
        array([[0, 0, 2, 0],
               [0, 2, 1, 1],
               [1, 3, 1, 1]])
        """
        z = self.map() if path is None else np.asarray(path)
        if z.shape != self.event_shape or not np.issubdtype(z.dtype, np.integer):
            raise ValueError(f"path must be an integer array of shape {self.event_shape}; got {z.dtype} {z.shape}.")
        bounds = _hmm.sequence_bounds(self.lengths, z.shape[0])
        new = np.ones(z.shape[0], dtype=bool)
        new[1:] = z[1:] != z[:-1]
        new[bounds[:-1]] = True
        first = np.flatnonzero(new)
        duration = np.diff(np.r_[first, z.shape[0]])
        sequence = np.searchsorted(bounds, first, side="right") - 1
        return np.stack([sequence, first, duration, z[first]], axis=1).astype(np.int64)

    def sequence_entropy(self) -> np.ndarray:
        """Entropy (nats) of the posterior over the segmentations of each sequence.

        Returns
        -------
        ndarray of shape (n_sequences,)
        """
        return self._fb.log_likelihood - self._fb.expected_log_joint

    @property
    def sequences(self) -> list[SemiMarkovChain]:
        """One posterior per sequence, in order."""
        return [SemiMarkovChain(self.startprob, self.transmat, self.duration_pmf, self.log_frameprob[lo:hi], None,
                                method=self.method, random_state=self._rng)
                for lo, hi in self._sequence_spans()]
