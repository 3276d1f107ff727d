"""Gaussian emissions: ``x | z = k ~ N(mu_k, Sigma_k)``, covariances full, diag, tied or spherical.

Parameters (public names): ``means`` (K, D) and a covariance array named by
the family (``"covars"`` for HMMs, ``"covariances"`` for mixtures) in the
layout of ``covariance_type``: ``"full"`` (K, D, D), ``"diag"`` (K, D),
``"tied"`` (D, D), ``"spherical"`` (K,). Two compiled log-densities serve all
four layouts (diagonal and full matrices); missing entries are marginalised
(the Gaussian of the observed coordinates). Conjugate prior (MCMC,
``"diag"`` and ``"full"``): ``mu | Sigma ~ N(m0, Sigma / kappa0)`` and
``Sigma ~ IW(nu0, Psi0)`` (per feature ``sigma^2 ~ InvGamma(nu0/2, psi0/2)``
for ``"diag"``).
"""

from __future__ import annotations

import math
from typing import Any

import numba
import numpy as np

from ..inference._gaussian import as_full, sample_components
from ._base import FRAMES, JIT, UPDATE, Emission, PriorReader, run_frames, state_sums

__all__ = ["GaussianEmission"]

_LOG2PI = math.log(2.0 * math.pi)
_NO_AUX = np.zeros(0)


@numba.njit(FRAMES, **JIT)
def _diag_frames(X, aux, theta, out):  # pragma: no cover - compiled
    """Diagonal Gaussians; ``theta`` = means (K, D) then variances (K, D).

    The difference is taken first, so data far from the origin lose no accuracy (the expanded
    ``x^2 - 2 x mu + mu^2`` would cancel). Precisions and each state's normalising constant are
    computed once per call; complete rows take a branch-free loop, rows with NaN sum over their
    observed entries.
    """
    T, D = X.shape
    K = out.shape[1]
    means = theta[:K * D].reshape((K, D))
    var = theta[K * D:2 * K * D].reshape((K, D))
    prec = np.empty((D, K))  # feature-major, so the loop over states is contiguous (vectorised)
    mu = np.empty((D, K))
    log_norm = np.empty((D, K))
    const = np.zeros(K)
    for k in range(K):
        for d in range(D):
            mu[d, k] = means[k, d]
            prec[d, k] = 1.0 / var[k, d]
            log_norm[d, k] = math.log(var[k, d]) + _LOG2PI
            const[k] += log_norm[d, k]
    acc = np.empty(K)
    for t in range(T):
        complete = True
        for d in range(D):
            if X[t, d] != X[t, d]:
                complete = False
        if complete:
            for k in range(K):
                acc[k] = const[k]
            for d in range(D):
                x = X[t, d]
                for k in range(K):
                    r = x - mu[d, k]
                    acc[k] += r * r * prec[d, k]
        else:
            acc[:] = 0.0
            for d in range(D):
                x = X[t, d]
                if x == x:  # observed (not NaN)
                    for k in range(K):
                        r = x - mu[d, k]
                        acc[k] += r * r * prec[d, k] + log_norm[d, k]
        for k in range(K):
            out[t, k] = -0.5 * acc[k]


@numba.njit(**JIT)
def _solve_quadratic(chol, r, n, y):  # pragma: no cover - compiled
    """``|chol^-1 r|^2`` by forward substitution over the first ``n`` entries (``y``: workspace)."""
    q = 0.0
    for d in range(n):
        s = r[d]
        for e in range(d):
            s -= chol[d, e] * y[e]
        y[d] = s / chol[d, d]
        q += y[d] * y[d]
    return q


