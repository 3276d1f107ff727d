"""Benchmark probspace's FactorAnalysis (fit + exact posterior) against scikit-learn (fit + transform), same run.

Data: N = 1,000,000 rows, D = 50 features, k = 10 factors, drawn from a factor model with
random loadings and noise variances (seeded). Both sides run scikit-learn's own SVD-based
iterations with the same integer seed (probspace derives the backend's seed from its
generator; scikit-learn is given that derived seed, so both run the identical computation;
checked) and exactly ``--max-iter`` iterations (``tol=0``).

1. ``FactorAnalysis(k).fit(X)`` then ``.posterior(X)`` (validation, the NaN check, the
   posterior means and the shared covariance and its Cholesky factor) against
   ``sklearn.decomposition.FactorAnalysis(k).fit(X)`` then ``.transform(X)`` (the posterior
   means only). Repeated with A and B interleaved (ABBA), medians. Goal: probspace /
   scikit-learn <= 1.05.
2. For information: ``posterior(X)`` alone against ``transform(X)`` alone, and
   ``log_likelihood(X)`` against ``score_samples(X)``.

Usage::

    python benchmarks/bench_factor.py            # full size (about 2-3 minutes)
    python benchmarks/bench_factor.py --quick    # N = 100,000

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
import sklearn  # noqa: E402
from sklearn import decomposition  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import probspace  # noqa: E402
from probspace._random import as_generator, sklearn_seed  # noqa: E402

GOAL_OVERHEAD = 1.05


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def make_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(k, d))
    psi = rng.uniform(0.5, 2.0, d)
    X = rng.standard_normal((n, k)) @ W
    X += rng.standard_normal((n, d)) * np.sqrt(psi)
    X += rng.normal(size=d)
    return X


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 100,000")
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--d", type=int, default=50)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n = 100_000 if args.quick else args.n

    print("probspace FactorAnalysis benchmark")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"probspace {probspace.__version__}; {os.cpu_count()} cpus; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    t_data, X = timed(lambda: make_data(n, args.d, args.k, args.seed))
    print(f"data: N={n:,}, D={args.d}, k={args.k} ({X.nbytes / 2**20:.0f} MiB) drawn in {t_data:.1f} s; "
          f"{args.max_iter} iterations per fit (tol=0)")

    settings = dict(tol=0.0, max_iter=args.max_iter)
    seed = sklearn_seed(as_generator(args.seed))  # what probspace hands its backend

    def ours():
        model = probspace.FactorAnalysis(args.k, random_state=args.seed, **settings).fit(X)
        return model, model.posterior(X)

    def theirs():
        model = decomposition.FactorAnalysis(args.k, random_state=seed, **settings).fit(X)
        return model, model.transform(X)

    runs = {"ours": [], "sklearn": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0: every fit runs to max_iter
        for r in range(args.repeats):
            pair = [("ours", ours), ("sklearn", theirs)]
            if r % 2:
                pair.reverse()
            for name, fn in pair:
                t, out = timed(fn)
                runs[name].append(t)
                if r == 0:
                    runs[name + "_out"] = out
    fa, post = runs["ours_out"]
    sk, Z = runs["sklearn_out"]
    same_fit = np.array_equal(fa.components_, sk.components_) and np.array_equal(fa.noise_variance_, sk.noise_variance_)
    diff_mean = float(np.abs(post.mean - Z).max())

    t_post = statistics.median(timed(lambda: fa.posterior(X))[0] for _ in range(args.repeats))
    t_transform = statistics.median(timed(lambda: sk.transform(X))[0] for _ in range(args.repeats))
    t_ll, ll = timed(lambda: fa.log_likelihood(X))
    t_ss, ss = timed(lambda: sk.score_samples(X))
    diff_ll = float(np.abs(ll - ss).max())

    t_ours, t_theirs = statistics.median(runs["ours"]), statistics.median(runs["sklearn"])
    ratio = t_ours / t_theirs
    print(f"\n{args.repeats} interleaved runs (ABBA), medians")
    print(f"{'':44s} {'probspace s':>12s} {'scikit-learn s':>15s} {'ratio':>7s}")
    print(f"{'fit + posterior(X) | fit + transform(X)':44s} {t_ours:12.2f} {t_theirs:15.2f} {ratio:7.3f}")
    print(f"{'posterior(X) | transform(X)':44s} {t_post:12.3f} {t_transform:15.3f} {t_post / t_transform:7.3f}")
    print(f"{'log_likelihood(X) | score_samples(X)':44s} {t_ll:12.3f} {t_ss:15.3f} {t_ll / t_ss:7.3f}")
    print(f"runs: probspace {' '.join(f'{t:.2f}' for t in runs['ours'])} | "
          f"scikit-learn {' '.join(f'{t:.2f}' for t in runs['sklearn'])}")
    print(f"identical fits: {'yes' if same_fit else 'NO'}; max |posterior mean - transform| {diff_mean:.1e}; "
          f"max |log_likelihood - score_samples| {diff_ll:.1e}")
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    ok = ratio <= GOAL_OVERHEAD and same_fit and diff_mean < 1e-8 and diff_ll < 1e-6
    print(f"GOAL fit + posterior / fit + transform <= {GOAL_OVERHEAD}: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%) ... "
          f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
