"""probspace's compiled NUTS: the whole sampler and the model's gradient in numba, one chain per thread.

Why its own sampler: the mixture and HMM marginal likelihoods are cheap
(microseconds per gradient on hundreds of points), so Pyro's NUTS spends
nearly all its time in per-step Python and torch dispatch, about 20x slower
per effective draw than NumPyro's compiled loop. Running Pyro chains in
processes divides that by the number of cores at best, and NumPyro would add
JAX as a dependency. A compiled sampler with the closed-form gradient of the
potential removes the interpreter from the loop altogether, keeps gradients
exact, and releases the GIL, so chains run in parallel threads.

The sampler is the multinomial NUTS of Betancourt (2017) as in Stan: trees
doubled in a random direction, each new subtree sampled in proportion to
``exp(-H)`` and accepted by biased progressive sampling, the generalised
U-turn criterion on every subtree (from momentum sums and the two end
momenta, sharpened by the inverse metric), a divergence when the energy error
passes 1000. Warm-up adapts a diagonal inverse metric (Welford variances over
Stan's windows, regularised towards 1e-3 as Stan does) and the step size by
dual averaging (target acceptance 0.8, gamma 0.05, t0 10, kappa 0.75),
re-initialising the step size heuristically after each metric update.

The models: mixtures (labels summed out by log-sum-exp) and HMMs (states
summed out by the compiled forward-backward kernel, which also gives the
gradient: smoothed marginals and expected transition counts) with Gaussian
(diagonal), Poisson or categorical emissions and the conjugate-form priors of
:mod:`probspace._bayes`. Simplexes are sampled through the additive
log-ratio map ``p = softmax([u, 0])`` (Jacobian ``prod p``), positive arrays
through ``exp``. User priors given as torch distributions need Pyro's engine
(:mod:`probspace.inference._nuts`).
"""

from __future__ import annotations

import math
import threading

import numba
import numpy as np

from . import _hmm
from ._progress import progress_bar
from ._threads import map_blocks

__all__ = ["KINDS", "run_chains"]

_JIT = {"cache": True, "nogil": True}
_LOG2PI = math.log(2.0 * math.pi)
#: Emission codes of the compiled potential.
KINDS = {"gaussian": 0, "poisson": 1, "categorical": 2}
_MAX_DELTA_H = 1000.0


# -- the model: constrained parameters, log density and its gradient ------------------------------
@numba.njit(**_JIT)
def _simplex_from(u, out):  # pragma: no cover - compiled
    """``out = softmax([u, 0])``; returns ``sum log out`` (the log Jacobian)."""
    M = out.shape[0]
    m = 0.0
    for j in range(M - 1):
        if u[j] > m:
            m = u[j]
    total = math.exp(-m)
    for j in range(M - 1):
        total += math.exp(u[j] - m)
    log_total = math.log(total)
    log_jac = 0.0
    for j in range(M - 1):
        lp = u[j] - m - log_total
        out[j] = math.exp(lp)
        log_jac += lp
    lp = -m - log_total
    out[M - 1] = math.exp(lp)
    return log_jac + lp


@numba.njit(**_JIT)
def _simplex_grad(p, h, g):  # pragma: no cover - compiled
    """Write into ``g`` the gradient over the log-ratio coordinates of a function whose gradient in ``log p`` is ``h``.

    ``g_j = h_j - p_j sum_k h_k`` (``h``: prior concentrations plus the likelihood's ``d/d log p_k``).
    """
    total = 0.0
    for k in range(p.shape[0]):
        total += h[k]
    for j in range(p.shape[0] - 1):
        g[j] = h[j] - p[j] * total


@numba.njit(**_JIT)
def _layout(ints):  # pragma: no cover - compiled
    """Sizes of the constrained arrays: pi, transmat, emission array 1, emission array 2."""
    kind, K, D, S = ints[0], ints[2], ints[3], ints[4]
    n_e1 = K * S if kind == 2 else K * D
    n_e2 = K * D if kind == 0 else 0
    return K, K * K, n_e1, n_e2


