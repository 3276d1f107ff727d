"""Benchmark LinearGaussianSSM (Kalman smoother + log-likelihood, path draws) against statsmodels, same run.

Both sides smooth the same model with the same parameters and the same known initial state, and
the script checks first that they agree (smoothed means, variances, log-likelihood). Timed:

1. Smoother + log-likelihood: ``model.posterior(y)`` then its ``mean``, ``variance`` and
   ``log_likelihood`` against statsmodels' ``smooth(params)`` (``smoothed_state``,
   ``smoothed_state_cov``, ``llf``; asked for the smoothed states and their covariances only),
   on the Nile local level model (T = 100), a simulated local
   level series (T = 100,000 by default) and a simulated two-state, three-feature model with
   missing entries (T = 100,000). Goal: probspace / statsmodels <= 1.0 on the long series
   (the kernels are compiled; the time is the filter and smoother, not the result objects).
2. Joint draws of whole state paths: ``posterior(y).sample(n)`` (forward filtering, backward
   sampling) against ``n`` calls of statsmodels' simulation smoother (Durbin and Koopman's
   method), per draw, for information.

Repeated with the two sides interleaved (ABBA); medians. Usage::

    python benchmarks/bench_ssm.py            # T = 100,000 (about a minute)
    python benchmarks/bench_ssm.py --quick    # T = 20,000

Exits with status 1 when a goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import statsmodels  # noqa: E402
import statsmodels.api as sm  # noqa: E402
from statsmodels.tsa.statespace.kalman_smoother import SMOOTHER_STATE, SMOOTHER_STATE_COV  # noqa: E402

import probspace  # noqa: E402
from probspace import LinearGaussianSSM  # noqa: E402
from probspace.datasets import load_nile  # noqa: E402

GOAL_RATIO = 1.0


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def abba(a, b, repeats):
    """Median times of ``a`` and ``b`` run interleaved (A B B A ...), and the individual runs."""
    ta, tb = [], []
    for i in range(repeats):
        order = (a, b) if i % 2 == 0 else (b, a)
        for fn in order:
            t, _ = timed(fn)
            (ta if fn is a else tb).append(t)
    return statistics.median(ta), statistics.median(tb), ta, tb


def known_model(A, C, Q, R, m0, P0):
    return LinearGaussianSSM(A.shape[0], transition_matrix=A, observation_matrix=C, transition_covariance=Q,
                             observation_covariance=R, initial_mean=m0, initial_covariance=P0, fixed="all").fit(
        np.zeros((2, C.shape[0])))


def statsmodels_model(y, A, C, Q, R, m0, P0):
    mod = sm.tsa.statespace.MLEModel(y, k_states=A.shape[0])
    mod["design"], mod["obs_cov"], mod["transition"], mod["selection"], mod["state_cov"] = C, R, A, np.eye(
        A.shape[0]), Q
    mod.ssm.initialize_known(m0, P0)
    return mod


def simulate(A, C, Q, R, m0, P0, T, rng):
    d, p = A.shape[0], C.shape[0]
    w = rng.multivariate_normal(np.zeros(d), Q, size=T)
    x = np.empty((T, d))
    x[0] = rng.multivariate_normal(m0, P0)
    for t in range(1, T):
        x[t] = A @ x[t - 1] + w[t]
    return x @ C.T + rng.multivariate_normal(np.zeros(p), R, size=T)


def ours(model, y):
    post = model.posterior(y)
    return post.mean, post.variance, post.log_likelihood.sum()


def theirs(mod):
    # only the outputs compared (statsmodels' default also smooths the disturbances: slower)
    res = mod.ssm.smooth(smoother_output=SMOOTHER_STATE | SMOOTHER_STATE_COV)
    return res.smoothed_state, res.smoothed_state_cov, res.llf_obs.sum()


def case(name, params, y, repeats, results):
    model = known_model(*params)
    mod = statsmodels_model(y[:, 0] if y.shape[1] == 1 else y, *params)
    mean, var, ll = ours(model, y)  # warm-up (numba compiles once) and agreement
    s_mean, s_cov, s_ll = theirs(mod)
    err_mean = np.max(np.abs(mean - s_mean.T))
    err_var = np.max(np.abs(var - np.diagonal(s_cov, axis1=0, axis2=1)))
    print(f"\n{name}: T = {y.shape[0]}, d = {params[0].shape[0]}, p = {params[1].shape[0]}, "
          f"{np.isnan(y).sum()} missing entries")
    print(f"  agreement: max |mean diff| {err_mean:.2e}, max |variance diff| {err_var:.2e}, "
          f"log-likelihood {ll:.6f} vs {s_ll:.6f} (diff {abs(ll - s_ll):.2e})")
    ta, tb, runs_a, runs_b = abba(lambda: ours(model, y), lambda: theirs(mod), repeats)
    ratio = ta / tb
    print(f"  smoother + log-likelihood: probspace {ta * 1e3:.3f} ms, statsmodels {tb * 1e3:.3f} ms, "
          f"ratio {ratio:.3f}")
    if len(runs_a) <= 10:
        print(f"    runs (ms): probspace {[round(t * 1e3, 3) for t in runs_a]}, "
              f"statsmodels {[round(t * 1e3, 3) for t in runs_b]}")
    results[name] = ratio
    return model, mod


def draws(name, model, mod, y, n, repeats):
    post = model.posterior(y)
    sim = mod.simulation_smoother()

    def ours_draws():
        return post.sample(n, random_state=0)

    def theirs_draws():
        out = []
        for _ in range(n):
            sim.simulate()
            out.append(sim.simulated_state)
        return out

    ta, tb, _, _ = abba(ours_draws, theirs_draws, repeats)
    print(f"  {n} joint path draws ({name}): probspace {ta * 1e3:.1f} ms, statsmodels simulation smoother "
          f"{tb * 1e3:.1f} ms, ratio {ta / tb:.3f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="T = 20,000")
    parser.add_argument("--t", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--draws", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    T = 20_000 if args.quick else args.t
    rng = np.random.default_rng(args.seed)
    warnings.simplefilter("ignore")

    print("probspace LinearGaussianSSM benchmark (Kalman smoother vs statsmodels)")
    print(f"python {platform.python_version()}, numpy {np.__version__}, statsmodels {statsmodels.__version__}, "
          f"probspace {probspace.__version__}; {os.cpu_count()} cpus; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    results: dict[str, float] = {}

    one = np.eye(1)
    nile = (one, one, np.array([[1469.1]]), np.array([[15099.0]]), np.array([1000.0]), np.array([[1e5]]))
    y = load_nile().data
    model, mod = case("Nile local level", nile, y, max(args.repeats, 51), results)
    draws("Nile", model, mod, y, args.draws, args.repeats)

    level = (one, one, np.array([[0.1]]), np.array([[1.0]]), np.zeros(1), one)
    y = simulate(*level, T, rng)
    model, mod = case("simulated local level", level, y, args.repeats, results)
    draws("simulated local level", model, mod, y, max(args.draws // 10, 1), args.repeats)

    A = 0.9 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    C = np.array([[1.0, 0.0], [0.5, 1.0], [-1.0, 0.5]])
    multi = (A, C, np.array([[0.3, 0.1], [0.1, 0.2]]), np.diag([0.2, 0.3, 0.1]) + 0.05, np.zeros(2), np.eye(2))
    y = simulate(*multi, T, rng)
    y[rng.random(y.shape) < 0.05] = np.nan
    case("simulated 2-state, 3-feature, 5% missing", multi, y, args.repeats, results)

    print(f"\nload average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    ok = True
    for name in ("simulated local level", "simulated 2-state, 3-feature, 5% missing"):
        passed = results[name] <= GOAL_RATIO
        ok &= passed
        print(f"GOAL smoother + log-likelihood, {name}: probspace / statsmodels = {results[name]:.3f} "
              f"<= {GOAL_RATIO}: {'PASS' if passed else 'FAIL'}")
    print(f"(Nile, T = 100, for information: ratio {results['Nile local level']:.3f})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
