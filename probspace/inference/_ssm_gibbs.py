"""Blocked Gibbs sampling of the linear-Gaussian state space model's parameters (pure array functions).

One sweep, given the parameters ``theta``:

1. the whole state path of every sequence jointly, ``x ~ p(x | y_obs, theta)``
   (Kalman filter and backward sampling: the simulation smoother);
2. the missing observation entries, ``y_mis ~ p(y_mis | x, y_obs, theta)``
   (Gaussian: given ``x_t``, the entries of ``y_t`` are ``N(C x_t + D u_t, R)``),
   so steps 1-2 draw ``(x, y_mis)`` jointly from their exact conditional;
3. the parameters from their conditionals given the completed data, block by
   block: ``[A B]`` then ``Q`` (regression of ``x_t`` on ``[x_t-1; u_t]``),
   ``[C D]`` then ``R`` (regression of ``y_t`` on ``[x_t; u_t]``), ``mu0``
   then ``P0`` (the first states of the sequences).

Priors (independent across blocks, semi-conjugate): the entries of each
coefficient matrix and of ``mu0`` are independent normals; each covariance is
inverse-Wishart ``IW(df, scale)`` (density proportional to ``|S|^-(df+k+1)/2
exp(-tr(scale S^-1)/2)``; for ``k = 1`` the inverse-gamma ``IG(df/2,
scale/2)``), or, for a diagonal covariance (off-diagonal held at zero),
independent ``IG(df/2, scale_ii/2)`` on its diagonal. Given the covariance,
the free coefficients are Gaussian (the held ones in place); given the
coefficients, the covariance is inverse-Wishart (inverse-gamma). Held arrays
and entries never move.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

from . import _kalman
from ._progress import progress_bar

__all__ = ["draw_coefficients", "draw_covariance", "impute_missing", "run_chains"]


def draw_coefficients(Syz: np.ndarray, Szz: np.ndarray, W: np.ndarray, held: np.ndarray, S: np.ndarray,
                      mean: np.ndarray, sd: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw the free entries of ``W`` in ``y = W z + e``, ``e ~ N(0, S)``, given the held ones.

    With the sufficient statistics ``Syz = sum y z'`` and ``Szz = sum z z'``
    and independent ``N(mean_ij, sd_ij^2)`` priors, ``vec(W)`` (columns
    stacked) has precision ``Szz kron S^-1 + diag(sd^-2)`` and linear term
    ``vec(S^-1 Syz) + mean / sd^2``; the free block is drawn from its
    conditional given the held entries.
    """
    W = W.copy()
    if held.all() or W.size == 0:
        return W
    S_inv = np.linalg.inv(S)
    prec = 1.0 / sd.ravel(order="F") ** 2
    H = np.kron(Szz, S_inv) + np.diag(prec)
    g = (S_inv @ Syz).ravel(order="F") + prec * mean.ravel(order="F")
    h = held.ravel(order="F")
    w = W.ravel(order="F")
    Hff = H[np.ix_(~h, ~h)]
    L = np.linalg.cholesky(0.5 * (Hff + Hff.T))
    b = g[~h] - H[np.ix_(~h, h)] @ w[h]
    mu = np.linalg.solve(L.T, np.linalg.solve(L, b))
    w[~h] = mu + np.linalg.solve(L.T, rng.standard_normal(mu.size))
    return w.reshape(W.shape, order="F")


def draw_covariance(scatter: np.ndarray, n: int, held: np.ndarray, df: float, scale: np.ndarray, old: np.ndarray,
                    rng: np.random.Generator) -> np.ndarray:
    """Draw a covariance from its conditional given ``n`` residuals with second-moment sum ``scatter``.

    Full: ``IW(df + n, scale + scatter)``. Off-diagonal held (diagonal):
    each ``S_ii ~ IG((df + n) / 2, (scale_ii + scatter_ii) / 2)``. All held:
    ``old``.
    """
    if held.all():
        return old
    if held.any() or held.size == 1:  # diagonal (or 1 x 1): inverse-gamma per diagonal entry
        shape = 0.5 * (df + n)
        rate = 0.5 * (np.diag(scale) + np.diag(scatter))
        return np.diag(rate / rng.gamma(shape, size=rate.size))
    S = stats.invwishart.rvs(df=df + n, scale=0.5 * (scale + scale.T + scatter + scatter.T), random_state=rng)
    S = np.atleast_2d(S)
    return 0.5 * (S + S.T)


def impute_missing(X: np.ndarray, mean_y: np.ndarray, R: np.ndarray, patterns: list, rng: np.random.Generator):
    """Complete ``X``: each frame's missing entries drawn from ``N(mean_y, R)`` given its observed entries."""
    Y = X.copy()
    for rows, miss in patterns:
        o, u = np.flatnonzero(~miss), np.flatnonzero(miss)
        K = np.linalg.solve(R[np.ix_(o, o)], R[np.ix_(o, u)]).T if o.size else np.zeros((u.size, 0))
        V = R[np.ix_(u, u)] - K @ R[np.ix_(o, u)]
        cond = mean_y[np.ix_(rows, u)] + (X[np.ix_(rows, o)] - mean_y[np.ix_(rows, o)]) @ K.T
        Y[np.ix_(rows, u)] = cond + rng.multivariate_normal(np.zeros(u.size), V, size=rows.size, method="cholesky")
    return Y


