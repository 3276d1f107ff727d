"""Autoregressive Gaussian emissions: ``x_t | z_t = k ~ N(A_k [x_{t-1}; ...; x_{t-p}] + b_k, Sigma_k)``.

The density of a frame depends on the ``p`` frames before it, so this
emission reads *lagged rows*: row ``t`` is ``[x_t, x_{t-1}, ..., x_{t-p}]``
(``D * (p + 1)`` columns, see :func:`lagged_rows`), with NaN for lags before
the start of the frame's sequence. :class:`probspace.AutoregressiveHMM` builds
these rows from ``X`` and ``lengths``; the emission is not registered for the
generic :class:`probspace.HMM`, whose rows are frames.

Parameters (public names): ``coefs`` (K, D, D * p), the blocks ``A_k^(1) ...
A_k^(p)`` side by side (``coefs[k] @ [x_{t-1}; ...; x_{t-p}]``),
``intercepts`` (K, D) and ``covars`` (K, D, D). The first ``p`` frames of each
sequence are conditioned on: their emission term is 1 (log 0), so the
likelihood is ``p(x_{p+1:T} | x_{1:p})`` and their states are informed by the
chain alone. The EM M-step is a weighted least-squares regression per state
(closed form) followed by the weighted residual covariance.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import lstsq

from ._base import Emission

__all__ = ["AutoregressiveEmission", "lagged_rows"]

_LOG2PI = np.log(2.0 * np.pi)


def lagged_rows(X: np.ndarray, lengths: np.ndarray | None, order: int) -> np.ndarray:
    """Rows ``[x_t, x_{t-1}, ..., x_{t-order}]`` of each sequence, NaN for lags before its start.

    Parameters
    ----------
    X : ndarray of shape (N, D)
        Sequences concatenated.
    lengths : ndarray of int or None
        Sequence lengths (None: one sequence).
    order : int
        Number of lags ``p``.

    Returns
    -------
    ndarray of shape (N, D * (order + 1))

    Examples
    --------
    >>> import numpy as np
    >>> lagged_rows(np.arange(4.0)[:, None], np.array([2, 2]), 1)
    array([[ 0., nan],
           [ 1.,  0.],
           [ 2., nan],
           [ 3.,  2.]])
    """
    N, D = X.shape
    lengths = np.array([N]) if lengths is None else np.asarray(lengths)
    out = np.full((N, D * (order + 1)), np.nan)
    out[:, :D] = X
    start = 0
    for n in lengths:
        for j in range(1, order + 1):
            if n > j:
                out[start + j:start + n, j * D:(j + 1) * D] = X[start:start + n - j]
        start += n
    return out


class AutoregressiveEmission(Emission):
    """Autoregressive Gaussian emissions over lagged rows (see the module docstring).

    Parameters
    ----------
    order : int, default=1
        Number of lags ``p``.
    n_features : int, default=1
        Dimension ``D`` of a frame (a lagged row has ``D * (order + 1)`` columns).
    min_covar : float, default=1e-3
        Added to the diagonal of each fitted noise covariance.
    """

    names = ("coefs", "intercepts", "covars")
    key = "intercepts"

    def __init__(self, order: int = 1, n_features: int = 1, min_covar: float = 1e-3) -> None:
        self.order = order
        self.n_features = n_features
        self.min_covar = min_covar

    def shapes(self, K, D):
        D = self.n_features
        return {"coefs": (K, D, D * self.order), "intercepts": (K, D), "covars": (K, D, D)}

    def dims(self):
        return {"coefs": ("state", "feature", "lag_feature"), "intercepts": ("state", "feature"),
                "covars": ("state", "feature", "feature_bis")}

    def check_sampler(self, sampler, X, owner):
        raise ValueError(f"{owner} has no MCMC sampler; sampler={sampler!r} is not supported. Fit by EM.")

    def split(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(x, regressors, informative)``: frames (N, D), lags (N, D * p), and which rows have all their lags."""
        D = self.n_features
        x, lags = rows[:, :D], rows[:, D:]
        return x, lags, ~np.isnan(lags).any(axis=1) & ~np.isnan(x).any(axis=1)

    def conditional_means(self, lags: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        """``A_k r_t + b_k`` for each row of ``lags`` and each state, shape (N, K, D)."""
        A, b = np.asarray(params["coefs"]), np.asarray(params["intercepts"])
        return np.einsum("kde,ne->nkd", A, lags) + b[None]

    def log_frames(self, X, params):
        """``log N(x_t; A_k r_t + b_k, Sigma_k)`` (N, K); 0 for frames without all their lags (conditioned on)."""
        X = np.asarray(X, dtype=np.float64)
        x, lags, ok = self.split(X)
        cov = np.asarray(params["covars"], dtype=np.float64)
        K, D = cov.shape[0], self.n_features
        out = np.zeros((X.shape[0], K))
        if not ok.any():
            return out
        resid = x[ok, None, :] - self.conditional_means(lags[ok], params)  # (n, K, D)
        chol = np.linalg.cholesky(cov)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
        for k in range(K):
            y = np.linalg.solve(chol[k], resid[:, k].T)
            out[ok, k] = -0.5 * ((y * y).sum(axis=0) + logdet[k] + D * _LOG2PI)
        return out

    def sample(self, params, states, rng):
        """Innovations ``A_k r + b_k + e`` need the lags: this draws ``b_k + e`` (the model runs the recursion)."""
        cov = np.asarray(params["covars"])
        b = np.asarray(params["intercepts"])
        chol = np.linalg.cholesky(cov)[states]
        return b[states] + np.einsum("nde,ne->nd", chol, rng.standard_normal((len(states), self.n_features)))

    # -- EM ---------------------------------------------------------------------------------------
    def init(self, X, K, rng):
        """Hard k-means labels of the lagged rows (frame and lags together), then one weighted least-squares step."""
        from sklearn.cluster import KMeans

        _, lags, ok = self.split(X)
        rows = X[ok]
        gamma = np.full((X.shape[0], K), 1.0 / K)
        if rows.shape[0] >= K and np.unique(rows, axis=0).shape[0] >= K:
            labels = KMeans(K, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit_predict(rows)
            gamma[ok] = np.eye(K)[labels]
        else:
            gamma[ok] = rng.dirichlet(np.ones(K), size=rows.shape[0])
        D, p = self.n_features, self.order
        start = {"coefs": np.zeros((K, D, D * p)), "intercepts": np.zeros((K, D)), "covars": np.broadcast_to(
            np.eye(D), (K, D, D)).copy()}
        return self.m_step(X, gamma, start)

    def m_step(self, X, gamma, params):
        """Weighted least squares per state: ``[A_k, b_k]`` minimise ``sum_t gamma_tk |x_t - A_k r_t - b_k|^2``.

        Then ``Sigma_k`` is the ``gamma``-weighted mean outer product of the
        residuals (plus ``min_covar`` on the diagonal): together the exact
        maximiser of the expected complete-data log-likelihood. Rows without
        all their lags carry no emission term and are left out.
        """
        x, lags, ok = self.split(np.asarray(X, dtype=np.float64))
        x, lags, g = x[ok], lags[ok], gamma[ok]
        design = np.column_stack([lags, np.ones(len(x))])
        A, b, cov = (np.array(params[n], dtype=np.float64) for n in self.names)
        D = self.n_features
        for k in range(g.shape[1]):
            w = g[:, k]
            total = w.sum()
            if total <= 1e-10:
                continue
            sw = np.sqrt(w)[:, None]
            coef = lstsq(sw * design, sw * x, lapack_driver="gelsd")[0]  # (D * p + 1, D)
            A[k], b[k] = coef[:-1].T, coef[-1]
            resid = x - design @ coef
            cov[k] = (w[:, None] * resid).T @ resid / total + self.min_covar * np.eye(D)
        return {"coefs": A, "intercepts": b, "covars": cov}