@numba.njit(**_JIT)
def constrain(q, ints, free, fixed, theta):  # pragma: no cover - compiled
    """Fill the constrained parameters ``theta`` (pi | transmat | e1 | e2) from ``q``; return the log Jacobian."""
    kind, K, S = ints[0], ints[2], ints[4]
    n_pi, n_A, n_e1, n_e2 = _layout(ints)
    theta[:] = fixed
    pos, log_jac = 0, 0.0
    if free[0]:
        log_jac += _simplex_from(q[pos:pos + K - 1], theta[0:K])
        pos += K - 1
    if free[1]:
        for i in range(K):
            log_jac += _simplex_from(q[pos:pos + K - 1], theta[n_pi + i * K:n_pi + (i + 1) * K])
            pos += K - 1
    o1 = n_pi + n_A
    if free[2]:
        if kind == 2:
            for k in range(K):
                log_jac += _simplex_from(q[pos:pos + S - 1], theta[o1 + k * S:o1 + (k + 1) * S])
                pos += S - 1
        else:  # variances or rates, through exp
            for j in range(n_e1):
                theta[o1 + j] = math.exp(q[pos + j])
                log_jac += q[pos + j]
            pos += n_e1
    if free[3]:
        for j in range(n_e2):
            theta[o1 + n_e1 + j] = q[pos + j]
        pos += n_e2
    return log_jac


@numba.njit(**_JIT)
def _frames(X, ints, theta, aux, f):  # pragma: no cover - compiled
    """Emission log-likelihoods ``f`` (N, K) under ``theta``."""
    kind, K, D, S = ints[0], ints[2], ints[3], ints[4]
    N = X.shape[0]
    o1 = K + K * K
    if kind == 2:
        for k in range(K):
            for i in range(N):
                f[i, k] = math.log(theta[o1 + k * S + int(X[i, 0])])
        return
    for k in range(K):
        for i in range(N):
            f[i, k] = -aux[i] if kind == 1 else 0.0
        for d in range(D):
            a = theta[o1 + k * D + d]
            if kind == 0:  # a is the variance; subtract, then square
                mu = theta[o1 + K * D + k * D + d]
                c = -0.5 * (_LOG2PI + math.log(a))
                h = -0.5 / a
                for i in range(N):
                    r = X[i, d] - mu
                    f[i, k] += c + h * r * r
            else:  # a is the Poisson rate
                la = math.log(a)
                for i in range(N):
                    f[i, k] += X[i, d] * la - a


@numba.njit(**_JIT)
def log_density(q, grad, X, aux, bounds, alpha_pi, alpha_A, hyper, fixed, free, ints):  # pragma: no cover
    """Log posterior density over the unconstrained ``q`` (Jacobians included, constants dropped); fills ``grad``."""
    return _log_density_parts(q, grad, X, aux, bounds, alpha_pi, alpha_A, hyper, fixed, free, ints)[0]


