"""Blocked Gibbs samplers for mixtures and HMMs with conjugate priors, compiled with numba.

One sweep draws the latent variables exactly given the parameters (one label
per observation for a mixture; a whole state path per sequence by forward
filtering, backward sampling for an HMM), then every parameter from its
conjugate conditional given the latents:

- weights / initial probabilities and each transition row: Dirichlet;
- Gaussian emissions: Normal-inverse-Wishart (``full``) or, per feature,
  Normal-inverse-Gamma (``diag``): ``mu | Sigma ~ N(m0, Sigma / kappa0)``,
  ``Sigma ~ IW(nu0, Psi0)`` (in one dimension ``sigma^2 ~ InvGamma(nu0/2, psi0/2)``);
- Poisson rates: Gamma(shape, rate);
- categorical emission rows: Dirichlet.

The state of a chain is a set of flat arrays (``pi``, ``A``, ``loc``,
``scale``) shared by all families: ``loc`` holds means, rates or symbol
probabilities ``(K, D)``, ``scale`` the covariances ``(K, D, D)`` of
Gaussian emissions. Random numbers come from numba's own generator, seeded
once per chain, so a chain is reproducible from its seed. Any of the four
arrays can be held fixed (never drawn): the chain then samples the posterior
of the others given it.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["DIAG", "FULL", "POISSON", "CATEGORICAL", "run_chain"]

DIAG, FULL, POISSON, CATEGORICAL = 0, 1, 2, 3
_JIT = {"cache": True, "nogil": True}


@numba.njit(**_JIT)
def _seed(seed):
    np.random.seed(seed)


@numba.njit(**_JIT)
def _dirichlet(alpha, out):
    total = 0.0
    for k in range(alpha.shape[0]):
        out[k] = np.random.gamma(alpha[k], 1.0)
        total += out[k]
    if total > 0.0:
        for k in range(alpha.shape[0]):
            out[k] /= total
    else:  # every gamma draw underflowed (tiny concentrations): the largest-concentration corner
        out[:] = 0.0
        out[np.argmax(alpha)] = 1.0


@numba.njit(**_JIT)
def _pick(weights, total):
    """Inverse-CDF draw from unnormalised ``weights`` summing to ``total``."""
    u = np.random.random() * total
    acc = 0.0
    K = weights.shape[0]
    for k in range(K - 1):
        acc += weights[k]
        if u < acc:
            return k
    return K - 1


@numba.njit(**_JIT)
def _frames(family, X, loc, scale, const, out):
    """Emission log-likelihoods log p(x_i | z_i = k) into ``out`` (N, K)."""
    N, D = X.shape
    K = loc.shape[0]
    if family == DIAG:
        for k in range(K):
            c = 0.0
            for d in range(D):
                c += math.log(2.0 * math.pi * scale[k, d, d])
            for i in range(N):
                q = 0.0
                for d in range(D):
                    r = X[i, d] - loc[k, d]
                    q += r * r / scale[k, d, d]
                out[i, k] = -0.5 * (c + q)
    elif family == FULL:
        for k in range(K):
            chol = np.linalg.cholesky(scale[k])
            logdet = 0.0
            for d in range(D):
                logdet += 2.0 * math.log(chol[d, d])
            y = np.empty(D)
            for i in range(N):
                q = 0.0
                for d in range(D):  # forward substitution: chol y = x - mu
                    s = X[i, d] - loc[k, d]
                    for e in range(d):
                        s -= chol[d, e] * y[e]
                    y[d] = s / chol[d, d]
                    q += y[d] * y[d]
                out[i, k] = -0.5 * (D * math.log(2.0 * math.pi) + logdet + q)
    elif family == POISSON:
        for k in range(K):
            for i in range(N):
                s = -const[i]
                for d in range(D):
                    lam = loc[k, d]
                    if X[i, d] > 0.0:
                        s += X[i, d] * math.log(lam) if lam > 0.0 else -np.inf
                    s -= lam
                out[i, k] = s
    else:  # CATEGORICAL: X[:, 0] holds symbols, loc (K, M) symbol probabilities
        for k in range(K):
            for i in range(N):
                p = loc[k, int(X[i, 0])]
                out[i, k] = math.log(p) if p > 0.0 else -np.inf


@numba.njit(**_JIT)
def _draw_labels(logw, logf, z):
    """Mixture labels given parameters; returns log p(X | parameters)."""
    N, K = logf.shape
    w = np.empty(K)
    total_ll = 0.0
    for i in range(N):
        m = -np.inf
        for k in range(K):
            w[k] = logw[k] + logf[i, k]
            if w[k] > m:
                m = w[k]
        tot = 0.0
        for k in range(K):
            w[k] = math.exp(w[k] - m) if m > -np.inf else 0.0
            tot += w[k]
        total_ll += m + math.log(tot) if tot > 0.0 else -np.inf
        z[i] = _pick(w, tot) if tot > 0.0 else np.argmax(logw)
    return total_ll


@numba.njit(**_JIT)
def _draw_paths(pi, A, logf, bounds, z, filt):
    """Forward filtering, backward sampling of one path per sequence; returns log p(X | parameters)."""
    T, K = logf.shape
    f = np.empty(K)
    w = np.empty(K)
    total_ll = 0.0
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        for t in range(lo, hi):
            m = -np.inf
            for k in range(K):
                if logf[t, k] > m:
                    m = logf[t, k]
            if m == -np.inf:
                return -np.inf
            for k in range(K):
                f[k] = math.exp(logf[t, k] - m)
            c = 0.0
            for k in range(K):
                if t == lo:
                    pred = pi[k]
                else:
                    pred = 0.0
                    for j in range(K):
                        pred += filt[t - 1, j] * A[j, k]
                filt[t, k] = pred * f[k]
                c += filt[t, k]
            if c <= 0.0:
                return -np.inf
            for k in range(K):
                filt[t, k] /= c
            total_ll += math.log(c) + m
        z[hi - 1] = _pick(filt[hi - 1], 1.0)
        for t in range(hi - 2, lo - 1, -1):
            tot = 0.0
            for k in range(K):
                w[k] = filt[t, k] * A[k, z[t + 1]]
                tot += w[k]
            z[t] = _pick(w, tot)
    return total_ll


@numba.njit(**_JIT)
def _draw_inverse_wishart(nu, psi, out):
    """Sigma ~ IW(nu, psi) through the Bartlett decomposition of its inverse, W ~ Wishart(nu, psi^-1)."""
    D = psi.shape[0]
    L = np.linalg.cholesky(np.linalg.inv(psi))
    B = np.zeros((D, D))
    for i in range(D):
        B[i, i] = math.sqrt(2.0 * np.random.gamma(0.5 * (nu - i), 1.0))
        for j in range(i):
            B[i, j] = np.random.standard_normal()
    M = L @ B  # W = M M^T, so Sigma = M^-T M^-1
    Minv = np.linalg.inv(M)
    out[:, :] = Minv.T @ Minv


@numba.njit(**_JIT)
def _draw_emissions(family, X, z, K, m0, kappa0, nu0, psi0, a0, b0, alpha_emit, loc, scale, fix_loc, fix_scale):
    N, D = X.shape
    if fix_loc and (fix_scale or family == POISSON or family == CATEGORICAL):
        return  # every emission parameter is held fixed
    if family != CATEGORICAL:  # counts and sums per state, shared by the Gaussian and Poisson updates
        n = np.zeros(K)
        sums = np.zeros((K, D))
        for i in range(N):
            n[z[i]] += 1.0
            for d in range(D):
                sums[z[i], d] += X[i, d]
    if family == DIAG or family == FULL:
        scatter = np.zeros((K, D, D))
        xbar = np.zeros((K, D))
        for k in range(K):
            if n[k] > 0:
                for d in range(D):
                    xbar[k, d] = sums[k, d] / n[k]
        for i in range(N):
            k = z[i]
            for d in range(D):
                rd = X[i, d] - xbar[k, d]
                if family == FULL:
                    for e in range(D):
                        scatter[k, d, e] += rd * (X[i, e] - xbar[k, e])
                else:
                    scatter[k, d, d] += rd * rd
        for k in range(K):
            if fix_loc:  # Sigma | mu ~ IW(nu0 + n, psi0 + scatter about the fixed mean); no prior on mu
                nun = nu0 + n[k]
                diff = xbar[k] - loc[k]
                psin = psi0 + scatter[k] + n[k] * np.outer(diff, diff)
                if family == DIAG:
                    for d in range(D):
                        scale[k, d, d] = 1.0 / np.random.gamma(0.5 * nun, 2.0 / psin[d, d])
                else:
                    cov = np.empty((D, D))
                    _draw_inverse_wishart(nun, psin, cov)
                    scale[k] = cov
                continue
            kn = kappa0 + n[k]
            nun = nu0 + n[k]
            shrink = kappa0 * n[k] / kn
            mn = (kappa0 * m0 + n[k] * xbar[k]) / kn
            if family == DIAG:
                if not fix_scale:
                    scale[k, :, :] = 0.0
                for d in range(D):
                    if not fix_scale:
                        psin = psi0[d, d] + scatter[k, d, d] + shrink * (xbar[k, d] - m0[d]) ** 2
                        scale[k, d, d] = 1.0 / np.random.gamma(0.5 * nun, 2.0 / psin)
                    loc[k, d] = mn[d] + math.sqrt(scale[k, d, d] / kn) * np.random.standard_normal()
            else:
                if not fix_scale:
                    diff = xbar[k] - m0
                    psin = psi0 + scatter[k] + shrink * np.outer(diff, diff)
                    cov = np.empty((D, D))
                    _draw_inverse_wishart(nun, psin, cov)
                    scale[k] = cov
                chol = np.linalg.cholesky(scale[k] / kn)
                eps = np.empty(D)
                for d in range(D):
                    eps[d] = np.random.standard_normal()
                loc[k] = mn + chol @ eps
    elif family == POISSON:
        for k in range(K):
            for d in range(D):
                loc[k, d] = np.random.gamma(a0[d] + sums[k, d], 1.0 / (b0[d] + n[k]))
    else:
        M = loc.shape[1]
        counts = np.zeros((K, M))
        for i in range(N):
            counts[z[i], int(X[i, 0])] += 1.0
        row = np.empty(M)
        for k in range(K):
            _dirichlet(alpha_emit + counts[k], row)
            loc[k] = row


@numba.njit(**_JIT)
def _run(family, hmm, X, bounds, const, n_sweeps, n_keep, seed, fixed,
         alpha_pi, alpha_A, m0, kappa0, nu0, psi0, a0, b0, alpha_emit,
         pi, A, loc, scale,
         out_pi, out_A, out_loc, out_scale, out_ll):
    if seed >= 0:
        _seed(seed)
    N = X.shape[0]
    K = pi.shape[0]
    logf = np.empty((N, K))
    filt = np.empty((N, K))
    z = np.zeros(N, dtype=np.int64)
    logw = np.empty(K)
    first = n_sweeps - n_keep
    for sweep in range(n_sweeps + 1):
        _frames(family, X, loc, scale, const, logf)
        if hmm:
            ll = _draw_paths(pi, A, logf, bounds, z, filt)
        else:
            for k in range(K):
                logw[k] = math.log(pi[k]) if pi[k] > 0.0 else -np.inf
            ll = _draw_labels(logw, logf, z)
        if sweep > first:  # ll belongs to the parameters recorded at the end of the previous sweep
            out_ll[sweep - 1 - first] = ll
        if sweep == n_sweeps:
            break
        # parameters given the latents
        counts = np.zeros(K)
        if hmm:
            trans = np.zeros((K, K))
            for s in range(bounds.shape[0] - 1):
                counts[z[bounds[s]]] += 1.0
                for t in range(bounds[s] + 1, bounds[s + 1]):
                    trans[z[t - 1], z[t]] += 1.0
            if not fixed[1]:
                row = np.empty(K)
                for j in range(K):
                    _dirichlet(alpha_A[j] + trans[j], row)
                    A[j] = row
        else:
            for i in range(N):
                counts[z[i]] += 1.0
        if not fixed[0]:
            _dirichlet(alpha_pi + counts, pi)
        _draw_emissions(family, X, z, K, m0, kappa0, nu0, psi0, a0, b0, alpha_emit, loc, scale, fixed[2], fixed[3])
        if sweep >= first:
            r = sweep - first
            out_pi[r] = pi
            out_A[r] = A
            out_loc[r] = loc
            out_scale[r] = scale


def frame_constant(family: int, X: np.ndarray) -> np.ndarray:
    """Per-row term of the emission log-likelihood that no parameter touches (``log x!`` for Poisson)."""
    if family == POISSON:
        from scipy.special import gammaln

        return gammaln(X + 1.0).sum(axis=1)
    return np.zeros(X.shape[0])


def run_chain(family: int, hmm: bool, X: np.ndarray, bounds: np.ndarray, prior: dict, state: dict,
              n_sweeps: int, n_keep: int, seed: int, fixed: tuple[str, ...] = ()) -> dict:
    """Run ``n_sweeps`` blocked Gibbs sweeps of one chain, keeping the last ``n_keep``.

    Parameters
    ----------
    family : int
        ``DIAG``, ``FULL`` (Gaussian), ``POISSON`` or ``CATEGORICAL`` emissions.
    hmm : bool
        Latents are Markov state paths (``True``) or independent labels.
    X : ndarray of shape (N, D)
        Data (symbols in column 0 for categorical emissions).
    bounds : ndarray of int
        Sequence start offsets plus the end (HMMs; ``[0, N]`` for mixtures).
    prior : dict
        Arrays ``alpha_pi`` (K,), ``alpha_A`` (K, K), ``m0`` (D,), ``kappa0``,
        ``nu0``, ``psi0`` (D, D), ``a0`` (D,), ``b0`` (D,), ``alpha_emit`` (M,).
    state : dict
        Current ``pi`` (K,), ``A`` (K, K), ``loc`` (K, D), ``scale`` (K, D, D)
        float64 arrays, updated in place (so a chain can run in chunks).
    n_sweeps, n_keep : int
        Total sweeps and how many of the last ones to record.
    seed : int
        Seed of numba's generator for this chain (negative: continue the stream
        of the previous call in this thread).
    fixed : tuple of str, default=()
        State arrays (``"pi"``, ``"A"``, ``"loc"``, ``"scale"``) held at their
        values in ``state``: never drawn, so the chain samples the conditional
        posterior given them. A fixed ``loc`` drops the conjugate prior on the
        means (``Sigma ~ IW(nu0, Psi0)`` alone); a fixed ``scale`` keeps
        ``mu | Sigma ~ N(m0, Sigma / kappa0)`` at the fixed ``Sigma``.

    Returns
    -------
    dict
        ``pi`` (n_keep, K), ``A`` (n_keep, K, K), ``loc``, ``scale`` and
        ``log_likelihood`` (n_keep,): ``log p(X | parameters)`` of each kept draw.
    """
    K = state["pi"].shape[0]
    X = np.ascontiguousarray(X, dtype=np.float64)
    const = frame_constant(family, X)
    out = {"pi": np.empty((n_keep, K)), "A": np.empty((n_keep, K, K)),
           "loc": np.empty((n_keep,) + state["loc"].shape), "scale": np.empty((n_keep,) + state["scale"].shape),
           "log_likelihood": np.empty(n_keep)}
    p = {k: np.asarray(v, dtype=np.float64) for k, v in prior.items()}
    unknown = sorted(set(fixed) - {"pi", "A", "loc", "scale"})
    if unknown:
        raise ValueError(f"fixed must name state arrays among 'pi', 'A', 'loc', 'scale'; got {unknown}.")
    flags = np.array([name in fixed for name in ("pi", "A", "loc", "scale")], dtype=np.bool_)
    _run(family, hmm, X, np.asarray(bounds, dtype=np.int64), const, n_sweeps, n_keep, seed, flags,
         p["alpha_pi"], p["alpha_A"], p["m0"], float(p["kappa0"]), float(p["nu0"]), p["psi0"], p["a0"], p["b0"],
         p["alpha_emit"], state["pi"], state["A"], state["loc"], state["scale"],
         out["pi"], out["A"], out["loc"], out["scale"], out["log_likelihood"])
    return out
