"""The hmmlearn adapter: every use of hmmlearn's private API in probspace, in this one file.

hmmlearn fits the HMM families by EM (and variational Bayes). probspace
reaches into it in exactly these places, each fenced by a test in
``tests/models/test_hmm.py`` that fails loudly if an hmmlearn release changes it
(``test_hmmlearn_private_hooks_are_where_the_adapter_expects_them``,
``test_kernel_e_step_reproduces_hmmlearn``):

- ``monitor_`` is replaced by :class:`_RecordingMonitor` before ``fit`` (the
  whole objective trace and a progress bar; hmmlearn builds it in ``__init__``);
- ``_do_mstep`` is wrapped by :func:`_guarded_mstep` (states left undefined by
  an M-step keep their parameters) and followed by the ``min_covar`` floor;
- ``_compute_log_likelihood``, ``_do_estep`` and
  ``_initialize_sufficient_statistics`` give the Gaussian HMM probspace's
  compiled E-step;
- ``_covars_`` (hmmlearn's stored covariance layout) is read and rescaled by
  :func:`stored_covars` and :func:`scale_covars`.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from typing import Any

import numpy as np
from hmmlearn import base as hmm_base
from hmmlearn import hmm, vhmm

from ...emissions import GaussianEmission
from ...inference import _hmm
from ...inference._progress import progress_bar

__all__ = ["GuardedCategoricalHMM", "GuardedGMMHMM", "GuardedPoissonHMM", "KernelEStepGaussianHMM",
           "VariationalCategoricalHMM", "VariationalGaussianHMM", "fit_backend", "hmmlearn_log_as_warnings",
           "scale_covars", "stored_covars"]

VariationalGaussianHMM = vhmm.VariationalGaussianHMM
VariationalCategoricalHMM = vhmm.VariationalCategoricalHMM


class _RecordingMonitor(hmm_base.ConvergenceMonitor):
    """hmmlearn's public convergence monitor, keeping the whole objective trace and updating a progress bar."""

    def __init__(self, tol, n_iter, verbose, bar, n_frames):
        super().__init__(tol, n_iter, verbose)
        self.trace: list[float] = []
        self.n_frames = n_frames
        self.bar = bar

    def report(self, log_prob):
        super().report(log_prob)
        self.trace.append(float(log_prob))
        self.bar.set_postfix(loglik_per_frame=f"{log_prob / self.n_frames:.4f}")
        self.bar.update(1)


def fit_backend(backend: Any, X: np.ndarray, lengths: Any, *, tol: float, n_iter: int, verbose: bool,
                progress: bool) -> tuple[int, list[float]]:
    """Fit an hmmlearn model with a recording monitor; return its iteration count and objective trace."""
    with progress_bar(progress, n_iter, "EM", "iter") as bar:
        monitor = _RecordingMonitor(tol, n_iter, verbose, bar, X.shape[0])
        backend.monitor_ = monitor
        backend.fit(X, lengths)
    return int(monitor.iter), monitor.trace


#: Per-state parameter arrays of hmmlearn backends that an M-step can leave undefined (0/0).
_STATE_ARRAYS = ("startprob_", "transmat_", "means_", "_covars_", "covars_", "weights_", "lambdas_", "emissionprob_")


def _guarded_mstep(backend, stats, mstep) -> None:
    """Run hmmlearn's M-step ``mstep(stats)``; a state it leaves undefined keeps its parameters.

    A state with no posterior weight in an iteration makes hmmlearn divide
    0 by 0 (NaN rates, weights or means) or leave an all-zero transition
    row. Such a state is not used by the data, so keeping its previous
    parameters does not lower the EM objective, and the fit stays finite.
    """
    n_states = backend.n_components
    before = {n: np.array(vars(backend)[n], copy=True) for n in _STATE_ARRAYS if n in vars(backend)}
    with np.errstate(divide="ignore", invalid="ignore"):
        mstep(stats)
    for name, old in before.items():
        new = np.asarray(vars(backend)[name])
        if new.shape != old.shape:
            continue
        per_state = name != "startprob_" and new.ndim >= 1 and new.shape[0] == n_states
        flat = new.reshape(n_states if per_state else 1, -1)
        bad = ~np.isfinite(flat).all(axis=1)
        if name == "transmat_":
            bad |= flat.sum(axis=1) == 0
        if bad.any():
            repaired = new.copy().reshape(flat.shape)
            repaired[bad] = old.reshape(flat.shape)[bad]
            vars(backend)[name] = repaired.reshape(new.shape)


def _floor_covariances(covs: np.ndarray, floor: float, covariance_type: str) -> np.ndarray:
    """Raise variances (eigenvalues of full and tied matrices) to at least ``floor``, in any stored layout."""
    if covariance_type in ("diag", "spherical"):
        return np.maximum(covs, floor)
    low = np.linalg.eigvalsh(covs)[..., 0]
    return covs + np.maximum(floor - low, 0.0)[..., None, None] * np.eye(covs.shape[-1])


class GuardedPoissonHMM(hmm.PoissonHMM):
    """hmmlearn's PoissonHMM whose M-step keeps an unused state's rates (see ``_guarded_mstep``)."""

    def _do_mstep(self, stats):
        _guarded_mstep(self, stats, super()._do_mstep)


