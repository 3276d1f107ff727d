"""Pure array functions for Gaussian components: densities, draws, conjugate factors.

Covariance layouts follow scikit-learn's ``covariance_type``: ``"full"``
``(K, D, D)``, ``"tied"`` ``(D, D)``, ``"diag"`` ``(K, D)``, ``"spherical"`` ``(K,)``.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, stats

__all__ = [
    "as_full",
    "diag_log_density",
    "log_gaussian",
    "sample_components",
    "sample_normal_wishart",
    "sample_stick_breaking",
]


def as_full(cov: np.ndarray, covariance_type: str, n_components: int, n_features: int) -> np.ndarray:
    """Expand a covariance (or precision) array of any layout to ``(K, D, D)``."""
    if covariance_type == "full":
        return cov
    if covariance_type == "tied":
        return np.broadcast_to(cov, (n_components, n_features, n_features))
    eye = np.eye(n_features)
    if covariance_type == "diag":
        return cov[:, :, None] * eye
    if covariance_type == "spherical":
        return cov[:, None, None] * eye
    raise ValueError(f"unknown covariance_type {covariance_type!r}")


def diag_log_density(X: np.ndarray, means: np.ndarray, var: np.ndarray) -> np.ndarray:
    """Log density of every row of ``X`` under every diagonal Gaussian, NaN entries summed out.

    Computed as ``sum_d ((x_d - mu_kd)^2 / v_kd + log(2 pi v_kd))`` with the
    difference taken first, so the result is as accurate far from the origin
    (data with a large offset) as near it, where the expanded form
    ``x^2 - 2 x mu + mu^2`` cancels catastrophically. A missing (NaN) entry
    contributes 0; an all-missing row gives 0.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    means : ndarray of shape (K, D)
    var : ndarray of shape (K, D)
        Variances (positive).

    Returns
    -------
    ndarray of shape (N, K)

    Examples
    --------
    >>> import numpy as np
    >>> from probspace.inference._gaussian import diag_log_density
    >>> X = np.array([[1e8 + 1.0]])
    >>> float(diag_log_density(X, np.array([[1e8]]), np.array([[1.0]]))[0, 0] + 0.5 * np.log(2 * np.pi))
    -0.5
    """
    from ..emissions import GaussianEmission  # the one compiled Gaussian density (imports this module)

    means = np.asarray(means, dtype=np.float64)
    return GaussianEmission("diag").log_frames(X, {"means": means, "covars": np.broadcast_to(var, means.shape)})


def log_gaussian(X: np.ndarray, means: np.ndarray, precisions: np.ndarray, covariance_type: str) -> np.ndarray:
    """Log density of every row of ``X`` under every Gaussian component.

    Parameters
    ----------
    X : ndarray of shape (N, D)
    means : ndarray of shape (K, D)
    precisions : ndarray
        Precision matrices in the layout of ``covariance_type``.
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    ndarray of shape (N, K)
    """
    N, D = X.shape
    K = means.shape[0]
    out = np.empty((N, K))
    if covariance_type in ("diag", "spherical"):
        prec = precisions if covariance_type == "diag" else np.repeat(precisions[:, None], D, axis=1)
        return diag_log_density(X, means, 1.0 / prec)
    full = as_full(precisions, covariance_type, K, D)
    for k in range(K):
        chol = np.linalg.cholesky(full[k])  # precision = chol @ chol.T
        y = (X - means[k]) @ chol
        out[:, k] = np.log(np.diag(chol)).sum() - 0.5 * np.einsum("ij,ij->i", y, y)
    return out - 0.5 * D * np.log(2 * np.pi)


def sample_components(
    means: np.ndarray, covariances: np.ndarray, covariance_type: str, labels: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Draw one observation from the Gaussian component named by each label.

    Parameters
    ----------
    means : ndarray of shape (K, D)
    covariances : ndarray in the layout of ``covariance_type``
    covariance_type : {"full", "tied", "diag", "spherical"}
    labels : ndarray of int, shape (n,)
    rng : numpy.random.Generator

    Returns
    -------
    ndarray of shape (n, D)
    """
    labels = np.asarray(labels, dtype=np.intp)
    n, D = labels.shape[0], means.shape[1]
    eps = rng.standard_normal((n, D))
    if covariance_type == "diag":
        return means[labels] + eps * np.sqrt(covariances[labels])
    if covariance_type == "spherical":
        return means[labels] + eps * np.sqrt(covariances[labels])[:, None]
    if covariance_type == "tied":
        return means[labels] + eps @ np.linalg.cholesky(covariances).T
    X = np.empty((n, D))
    for k in range(means.shape[0]):
        idx = labels == k
        if idx.any():
            X[idx] = means[k] + eps[idx] @ np.linalg.cholesky(covariances[k]).T
    return X