@numba.njit(FRAMES, **JIT)
def _full_frames(X, aux, theta, out):  # pragma: no cover - compiled
    """Full-covariance Gaussians; ``theta`` = means (K, D) then covariances (K, D, D).

    A row with missing entries uses the marginal Gaussian of its observed coordinates; an all-missing row gives 0.
    """
    N, D = X.shape
    K = out.shape[1]
    means = theta[:K * D].reshape((K, D))
    covs = theta[K * D:K * D + K * D * D].reshape((K, D, D))
    r = np.empty(D)
    y = np.empty(D)
    obs = np.empty(D, dtype=np.int64)
    for k in range(K):
        chol = np.linalg.cholesky(np.ascontiguousarray(covs[k]))
        logdet = 0.0
        for d in range(D):
            logdet += 2.0 * math.log(chol[d, d])
        for i in range(N):
            n = 0
            for d in range(D):
                if X[i, d] == X[i, d]:
                    obs[n] = d
                    r[n] = X[i, d] - means[k, d]
                    n += 1
            if n == D:
                out[i, k] = -0.5 * (D * _LOG2PI + logdet + _solve_quadratic(chol, r, D, y))
            elif n == 0:
                out[i, k] = 0.0
            else:
                sub = np.empty((n, n))
                for a in range(n):
                    for b in range(n):
                        sub[a, b] = covs[k, obs[a], obs[b]]
                c = np.linalg.cholesky(sub)
                det = 0.0
                for a in range(n):
                    det += 2.0 * math.log(c[a, a])
                out[i, k] = -0.5 * (n * _LOG2PI + det + _solve_quadratic(c, r, n, y))


@numba.njit(**JIT)
def _statistics(X, z, K, full):  # pragma: no cover - compiled
    """Return the counts, means and scatter matrices (diagonal only unless ``full``) of the points of each state."""
    N, D = X.shape
    n, sums = state_sums(X, z, K)
    xbar = np.zeros((K, D))
    for k in range(K):
        if n[k] > 0:
            for d in range(D):
                xbar[k, d] = sums[k, d] / n[k]
    scatter = np.zeros((K, D, D))
    for i in range(N):
        k = z[i]
        for d in range(D):
            rd = X[i, d] - xbar[k, d]
            if full:
                for e in range(D):
                    scatter[k, d, e] += rd * (X[i, e] - xbar[k, e])
            else:
                scatter[k, d, d] += rd * rd
    return n, xbar, scatter


@numba.njit(**JIT)
def _hyper(hyper, D):  # pragma: no cover - compiled
    return hyper[:D], hyper[D], hyper[D + 1], hyper[D + 2:D + 2 + D * D].reshape((D, D))


@numba.njit(UPDATE, **JIT)
def _diag_update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """Normal-inverse-Gamma per feature; a fixed mean drops its prior (``sigma^2 | mu`` alone).

    ``fixed`` may carry ``2 * K * D`` more flags after the two arrays' flags:
    the entries held of the means, then of the variances (row-major). The
    features are independent given the labels, so a held mean entry is the
    fixed-mean case for its feature alone (``sigma^2 | mu``), a held variance
    the fixed-variance case (``mu | sigma^2 ~ N(mn, sigma^2 / kn)``), and an
    entry with both held is not drawn.
    """
    D = X.shape[1]
    if fixed[0] and fixed[1]:
        return
    entrywise = fixed.shape[0] > 2
    means = theta[:K * D].reshape((K, D))
    var = theta[K * D:2 * K * D].reshape((K, D))
    m0, kappa0, nu0, psi0 = _hyper(hyper, D)
    n, xbar, scatter = _statistics(X, z, K, False)
    for k in range(K):
        nun = nu0 + n[k]
        kn = kappa0 + n[k]
        shrink = kappa0 * n[k] / kn
        for d in range(D):
            hold_var = fixed[1] or (entrywise and fixed[2 + K * D + k * D + d])
            if fixed[0] or (entrywise and fixed[2 + k * D + d]):
                if not hold_var:
                    diff = xbar[k, d] - means[k, d]
                    psin = psi0[d, d] + scatter[k, d, d] + n[k] * (diff * diff)
                    var[k, d] = 1.0 / np.random.gamma(0.5 * nun, 2.0 / psin)
                continue
            mn = (kappa0 * m0[d] + n[k] * xbar[k, d]) / kn
            if not hold_var:
                psin = psi0[d, d] + scatter[k, d, d] + shrink * (xbar[k, d] - m0[d]) ** 2
                var[k, d] = 1.0 / np.random.gamma(0.5 * nun, 2.0 / psin)
            means[k, d] = mn + math.sqrt(var[k, d] / kn) * np.random.standard_normal()


