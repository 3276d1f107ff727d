"""Distributed EM: sufficient statistics per block in parallel, a tree reduction, the M-step on the client.

Each iteration sends the current parameters to the workers once (one graph
node), computes the E-step's expected sufficient statistics of every block in
parallel, adds them up by a tree reduction (``split_every`` blocks per node),
and runs the M-step on the client. The M-step formulas are scikit-learn's, so
an iteration equals one of the in-memory fit from the same parameters, to
rounding. :func:`partial_fit` is the same path for one iteration.

Statistics are taken around the current means (``x - mu_old``), which keeps
the covariance update free of cancellation for data far from the origin.
"""

from __future__ import annotations

import numbers
from typing import Any

import dask
import numpy as np
from scipy import linalg
from scipy.special import logsumexp

from ..inference._progress import progress_bar
from ._posterior import check_dask_rows

__all__ = ["expected_statistics", "fit", "partial_fit"]


# -- Gaussian mixture ------------------------------------------------------------------------------
def _precisions_cholesky(cov: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("diag", "spherical"):
        return 1.0 / np.sqrt(cov)
    covs = cov[None] if covariance_type == "tied" else cov
    out = np.empty_like(covs)
    for k, c in enumerate(covs):
        chol = linalg.cholesky(c, lower=True)
        out[k] = linalg.solve_triangular(chol, np.eye(c.shape[0]), lower=True).T
    return out[0] if covariance_type == "tied" else out


def gmm_log_weighted(X: np.ndarray, params: dict[str, Any]) -> np.ndarray:
    """Return ``log w_k + log N(x_i | mu_k, Sigma_k)``, shape (N, K), from scikit-learn's Cholesky precisions."""
    means, pc, ct = params["means"], params["precisions_cholesky"], params["covariance_type"]
    N, D = X.shape
    K = means.shape[0]
    out = np.empty((N, K))
    for k in range(K):
        diff = X - means[k]
        if ct == "full" or ct == "tied":
            P = pc[k] if ct == "full" else pc
            y = diff @ P
            logdet = np.log(np.diag(P)).sum()
        else:
            p = pc[k] if ct == "diag" else np.full(D, pc[k])
            y = diff * p
            logdet = np.log(p).sum()
        out[:, k] = logdet - 0.5 * np.einsum("ij,ij->i", y, y)
    return out - 0.5 * D * np.log(2 * np.pi) + np.log(params["weights"])


def gmm_statistics(X: np.ndarray, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """E-step statistics of one block: counts, first and second moments around the current means, log-likelihood.

    Parameters
    ----------
    X : ndarray of shape (N, D)
        One block of rows.
    params : dict
        ``weights``, ``means``, ``precisions_cholesky`` and ``covariance_type``.

    Returns
    -------
    dict of str to ndarray
        ``n`` (K,), ``s1`` (K, D), ``s2`` (K, D, D) or (K, D), ``loglik`` (), ``rows`` ().
    """
    X = np.asarray(X, dtype=np.float64)
    lw = gmm_log_weighted(X, params)
    norm = logsumexp(lw, axis=1)
    resp = np.exp(lw - norm[:, None])
    means = params["means"]
    K, D = means.shape
    full = params["covariance_type"] in ("full", "tied")
    s1 = np.empty((K, D))
    s2 = np.empty((K, D, D) if full else (K, D))
    for k in range(K):
        diff = X - means[k]
        r = resp[:, k]
        s1[k] = r @ diff
        s2[k] = (r[:, None] * diff).T @ diff if full else r @ (diff * diff)
    return {"n": resp.sum(axis=0), "s1": s1, "s2": s2, "loglik": np.array(norm.sum()), "rows": np.array(X.shape[0])}


def gmm_m_step(stats: dict[str, np.ndarray], params: dict[str, Any], reg_covar: float) -> dict[str, Any]:
    """Return new parameters from reduced statistics (scikit-learn's M-step, moments around the old means)."""
    ct = params["covariance_type"]
    nk = stats["n"] + 10 * np.finfo(np.float64).eps
    d = stats["s1"] / nk[:, None]
    means = params["means"] + d
    K, D = means.shape
    if ct in ("full", "tied"):
        cov = stats["s2"] / nk[:, None, None] - d[:, :, None] * d[:, None, :]
        if ct == "tied":
            cov = (cov * nk[:, None, None]).sum(axis=0) / nk.sum()
            cov.flat[:: D + 1] += reg_covar
        else:
            cov[:, np.arange(D), np.arange(D)] += reg_covar
    else:
        cov = stats["s2"] / nk[:, None] - d * d + reg_covar
        if ct == "spherical":
            cov = cov.mean(axis=1)
    return {"weights": nk / nk.sum(), "means": means, "covariances": cov,
            "precisions_cholesky": _precisions_cholesky(cov, ct), "covariance_type": ct}


def _gmm_params(model) -> dict[str, Any]:
    b = model.backend_
    return {"weights": b.weights_, "means": b.means_, "precisions_cholesky": b.precisions_cholesky_,
            "covariance_type": model.covariance_type}


def _gmm_write(model, params) -> None:
    b = model.backend_
    ct = params["covariance_type"]
    b.weights_, b.means_, b.covariances_ = params["weights"], params["means"], params["covariances"]
    pc = params["precisions_cholesky"]
    b.precisions_cholesky_ = pc
    if ct in ("diag", "spherical"):
        b.precisions_ = pc**2
    elif ct == "tied":
        b.precisions_ = pc @ pc.T
    else:
        b.precisions_ = pc @ np.swapaxes(pc, -1, -2)


def _check_family(model) -> None:
    from ..models import GaussianMixture

    if not isinstance(model, GaussianMixture):
        raise NotImplementedError(f"Distributed EM supports GaussianMixture; got {type(model).__name__}. Fit other "
                                  "families in memory or on a subsample.")
    if model.bayesian or model.sampler is not None:
        raise NotImplementedError("Distributed EM fits maximum-likelihood GaussianMixture (bayesian=False, "
                                  "sampler=None).")


# -- the distributed loop --------------------------------------------------------------------------
def _add(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(parts[0])
    for p in parts[1:]:
        for k in out:
            out[k] = out[k] + p[k]
    return out


def _tree_sum(parts: list, split_every: int):
    while len(parts) > 1:
        parts = [dask.delayed(_add)(*parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def _statistics_graph(X, params, split_every: int):
    p = dask.delayed(params, pure=True, traverse=False)
    return _tree_sum([dask.delayed(gmm_statistics)(b, p) for b in X.to_delayed()[:, 0]], split_every)


def expected_statistics(model: Any, X: Any, *, split_every: int = 8, **compute_kwargs: Any) -> dict[str, np.ndarray]:
    """E-step sufficient statistics of ``X`` under the model's current parameters, computed per block and reduced.

    Parameters
    ----------
    model : GaussianMixture
        A fitted model (the parameters of the E-step).
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked along rows.
    split_every : int, default=8
        Blocks added per node of the reduction tree.
    **compute_kwargs
        Passed to :func:`dask.compute`.

    Returns
    -------
    dict of str to ndarray
        ``n`` (expected counts per component), ``s1`` and ``s2`` (first and
        second moments around the current means), ``loglik`` (total
        log-likelihood) and ``rows``.
    """
    _check_family(model)
    X = check_dask_rows(model, X)
    (stats,) = dask.compute(_statistics_graph(X, _gmm_params(model), _split(split_every)), **compute_kwargs)
    return stats


def _split(split_every: Any) -> int:
    if isinstance(split_every, bool) or not isinstance(split_every, numbers.Integral) or split_every < 2:
        raise ValueError(f"'split_every' must be an int >= 2; got {split_every!r}.")
    return int(split_every)


def _initialise(model, X, init_size: int) -> None:
    """Fit the model in memory on about ``init_size`` rows taken evenly from every block."""
    n_blocks = X.numblocks[0]
    per = max(1, init_size // n_blocks)
    parts = [X.blocks[i][: min(per, X.chunks[0][i])] for i in range(n_blocks)]
    sub = np.concatenate(dask.compute(*parts), axis=0)
    model.fit(sub)


def fit(model: Any, X: Any, *, max_iter: int | None = None, tol: float | None = None, init_size: int = 10_000,
        split_every: int = 8, progress: bool = False, **compute_kwargs: Any) -> Any:
    """Fit a model by EM over a dask array: E-step per block in parallel, tree reduction, M-step on the client.

    An unfitted model is first fitted in memory on ``init_size`` rows taken
    from all blocks (its own initialisation, ``n_init`` and seeding); a
    fitted model continues from its parameters (warm start). Then
    ``max_iter`` distributed iterations run until the gain in mean
    log-likelihood per row falls below ``tol``, as scikit-learn's.

    Parameters
    ----------
    model : GaussianMixture
        Maximum-likelihood Gaussian mixture (fitted or not); fitted in place.
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked along rows. ``persist()`` it first when it fits in the
        cluster's memory, else every iteration recomputes it.
    max_iter, tol : optional
        Default to the model's own.
    init_size : int, default=10_000
        Rows for the in-memory initialisation of an unfitted model.
    split_every : int, default=8
        Blocks added per node of the reduction tree.
    progress : bool, default=False
        Show a progress bar over iterations (with a distributed client,
        ``dask.distributed.progress`` and the dashboard show the tasks).
    **compute_kwargs
        Passed to :func:`dask.compute` (``scheduler=`` ...).

    Returns
    -------
    model
        The fitted model: parameters, ``n_iter_``, ``converged_`` and
        ``history_`` (mean log-likelihood per row before each M-step).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from probspace import GaussianMixture
    >>> from probspace.dask import fit
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(np.r_[rng.normal(-3, 1, (500, 1)), rng.normal(3, 1, (500, 1))], chunks=(250, 1))
    >>> gm = fit(GaussianMixture(2, random_state=0), X, scheduler="synchronous")
    >>> [round(float(m), 1) for m in np.sort(gm.means_.ravel())]
    [-3.0, 2.9]
    """
    _check_family(model)
    X = check_dask_rows(model, X) if hasattr(model, "backend_") else _rows_unfitted(X)
    if not hasattr(model, "backend_"):
        _initialise(model, X, init_size)
    max_iter = model.max_iter if max_iter is None else max_iter
    tol = model.tol if tol is None else tol
    split = _split(split_every)
    params = _gmm_params(model)
    trace, converged = [], False
    with progress_bar(progress, max_iter, "distributed EM", "iter") as bar:
        for _ in range(max_iter):
            (stats,) = dask.compute(_statistics_graph(X, params, split), **compute_kwargs)
            trace.append(float(stats["loglik"]) / float(stats["rows"]))
            params = gmm_m_step(stats, params, model.reg_covar)
            bar.update(1)
            if len(trace) > 1 and abs(trace[-1] - trace[-2]) < tol:
                converged = True
                break
    _gmm_write(model, params)
    model.n_iter_ = len(trace)
    model.converged_ = converged
    model.history_ = np.asarray(trace)
    model._check_fitted_parameters()
    return model


def _rows_unfitted(X):
    if not hasattr(X, "to_delayed") or X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array; got {type(X).__name__}.")
    return X.rechunk({1: -1})


def partial_fit(model: Any, X: Any, **kwargs: Any) -> Any:
    """Run one distributed EM iteration on ``X`` from the model's current parameters (fitting it first if needed).

    Parameters
    ----------
    model : GaussianMixture
        The model, updated in place.
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked along rows.
    **kwargs
        Passed to :func:`fit` (``split_every``, ``scheduler`` ...).

    Returns
    -------
    model
    """
    return fit(model, X, max_iter=1, **kwargs)
