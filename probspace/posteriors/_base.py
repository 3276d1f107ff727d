"""The Posterior base class: a distribution over latent variables, numpy-first."""

from __future__ import annotations

import numbers
from abc import ABCMeta, abstractmethod
from typing import Any

import numpy as np

from .._random import as_generator

__all__ = ["Posterior"]

_METHODS = ("exact", "variational", "amortized_variational", "mcmc")


def _sample_shape(n_samples: Any) -> tuple[int, ...]:
    if isinstance(n_samples, (tuple, list)):
        shape = tuple(n_samples)
    else:
        shape = (n_samples,)
    for s in shape:
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(
                f"'n_samples' must be a positive int or a tuple of positive ints; got {n_samples!r}."
            )
    return tuple(int(s) for s in shape)


class Posterior(metaclass=ABCMeta):
    """A belief distribution over the latent variables of some data.

    Modelled on :class:`torch.distributions.Distribution`, but numpy in and out.
    ``batch_shape`` has one entry per observation (per sequence for Markov
    chains); ``event_shape`` is the shape of one latent draw.

    Parameters
    ----------
    method : {"exact", "variational", "amortized_variational", "mcmc"}
        How the posterior was obtained: exact given the fitted parameters, a
        variational approximation, or (``"mcmc"``) exact given each of a set
        of MCMC parameter draws and averaged over them.
    random_state : None, int or numpy.random.Generator
        Source of randomness for :meth:`sample` calls made without their own
        ``random_state``. Models pass a child of their ``rng_``.

    Notes
    -----
    Subclasses implement ``_sample_n(rng, n)``, ``log_prob``, ``batch_shape``,
    ``event_shape`` and the moments they have in closed form. Moments without
    a closed form raise :class:`NotImplementedError` naming the class.
    """

    def __init__(self, *, method: str = "exact", random_state: Any = None) -> None:
        if method not in _METHODS:
            raise ValueError(f"'method' must be one of {_METHODS}; got {method!r}.")
        self.method = method
        self._rng = random_state if isinstance(random_state, np.random.Generator) else None
        self._seed = None if self._rng is not None else random_state

    # -- shapes ---------------------------------------------------------------
    @property
    @abstractmethod
    def batch_shape(self) -> tuple[int, ...]:
        """Shape of the batch: one entry per observation (or sequence)."""

    @property
    @abstractmethod
    def event_shape(self) -> tuple[int, ...]:
        """Shape of one latent draw for one batch entry."""

    @property
    def is_exact(self) -> bool:
        """Whether the posterior is exact given the model's parameters."""
        return self.method == "exact"

    # -- sampling -------------------------------------------------------------
    def _generator(self, random_state: Any) -> np.random.Generator:
        if random_state is not None:
            return as_generator(random_state)
        if self._rng is None:
            self._rng = as_generator(self._seed)
        return self._rng

    def sample(self, n_samples: int | tuple[int, ...] = 1, *, random_state: Any = None) -> np.ndarray:
        """Draw joint samples from the posterior.

        Parameters
        ----------
        n_samples : int or tuple of int, default=1
            Number of draws, or a sample shape (``()`` gives one draw without a
            leading sample axis).
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only. Without it, draws continue the posterior's
            own stream, so consecutive calls differ.

        Returns
        -------
        ndarray of shape ``sample_shape + batch_shape + event_shape``
        """
        shape = () if n_samples == () else _sample_shape(n_samples)
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        draws = self._sample_n(self._generator(random_state), n)
        return draws.reshape(shape + draws.shape[1:])

    @abstractmethod
    def _sample_n(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """Return ``n`` joint draws, shape ``(n,) + batch_shape + event_shape``."""

    # -- densities and moments ------------------------------------------------
    @abstractmethod
    def log_prob(self, value: Any) -> np.ndarray:
        """Log posterior density (or mass) of ``value``.

        Parameters
        ----------
        value : array-like
            Latent values of shape ``sample_shape + batch_shape + event_shape``.

        Returns
        -------
        ndarray of shape ``sample_shape + batch_shape``
        """

    @property
    def mean(self) -> np.ndarray:
        """Posterior mean."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form mean.")

    @property
    def variance(self) -> np.ndarray:
        """Posterior variance (elementwise)."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form variance.")

    @property
    def mode(self) -> np.ndarray:
        """Most probable latent value of each batch entry."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form mode.")

    def entropy(self) -> np.ndarray:
        """Entropy of the posterior, one value per batch entry."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form entropy.")

    def _split_value(self, value: Any, dtype: Any = None) -> np.ndarray:
        """Check that ``value`` ends in ``batch_shape + event_shape``."""
        arr = np.asarray(value) if dtype is None else np.asarray(value, dtype=dtype)
        tail = self.batch_shape + self.event_shape
        if arr.ndim < len(tail) or arr.shape[arr.ndim - len(tail):] != tail:
            raise ValueError(
                f"value passed to {type(self).__name__}.log_prob must end in shape {tail} "
                f"(batch_shape + event_shape); got shape {arr.shape}."
            )
        return arr

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_shape={self.batch_shape}, "
            f"event_shape={self.event_shape}, method={self.method!r})"
        )


class _SequencePosterior:
    """Mixin: plumbing of posteriors over sequences concatenated along the time axis (hmmlearn layout).

    The sequences form one joint draw (``batch_shape`` is ``()``); ``lengths`` cuts the frames into sequences.
    """

    lengths: np.ndarray

    def _set_lengths(self, lengths: Any, n_frames: int, what: str) -> None:
        """Set ``self.lengths`` (``None`` is one sequence) and check that it adds up to ``n_frames`` of ``what``."""
        self.lengths = np.array([n_frames], dtype=np.int64) if lengths is None else np.asarray(lengths,
                                                                                                dtype=np.int64)
        if self.lengths.sum() != n_frames:
            raise ValueError(f"lengths add up to {self.lengths.sum()}, but {what} has {n_frames} frames.")

    def _bounds(self) -> np.ndarray:
        """First frame of each sequence, then the end: shape (n_sequences + 1,)."""
        return np.concatenate([[0], np.cumsum(self.lengths)])

    def _sequence_spans(self) -> list[tuple[int, int]]:
        """``(first, end)`` frame of each sequence, in order."""
        b = self._bounds().tolist()
        return list(zip(b[:-1], b[1:], strict=True))

    @property
    def batch_shape(self) -> tuple[int, ...]:
        """``()``: all sequences form one joint draw."""
        return ()
