"""Streaming (online) filtering of a fitted HMM: one frame at a time, O(K^2) per frame.

:meth:`_HMM.filter` returns a :class:`StreamingFilter`. Each
:meth:`StreamingFilter.update` takes the next frame and returns a
:class:`FilterStep`: the filtered state distribution ``p(z_t | x_{1:t})``,
the one-step predictive ``p(z_{t+1} | x_{1:t})``, the frame's
``log p(x_t | x_{1:t-1})`` and the running log-likelihood. The recursion is
the forward pass of :func:`probspace.inference._hmm.forward_backward`
(probability space, each vector normalised, each frame's likelihoods scaled
by their largest), so after ``t`` frames the filtered vectors equal the batch
``filtered`` marginals of those frames. With ``lag=L`` each step also
returns the fixed-lag smoothed marginal ``p(z_{t-L} | x_{1:t})``: a backward
pass over the last ``L`` frames, ``O(L K^2)`` per frame, equal to the batch
smoother run on the frames seen so far.
"""

from __future__ import annotations

from collections import deque
from typing import Any, NamedTuple

import numpy as np

__all__ = ["FilterStep", "StreamingFilter"]


class FilterStep(NamedTuple):
    """What :meth:`StreamingFilter.update` returns after each frame.

    Parameters
    ----------
    filtered : ndarray of shape (K,)
        ``p(z_t = k | x_1..x_t)``.
    predictive : ndarray of shape (K,)
        ``p(z_{t+1} = k | x_1..x_t)``, the state distribution of the next frame.
    log_predictive : float
        ``log p(x_t | x_1..x_{t-1})``, the one-step-ahead log density of this frame.
    log_likelihood : float
        ``log p(x_1..x_t)``, the sum of the ``log_predictive`` terms so far.
    smoothed : ndarray of shape (K,) or None
        With ``lag=L``: ``p(z_{t-L} = k | x_1..x_t)`` once ``t >= L`` frames
        have been seen beyond it (frame index ``t - L``, zero-based); None
        before that, or without a lag.
    """

    filtered: np.ndarray
    predictive: np.ndarray
    log_predictive: float
    log_likelihood: float
    smoothed: np.ndarray | None


class StreamingFilter:
    """Online forward filter of one sequence under a fitted HMM (see the module docstring).

    Built by ``model.filter(lag=None)``; not constructed directly. The
    parameters are the model's fitted attributes (the posterior means after
    an MCMC fit), copied when the filter is built.

    Attributes
    ----------
    n_frames : int
        Frames seen so far.
    log_likelihood : float
        ``log p(x_1..x_t)`` of the frames seen so far.
    """

    def __init__(self, model: Any, lag: int | None) -> None:
        self._model = model
        self._start = np.array(model.startprob_, dtype=np.float64)
        self._trans = np.array(model.transmat_, dtype=np.float64)
        # the emission and its parameters, packed once (the model's _log_frameprob, without the per-call packing)
        self._emission = model._emission()
        self._params = {k: np.array(v) for k, v in model._emission_point().items()}
        kernel = getattr(self._emission, "frames_kernel", None)
        self._theta = self._emission.pack(self._params) if kernel is not None else None
        self.lag = lag
        self.reset()

    def reset(self) -> StreamingFilter:
        """Forget every frame seen: the next update is the first frame of a new sequence.

        Returns
        -------
        StreamingFilter
            ``self``.
        """
        self.n_frames = 0
        self.log_likelihood = 0.0
        self._pred = self._start.copy()
        keep = 0 if self.lag is None else self.lag + 1
        self._filtered: deque = deque(maxlen=max(keep, 1))
        self._frames: deque = deque(maxlen=max(keep, 1))
        return self

    def _frame(self, x: Any, label: Any) -> np.ndarray:
        model = self._model
        x = np.asarray(x, dtype=np.float64)
        D = model.n_features_in_
        if x.ndim == 0 and D == 1:
            x = x.reshape(1)
        if x.shape != (D,):
            raise ValueError(f"StreamingFilter.update takes one frame of shape ({D},); got shape {x.shape}.")
        if np.isinf(x).any():
            raise ValueError(f"StreamingFilter.update takes finite values (NaN for missing); got {x}.")
        X = x[None]
        model._check_frame(X)
        if self._theta is not None:
            out = np.empty((1, self._start.shape[0]))
            self._emission.frames_kernel(X, self._emission.aux(X), self._theta, out)
            logf = out[0]
        else:
            logf = self._emission.log_frames(X, self._params)[0]
        if label is not None and int(label) != -1:
            K = self._start.shape[0]
            if isinstance(label, bool) or int(label) != label or not 0 <= int(label) < K:
                raise ValueError(f"label passed to StreamingFilter.update must be a state in [0, {K - 1}] or -1; "
                                 f"got {label!r}.")
            keep = logf[int(label)]
            logf = np.full(K, -np.inf)
            logf[int(label)] = keep
        return logf

    def update(self, x: Any, label: int | None = None) -> FilterStep:
        """Take the next frame and return the filtered and predictive state distributions.

        Parameters
        ----------
        x : array-like of shape (n_features,)
            The next frame (NaN entries are missing and summed out).
        label : int, optional
            The frame's known state (``-1`` or None: unknown).

        Returns
        -------
        FilterStep
        """
        logf = self._frame(x, label)
        m = np.max(logf)
        if not np.isfinite(m):
            m = 0.0 if np.all(logf == 0) else m
        if not np.isfinite(m):
            raise ValueError(f"frame {self.n_frames} has zero probability under every state.")
        b = np.exp(logf - m)
        v = self._pred * b
        c = float(v.sum())
        if not c > 0:
            raise ValueError(f"frame {self.n_frames} has zero probability given the frames before it (a "
                             "transition structure or label rules out every state).")
        filtered = v / c
        log_pred = float(np.log(c) + m)
        self.log_likelihood += log_pred
        self.n_frames += 1
        self._pred = filtered @ self._trans
        smoothed = None
        if self.lag is not None:
            self._filtered.append(filtered)
            self._frames.append(b)
            if len(self._filtered) == self.lag + 1:
                smoothed = self._smooth()
        return FilterStep(filtered, self._pred.copy(), log_pred, self.log_likelihood, smoothed)

    def _smooth(self) -> np.ndarray:
        """``p(z_{t-L} | x_1..x_t)`` from the buffered filtered vectors and frame likelihoods (normalised beta)."""
        beta = np.ones_like(self._start)
        filt, frames = list(self._filtered), list(self._frames)
        for s in range(len(filt) - 1, 0, -1):
            beta = self._trans @ (frames[s] * beta)
            beta /= beta.sum()
        out = filt[0] * beta
        return out / out.sum()