def _scatter(Y: np.ndarray, Z: np.ndarray, W: np.ndarray) -> np.ndarray:
    E = Y - Z @ W.T
    return E.T @ E


def _sweep(X, U, bounds, params, held, prior, patterns, rng):
    """One Gibbs sweep: path, missing entries, then each parameter block. Returns (new params, log p(y | old))."""
    d = params["A"].shape[0]
    bx, by = U @ params["B"].T, U @ params["D"].T
    ks = _kalman.kalman_smoother(X, params["A"], params["C"], params["Q"], params["R"], params["m0"], params["P0"],
                                 np.diff(bounds), state_offset=bx, obs_offset=by)
    x = _kalman.sample_paths(ks, 1, rng)[0]
    Y = impute_missing(X, x @ params["C"].T + by, params["R"], patterns, rng) if patterns else X
    new = dict(params)
    first = np.zeros(X.shape[0], dtype=bool)
    first[bounds[:-1]] = True
    inner = np.flatnonzero(~first)
    if inner.size:  # x_t = [A B] [x_t-1; u_t] + w_t
        Zs = np.hstack([x[inner - 1], U[inner]])
        Ys = x[inner]
        W = draw_coefficients(Ys.T @ Zs, Zs.T @ Zs, np.hstack([params["A"], params["B"]]), held["AB"],
                              params["Q"], prior["transition_coef_mean"], prior["transition_coef_sd"], rng)
        new["A"], new["B"] = W[:, :d], W[:, d:]
        new["Q"] = draw_covariance(_scatter(Ys, Zs, W), inner.size, held["Q"], prior["transition_covariance_df"],
                                   prior["transition_covariance_scale"], params["Q"], rng)
    Zo = np.hstack([x, U])  # y_t = [C D] [x_t; u_t] + v_t
    W = draw_coefficients(Y.T @ Zo, Zo.T @ Zo, np.hstack([params["C"], params["D"]]), held["CD"], params["R"],
                          prior["observation_coef_mean"], prior["observation_coef_sd"], rng)
    new["C"], new["D"] = W[:, :d], W[:, d:]
    new["R"] = draw_covariance(_scatter(Y, Zo, W), X.shape[0], held["R"], prior["observation_covariance_df"],
                               prior["observation_covariance_scale"], params["R"], rng)
    x1 = x[bounds[:-1]]  # x_1 = mu0 + e, e ~ N(0, P0), one per sequence
    ones = np.ones((x1.shape[0], 1))
    mu0 = draw_coefficients(x1.T @ ones, ones.T @ ones, params["m0"][:, None], held["m0"][:, None], params["P0"],
                            prior["initial_mean_mean"][:, None], prior["initial_mean_sd"][:, None], rng)[:, 0]
    new["m0"] = mu0
    new["P0"] = draw_covariance(_scatter(x1, ones, mu0[:, None]), x1.shape[0], held["P0"],
                                prior["initial_covariance_df"], prior["initial_covariance_scale"], params["P0"], rng)
    return new, float(ks.log_likelihood.sum())


def run_chains(X: np.ndarray, U: np.ndarray, bounds: np.ndarray, starts: list[dict], held: dict, prior: dict,
               patterns: list, n_warmup: int, n_draws: int, rng: np.random.Generator, progress: bool = False,
               label: str = "Gibbs", keep: Callable[[dict], dict] | None = None) -> tuple[list[list[dict]], np.ndarray]:
    """Run one chain per start; return the kept parameter sets per chain and ``log p(y | draw)`` per draw.

    Parameters use the short names ``A, B, C, D, Q, R, m0, P0``; ``held``
    holds boolean masks under ``AB`` (of ``[A B]``), ``CD``, ``Q``, ``R``,
    ``m0`` and ``P0``. Draw ``k`` of a chain is the parameter set at the start
    of sweep ``n_warmup + k``, paired with the log-likelihood that sweep's
    filter computed for it.
    """
    chains, loglik = [], np.empty((len(starts), n_draws))
    with progress_bar(progress, len(starts) * (n_warmup + n_draws), label, "sweep") as bar:
        for c, params in enumerate(starts):
            kept = []
            for it in range(n_warmup + n_draws):
                new, ll = _sweep(X, U, bounds, params, held, prior, patterns, rng)
                if it >= n_warmup:
                    kept.append(params if keep is None else keep(params))
                    loglik[c, it - n_warmup] = ll
                params = new
                bar.update(1)
            chains.append(kept)
    return chains, loglik
