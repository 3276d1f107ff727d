"""Many fits at once through joblib's Dask backend: MCMC chains, sweeps over settings, and their comparison."""

from __future__ import annotations

from typing import Any, NamedTuple

import joblib
import numpy as np
from sklearn.base import clone
from sklearn.model_selection import ParameterGrid

from .._selection import compare

__all__ = ["SweepResult", "fit_chains", "sweep"]


def _backend(backend: str | None) -> str:
    """``backend`` as given, else ``"dask"`` when a distributed client is active, else ``"sequential"``."""
    if backend is not None:
        return backend
    try:
        from distributed import get_client

        get_client()
    except (ImportError, ValueError):
        return "sequential"
    return "dask"


def _fit(model, X, lengths):
    return model.fit(X) if lengths is None else model.fit(X, lengths=lengths)


def _run(tasks, backend, n_jobs):
    with joblib.parallel_config(backend=_backend(backend), n_jobs=n_jobs):
        return joblib.Parallel()(joblib.delayed(_fit)(*t) for t in tasks)


class SweepResult(NamedTuple):
    """Result of :func:`sweep`.

    Parameters
    ----------
    models : dict of str to LatentModel
        The fitted models, named by their settings (``"n_components=3"``).
    table : pandas.DataFrame
        :func:`probspace.compare` of the models, best first.
    """

    models: dict
    table: Any


def sweep(model: Any, X: Any, param_grid: Any, *, lengths: Any = None, X_test: Any = None, lengths_test: Any = None,
          criterion: str | None = None, backend: str | None = None, n_jobs: int = -1) -> SweepResult:
    """Fit a model under every setting of a grid in parallel, then compare the fits.

    Each setting is a clone of ``model`` with those parameters, fitted by one
    joblib task; under a :class:`distributed.Client` (``backend="dask"``, the
    default when one is active) the tasks run on the cluster's workers.
    The same seed gives the same fits, whichever backend runs them.

    Parameters
    ----------
    model : LatentModel
        The template (unfitted or fitted; it is cloned, not changed).
    X : array-like of shape (n_samples, n_features)
        Training data (in memory: each task fits the whole of it).
    param_grid : dict or list of dict
        Settings, as :class:`sklearn.model_selection.ParameterGrid` takes them
        (``{"n_components": [2, 3, 4]}``).
    lengths : array-like of int, optional
        Sequence lengths of ``X`` (HMMs).
    X_test, lengths_test : optional
        Held-out data for :func:`probspace.compare`.
    criterion : str, optional
        Passed to :func:`probspace.compare`.
    backend : str, optional
        The joblib backend (``"dask"``, ``"loky"``, ``"threading"``,
        ``"sequential"``); default ``"dask"`` under a distributed client, else
        ``"sequential"``.
    n_jobs : int, default=-1
        The ``n_jobs`` of :class:`joblib.Parallel`.

    Returns
    -------
    SweepResult
        ``models`` and the comparison ``table``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import GaussianMixture
    >>> from probspace.dask import sweep
    >>> X = np.r_[np.random.default_rng(0).normal(-3, 1, (80, 1)), np.random.default_rng(1).normal(3, 1, (80, 1))]
    >>> result = sweep(GaussianMixture(random_state=0), X, {"n_components": [1, 2, 3]})
    >>> result.table.index[0]
    'n_components=2'
    """
    grid = list(ParameterGrid(param_grid))
    if not grid:
        raise ValueError("param_grid gives no settings; pass e.g. {'n_components': [2, 3, 4]}.")
    names = [", ".join(f"{k}={v!r}" if isinstance(v, str) else f"{k}={v}" for k, v in sorted(p.items())) for p in grid]
    fitted = _run([(clone(model).set_params(**p), X, lengths) for p in grid], backend, n_jobs)
    models = dict(zip(names, fitted, strict=True))
    table = compare(models, X, lengths=lengths, X_test=X_test, lengths_test=lengths_test, criterion=criterion)
    return SweepResult(models, table)


def fit_chains(model: Any, X: Any, *, lengths: Any = None, backend: str | None = None, n_jobs: int = -1) -> Any:
    """Run a model's MCMC chains (``sampler="gibbs"`` or ``"nuts"``) in parallel, one joblib task per chain.

    Chain ``c`` is a fit with ``n_chains=1`` seeded by the ``c``-th child of
    ``SeedSequence(random_state)``, so the chains are independent and the
    result does not depend on the backend or the number of workers. Their
    draws are stacked along the chain axis into one fitted model, whose
    point estimates are the posterior means over all chains (as a fit with
    ``n_chains`` chains reports); its history, ``n_iter_`` and EM backend
    are those of the first chain.

    Parameters
    ----------
    model : GaussianMixture or HMM family
        An MCMC model (``sampler`` set); cloned, not changed.
    X : array-like of shape (n_samples, n_features)
        Training data.
    lengths : array-like of int, optional
        Sequence lengths (HMMs).
    backend : str, optional
        The joblib backend; default ``"dask"`` under a distributed client, else
        ``"sequential"``.
    n_jobs : int, default=-1
        The ``n_jobs`` of :class:`joblib.Parallel`.

    Returns
    -------
    LatentModel
        A fitted clone of ``model`` with ``n_chains`` chains in ``draws_``.
    """
    if getattr(model, "sampler", None) is None:
        raise ValueError(f"fit_chains runs MCMC chains; {type(model).__name__} has sampler=None. "
                         "Set sampler='gibbs' or 'nuts'.")
    if isinstance(model.random_state, np.random.Generator):
        root = np.random.SeedSequence(int(model.random_state.integers(2**63)))
    else:
        root = np.random.SeedSequence(model.random_state)
    seeds = [int(s.generate_state(1, np.uint64)[0] >> np.uint64(1)) for s in root.spawn(int(model.n_chains))]
    fits = _run([(clone(model).set_params(n_chains=1, random_state=s), X, lengths) for s in seeds], backend, n_jobs)
    first = fits[0]
    engine = first.mcmc_
    draws = {k: np.concatenate([f.mcmc_.draws[k] for f in fits]) for k in engine.draws}
    stats = {k: np.concatenate([f.mcmc_.stats[k] for f in fits]) for k in engine.stats}
    first.mcmc_ = type(engine)(engine.structure, engine.sampler, draws, stats, engine.prior)
    first._set_point(first.mcmc_.point())
    first.set_params(n_chains=model.n_chains, random_state=model.random_state)
    return first