@numba.njit(**_JIT)
def _log_density_parts(q, grad, X, aux, bounds, alpha_pi, alpha_A, hyper, fixed, free, ints):  # pragma: no cover
    """``(log density, log-likelihood)`` at ``q``, the gradient of the log density written into ``grad``."""
    kind, hmm, K, D, S = ints[0], ints[1], ints[2], ints[3], ints[4]
    n_pi, n_A, n_e1, n_e2 = _layout(ints)
    N = X.shape[0]
    theta = np.empty(n_pi + n_A + n_e1 + n_e2)
    constrain(q, ints, free, fixed, theta)
    o1 = n_pi + n_A
    f = np.empty((N, K))
    _frames(X, ints, theta, aux, f)
    # likelihood with the labels or states summed out: weights r (N, K) and gradients w.r.t. log pi and log A
    h_pi = alpha_pi.copy()
    h_A = alpha_A.copy()
    r = np.empty((N, K))
    if hmm:
        n_seq = bounds.shape[0] - 1
        frame = np.empty((N, K))
        shift = np.empty(N)
        filtered = np.empty((N, K))
        counts = np.zeros((n_seq, K, K))
        logpred = np.empty(N)
        start = theta[0:K].copy()
        trans = theta[n_pi:n_pi + n_A].copy().reshape((K, K))
        _hmm._fb_frames(f, 0, N, frame, shift)
        _hmm._fb_sequences(start, trans, f, frame, shift, bounds, 0, n_seq, filtered, r, counts, logpred)
        loglik = 0.0
        for t in range(N):
            loglik += logpred[t]
        for s in range(n_seq):
            for k in range(K):
                h_pi[k] += r[bounds[s], k]
            for i in range(K):
                for j in range(K):
                    h_A[i, j] += counts[s, i, j]
    else:
        loglik = 0.0
        log_pi = np.log(theta[0:K])
        for i in range(N):
            m = -np.inf
            for k in range(K):
                r[i, k] = log_pi[k] + f[i, k]
                if r[i, k] > m:
                    m = r[i, k]
            total = 0.0
            for k in range(K):
                r[i, k] = math.exp(r[i, k] - m)
                total += r[i, k]
            loglik += m + math.log(total)
            for k in range(K):
                r[i, k] /= total
                h_pi[k] += r[i, k]
    # every free array's prior term below already includes its Jacobian (sum alpha_k log p_k for a simplex,
    # -a log v - b / v for an exp-mapped variance, a log lam - b lam for a rate), so log_jac is not added again
    lp = loglik
    # priors on the simplexes (with their Jacobians: sum alpha_k log p_k) and their gradients
    pos = 0
    if free[0]:
        for k in range(K):
            lp += alpha_pi[k] * math.log(theta[k])
        _simplex_grad(theta[0:K], h_pi, grad[pos:pos + K - 1])
        pos += K - 1
    if free[1]:
        for i in range(K):
            row = theta[n_pi + i * K:n_pi + (i + 1) * K]
            for j in range(K):
                lp += alpha_A[i, j] * math.log(row[j])
            _simplex_grad(row, h_A[i], grad[pos:pos + K - 1])
            pos += K - 1
    # emission: prior, Jacobian and likelihood gradients
    if kind == 2:
        if free[2]:
            h_B = np.empty((K, S))
            for k in range(K):
                for s in range(S):
                    h_B[k, s] = hyper[s]
            for i in range(N):
                x = int(X[i, 0])
                for k in range(K):
                    h_B[k, x] += r[i, k]
            for k in range(K):
                row = theta[o1 + k * S:o1 + (k + 1) * S]
                for s in range(S):
                    lp += hyper[s] * math.log(row[s])
                _simplex_grad(row, h_B[k], grad[pos:pos + S - 1])
                pos += S - 1
        return lp, loglik
    if kind == 1:
        if free[2]:
            for k in range(K):
                for d in range(D):
                    lam = theta[o1 + k * D + d]
                    a, b = hyper[d], hyper[D + d]
                    lp += a * math.log(lam) - b * lam
                    g = a - b * lam
                    for i in range(N):
                        g += r[i, k] * (X[i, d] - lam)
                    grad[pos + k * D + d] = g
        return lp, loglik
    # Gaussian: sigma^2 ~ InvGamma(a, b_d), mu | sigma^2 ~ N(m0_d, sigma^2 / kappa0)
    kappa0, a = hyper[D], hyper[D + 1]
    pos_mu = pos + (n_e1 if free[2] else 0)
    for k in range(K):
        for d in range(D):
            v = theta[o1 + k * D + d]
            mu = theta[o1 + n_e1 + k * D + d]
            m0, b = hyper[d], hyper[D + 2 + d]
            g_v, g_mu = 0.0, 0.0
            for i in range(N):
                diff = X[i, d] - mu
                g_mu += r[i, k] * diff
                g_v += r[i, k] * (diff * diff / v - 1.0)
            g_mu /= v
            g_v *= 0.5  # d loglik / d log v
            if free[2]:
                lp += -a * math.log(v) - b / v  # InvGamma with the exp Jacobian
                g_v += -a + b / v
            if free[3]:
                dm = mu - m0
                lp += -0.5 * math.log(v) - 0.5 * kappa0 * dm * dm / v
                g_mu -= kappa0 * dm / v
                g_v += -0.5 + 0.5 * kappa0 * dm * dm / v
            if free[2]:
                grad[pos + k * D + d] = g_v
            if free[3]:
                grad[pos_mu + k * D + d] = g_mu
    return lp, loglik