@numba.njit(**JIT)
def _inverse_wishart(nu, psi):  # pragma: no cover - compiled
    """Sigma ~ IW(nu, psi) through the Bartlett decomposition of its inverse, W ~ Wishart(nu, psi^-1)."""
    D = psi.shape[0]
    L = np.linalg.cholesky(np.linalg.inv(psi))
    B = np.zeros((D, D))
    for i in range(D):
        B[i, i] = math.sqrt(2.0 * np.random.gamma(0.5 * (nu - i), 1.0))
        for j in range(i):
            B[i, j] = np.random.standard_normal()
    Minv = np.linalg.inv(L @ B)  # W = M M^T with M = L B, so Sigma = M^-T M^-1
    return Minv.T @ Minv


@numba.njit(UPDATE, **JIT)
def _full_update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """Normal-inverse-Wishart; a fixed mean drops its prior (``Sigma | mu ~ IW`` alone).

    ``fixed`` may carry one more flag per entry of ``theta`` (means, then
    covariances; True: held), read per state (a state's entries are held
    together): state ``k``'s mean held gives ``Sigma_k | mu_k ~ IW`` (prior of
    the mean dropped), its covariance held ``mu_k | Sigma_k ~ N(mn, Sigma_k /
    kn)``, both held: state ``k`` is not drawn.
    """
    D = X.shape[1]
    if fixed[0] and fixed[1]:
        return
    entrywise = fixed.shape[0] > 2
    means = theta[:K * D].reshape((K, D))
    covs = theta[K * D:K * D + K * D * D].reshape((K, D, D))
    m0, kappa0, nu0, psi0 = _hyper(hyper, D)
    n, xbar, scatter = _statistics(X, z, K, True)
    for k in range(K):
        nun = nu0 + n[k]
        hold_mean = fixed[0] or (entrywise and fixed[2 + k * D])
        hold_cov = fixed[1] or (entrywise and fixed[2 + K * D + k * D * D])
        if hold_mean:
            if not hold_cov:
                diff = xbar[k] - means[k]
                covs[k] = _inverse_wishart(nun, psi0 + scatter[k] + n[k] * np.outer(diff, diff))
            continue
        kn = kappa0 + n[k]
        shrink = kappa0 * n[k] / kn
        mn = (kappa0 * m0 + n[k] * xbar[k]) / kn
        if not hold_cov:
            diff = xbar[k] - m0
            covs[k] = _inverse_wishart(nun, psi0 + scatter[k] + shrink * np.outer(diff, diff))
        chol = np.linalg.cholesky(covs[k] / kn)
        eps = np.empty(D)
        for d in range(D):
            eps[d] = np.random.standard_normal()
        means[k] = mn + chol @ eps


