r"""Linear-Gaussian latent models (factor analysis, probabilistic PCA): pure array functions.

The model: :math:`z \sim \mathcal{N}(0, I_k)`, :math:`x = \mu + W^\top z +
\varepsilon`, :math:`\varepsilon \sim \mathcal{N}(0, \Psi)` with diagonal
:math:`\Psi` (``psi``, shape ``(D,)``; probabilistic PCA has all entries
equal). ``W`` has shape ``(k, D)``, as scikit-learn's ``components_``.

Missing values (NaN) are handled exactly: because :math:`\Psi` is diagonal,
the observed coordinates of a row follow the same model with the rows of
:math:`W^\top` and :math:`\Psi` of those coordinates, so every quantity is
computed once per *pattern* of observed coordinates.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from scipy import linalg

__all__ = ["Conditioned", "condition", "em_missing", "missing_patterns", "n_parameters", "orthogonal_rotation"]

_LOG_2PI = float(np.log(2.0 * np.pi))
#: Floor on noise variances during EM (scikit-learn's FactorAnalysis uses the same).
_SMALL = 1e-12


class Conditioned(NamedTuple):
    """The latent posterior and the marginal log-likelihood of every row.

    Attributes
    ----------
    loc : ndarray of shape (N, k)
        Posterior means.
    covariance : ndarray of shape (P, k, k)
        Posterior covariance of each pattern of observed coordinates.
    pattern : ndarray of shape (N,) or None
        Pattern of each row (None: one pattern, every row complete).
    log_likelihood : ndarray of shape (N,)
        ``log p(x_obs)`` per row (0 for a row with nothing observed).
    """

    loc: np.ndarray
    covariance: np.ndarray
    pattern: np.ndarray | None
    log_likelihood: np.ndarray


def _one_pattern(R: np.ndarray, W: np.ndarray, psi: np.ndarray, want_ll: bool):
    """Posterior and log-likelihood of centred rows ``R`` observing the coordinates of ``W``, ``psi``."""
    k = W.shape[0]
    WP = W / psi
    M = np.eye(k) + WP @ W.T
    chol = linalg.cholesky(M, lower=True)
    cov = linalg.cho_solve((chol, True), np.eye(k))
    cov = 0.5 * (cov + cov.T)
    # loc = R Psi^-1 W^T M^-1 in one pass over R.
    loc = R @ (WP.T @ cov)
    ll = None
    if want_ll:
        # Woodbury: r' C^-1 r = r' Psi^-1 r - b' M^-1 b with b = W Psi^-1 r, and M^-1 b = loc.
        quad = np.einsum("ij,ij->i", R * (1.0 / psi), R) - np.einsum("ij,ij->i", R @ WP.T, loc)
        log_det = 2.0 * np.log(np.diag(chol)).sum() + np.log(psi).sum()
        ll = -0.5 * (psi.size * _LOG_2PI + log_det + quad)
    return loc, cov, ll


def missing_patterns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """Group the rows of ``X`` by which coordinates are observed (not NaN).

    Returns
    -------
    patterns : ndarray of bool of shape (P, D)
        The distinct patterns of observed coordinates.
    pattern : ndarray of int of shape (N,)
        The pattern of each row.
    rows : list of P ndarrays of int
        The rows of each pattern.
    """
    patterns, pattern = np.unique(~np.isnan(X), axis=0, return_inverse=True)
    pattern = pattern.reshape(-1)
    order = np.argsort(pattern, kind="stable")
    rows = np.split(order, np.cumsum(np.bincount(pattern, minlength=patterns.shape[0]))[:-1])
    return patterns, pattern, rows


def condition(X: np.ndarray, W: np.ndarray, psi: np.ndarray, mean: np.ndarray, *,
              log_likelihood: bool = True, missing: np.ndarray | None = None,
              groups: tuple[np.ndarray, np.ndarray, list[np.ndarray]] | None = None) -> Conditioned:
    r"""Posterior :math:`p(z_i \mid x_{i,\mathrm{obs}})` and :math:`\log p(x_{i,\mathrm{obs}})` of every row.

    Covariance :math:`(I + W_O \Psi_O^{-1} W_O^\top)^{-1}` and mean
    :math:`\Sigma W_O \Psi_O^{-1} (x_O - \mu_O)` over the observed
    coordinates :math:`O` of each row.

    Parameters
    ----------
    X : ndarray of shape (N, D)
        Data; NaN marks a missing value.
    W : ndarray of shape (k, D)
        Loadings.
    psi : ndarray of shape (D,)
        Noise variances (positive).
    mean : ndarray of shape (D,)
        Mean of ``x``.
    log_likelihood : bool, default=True
        Also compute the marginal log-likelihoods (else they are empty).
    missing : ndarray of bool of shape (N,), optional
        Which rows have a NaN, if already known.
    groups : tuple, optional
        :func:`missing_patterns` of ``X``, if already known.

    Returns
    -------
    Conditioned
    """
    N, D = X.shape
    k = W.shape[0]
    if missing is None:
        missing = np.isnan(X.sum(axis=1))  # X is finite or NaN: a NaN anywhere in a row makes its sum NaN
    if not missing.any():
        loc, cov, ll = _one_pattern(X - mean, W, psi, log_likelihood)
        return Conditioned(loc, cov[None], None, ll if log_likelihood else np.empty(0))
    patterns, pattern, groups_rows = missing_patterns(X) if groups is None else groups
    loc = np.empty((N, k))
    covs = np.empty((patterns.shape[0], k, k))
    ll = np.empty(N) if log_likelihood else np.empty(0)
    for p, (obs, rows) in enumerate(zip(patterns, groups_rows, strict=True)):
        R = X[np.ix_(rows, np.flatnonzero(obs))] - mean[obs]
        loc[rows], covs[p], llp = _one_pattern(R, W[:, obs], psi[obs], log_likelihood)
        if log_likelihood:
            ll[rows] = llp
    return Conditioned(loc, covs, pattern, ll)


def em_missing(X: np.ndarray, W: np.ndarray, psi: np.ndarray, mean: np.ndarray, *, isotropic: bool,
               max_iter: int, tol: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    r"""Maximum likelihood by exact EM when ``X`` has missing values.

    Both the latent :math:`z_i` and the missing coordinates of each row are
    treated as hidden. The E-step conditions on each row's observed
    coordinates (:func:`condition`); the M-step is the regression of every
    coordinate on :math:`\tilde z = (1, z)` with expected sufficient
    statistics, which updates the mean and the loadings jointly, then the
    noise variances (one shared variance when ``isotropic``). Each iteration
    cannot lower the observed-data log-likelihood.

    Parameters
    ----------
    X : ndarray of shape (N, D)
        Data with NaN for missing values (every column has an observed value).
    W, psi, mean : ndarray
        Starting values, shapes ``(k, D)``, ``(D,)``, ``(D,)``.
    isotropic : bool
        One noise variance for all coordinates (probabilistic PCA).
    max_iter : int
        Most EM iterations.
    tol : float
        Stop when the total log-likelihood rises by less than ``tol``.

    Returns
    -------
    W, psi, mean : ndarray
        The estimates after the last iteration.
    history : ndarray of shape (n_iter,)
        Mean observed-data log-likelihood per row at the start of every iteration.
    converged : bool
        Whether the rise fell below ``tol`` before ``max_iter``.
    """
    N, D = X.shape
    k = W.shape[0]
    miss = np.isnan(X)
    rows = np.flatnonzero(miss.any(axis=1))
    miss_rows = miss[rows].astype(np.float64)  # (n_incomplete, D)
    n_miss = miss.sum(axis=0)
    X0 = np.where(miss, 0.0, X)
    sum_sq_obs = np.einsum("ij,ij->j", X0, X0)
    incomplete = miss.any(axis=1)
    groups = missing_patterns(X) if incomplete.any() else None
    history: list[float] = []
    converged = False
    previous = -np.inf
    for _ in range(max_iter):
        cond = condition(X, W, psi, mean, missing=incomplete, groups=groups)
        total = float(cond.log_likelihood.sum())
        history.append(total / N)
        if total - previous < tol:
            converged = True
            break
        previous = total
        pattern = np.zeros(N, dtype=np.int64) if cond.pattern is None else cond.pattern
        zt = np.hstack([np.ones((N, 1)), cond.loc])  # E[z~] with z~ = (1, z)
        A = zt.T @ zt
        A[1:, 1:] += np.tensordot(np.bincount(pattern, minlength=cond.covariance.shape[0]), cond.covariance, 1)
        # E[z~ z~'] of the incomplete rows, summed over the rows where each coordinate is missing.
        Ei = zt[rows, :, None] * zt[rows, None, :]
        Ei[:, 1:, 1:] += cond.covariance[pattern[rows]]
        G = (miss_rows.T @ Ei.reshape(rows.size, (k + 1) ** 2)).reshape(D, k + 1, k + 1)
        B_old = np.hstack([mean[:, None], W.T])  # (D, k + 1): coordinate j regressed on z~
        C = X0.T @ zt + np.einsum("jl,jlm->jm", B_old, G)
        sxx = sum_sq_obs + np.einsum("jl,jlm,jm->j", B_old, G, B_old) + n_miss * psi
        B = linalg.solve(A, C.T, assume_a="pos").T
        resid = (sxx - np.einsum("jl,jl->j", B, C)) / N
        psi = np.full(D, max(resid.mean(), _SMALL)) if isotropic else np.maximum(resid, _SMALL)
        mean, W = B[:, 0].copy(), np.ascontiguousarray(B[:, 1:].T)
    return W, psi, mean, np.asarray(history), converged


def orthogonal_rotation(W: np.ndarray, method: str, *, tol: float = 1e-6, max_iter: int = 100) -> np.ndarray:
    r"""Rotate loadings ``W`` (shape ``(k, D)``) by varimax or quartimax.

    Kaiser's iteration for the orthogonal rotation :math:`R` maximising the
    criterion on :math:`W^\top R` (no row normalisation). An orthogonal
    rotation of the latent space leaves the model's likelihood unchanged.

    Parameters
    ----------
    W : ndarray of shape (k, D)
        Loadings.
    method : {"varimax", "quartimax"}
        The criterion.
    tol : float, default=1e-6
        Relative rise of the criterion below which the iteration stops.
    max_iter : int, default=100
        Most iterations.

    Returns
    -------
    ndarray of shape (k, D)
        The rotated loadings.
    """
    L = W.T
    D, k = L.shape
    R = np.eye(k)
    gamma = 1.0 if method == "varimax" else 0.0
    value = 0.0
    for _ in range(max_iter):
        Lr = L @ R
        target = Lr**3 - (gamma / D) * Lr * (Lr**2).sum(axis=0)
        u, s, vt = np.linalg.svd(L.T @ target)
        R = u @ vt
        if s.sum() < value * (1.0 + tol):
            break
        value = s.sum()
    return (L @ R).T


def n_parameters(n_features: int, n_components: int, *, isotropic: bool) -> int:
    """Free parameters of the model: loadings up to rotation, noise variances, mean.

    ``D k - k (k - 1) / 2`` loadings (an orthogonal rotation of the latent
    space changes ``W`` but not the model), ``D`` noise variances (1 when
    ``isotropic``) and ``D`` means.

    Parameters
    ----------
    n_features : int
        ``D``.
    n_components : int
        ``k``.
    isotropic : bool
        One noise variance (probabilistic PCA).

    Returns
    -------
    int
    """
    D, k = n_features, n_components
    return D * k - k * (k - 1) // 2 + (1 if isotropic else D) + D
