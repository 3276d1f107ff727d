"""Autoregressive HMM EM against a NumPy reference, and Student-t emissions against the Gaussian HMM (issue #17).

No installable Python library fits an autoregressive HMM by EM (hmmlearn has
none; ssm and dynamax do not install here), so the reference is a plain NumPy
EM written from the textbook equations: scaled forward-backward in a Python
loop, weighted least squares per state. Both start from the same parameters
and run the same number of iterations; the script checks that they end at
the same parameters (a correctness cross-check) and prints the time ratio.
Student-t emissions cost more per EM iteration than Gaussian ones (the
precision weights and the degrees-of-freedom root): the second table prints
that ratio against probspace's GaussianHMM (hmmlearn underneath) and the
generic ``HMM(emission="gaussian")`` at the same number of iterations.

Run:  .venv/bin/python benchmarks/bench_ar_robust.py [--quick] [--t T] [--iters N] [--repeats R]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from probspace import HMM, AutoregressiveHMM, GaussianHMM


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


def numpy_ar_em(X: np.ndarray, p: int, start: dict, n_iter: int) -> tuple[dict, list[float]]:
    """Textbook EM of an AR(p)-HMM on one sequence, the first p frames conditioned on."""
    D = X.shape[1]
    pi, A, coefs, icpt, cov = (start[k].copy() for k in ("startprob", "transmat", "coefs", "intercepts", "covars"))
    T, K = X.shape[0], pi.size
    R = np.column_stack([np.column_stack([X[p - j:T - j] for j in range(1, p + 1)]), np.ones(T - p)])
    Y = X[p:]
    trace = []
    for _ in range(n_iter):
        logb = np.zeros((T, K))
        for k in range(K):
            resid = Y - R @ np.column_stack([coefs[k], icpt[k]]).T
            inv = np.linalg.inv(cov[k])
            logb[p:, k] = -0.5 * (np.einsum("td,de,te->t", resid, inv, resid) + np.linalg.slogdet(cov[k])[1]
                                  + D * np.log(2 * np.pi))
        shift = logb.max(axis=1, keepdims=True)
        B = np.exp(logb - shift)
        alpha = np.empty((T, K))
        c = np.empty(T)
        a = pi * B[0]
        c[0] = a.sum()
        alpha[0] = a / c[0]
        for t in range(1, T):
            a = (alpha[t - 1] @ A) * B[t]
            c[t] = a.sum()
            alpha[t] = a / c[t]
        beta = np.ones((T, K))
        xi = np.zeros((K, K))
        for t in range(T - 2, -1, -1):
            tmp = B[t + 1] * beta[t + 1]
            xi += np.outer(alpha[t], tmp) * A / c[t + 1]
            beta[t] = (A @ tmp) / c[t + 1]
        trace.append(float(np.log(c).sum() + shift.sum()))
        gamma = alpha * beta
        pi = gamma[0] / gamma[0].sum()
        A = xi / xi.sum(axis=1, keepdims=True)
        for k in range(K):
            w = gamma[p:, k]
            W = np.linalg.solve((R * w[:, None]).T @ R, (R * w[:, None]).T @ Y)
            coefs[k], icpt[k] = W[:-1].T, W[-1]
            resid = Y - R @ W
            cov[k] = (resid * w[:, None]).T @ resid / w.sum() + 1e-3 * np.eye(D)
    return {"startprob": pi, "transmat": A, "coefs": coefs, "intercepts": icpt, "covars": cov}, trace


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t", type=int, default=50_000)
    parser.add_argument("--iters", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="T = 10,000, 2 repeats")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.t, args.repeats = 10_000, 2
    print(f"load average at start: {os.getloadavg()[0]:.2f}")
    rng = np.random.default_rng(args.seed)
    X = simulate(args.t, rng)
    warnings.simplefilter("ignore")

    # -- 1. AR(2)-HMM EM, same start, same iterations ---------------------------------------------------
    p, n = 2, args.iters
    first = AutoregressiveHMM(2, order=p, max_iter=1, tol=0.0, random_state=0).fit(X)
    start = {"startprob": first.startprob_, "transmat": first.transmat_, "coefs": first.coefs_,
             "intercepts": first.intercepts_, "covars": first.covars_}
    model = AutoregressiveHMM(2, order=p, max_iter=n + 1, tol=0.0, random_state=0)
    t_ps = best_of(lambda: model.fit(X), args.repeats)
    # EM stops once an iteration gains nothing (tol=0); the last iteration then runs no M-step
    m_steps = model.n_iter_ - (2 if model.converged_ else 1)  # M-steps of the model, less the start's one
    t_np = best_of(lambda: numpy_ar_em(X, p, start, m_steps), args.repeats)
    ref, trace = numpy_ar_em(X, p, start, m_steps)
    gap = max(np.abs(ref[k] - getattr(model, k + "_")).max() for k in ref)
    ll_gap = abs(trace[-1] - model.history_[-2 if model.converged_ else -1] * X.shape[0])
    per_ps, per_np = t_ps / model.n_iter_, t_np / max(m_steps, 1)
    print(f"\nAR(2)-HMM EM, T = {args.t}, D = 2, K = 2, {model.n_iter_} iterations (converged: {model.converged_}; "
          f"best of {args.repeats})")
    print(f"  probspace AutoregressiveHMM : {per_ps * 1e3:8.2f} ms / iteration  (k-means start included)")
    print(f"  NumPy reference EM          : {per_np * 1e3:8.2f} ms / iteration")
    print(f"  ratio probspace / NumPy     : {per_ps / per_np:8.3f}   (< 1: probspace faster)")
    print(f"  same fit after {m_steps} reference iterations: max |param diff| = {gap:.2e}, log-likelihood gap = "
          f"{ll_gap:.2e}  {'PASS' if gap < 1e-8 else 'FAIL'}")

    # -- 2. Student-t vs Gaussian emissions, same data and iterations -------------------------------------
    Xr = X.copy()
    Xr[rng.choice(args.t, size=args.t // 50, replace=False)] += rng.normal(scale=20.0, size=(args.t // 50, 2))
    fits = {
        "GaussianHMM(full) [hmmlearn]": lambda: GaussianHMM(2, covariance_type="full", max_iter=n, tol=0.0,
                                                            random_state=0).fit(Xr),
        "HMM(emission='gaussian', full)": lambda: HMM(2, emission="gaussian", emission_params={
            "covariance_type": "full"}, max_iter=n, tol=0.0, random_state=0).fit(Xr),
        "HMM(emission='studentt')": lambda: HMM(2, emission="studentt", max_iter=n, tol=0.0,
                                                random_state=0).fit(Xr),
    }
    times, iters = {}, {}
    for name, fn in fits.items():
        times[name] = best_of(fn, args.repeats)
        iters[name] = fn().n_iter_
        times[name] /= iters[name]
    base = times["GaussianHMM(full) [hmmlearn]"]
    print(f"\nEM with 2% outliers, T = {args.t}, D = 2, K = 2, up to {n} iterations (best of {args.repeats})")
    for name, t in times.items():
        print(f"  {name:34s}: {t * 1e3:8.2f} ms / iteration ({iters[name]:3d} iterations)   ratio to GaussianHMM = "
              f"{t / base:6.2f}")
    print(f"\nload average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
