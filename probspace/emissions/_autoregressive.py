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

Conjugate prior (Gibbs): with ``c`` the training data's mean frame (``prior_['centre']``),
write the regression of ``x_t - c`` on the centred regressors
``r_t = [x_{t-1} - c; ...; x_{t-p} - c; 1]`` (``m = D p + 1`` entries) as
``B_k = [A_k^(1) ... A_k^(p), b_k + sum_j A_k^(j) c - c]^T`` (``m`` rows, ``D``
columns: the same model, its intercept read at the centre). Then
``B_k | Sigma_k ~ MN(M0, V0, Sigma_k)`` (row covariance ``V0``, column
covariance ``Sigma_k``) and ``Sigma_k ~ IW(nu0, Psi0)``, the
matrix-normal-inverse-Wishart prior of Bayesian multivariate regression.
Given a state path its conditional is again matrix-normal-inverse-Wishart:
``Vn^-1 = V0^-1 + sum r r^T``, ``Mn = Vn (V0^-1 M0 + sum r (x - c)^T)``,
``nun = nu0 + n_k``, ``Psin = Psi0 + sum (x - c - Mn^T r)(x - c - Mn^T r)^T +
(Mn - M0)^T V0^-1 (Mn - M0)`` over the frames of state ``k`` with all their
lags. Centring changes nothing in the model; it keeps the normal equations
well conditioned for data far from the origin.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from scipy.linalg import lstsq

from ._base import FRAMES, JIT, UPDATE, Emission, PriorReader
from ._gaussian import _inverse_wishart

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