class GuardedCategoricalHMM(hmm.CategoricalHMM):
    """hmmlearn's CategoricalHMM whose M-step keeps an unused state's parameters."""

    def _do_mstep(self, stats):
        _guarded_mstep(self, stats, super()._do_mstep)


class GuardedGMMHMM(hmm.GMMHMM):
    """hmmlearn's GMMHMM whose M-step keeps an unused state's mixture and floors variances at ``min_covar``.

    hmmlearn documents ``min_covar`` as a floor on the covariance diagonals
    but applies it only at initialisation: a component on constant data then
    gets variance 0 and an infinite likelihood. Here every M-step raises
    variances (eigenvalues for full and tied matrices) to at least
    ``min_covar``.
    """

    def _do_mstep(self, stats):
        _guarded_mstep(self, stats, super()._do_mstep)
        self.covars_ = _floor_covariances(self.covars_, self.min_covar, self.covariance_type)


class KernelEStepGaussianHMM(hmm.GaussianHMM):
    """hmmlearn's GaussianHMM with probspace's compiled E-step (same fit, about 4x faster).

    hmmlearn's initialisation, M-step and priors are untouched; only the
    E-step (emission log-likelihoods, forward-backward, expected transition
    counts) runs in probspace's float64 kernels, the emission log-likelihoods
    through :class:`~probspace.emissions.GaussianEmission`'s compiled density.
    """

    def _compute_log_likelihood(self, X):
        if self.covariance_type in ("diag", "spherical"):
            # hmmlearn keeps spherical variances as (K,) after init but (K, D) after its M-step.
            var = self._covars_ if self._covars_.ndim == 2 else self._covars_[:, None]
            return GaussianEmission("diag").log_frames(X, {"means": self.means_, "covars": var})
        return super()._compute_log_likelihood(X)

    def _do_estep(self, X, lengths):
        stats = self._initialize_sufficient_statistics()
        fb = _hmm.forward_backward(self.startprob_, self.transmat_, self._compute_log_likelihood(X), lengths)
        bounds = _hmm.sequence_bounds(lengths, X.shape[0])
        post = fb.marginals
        stats["nobs"] = bounds.shape[0] - 1
        if "s" in self.params:
            stats["start"] += post[bounds[:-1]].sum(axis=0)
        if "t" in self.params:
            stats["trans"] += fb.transition_counts.sum(axis=0)
        if "m" in self.params or "c" in self.params:
            stats["post"] += post.sum(axis=0)
            stats["obs"] += post.T @ X
        if "c" in self.params:
            if self.covariance_type in ("spherical", "diag"):
                stats["obs**2"] += post.T @ X**2
            else:
                stats["obs*obs.T"] += np.einsum("ij,ik,il->jkl", post, X, X)
        return stats, float(fb.log_likelihood.sum())

    def _do_mstep(self, stats):
        # hmmlearn documents min_covar as a floor but applies it only at initialisation; a scalar
        # covars_prior with "full" or "tied" adds a constant matrix (singular on constant data).
        _guarded_mstep(self, stats, super()._do_mstep)
        self._covars_ = _floor_covariances(self._covars_, self.min_covar, self.covariance_type)


def stored_covars(backend: Any, full: Any) -> np.ndarray | None:
    """Return the covariances in the layout hmmlearn's ``covars_`` setter takes, for a backend that stores ``_covars_``.

    ``full()`` returns the (repaired) full matrices; None for backends without ``_covars_``.
    """
    if not hasattr(backend, "_covars_"):
        return None
    full = full()
    layout = getattr(backend, "covariance_type", "full")
    return {"diag": lambda: np.diagonal(full, axis1=1, axis2=2).copy(), "spherical": lambda: full[:, 0, 0].copy(),
            "tied": lambda: full[0].copy(), "full": lambda: full}[layout]()


def scale_covars(backend: Any, factor: float) -> None:
    """Multiply a Gaussian backend's stored covariances by ``factor`` (every stored layout is in variance units)."""
    backend._covars_ = backend._covars_ * factor


@contextlib.contextmanager
def hmmlearn_log_as_warnings(owner: str):
    """Collect hmmlearn's log lines during a fit and re-issue each kind once as a Python warning.

    hmmlearn reports through :mod:`logging` ("Model is not converging", "Some
    rows of transmat_ have zero sum", ...), often once per iteration. Inside
    this block they do not reach the user's log handlers; afterwards each
    distinct message becomes one warning (a ``ConvergenceWarning`` for a
    falling log-likelihood) with the number of times it occurred.
    """
    from sklearn.exceptions import ConvergenceWarning

    records: list[logging.LogRecord] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger("hmmlearn")
    handler = _Collect(level=logging.WARNING)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    kinds: dict[str, list[str]] = {}
    for record in records:
        text = record.getMessage()
        kinds.setdefault(text.split(".")[0], []).append(text)
    for key, texts in kinds.items():
        category = ConvergenceWarning if "not converging" in key else UserWarning
        times = f" ({len(texts)} times)" if len(texts) > 1 else ""
        warnings.warn(f"hmmlearn, during {owner}.fit{times}: {texts[-1]}", category, stacklevel=4)