# -- the sampler -------------------------------------------------------------------------------------
@numba.njit(**_JIT)
def _energy(lp, p, minv):  # pragma: no cover - compiled
    k = 0.0
    for j in range(p.shape[0]):
        k += minv[j] * p[j] * p[j]
    return -lp + 0.5 * k


@numba.njit(**_JIT)
def _leapfrog(q, p, g, eps, minv, model):  # pragma: no cover - compiled
    """One leapfrog step in place; returns the new log density (``g`` its gradient)."""
    for j in range(q.shape[0]):
        p[j] += 0.5 * eps * g[j]
    for j in range(q.shape[0]):
        q[j] += eps * minv[j] * p[j]
    lp = log_density(q, g, *model)
    if not np.isfinite(lp):
        return -np.inf
    for j in range(q.shape[0]):
        if not np.isfinite(g[j]):
            return -np.inf
        p[j] += 0.5 * eps * g[j]
    return lp


@numba.njit(**_JIT)
def _draw_momentum(minv, p):  # pragma: no cover - compiled
    for j in range(p.shape[0]):
        p[j] = np.random.standard_normal() / math.sqrt(minv[j])


@numba.njit(**_JIT)
def _init_step(q0, lp0, g0, minv, eps, model):  # pragma: no cover - compiled
    """Stan's heuristic: double or halve ``eps`` until one leapfrog step's acceptance crosses 0.8."""
    dim = q0.shape[0]
    q, p, g = np.empty(dim), np.empty(dim), np.empty(dim)
    direction = 0
    for _ in range(100):
        q[:] = q0
        g[:] = g0
        _draw_momentum(minv, p)
        h0 = _energy(lp0, p, minv)
        lp = _leapfrog(q, p, g, eps, minv, model)
        delta = h0 - _energy(lp, p, minv) if np.isfinite(lp) else -np.inf
        new = 1 if delta > math.log(0.8) else -1
        if direction == 0:
            direction = new
        elif new != direction:
            break
        eps = eps * 2.0 if direction == 1 else eps * 0.5
        if eps > 1e7 or eps < 1e-10:
            break
    return eps


@numba.njit(**_JIT)
def _log_add(a, b):  # pragma: no cover - compiled
    if a == -np.inf:
        return b
    if b == -np.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