class GaussianEmission(Emission):
    """Gaussian emissions (see the module docstring).

    Parameters
    ----------
    covariance_type : {"full", "diag", "tied", "spherical"}
        Layout of the covariance array.
    scale : str, default="covars"
        Public name of the covariance array.
    min_covar : float, default=1e-3
        Added to the variances by the M-step (as hmmlearn's ``min_covar``).
    """

    name = "gaussian"
    min_samples = 2
    key = "means"
    positive = ()
    samplers = ("gibbs", "nuts")

    def __init__(self, covariance_type: str = "diag", scale: str = "covars", min_covar: float = 1e-3) -> None:
        self.covariance_type = covariance_type
        self.scale = scale
        self.min_covar = min_covar
        self.names = ("means", scale)
        self.positive = (scale,)
        self.hyper_keys = {"mean": "means", "mean_precision": "means", "dof": scale, "scale": scale}
        diagonal = covariance_type in ("diag", "spherical")
        self.frames_kernel = _diag_frames if diagonal else _full_frames
        self.update_kernel = _diag_update if diagonal else _full_update
        # Gibbs holds entries of diagonal arrays (independent features), whole states of full ones (coupled)
        self.gibbs_entry_holds = ("means", scale) if covariance_type in ("diag", "full") else ()
        self.gibbs_state_holds = ("means", scale) if covariance_type == "full" else ()

    def shapes(self, K, D):
        cov = {"full": (K, D, D), "diag": (K, D), "tied": (D, D), "spherical": (K,)}[self.covariance_type]
        return {"means": (K, D), self.scale: cov}

    def check_data(self, X, owner):
        if self.covariance_type not in ("full", "diag", "tied", "spherical"):
            raise ValueError(f"{owner}: covariance_type must be 'full', 'diag', 'tied' or 'spherical'; got "
                             f"{self.covariance_type!r}.")

    @staticmethod
    def conformance_data(states, rng):
        means = np.array([[-2.0, 0.0], [2.0, 1.0]])
        return means[states] + rng.normal(size=(len(states), 2))

    def init(self, X, K, rng):
        """Return means by k-means on the complete rows (too few: random rows), the data's variances for every state."""
        from sklearn.cluster import KMeans

        D = X.shape[1]
        complete = X[~np.isnan(X).any(axis=1)]
        with np.errstate(all="ignore"):
            mean = np.nan_to_num(np.nanmean(X, axis=0)) if np.isfinite(X).any() else np.zeros(D)
            var = np.nan_to_num(np.nanvar(X, axis=0)) if np.isfinite(X).any() else np.ones(D)
        var = np.maximum(var, 1e-3) + self.min_covar
        if complete.shape[0] >= K and np.unique(complete, axis=0).shape[0] >= K:
            km = KMeans(K, n_init=1, random_state=int(rng.integers(2**31 - 1))).fit(complete)
            means = km.cluster_centers_
        else:
            rows = X[rng.choice(X.shape[0], size=K, replace=False)]
            means = np.where(np.isnan(rows), mean, rows) + rng.normal(scale=0.1, size=(K, D)) * np.sqrt(var)
        cov = {"diag": lambda: np.tile(var, (K, 1)), "spherical": lambda: np.full(K, var.mean()),
               "full": lambda: np.tile(np.diag(var), (K, 1, 1)), "tied": lambda: np.diag(var)}[self.covariance_type]
        return {"means": means, self.scale: cov()}

    def dims(self):
        cov = {"full": ("state", "feature", "feature_bis"), "diag": ("state", "feature"), "spherical": ("state",),
               "tied": ("feature", "feature_bis")}.get(self.covariance_type, ())
        return {"means": ("state", "feature"), self.scale: cov}

    def _kernel_params(self, params):
        """Means and covariances in a compiled kernel's layout: (K, D) variances, or (K, D, D) matrices."""
        means = np.asarray(params["means"], dtype=np.float64)
        cov = np.asarray(params[self.scale], dtype=np.float64)
        K, D = means.shape
        if self.covariance_type in ("diag", "spherical"):
            return means, np.broadcast_to(cov[:, None] if cov.ndim == 1 else cov, (K, D))
        return means, np.broadcast_to(cov, (K, D, D))

    def log_frames(self, X, params):
        means, cov = self._kernel_params(params)
        X = np.ascontiguousarray(X, dtype=np.float64)
        # the Gaussian kernels read no per-row constant: an empty one saves allocating N zeros
        return run_frames(self.frames_kernel, X, _NO_AUX, np.concatenate([means.ravel(), cov.ravel()]),
                          means.shape[0])

    def sample(self, params, states, rng):
        means = params["means"]
        full = as_full(np.asarray(params[self.scale]), self.covariance_type, means.shape[0], means.shape[1])
        return sample_components(means, full, "full", states, rng)

    # -- EM with missing values --------------------------------------------------------------
    def missing_supported(self, missing):
        return self.covariance_type in ("diag", "spherical") or super().missing_supported(missing)

    def m_step(self, X, gamma, params, means=None):
        """Weighted Gaussian updates over the observed values (missing ones are marginalised).

        ``means`` (K, D), optional, holds the means at its finite entries
        (NaN: estimated); the covariances are then the maximisers around the
        held means (an exact M-step with those entries fixed).
        """
        if self.covariance_type in ("diag", "spherical"):
            return self.m_step_from_stats(self.suff_stats(X, gamma, params), params, means)
        obs = ~np.isnan(X)
        den = gamma.T @ obs.astype(np.float64)  # (K, D): posterior weight of the observed entries
        means = self._weighted_means(den, gamma.T @ np.where(obs, X, 0.0), params, means)
        rows = ~np.isnan(X).any(axis=1)  # only whole frames are missing here
        Xo, go = X[rows], gamma[rows]
        K, D = means.shape
        covs = np.empty((K, D, D))
        for k in range(K):
            diff = Xo - means[k]
            covs[k] = (go[:, k, None] * diff).T @ diff / max(go[:, k].sum(), 1e-300)
        covs += self.min_covar * np.eye(D)
        if self.covariance_type == "tied":
            w = go.sum(axis=0)
            covs = np.tensordot(w / w.sum(), covs, axes=1)
        return {"means": means, self.scale: covs}

    @staticmethod
    def _weighted_means(den, num, params, held):
        """Weighted means ``num / den`` (the old mean where a state has no weight), held entries in place."""
        means = np.where(den > 0, num / np.where(den > 0, den, 1.0), params["means"])
        return means if held is None else np.where(np.isnan(held), means, held)

    def suff_stats(self, X, gamma, params):
        """Return weighted counts ``den`` (K, D) and sums ``num`` (K, D) of the observed values, and squares.

        Diagonal and spherical covariances: ``sq`` (K, D), the weighted sums of
        squares. Full and tied: ``outer`` (K, D, D), the weighted sums of
        ``x x^T`` over the complete frames, and ``n`` (K,), their weight.
        """
        obs = ~np.isnan(X)
        x0 = np.where(obs, X, 0.0)
        out = {"den": gamma.T @ obs.astype(np.float64), "num": gamma.T @ x0}
        if self.covariance_type in ("diag", "spherical"):
            out["sq"] = gamma.T @ (x0**2)
            return out
        rows = obs.all(axis=1)
        Xo, go = X[rows], gamma[rows]
        out["outer"] = np.stack([(go[:, k, None] * Xo).T @ Xo for k in range(gamma.shape[1])])
        out["n"] = go.sum(axis=0)
        return out

    def m_step_from_stats(self, stats, params, means=None):
        """:meth:`m_step` from :meth:`suff_stats` (``means`` holds means as there)."""
        den, num = stats["den"], stats["num"]
        means = self._weighted_means(den, num, params, means)
        cov = params[self.scale]
        if self.covariance_type in ("diag", "spherical"):
            sq = stats["sq"] - 2 * means * num + means**2 * den
            if self.covariance_type == "diag":
                var = np.where(den > 0, sq / np.where(den > 0, den, 1.0), cov)
            else:
                tot = den.sum(axis=1)
                var = np.where(tot > 0, sq.sum(axis=1) / np.where(tot > 0, tot, 1.0), cov)
            return {"means": means, self.scale: var + self.min_covar}
        n = stats["n"]
        D = means.shape[1]
        # sum_i g_ik (x_i - m_k)(x_i - m_k)^T over the complete frames, whose weighted sum of x is num[k]
        mn = means[:, :, None] * num[:, None, :]
        covs = stats["outer"] - mn - np.swapaxes(mn, 1, 2) + n[:, None, None] * means[:, :, None] * means[:, None, :]
        covs = covs / np.maximum(n, 1e-300)[:, None, None] + self.min_covar * np.eye(D)
        if self.covariance_type == "tied":
            covs = np.tensordot(n / n.sum(), covs, axes=1)
        return {"means": means, self.scale: covs}

    # -- MCMC ----------------------------------------------------------------------------------
    def check_sampler(self, sampler, X, owner):
        if self.covariance_type not in ("full", "diag"):
            raise ValueError(f"{owner}(sampler={sampler!r}) supports covariance_type 'full' or 'diag'; got "
                             f"{self.covariance_type!r}.")
        if sampler == "nuts" and self.covariance_type == "full" and X.shape[1] > 1:
            raise ValueError(f"{owner}(sampler='nuts') supports covariance_type='diag' (or 'full' with one "
                             f"feature); got 'full' with {X.shape[1]} features. Use sampler='gibbs' for full "
                             "covariances.")

    def number_hint(self, array):
        return "'mean' (the location) and 'mean_precision'" if array == "means" else "'dof' and 'scale'"

    def resolve_hyper(self, reader: PriorReader, X, K):
        D = X.shape[1]
        var = np.var(X, axis=0)
        var = np.where(var > 0, var, 1.0)
        m0 = reader.number("mean", X.mean(axis=0), (D,), positive=False)
        kappa0 = float(reader.number("mean_precision", 0.01, ()))
        nu0 = float(reader.number("dof", D + 2.0, ()))
        if nu0 <= D - 1:
            raise ValueError(f"prior['dof'] must exceed n_features - 1 = {D - 1}; got {nu0}.")
        bad = (f"prior['scale'] of {reader.owner} must be a scalar, a vector of length {D} or a ({D}, {D}) "
               "matrix; got shape")
        scale = reader.floats("scale", reader.user.get("scale", var / K**2))
        if scale.ndim < 2:
            try:
                scale = np.diag(np.broadcast_to(scale, (D,)))
            except ValueError:
                raise ValueError(f"{bad} {scale.shape}.") from None
        if scale.shape != (D, D):
            raise ValueError(f"{bad} {scale.shape}.")
        psi0 = np.array(scale, dtype=np.float64)
        if not np.all(np.isfinite(psi0)) or not np.allclose(psi0, psi0.T) or not np.all(
                np.linalg.eigvalsh(psi0) > 0):
            raise ValueError("prior['scale'] must be finite, symmetric and positive definite (a positive scalar, "
                             "vector or matrix).")
        return {"mean": m0, "mean_precision": kappa0, "dof": nu0, "scale": psi0}

    def pack_hyper(self, hyper, D):
        return np.concatenate([hyper["mean"], [hyper["mean_precision"], hyper["dof"]], hyper["scale"].ravel()])

    def log_prior(self, params, hyper, fixed=()):
        """Normal-inverse-Wishart (``"full"``) or Normal-inverse-Gamma per feature (``"diag"``) log density.

        As in the Gibbs update: a fixed mean leaves the (inverse-Wishart or
        inverse-Gamma) prior of the covariance alone; a fixed covariance leaves
        ``mu | Sigma ~ N(m0, Sigma / kappa0)`` at its value.
        """
        from scipy.special import gammaln, multigammaln

        mu = np.asarray(params["means"], dtype=np.float64)
        cov = np.asarray(params[self.scale], dtype=np.float64)
        n, K, D = mu.shape
        m0 = np.asarray(hyper["mean"], dtype=np.float64)
        kappa0, nu0 = float(hyper["mean_precision"]), float(hyper["dof"])
        psi0 = np.asarray(hyper["scale"], dtype=np.float64)
        out = np.zeros(n)
        r = mu - m0
        if self.covariance_type == "diag":
            a, b = 0.5 * nu0, 0.5 * np.diag(psi0)
            if self.scale not in fixed:
                out += (a * np.log(b) - gammaln(a) - (a + 1.0) * np.log(cov) - b / cov).sum(axis=(1, 2))
            if "means" not in fixed:
                out += (-0.5 * (_LOG2PI + np.log(cov / kappa0)) - 0.5 * kappa0 * r * r / cov).sum(axis=(1, 2))
            return out
        if self.covariance_type != "full":
            raise NotImplementedError(f"the conjugate prior covers covariance_type 'full' and 'diag'; got "
                                      f"{self.covariance_type!r}.")
        chol = np.linalg.cholesky(cov)
        logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)  # (n, K)
        inv = np.linalg.inv(cov)
        if self.scale not in fixed:
            _, logdet_psi = np.linalg.slogdet(psi0)
            out += (0.5 * nu0 * logdet_psi - 0.5 * nu0 * D * np.log(2.0) - multigammaln(0.5 * nu0, D)
                    - 0.5 * (nu0 + D + 1.0) * logdet - 0.5 * np.einsum("de,nked->nk", psi0, inv)).sum(axis=1)
        if "means" not in fixed:
            quad = np.einsum("nkd,nkde,nke->nk", r, inv, r)
            out += (-0.5 * (D * _LOG2PI + logdet - D * np.log(kappa0) + kappa0 * quad)).sum(axis=1)
        return out

    def prepare_start(self, start, fixed, X, floor):
        if self.scale in fixed:
            return
        var = np.var(X, axis=0)
        low_var = floor * np.where(var > 0, var, 1.0)
        cov = start[self.scale]
        if cov.ndim == 2:  # variances (diag)
            start[self.scale] = np.maximum(cov, low_var)
        else:
            low = np.linalg.eigvalsh(cov)[:, :1, None]
            start[self.scale] = cov + np.maximum(low_var.min() - low, 0.0) * np.eye(cov.shape[-1])

    def nuts_sites(self, hyper, dists, K, D, start):
        import pyro.distributions as pdist
        import torch

        from ..inference._nuts import Site

        psi = torch.as_tensor(np.diag(hyper["scale"]).copy())
        m0, kappa0 = torch.as_tensor(np.asarray(hyper["mean"], dtype=np.float64)), float(hyper["mean_precision"])
        half_dof = torch.as_tensor(np.array(0.5 * hyper["dof"], dtype=np.float64))
        var_prior = dists.get(self.scale, pdist.InverseGamma(half_dof * torch.ones(D), 0.5 * psi))
        scale = self.scale

        def conditional_mean_prior(value, values):  # mu | sigma^2 ~ N(m0, sigma^2 / kappa0), per entry
            return pdist.Normal(m0, torch.sqrt(values[scale] / kappa0)).log_prob(value)

        return [Site(scale, (K, D), "positive", var_prior),
                Site("means", (K, D), "real", dists.get("means", conditional_mean_prior))]

    def held_support(self, K, D):
        return {self.scale: "matrix"} if self.covariance_type in ("full", "tied") else {}

    def to_site(self, name, value):
        # full covariances with one feature are sampled as (K, 1) variances
        return value[..., 0] if name == self.scale and np.ndim(value) == 3 else value

    def from_sites(self, draws):
        if self.covariance_type == "full" and self.scale in draws:
            draws[self.scale] = draws[self.scale][..., None]  # (K, 1) variances -> (K, 1, 1) covariances

    def torch_frames(self, Xt, aux, values: dict[str, Any]):
        import torch

        mu, var = values["means"], values[self.scale]
        diff = Xt[:, None, :] - mu[None]
        return -0.5 * (torch.log(2 * np.pi * var).sum(dim=1) + (diff * diff / var[None]).sum(dim=2))
