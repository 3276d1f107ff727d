"""Benchmark probspace's Gaussian mixture against references measured in the same process.

Two measurements on a seeded synthetic mixture of K well-separated full-covariance
Gaussians (default N=1,000,000, D=10, K=10, see
``/work/shared/design/performance-anchors.md``):

1. Overhead of the wrapper: probspace ``GaussianMixture(...).fit(X)`` + ``.posterior(X)``
   against scikit-learn's ``sklearn.mixture.GaussianMixture(...).fit(X)`` +
   ``.predict_proba(X)`` with identical settings. probspace derives the backend's int
   seed from its own generator, so scikit-learn is given that same derived seed: both
   sides then run the identical computation (checked: equal means and responsibilities).
   ``tol=0`` makes both run exactly ``max_iter`` EM iterations, and
   ``init_params="random_from_data"`` keeps the initialisation cheap.
   Goal: probspace / scikit-learn <= 1.05.
2. Label draws: ``post = model.posterior(X)`` then ``post.sample(100, random_state=0)``.
   Goal: >= 1e8 labels/s. Reference: the straightforward NumPy broadcast inverse-CDF
   ``(u[..., None] > cdf[None]).sum(-1)`` on the same probabilities, applied to chunks
   of draws so that its (draws, N, K) boolean temporary stays within a memory budget.

Timings are repeated, A and B interleaved (A, B, then B, A, ...: alternating which goes
first cancels order effects), and medians reported;
ratios always come from measurements taken in this run. Single-threaded by default
(the thread variables below are set before numpy is imported; the environment wins).

Usage::

    python benchmarks/bench_mixture.py            # full run, N = 1,000,000 (a few minutes)
    python benchmarks/bench_mixture.py --quick    # smoke run, N = 100,000
    python benchmarks/bench_mixture.py --n 300000 --repeats 5
    python benchmarks/bench_mixture.py --stable-malloc   # less noisy: no page-fault storms

Exits with status 1 when a goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import sklearn  # noqa: E402
from sklearn import mixture  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

import probspace  # noqa: E402
from probspace import GaussianMixture  # noqa: E402
from probspace._random import as_generator, sklearn_seed  # noqa: E402

GOAL_LABELS_PER_S = 1e8
GOAL_OVERHEAD_RATIO = 1.05
# Largest (draws, N, K) boolean temporary the broadcast reference may build, in bytes.
REFERENCE_BOOL_BUDGET = 200 * 2**20
# --stable-malloc: large blocks come from the heap and freed memory is kept, so repeated large
# temporaries (scikit-learn's EM allocates many) stop costing page faults on every iteration.
MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(4 * 2**30), "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30)}


# -- data -------------------------------------------------------------------------
def make_data(n: int, d: int, k: int, seed: int) -> np.ndarray:
    """Seeded mixture of ``k`` well-separated full-covariance Gaussians, shape (n, d)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0.0, 8.0, size=(k, d))  # pairwise distances ~ 8 * sqrt(2 d) >> 1
    weights = rng.dirichlet(np.full(k, 5.0))
    labels = rng.choice(k, size=n, p=weights)
    X = np.empty((n, d))
    for j in range(k):
        a = rng.normal(size=(d, d))
        cov = a @ a.T / d + 0.5 * np.eye(d)  # random full covariance, eigenvalues ~ 0.5 .. 4
        idx = np.flatnonzero(labels == j)
        X[idx] = means[j] + rng.standard_normal((idx.size, d)) @ np.linalg.cholesky(cov).T
    return X


# -- timing helpers -----------------------------------------------------------------
def clock() -> float:
    return time.perf_counter()


def fmt_runs(values) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def median(values) -> float:
    return statistics.median(values)


# -- (1) fit + posterior overhead -------------------------------------------------------
def run_probspace(X, settings, seed):
    t0 = clock()
    model = GaussianMixture(**settings, random_state=seed).fit(X)
    t1 = clock()
    post = model.posterior(X)
    t2 = clock()
    return t1 - t0, t2 - t1, model, post


def run_sklearn(X, settings, seed):
    t0 = clock()
    est = mixture.GaussianMixture(**settings, random_state=seed).fit(X)
    t1 = clock()
    probs = est.predict_proba(X)
    t2 = clock()
    return t1 - t0, t2 - t1, est, probs