def sample_stick_breaking(a: np.ndarray, b: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Weights from a truncated stick-breaking posterior, renormalised.

    ``v_k ~ Beta(a_k, b_k)`` and ``w_k = v_k prod_{j<k} (1 - v_j)``, then
    divided by their sum, as scikit-learn does for ``weights_``.

    Returns
    -------
    ndarray of shape (n, K)
    """
    v = rng.beta(a, b, size=(n, a.shape[0]))
    rest = np.cumprod(np.concatenate([np.ones((n, 1)), 1.0 - v[:, :-1]], axis=1), axis=1)
    w = v * rest
    return w / w.sum(axis=1, keepdims=True)


def sample_normal_wishart(
    means: np.ndarray,
    mean_precision: np.ndarray,
    covariances: np.ndarray,
    dof: np.ndarray,
    covariance_type: str,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``(means, precisions)`` from a Normal-Wishart variational posterior.

    The factors are ``Lambda_k ~ Wishart(nu_k, (nu_k Sigma_k)^-1)`` (so that
    ``E[Lambda_k] = Sigma_k^-1``) and ``mu_k | Lambda_k ~ N(m_k, (beta_k
    Lambda_k)^-1)``. For ``"diag"`` and ``"spherical"`` each precision is a
    Gamma variable with shape ``nu_k / 2`` and the same mean, the diagonal of
    that Wishart.

    Parameters
    ----------
    means : ndarray of shape (K, D)
        ``m_k``.
    mean_precision : ndarray of shape (K,)
        ``beta_k``.
    covariances : ndarray
        ``Sigma_k`` in the layout of ``covariance_type``.
    dof : ndarray of shape (K,) or float
        ``nu_k`` (a scalar for ``"tied"``).
    covariance_type : {"full", "tied", "diag", "spherical"}
    n : int
    rng : numpy.random.Generator

    Returns
    -------
    mean_draws : ndarray of shape (n, K, D)
    precision_draws : ndarray of shape (n,) + covariances.shape
    """
    K, D = means.shape
    eps = rng.standard_normal((n, K, D))
    dof = np.asarray(dof, dtype=np.float64)
    if covariance_type in ("diag", "spherical"):
        shape = dof / 2.0
        scale = 2.0 / (dof * covariances.T).T if covariance_type == "diag" else 2.0 / (dof * covariances)
        if covariance_type == "diag":
            prec = rng.gamma(shape[:, None], scale, size=(n, K, D))
            sd = 1.0 / np.sqrt(mean_precision[None, :, None] * prec)
        else:
            prec = rng.gamma(shape, scale, size=(n, K))
            sd = 1.0 / np.sqrt(mean_precision[None, :, None] * prec[:, :, None])
        return means + eps * sd, prec
    if covariance_type == "tied":
        scale = np.linalg.inv(dof * covariances)
        prec = stats.wishart(df=float(dof), scale=scale).rvs(size=n, random_state=rng).reshape(n, D, D)
        precs = np.broadcast_to(prec[:, None], (n, K, D, D))
    else:
        prec = np.empty((n, K, D, D))
        for k in range(K):
            scale = np.linalg.inv(dof[k] * covariances[k])
            prec[:, k] = stats.wishart(df=float(dof[k]), scale=scale).rvs(size=n, random_state=rng).reshape(n, D, D)
        precs = prec
    mu = np.empty((n, K, D))
    for s in range(n):
        for k in range(K):
            chol = np.linalg.cholesky(mean_precision[k] * precs[s, k])
            # chol @ chol.T = beta Lambda, so chol^-T eps ~ N(0, (beta Lambda)^-1)
            mu[s, k] = means[k] + linalg.solve_triangular(chol, eps[s, k], lower=True, trans="T")
    return mu, prec