@numba.njit(**_JIT)
def _transition(q, lp, g, eps, minv, max_depth, model, work):  # pragma: no cover - compiled
    """One multinomial NUTS transition from (q, lp, g), updated in place.

    Returns ``(lp, acceptance statistic, tree depth, leapfrog steps, diverged, energy)``.
    """
    dim = q.shape[0]
    (p0, rho, q_l, p_l, g_l, q_r, p_r, g_r, q_e, p_e, g_e, q_prop, g_prop, p_prop, q_sub, g_sub, p_sub, sub_rho,
     ck_psharp, ck_rho, cum) = work
    _draw_momentum(minv, p0)
    h0 = _energy(lp, p0, minv)
    q_l[:] = q
    p_l[:] = p0
    g_l[:] = g
    q_r[:] = q
    p_r[:] = p0
    g_r[:] = g
    q_prop[:] = q
    g_prop[:] = g
    p_prop[:] = p0
    lp_prop = lp
    rho[:] = p0
    log_w = 0.0
    depth, n_leap, sum_acc, diverged = 0, 0, 0.0, False
    while depth < max_depth:
        forward = np.random.random() < 0.5
        if forward:
            q_e[:] = q_r
            p_e[:] = p_r
            g_e[:] = g_r
        else:
            q_e[:] = q_l
            p_e[:] = p_l
            g_e[:] = g_l
        step = eps if forward else -eps
        # build a subtree of 2^depth leaves from the edge
        n_leaves = 1 << depth
        sub_log_w = -np.inf
        lp_sub = -np.inf
        sub_rho[:] = 0.0
        valid = True
        for n in range(n_leaves):
            lp_e = _leapfrog(q_e, p_e, g_e, step, minv, model)
            n_leap += 1
            h = _energy(lp_e, p_e, minv) if np.isfinite(lp_e) else np.inf
            dh = h - h0
            if not (dh <= _MAX_DELTA_H):  # also NaN
                diverged = True
                valid = False
                break
            sum_acc += 1.0 if dh <= 0.0 else math.exp(-dh)
            new_log_w = _log_add(sub_log_w, -dh)
            if math.log(np.random.random()) < -dh - new_log_w:
                q_sub[:] = q_e
                g_sub[:] = g_e
                p_sub[:] = p_e
                lp_sub = lp_e
            sub_log_w = new_log_w
            for j in range(dim):
                sub_rho[j] += p_e[j]
            # generalised U-turn criterion on every complete sub-subtree ending at this leaf
            for m in range(1, depth + 1):
                if n % (1 << m) == 0:
                    for j in range(dim):
                        ck_psharp[m, j] = minv[j] * p_e[j]
                        ck_rho[m, j] = sub_rho[j] - p_e[j]
            for m in range(1, depth + 1):
                if (n + 1) % (1 << m) == 0:
                    a, b = 0.0, 0.0
                    for j in range(dim):
                        block = sub_rho[j] - ck_rho[m, j]
                        a += ck_psharp[m, j] * block
                        b += minv[j] * p_e[j] * block
                    if a <= 0.0 or b <= 0.0:
                        valid = False
            if not valid:
                break
        if not valid:
            break
        # biased progressive sampling between the old tree and the new subtree
        if math.log(np.random.random()) < sub_log_w - log_w:
            q_prop[:] = q_sub
            g_prop[:] = g_sub
            p_prop[:] = p_sub
            lp_prop = lp_sub
        log_w = _log_add(log_w, sub_log_w)
        for j in range(dim):
            rho[j] += sub_rho[j]
        if forward:
            q_r[:] = q_e
            p_r[:] = p_e
            g_r[:] = g_e
        else:
            q_l[:] = q_e
            p_l[:] = p_e
            g_l[:] = g_e
        depth += 1
        a, b = 0.0, 0.0
        for j in range(dim):
            a += minv[j] * p_l[j] * rho[j]
            b += minv[j] * p_r[j] * rho[j]
        if a <= 0.0 or b <= 0.0:
            break
    q[:] = q_prop
    g[:] = g_prop
    return lp_prop, sum_acc / max(n_leap, 1), depth, n_leap, diverged, _energy(lp_prop, p_prop, minv)


@numba.njit(**_JIT)
def _chain(q0, seed, n_warmup, n_draws, windows, target, max_depth, model, draws, thetas, stats):  # pragma: no cover
    """One chain: warm-up (step size by dual averaging, diagonal metric over ``windows``), then draws."""
    np.random.seed(seed)
    dim = q0.shape[0]
    ints, free, fixed = model[8], model[7], model[6]
    q = q0.copy()
    g = np.empty(dim)
    lp = log_density(q, g, *model)
    g_scratch = np.empty(dim)
    minv = np.ones(dim)
    work = (np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim),
            np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim),
            np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim), np.empty(dim),
            np.empty((max_depth + 1, dim)), np.empty((max_depth + 1, dim)), np.empty(dim))
    eps = _init_step(q, lp, g, minv, 1.0, model)
    mu, hbar, log_eps_bar, t_da = math.log(10.0 * eps), 0.0, 0.0, 0
    w_mean, w_m2, w_n = np.zeros(dim), np.zeros(dim), 0
    n_windows = windows.shape[0]
    for it in range(n_warmup + n_draws):
        lp, acc, depth, n_leap, diverged, energy = _transition(q, lp, g, eps, minv, max_depth, model, work)
        if it < n_warmup:
            t_da += 1
            eta = 1.0 / (t_da + 10.0)
            hbar = (1.0 - eta) * hbar + eta * (target - acc)
            log_eps = mu - math.sqrt(t_da) / 0.05 * hbar
            x = t_da ** -0.75
            log_eps_bar = x * log_eps + (1.0 - x) * log_eps_bar
            eps = math.exp(log_eps)
            for w in range(n_windows):
                if windows[w, 0] <= it < windows[w, 1]:
                    w_n += 1
                    for j in range(dim):
                        delta = q[j] - w_mean[j]
                        w_mean[j] += delta / w_n
                        w_m2[j] += delta * (q[j] - w_mean[j])
                    if it == windows[w, 1] - 1:
                        for j in range(dim):
                            var = w_m2[j] / max(w_n - 1, 1)
                            minv[j] = (w_n / (w_n + 5.0)) * var + 1e-3 * (5.0 / (w_n + 5.0))
                        w_mean[:] = 0.0
                        w_m2[:] = 0.0
                        w_n = 0
                        eps = _init_step(q, lp, g, minv, eps, model)
                        mu, hbar, log_eps_bar, t_da = math.log(10.0 * eps), 0.0, 0.0, 0
            if it == n_warmup - 1:
                eps = math.exp(log_eps_bar)
            continue
        s = it - n_warmup
        draws[s] = q
        stats[s, 7] = _log_density_parts(q, g_scratch, *model)[1]
        constrain(q, ints, free, fixed, thetas[s])
        stats[s, 0] = acc
        stats[s, 1] = eps
        stats[s, 2] = depth
        stats[s, 3] = n_leap
        stats[s, 4] = 1.0 if diverged else 0.0
        stats[s, 5] = lp
        stats[s, 6] = energy