def bench_overhead(X, k, max_iter, repeats, seed):
    settings = dict(n_components=k, covariance_type="full", max_iter=max_iter, tol=0.0, n_init=1,
                    init_params="random_from_data")
    backend_seed = sklearn_seed(as_generator(seed))  # the int seed probspace hands scikit-learn

    # Warm-up, not timed: first-call costs, and at full size so that the heap has grown to its
    # working size before the first timed run (otherwise whichever side runs first pays for it).
    run_probspace(X, {**settings, "max_iter": 1}, seed)
    run_sklearn(X, {**settings, "max_iter": 1}, backend_seed)

    ps_fit, ps_post, sk_fit, sk_post = [], [], [], []
    same = None
    model = None
    for rep in range(repeats):
        for side in ("probspace", "sklearn") if rep % 2 == 0 else ("sklearn", "probspace"):
            gc.collect()
            if side == "probspace":
                f, p, model, post = run_probspace(X, settings, seed)
                ps_fit.append(f)
                ps_post.append(p)
            else:
                f, p, est, probs = run_sklearn(X, settings, backend_seed)
                sk_fit.append(f)
                sk_post.append(p)
        if same is None:  # both sides ran once: check that they computed the same thing
            same = (model.n_iter_ == est.n_iter_ == max_iter
                    and np.allclose(model.means_, est.means_, rtol=1e-10, atol=1e-10)
                    and np.allclose(post.probs, probs, rtol=1e-8, atol=1e-10))
        del post, est, probs
    ps_tot = [a + b for a, b in zip(ps_fit, ps_post, strict=True)]
    sk_tot = [a + b for a, b in zip(sk_fit, sk_post, strict=True)]
    pair_ratios = [a / b for a, b in zip(ps_tot, sk_tot, strict=True)]
    ratio = median(ps_tot) / median(sk_tot)

    print(f"[1] fit (max_iter={max_iter}, tol=0, init_params='random_from_data', n_init=1) + posterior, "
          f"{repeats} interleaved runs (ABBA order)")
    print(f"    scikit-learn seed = probspace-derived seed {backend_seed}; identical fits: "
          f"{'yes' if same else 'NO'}")
    print(f"    {'step':<40}{'probspace s':>13}{'sklearn s':>11}{'ratio':>8}   per-run probspace | sklearn")
    rows = [("fit", ps_fit, sk_fit), ("posterior / predict_proba", ps_post, sk_post),
            ("total", ps_tot, sk_tot)]
    for name, a, b in rows:
        print(f"    {name:<40}{median(a):>13.3f}{median(b):>11.3f}{median(a) / median(b):>8.3f}   "
              f"{fmt_runs(a)} | {fmt_runs(b)}")
    print(f"    {'per EM iteration (sklearn fit / max_iter)':<40}{'':>13}{median(sk_fit) / max_iter:>11.3f}")
    print(f"    total ratio per pair: {' '.join(f'{r:.4f}' for r in pair_ratios)}; "
          f"median of pairs {median(pair_ratios):.4f}")
    print()
    return ratio, same, model


# -- (2) label draws ---------------------------------------------------------------------
def broadcast_sampler(probs, n_draws, rng, chunk):
    """Straightforward inverse-CDF: ``(u[..., None] > cdf[None]).sum(-1)``, ``chunk`` draws at a time."""
    cdf = np.cumsum(probs, axis=1)
    cdf /= cdf[:, -1:]
    out = np.empty((n_draws, probs.shape[0]), dtype=np.int8)
    for start in range(0, n_draws, chunk):
        stop = min(start + chunk, n_draws)
        u = rng.random((stop - start, probs.shape[0]))
        out[start:stop] = (u[..., None] > cdf[None]).sum(-1)
    return out


def count_check(labels, probs) -> float:
    """Largest |z| of the per-label counts against their expectation (should be small)."""
    n = labels.shape[0]
    z = []
    for j in range(probs.shape[1]):
        count = sum(int(np.count_nonzero(row == j)) for row in labels)  # row by row: no big temporaries
        expected = n * probs[:, j].sum()
        var = n * (probs[:, j] * (1 - probs[:, j])).sum()
        z.append(abs(count - expected) / np.sqrt(var) if var > 0 else (0.0 if count == expected else np.inf))
    return float(max(z))


