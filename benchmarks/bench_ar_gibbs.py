"""Autoregressive HMM Gibbs (compiled) against a NumPy Gibbs reference, and against GaussianHMM Gibbs (issue #17).

No installable Python library samples the posterior of an autoregressive HMM
here (pyhsmm/pybasicbayes and ssm do not install), so the reference is the
sampler a user would write in NumPy from the textbook conditionals: emission
log-densities vectorised, forward filtering in a Python loop, backward
sampling, Dirichlet rows, and per state a matrix-normal-inverse-Wishart draw
(``scipy.stats.invwishart``). Both run the same prior (the one probspace
resolved) on the same data; the script checks that their posterior means
agree within Monte Carlo error (a correctness cross-check) and prints the
time per sweep and the ratio. The second line prices the autoregressive
update against probspace's GaussianHMM(covariance_type="full") Gibbs on the
same frames.

Run:  .venv/bin/python benchmarks/bench_ar_gibbs.py [--quick] [--t T] [--sweeps N]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from scipy.special import logsumexp
from scipy.stats import invwishart

from probspace import AutoregressiveHMM, GaussianHMM


def simulate(T: int, rng: np.random.Generator) -> np.ndarray:
    A = np.array([[[0.9, 0.0], [0.2, 0.5]], [[-0.5, 0.3], [0.0, -0.4]]])
    b = np.array([[0.5, -0.5], [2.0, 1.0]])
    trans = np.array([[0.97, 0.03], [0.05, 0.95]])
    X = np.zeros((T, 2))
    z = 0
    for t in range(1, T):
        z = rng.choice(2, p=trans[z])
        X[t] = A[z] @ X[t - 1] + b[z] + 0.4 * rng.standard_normal(2)
    return X


def numpy_gibbs(X, start, prior, n_sweeps, rng):
    """Reference blocked Gibbs for an AR(1) HMM with one sequence (the first frame conditioned on)."""
    Y, Z = X[1:], np.column_stack([X[:-1], np.ones(len(X) - 1)])
    K, D = start["intercepts"].shape
    M0 = np.vstack([prior["coefs_mean"].T, prior["intercepts_mean"][None]])
    P0, nu0, Psi0 = prior["regression_precision"], prior["dof"], prior["scale"]
    pi, A = start["startprob"].copy(), start["transmat"].copy()
    B = np.stack([np.vstack([start["coefs"][k].T, start["intercepts"][k][None]]) for k in range(K)])
    S = start["covars"].copy()
    out = []
    for _ in range(n_sweeps):
        logf = np.zeros((len(X), K))
        for k in range(K):
            r = Y - Z @ B[k]
            L = np.linalg.cholesky(S[k])
            q = np.linalg.solve(L, r.T)
            logf[1:, k] = -0.5 * ((q * q).sum(0) + 2 * np.log(np.diag(L)).sum() + D * np.log(2 * np.pi))
        filt = np.empty_like(logf)
        f = np.log(pi) + logf[0]
        filt[0] = np.exp(f - logsumexp(f))
        for t in range(1, len(X)):
            f = np.log(filt[t - 1] @ A) + logf[t]
            filt[t] = np.exp(f - logsumexp(f))
        z = np.empty(len(X), dtype=int)
        z[-1] = rng.choice(K, p=filt[-1])
        for t in range(len(X) - 2, -1, -1):
            w = filt[t] * A[:, z[t + 1]]
            z[t] = rng.choice(K, p=w / w.sum())
        pi = rng.dirichlet(prior["startprob"] + np.bincount(z[:1], minlength=K))
        counts = np.zeros((K, K))
        np.add.at(counts, (z[:-1], z[1:]), 1.0)
        A = np.stack([rng.dirichlet(prior["transmat"][j] + counts[j]) for j in range(K)])
        for k in range(K):
            sel = z[1:] == k
            Zk, Yk = Z[sel], Y[sel]
            Pn = P0 + Zk.T @ Zk
            Vn = np.linalg.inv(Pn)
            Mn = Vn @ (P0 @ M0 + Zk.T @ Yk)
            R = Yk - Zk @ Mn
            psi = Psi0 + R.T @ R + (Mn - M0).T @ P0 @ (Mn - M0)
            S[k] = invwishart.rvs(nu0 + sel.sum(), 0.5 * (psi + psi.T), random_state=rng)
            B[k] = Mn + np.linalg.cholesky(Vn) @ rng.standard_normal(Mn.shape) @ np.linalg.cholesky(S[k]).T
        order = np.argsort(B[:, -1, 0] + B[:, :-1, 0] @ X[1:].mean(0))  # probspace's ordering key
        out.append(B[order, :-1].transpose(0, 2, 1))
    return np.array(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--t", type=int, default=2000)
    parser.add_argument("--sweeps", type=int, default=1000)
    args = parser.parse_args()
    T, n = (500, 300) if args.quick else (args.t, args.sweeps)
    X = simulate(T, np.random.default_rng(0))
    AutoregressiveHMM(2, sampler="gibbs", n_chains=1, n_draws=5, n_warmup=5).fit(X[:50])  # compile outside timing
    GaussianHMM(2, covariance_type="full", sampler="gibbs", n_chains=1, n_draws=5, n_warmup=5).fit(X[:50])

    def sweep_time(cls, **kw):
        """Seconds per sweep: a fit of 1.5 n sweeps minus a fit of 15 (same EM start), over 1.5 n - 15."""
        times = []
        for sweeps in (n, 10):
            t0 = time.perf_counter()
            model = cls(2, sampler="gibbs", n_chains=1, n_draws=sweeps, n_warmup=sweeps // 2, random_state=0,
                        **kw).fit(X)
            times.append(time.perf_counter() - t0)
            if sweeps == n:
                fitted = model
        return (times[0] - times[1]) / (n + n // 2 - 15), fitted

    t_ps, ps = sweep_time(AutoregressiveHMM)
    t_gauss, _ = sweep_time(GaussianHMM, covariance_type="full")
    em = AutoregressiveHMM(2, random_state=0).fit(X)
    start = {k: getattr(em, k + "_") for k in ("startprob", "transmat", "coefs", "intercepts", "covars")}
    t0 = time.perf_counter()
    ref = numpy_gibbs(X, start, ps.prior_, n + n // 2, np.random.default_rng(1))[n // 2:]
    t_ref = (time.perf_counter() - t0) / (n + n // 2)

    draws = ps.draws_["coefs"][0]
    gap = np.abs(draws.mean(0) - ref.mean(0))
    mcse = np.sqrt(draws.var(0) / len(draws) * 20 + ref.var(0) / len(ref) * 20)  # generous autocorrelation factor
    ok = bool(np.all(gap < 5 * mcse + 1e-3))
    print(f"T={T} frames, D=2, K=2, AR(1); {n + n // 2} sweeps per chain")
    print(f"  NumPy reference Gibbs          : {t_ref * 1e3:8.3f} ms / sweep")
    print(f"  probspace AutoregressiveHMM    : {t_ps * 1e3:8.3f} ms / sweep   speed-up x{t_ref / t_ps:.1f}")
    print(f"  probspace GaussianHMM (full)   : {t_gauss * 1e3:8.3f} ms / sweep   "
          f"AR / Gaussian cost x{t_ps / t_gauss:.2f}")
    print(f"  posterior means of the coefficients agree (max gap {gap.max():.4f}, within 5 MC se): "
          f"{'PASS' if ok else 'FAIL'}")


if __name__ == "__main__":
    main()