def adaptation_windows(n_warmup: int) -> np.ndarray:
    """Stan's slow windows for the metric: after a fast buffer, windows of 25, 50, 100, ... draws, then a fast tail.

    Returns an (n, 2) array of ``[start, stop)`` warm-up iterations; none when ``n_warmup < 20``.
    """
    if n_warmup < 20:
        return np.zeros((0, 2), dtype=np.int64)
    if n_warmup >= 150:
        init, term, base = 75, 50, 25
    else:
        init, term = int(0.15 * n_warmup), int(0.1 * n_warmup)
        base = n_warmup - init - term
    end, start, size, out = n_warmup - term, init, base, []
    while start < end:
        stop = start + size
        if stop + 2 * size > end:  # the next window would not fit: stretch this one to the end
            stop = end
        out.append((start, stop))
        start, size = stop, 2 * size
    return np.array(out, dtype=np.int64).reshape(-1, 2)


def run_chains(model: tuple, starts: list[np.ndarray], n_warmup: int, n_draws: int, rng: np.random.Generator, *,
               target_accept: float = 0.8, max_tree_depth: int = 10, n_threads: int | None = None,
               progress: bool = False):
    """Run one chain per start (unconstrained vectors), chains on parallel threads.

    Each chain is seeded from ``rng`` up front and runs in one compiled call,
    so the draws do not depend on the number of threads. With ``progress``,
    a bar counts finished chains.

    Returns
    -------
    q : ndarray (n_chains, n_draws, dim)
        Unconstrained draws.
    theta : ndarray (n_chains, n_draws, n_theta)
        Constrained parameters of each draw (pi | transmat | emission arrays).
    stats : ndarray (n_chains, n_draws, 8)
        Acceptance statistic, step size, tree depth, leapfrog steps, divergence, log density, energy,
        log-likelihood.
    """
    windows = adaptation_windows(n_warmup)
    seeds = [int(s) for s in rng.integers(0, 2**31 - 1, size=len(starts))]
    dim = starts[0].shape[0]
    n_theta = model[6].shape[0]
    q = np.empty((len(starts), n_draws, dim))
    theta = np.empty((len(starts), n_draws, n_theta))
    stats = np.empty((len(starts), n_draws, 8))

    with progress_bar(progress, len(starts), "NUTS (compiled)", "chain") as bar:
        lock = threading.Lock()

        def run(c):
            _chain(np.ascontiguousarray(starts[c], dtype=np.float64), seeds[c], n_warmup, n_draws, windows,
                   target_accept, max_tree_depth, model, q[c], theta[c], stats[c])
            with lock:
                bar.update(1)

        map_blocks(run, range(len(starts)), n_threads)
    return q, theta, stats