def bench_draws(post, n_draws, repeats):
    probs = post.probs
    N, K = probs.shape
    n_labels = n_draws * N
    chunk = int(max(1, min(n_draws, REFERENCE_BOOL_BUDGET // (N * K))))

    # Warm-up at full size, not timed (see bench_overhead).
    post.sample(n_draws, random_state=0)
    broadcast_sampler(probs, chunk, np.random.default_rng(0), chunk)

    ps_t, ref_t = [], []
    z_ps = z_ref = None
    for rep in range(repeats):
        for side in ("probspace", "reference") if rep % 2 == 0 else ("reference", "probspace"):
            gc.collect()
            t0 = clock()
            if side == "probspace":
                labels = post.sample(n_draws, random_state=0)
                ps_t.append(clock() - t0)
                if z_ps is None:
                    assert labels.shape == (n_draws, N)
                    z_ps = count_check(labels, probs)
            else:
                labels = broadcast_sampler(probs, n_draws, np.random.default_rng(0), chunk)
                ref_t.append(clock() - t0)
                if z_ref is None:
                    z_ref = count_check(labels, probs)
            del labels
    rate = n_labels / median(ps_t)
    ref_rate = n_labels / median(ref_t)

    print(f"[2] label draws: posterior(X).sample({n_draws}, random_state=0) = {n_labels:.3g} labels, "
          f"{repeats} interleaved runs (ABBA order)")
    print(f"    {'sampler':<46}{'median s':>10}{'labels/s':>11}{'max|z|':>8}   per-run s")
    print(f"    {'probspace Categorical.sample':<46}{median(ps_t):>10.3f}{rate:>11.3g}{z_ps:>8.2f}   "
          f"{fmt_runs(ps_t)}")
    name = f"numpy broadcast inverse-CDF ({chunk} draws/chunk)"
    print(f"    {name:<46}{median(ref_t):>10.3f}{ref_rate:>11.3g}{z_ref:>8.2f}   {fmt_runs(ref_t)}")
    print(f"    probspace / broadcast throughput: {rate / ref_rate:.2f}x  (per-pair: "
          f"{' '.join(f'{b / a:.2f}' for a, b in zip(ps_t, ref_t, strict=True))})")
    print("    (max|z|: largest z-score of the per-label counts against sum_i p_ik; |z| < 5 is expected)")
    print()
    return rate, max(z_ps, z_ref)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run with N=100,000")
    parser.add_argument("--n", type=int, default=None, help="number of observations (default 1,000,000)")
    parser.add_argument("--d", type=int, default=10, help="number of features")
    parser.add_argument("--k", type=int, default=10, help="number of components")
    parser.add_argument("--max-iter", type=int, default=5, help="EM iterations (tol=0 runs exactly this many)")
    parser.add_argument("--draws", type=int, default=100, help="label draws per observation")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repetitions of each timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stable-malloc", action="store_true",
                        help="re-run under glibc malloc settings that keep freed memory mapped (no page-fault "
                             "storms from large temporaries): much less noisy timings, but not the default "
                             "environment users see")
    args = parser.parse_args(argv)
    if args.stable_malloc and "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        env = dict(os.environ, **MALLOC_SETTINGS)
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]], env)
    n = args.n if args.n is not None else (100_000 if args.quick else 1_000_000)

    warnings.simplefilter("ignore", ConvergenceWarning)  # tol=0 never "converges"
    threads = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print(f"probspace Gaussian mixture benchmark: N={n:,} D={args.d} K={args.k} covariance='full'")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"probspace {getattr(probspace, '__version__', '?')}; {os.cpu_count()} cpus; "
          + ", ".join(f"{k}={v}" for k, v in threads.items()))
    print("load average at start (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg())
          + "  (other processes on this machine distort the timings)")
    malloc = {k: os.environ[k] for k in MALLOC_SETTINGS if k in os.environ}
    print("glibc malloc: " + (", ".join(f"{k}={v}" for k, v in malloc.items()) if malloc else "default settings"))
    t0 = clock()
    X = make_data(n, args.d, args.k, args.seed)
    print(f"data: {X.shape} float64 ({X.nbytes / 2**20:.0f} MiB), generated in {clock() - t0:.2f} s")
    print()

    ratio, same, model = bench_overhead(X, args.k, args.max_iter, args.repeats, args.seed)
    post = model.posterior(X)
    del model
    rate, z = bench_draws(post, args.draws, args.repeats)

    print("load average at end (1, 5, 15 min): " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    ok_rate = rate >= GOAL_LABELS_PER_S and z < 5
    ok_ratio = ratio <= GOAL_OVERHEAD_RATIO and bool(same)
    print(f"GOAL label draws >= {GOAL_LABELS_PER_S:.0e} labels/s: {rate:.3g} labels/s "
          f"({rate / GOAL_LABELS_PER_S:.2f}x goal) ... {'PASS' if ok_rate else 'FAIL'}")
    print(f"GOAL overhead <= {100 * (GOAL_OVERHEAD_RATIO - 1):.0f}% (probspace/sklearn <= {GOAL_OVERHEAD_RATIO}): "
          f"{ratio:.4f} ({100 * (ratio - 1):+.2f}%) ... {'PASS' if ok_ratio else 'FAIL'}")
    return 0 if (ok_rate and ok_ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