@numba.njit(**JIT)
def _sizes(X, theta, K):  # pragma: no cover - compiled
    """``(D, m)``: frame dimension and regression rows ``D p + 1`` from a lagged row's width and ``theta``'s size."""
    W = X.shape[1]
    D = (theta.shape[0] // K) // (W + 1)
    return D, W - D + 1


@numba.njit(**JIT)
def _unpack(theta, K, D, m):  # pragma: no cover - compiled
    """Return views of ``theta``: coefs (K, D, m - 1), intercepts (K, D), covars (K, D, D)."""
    a = K * D * (m - 1)
    return (theta[:a].reshape((K, D, m - 1)), theta[a:a + K * D].reshape((K, D)),
            theta[a + K * D:a + K * D + K * D * D].reshape((K, D, D)))


@numba.njit(FRAMES, **JIT)
def _ar_frames(X, aux, theta, out):  # pragma: no cover - compiled
    """``log N(x_t; A_k r_t + b_k, Sigma_k)``; 0 for rows with a NaN (a lag before the sequence's start)."""
    N, W = X.shape
    K = out.shape[1]
    D, m = _sizes(X, theta, K)
    A, b, cov = _unpack(theta, K, D, m)
    r = np.empty(D)
    for k in range(K):
        chol = np.linalg.cholesky(np.ascontiguousarray(cov[k]))
        logdet = 0.0
        for d in range(D):
            logdet += 2.0 * math.log(chol[d, d])
        for i in range(N):
            ok = True
            for j in range(W):
                if X[i, j] != X[i, j]:
                    ok = False
                    break
            if not ok:
                out[i, k] = 0.0
                continue
            for d in range(D):
                acc = X[i, d] - b[k, d]
                for e in range(m - 1):
                    acc -= A[k, d, e] * X[i, D + e]
                r[d] = acc
            q = 0.0
            for d in range(D):  # forward substitution: |chol^-1 r|^2
                s = r[d]
                for e in range(d):
                    s -= chol[d, e] * r[e]
                r[d] = s / chol[d, d]
                q += r[d] * r[d]
            out[i, k] = -0.5 * (q + logdet + D * _LOG2PI)


@numba.njit(**JIT)
def _mniw_hyper(hyper, D, m):  # pragma: no cover - compiled
    """``(M0, P0, nu0, Psi0, centre)``, ``M0`` and ``P0`` in the centred coordinates (see ``centred_prior``)."""
    M0 = hyper[:m * D].reshape((m, D))
    P0 = hyper[m * D:m * D + m * m].reshape((m, m))
    nu0 = hyper[m * D + m * m]
    at = m * D + m * m + 1
    Psi0 = hyper[at:at + D * D].reshape((D, D))
    return M0, P0, nu0, Psi0, hyper[at + D * D:at + D * D + D]


@numba.njit(UPDATE, **JIT)
def _ar_update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """Matrix-normal-inverse-Wishart draw of ``(B_k, Sigma_k)`` per state given the path ``z``.

    ``fixed`` = (coefs, intercepts, covars). Covariances held: ``B_k | Sigma_k``
    from its matrix-normal conditional. Coefficients and intercepts both held:
    ``Sigma_k ~ IW(nu0 + n_k, Psi0 + residual scatter)`` (their prior dropped,
    as for a held Gaussian mean). Holding one of coefs/intercepts alone is
    rejected before sampling. ``fixed`` may carry one more flag per entry of
    ``theta`` (True: held), read per state: state ``k``'s coefficients and
    intercepts held (together) or its covariance held follow the paths above
    for that state alone.
    """
    N, W = X.shape
    D, m = _sizes(X, theta, K)
    if fixed[0] and fixed[1] and fixed[2]:
        return
    A, b, cov = _unpack(theta, K, D, m)
    M0, P0, nu0, Psi0, c = _mniw_hyper(hyper, D, m)
    entrywise = fixed.shape[0] > 3
    at_b, at_cov = 3 + K * D * (m - 1), 3 + K * D * (m - 1) + K * D
    hold_Bs = np.empty(K, dtype=np.bool_)
    hold_covs = np.empty(K, dtype=np.bool_)
    for k in range(K):
        hold_Bs[k] = ((fixed[0] or (entrywise and fixed[3 + k * D * (m - 1)]))
                      and (fixed[1] or (entrywise and fixed[at_b + k * D])))
        hold_covs[k] = fixed[2] or (entrywise and fixed[at_cov + k * D * D])
    r = np.empty(m)
    n = np.zeros(K)
    ZZ = np.zeros((K, m, m))
    ZY = np.zeros((K, m, D))
    use = np.zeros(N, dtype=np.bool_)
    for i in range(N):
        ok = True
        for j in range(W):
            if X[i, j] != X[i, j]:
                ok = False
                break
        if not ok:
            continue
        use[i] = True
        k = z[i]
        n[k] += 1.0
        for e in range(m - 1):  # centred regressors: a well-conditioned system for data far from the origin
            r[e] = X[i, D + e] - c[e % D]
        r[m - 1] = 1.0
        for e in range(m):
            for f in range(m):
                ZZ[k, e, f] += r[e] * r[f]
            for d in range(D):
                ZY[k, e, d] += r[e] * (X[i, d] - c[d])
    Mn = np.empty((K, m, D))
    Pn = np.empty((K, m, m))
    for k in range(K):
        if hold_Bs[k]:
            for d in range(D):
                Mn[k, m - 1, d] = b[k, d] - c[d]
                for e in range(m - 1):
                    Mn[k, e, d] = A[k, d, e]
                    Mn[k, m - 1, d] += A[k, d, e] * c[e % D]
        else:
            Pn[k] = P0 + ZZ[k]
            Mn[k] = np.linalg.solve(Pn[k], P0 @ M0 + ZY[k])
    # residual scatter about Mn (a second pass: no cancellation for data far from the origin)
    S = np.zeros((K, D, D))
    res = np.empty(D)
    for i in range(N):
        if not use[i]:
            continue
        k = z[i]
        for d in range(D):
            acc = X[i, d] - c[d] - Mn[k, m - 1, d]
            for e in range(m - 1):
                acc -= Mn[k, e, d] * (X[i, D + e] - c[e % D])
            res[d] = acc
        for d in range(D):
            for f in range(D):
                S[k, d, f] += res[d] * res[f]
    G = np.empty((m, D))
    for k in range(K):
        if hold_Bs[k] and hold_covs[k]:
            continue
        if not hold_covs[k]:
            if hold_Bs[k]:
                psi = Psi0 + S[k]
            else:
                dM = Mn[k] - M0
                psi = Psi0 + S[k] + dM.T @ P0 @ dM
            psi = 0.5 * (psi + psi.T)
            cov[k] = _inverse_wishart(nu0 + n[k], psi)
        if hold_Bs[k]:
            continue
        Lv = np.linalg.cholesky(np.linalg.inv(Pn[k]))
        Ls = np.linalg.cholesky(np.ascontiguousarray(cov[k]))
        for e in range(m):
            for d in range(D):
                G[e, d] = np.random.standard_normal()
        B = Mn[k] + Lv @ G @ Ls.T
        for d in range(D):
            b[k, d] = B[m - 1, d] + c[d]
            for e in range(m - 1):
                A[k, d, e] = B[e, d]
                b[k, d] -= B[e, d] * c[e % D]


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
    positive = ("covars",)
    samplers = ("gibbs",)
    hyper_keys = {"coefs_mean": "coefs", "intercepts_mean": "intercepts", "regression_precision": "coefs",
                  "dof": "covars", "scale": "covars"}
    frames_kernel = staticmethod(_ar_frames)
    #: Lagged rows carry NaN for lags before a sequence's start (not missing data): the MCMC check allows them.
    nan_by_design = True
    update_kernel = staticmethod(_ar_update)
    #: Gibbs holds states (coupled entries); a state's coefficients and intercepts together (one regression).
    gibbs_entry_holds = gibbs_state_holds = ("coefs", "intercepts", "covars")
    gibbs_joint_holds = (("coefs", "intercepts"),)
    #: Frame at which :meth:`order_key` evaluates each state's regression (set by the model from the training data).
    centre: np.ndarray | None = None

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

    def order_key(self, params):
        """``A_k [c; ...; c] + b_k`` (first feature): state ``k``'s prediction when every lag is at ``centre``.

        ``centre`` is the training data's mean frame (zero if unset), so the
        key is the state's typical level near the data rather than its raw
        intercept, which moves with the coefficients.
        """
        A, b = np.asarray(params["coefs"]), np.asarray(params["intercepts"])
        c = np.zeros(A.shape[-1]) if self.centre is None else np.tile(self.centre, self.order)
        return A[..., 0, :] @ c + b[..., 0]

    def check_sampler(self, sampler, X, owner):
        if sampler != "gibbs":
            raise ValueError(f"{owner} supports sampler ['gibbs'] (a conjugate matrix-normal-inverse-Wishart "
                             f"update); got {sampler!r}.")

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

    def m_step(self, X, gamma, params, held=None):
        """Weighted least squares per state: ``[A_k, b_k]`` minimise ``sum_t gamma_tk |x_t - A_k r_t - b_k|^2``.

        Then ``Sigma_k`` is the ``gamma``-weighted mean outer product of the
        residuals (plus ``min_covar`` on the diagonal): together the exact
        maximiser of the expected complete-data log-likelihood. Rows without
        all their lags carry no emission term and are left out.

        ``held`` (optional) maps ``coefs``/``intercepts``/``covars`` to arrays
        whose non-NaN states are held (all entries of a state or none): a state
        with held coefficients fits its intercept to ``x - A_k r`` (a weighted
        mean), one with a held intercept regresses ``x - b_k`` on the lags
        alone, and the covariance is the residual scatter about the resulting
        ``(A_k, b_k)``. Under a common row covariance the weighted least-squares
        fit does not depend on ``Sigma_k``, so a held covariance changes
        nothing else: each step is the exact maximiser over the free arrays.
        Held arrays come back as they were (the caller copies them in).
        """
        x, lags, ok = self.split(np.asarray(X, dtype=np.float64))
        x, lags, g = x[ok], lags[ok], gamma[ok]
        design = np.column_stack([lags, np.ones(len(x))])
        A, b, cov = (np.array(params[n], dtype=np.float64) for n in self.names)
        held = held or {}
        state_held = {n: (~np.isnan(held[n]).reshape(held[n].shape[0], -1).any(axis=1) if n in held else
                          np.zeros(g.shape[1], dtype=bool)) for n in self.names}
        D = self.n_features
        for k in range(g.shape[1]):
            w = g[:, k]
            total = w.sum()
            if total <= 1e-10:
                continue
            sw = np.sqrt(w)[:, None]
            hold_a, hold_b = state_held["coefs"][k], state_held["intercepts"][k]
            if hold_a and hold_b:
                A[k], b[k] = held["coefs"][k], held["intercepts"][k]
            elif hold_a:
                A[k] = held["coefs"][k]
                b[k] = w @ (x - lags @ A[k].T) / total
            elif hold_b:
                b[k] = held["intercepts"][k]
                coef = lstsq(sw * lags, sw * (x - b[k]), lapack_driver="gelsd")[0]  # (D * p, D)
                A[k] = coef.T
            else:
                coef = lstsq(sw * design, sw * x, lapack_driver="gelsd")[0]  # (D * p + 1, D)
                A[k], b[k] = coef[:-1].T, coef[-1]
            if state_held["covars"][k]:
                cov[k] = held["covars"][k]
                continue
            resid = x - (design @ np.vstack([A[k].T, b[k]]))
            cov[k] = (w[:, None] * resid).T @ resid / total + self.min_covar * np.eye(D)
        return {"coefs": A, "intercepts": b, "covars": cov}

    # -- MCMC ----------------------------------------------------------------------------------
    def number_hint(self, array):
        return {"coefs": "'coefs_mean' and 'regression_precision'", "intercepts": "'intercepts_mean'",
                "covars": "'dof' and 'scale'"}[array]

    def resolve_hyper(self, reader: PriorReader, X, K):
        """Defaults: coefficients centred on 0, intercepts on the mean frame, a unit-information row precision.

        ``regression_precision`` is a positive number ``w`` (default 1): then
        ``V0^-1 = w * sum_t r_t r_t^T / n`` over the centred regressors ``r_t``
        (module docstring), the information of ``w`` average frames (a
        unit-information g-prior, in the data's own units); or an ``(m, m)``
        symmetric positive definite matrix used as ``V0^-1`` (rows: the
        centred lags, then the intercept at the centre).
        ``dof`` (default ``D + 2``) and ``scale`` (default the frames' variances
        over ``K**2`` on the diagonal) set ``Sigma_k ~ IW(dof, scale)``.
        """
        D, p = self.n_features, self.order
        m = D * p + 1
        x, lags, ok = self.split(np.asarray(X, dtype=np.float64))
        x, lags = x[ok], lags[ok]
        centre = x.mean(axis=0)
        Z = np.column_stack([lags - np.tile(centre, p), np.ones(len(x))])
        owner = reader.owner
        coefs_mean = reader.number("coefs_mean", 0.0, (D, D * p), positive=False)
        intercepts_mean = reader.number("intercepts_mean", x.mean(axis=0), (D,), positive=False)
        w = reader.floats("regression_precision", reader.user.get("regression_precision", 1.0))
        if w.ndim == 0:
            if not (np.isfinite(w) and w > 0):
                raise ValueError(f"prior['regression_precision'] of {owner} must be a positive number or an "
                                 f"({m}, {m}) symmetric positive definite matrix; got {w!r}.")
            gram = Z.T @ Z / len(Z)
            gram += 1e-10 * np.trace(gram) / m * np.eye(m)  # constant regressors: keep it invertible
            P0 = float(w) * gram
        else:
            P0 = w
            if P0.shape != (m, m) or not np.all(np.isfinite(P0)) or not np.allclose(P0, P0.T) or \
                    not np.all(np.linalg.eigvalsh(P0) > 0):
                raise ValueError(f"prior['regression_precision'] of {owner} must be a positive number or an "
                                 f"({m}, {m}) symmetric positive definite matrix (rows: the {D * p} lag features, "
                                 f"then the intercept); got shape {P0.shape}.")
        nu0 = float(reader.number("dof", D + 2.0, ()))
        if nu0 <= D - 1:
            raise ValueError(f"prior['dof'] of {owner} must exceed n_features - 1 = {D - 1}; got {nu0}.")
        var = np.var(x, axis=0)
        var = np.where(var > 0, var, 1.0)
        scale = reader.floats("scale", reader.user.get("scale", var / K**2))
        if scale.ndim < 2:
            try:
                scale = np.diag(np.broadcast_to(scale, (D,)))
            except ValueError:
                raise ValueError(f"prior['scale'] of {owner} must be a scalar, a vector of length {D} or a ({D}, "
                                 f"{D}) matrix; got shape {scale.shape}.") from None
        if scale.shape != (D, D) or not np.all(np.isfinite(scale)) or not np.allclose(scale, scale.T) or \
                not np.all(np.linalg.eigvalsh(scale) > 0):
            raise ValueError(f"prior['scale'] of {owner} must be finite, symmetric and positive definite (a positive "
                             f"scalar, a vector of length {D} or a ({D}, {D}) matrix); got {scale!r}.")
        return {"coefs_mean": coefs_mean, "intercepts_mean": intercepts_mean, "regression_precision": P0,
                "dof": nu0, "scale": np.array(scale, dtype=np.float64), "centre": centre}

    def centred(self, coefs: np.ndarray, intercepts: np.ndarray, centre: np.ndarray) -> np.ndarray:
        """``B~ = [A^T; (b + A [c; ...; c] - c)^T]``, the regression of ``x - c`` on ``[x_{t-j} - c; 1]``.

        Leading axes of ``coefs`` (..., D, D p) and ``intercepts`` (..., D) are kept; returns (..., D p + 1, D).
        """
        A, b = np.asarray(coefs, dtype=np.float64), np.asarray(intercepts, dtype=np.float64)
        shifted = b + A @ np.tile(centre, self.order) - centre
        return np.concatenate([np.swapaxes(A, -1, -2), shifted[..., None, :]], axis=-2)

    def pack_hyper(self, hyper, D):
        M0 = self.centred(hyper["coefs_mean"], hyper["intercepts_mean"], hyper["centre"])
        return np.concatenate([M0.ravel(), hyper["regression_precision"].ravel(), [hyper["dof"]],
                               hyper["scale"].ravel(), hyper["centre"]])

    def log_prior(self, params, hyper, fixed=()):
        """Matrix-normal (``B_k | Sigma_k``) plus inverse-Wishart (``Sigma_k``) log density, per draw.

        As in the Gibbs update: held covariances leave the matrix-normal term at
        their value; held coefficients and intercepts leave the inverse-Wishart alone.
        """
        from scipy.special import multigammaln

        A = np.asarray(params["coefs"], dtype=np.float64)
        b = np.asarray(params["intercepts"], dtype=np.float64)
        cov = np.asarray(params["covars"], dtype=np.float64)
        n, K, D, _ = A.shape
        B = self.centred(A, b, hyper["centre"])  # (n, K, m, D)
        m = B.shape[2]
        M0 = self.centred(hyper["coefs_mean"], hyper["intercepts_mean"], hyper["centre"])
        P0, nu0, psi0 = hyper["regression_precision"], float(hyper["dof"]), hyper["scale"]
        logdet = 2.0 * np.log(np.diagonal(np.linalg.cholesky(cov), axis1=-2, axis2=-1)).sum(axis=-1)  # (n, K)
        inv = np.linalg.inv(cov)
        out = np.zeros(n)
        if "covars" not in fixed:
            _, logdet_psi = np.linalg.slogdet(psi0)
            out += (0.5 * nu0 * logdet_psi - 0.5 * nu0 * D * np.log(2.0) - multigammaln(0.5 * nu0, D)
                    - 0.5 * (nu0 + D + 1.0) * logdet - 0.5 * np.einsum("de,nked->nk", psi0, inv)).sum(axis=1)
        if not ("coefs" in fixed and "intercepts" in fixed):
            dB = B - M0
            quad = np.einsum("nkde,nkef->nkdf", np.einsum("nkad,ab,nkbe->nkde", dB, P0, dB), inv)
            _, logdet_p0 = np.linalg.slogdet(P0)
            out += (-0.5 * m * D * _LOG2PI + 0.5 * D * logdet_p0 - 0.5 * m * logdet
                    - 0.5 * np.trace(quad, axis1=-2, axis2=-1)).sum(axis=1)
        return out

    def prepare_start(self, start, fixed, X, floor):
        if "covars" in fixed:
            return
        x, _, ok = self.split(np.asarray(X, dtype=np.float64))
        var = np.var(x[ok], axis=0)
        low_var = floor * np.where(var > 0, var, 1.0)
        cov = start["covars"]
        low = np.linalg.eigvalsh(cov)[:, :1, None]
        start["covars"] = cov + np.maximum(low_var.min() - low, 0.0) * np.eye(cov.shape[-1])
