"""Benchmark the RDPG position posterior on a 1,000-node graph, with a NumPy reference in the same process.

A seeded graph from a 2-D random dot product graph (N=1,000 nodes, positions
spread over the positive quadrant) is fitted by ``probspace.RDPG(2)`` with
``n_chains`` chains of ``n_warmup + n_draws`` sweeps (a sweep moves every node
once). Reported:

1. Wall time of ``fit`` (compilation excluded: a tiny fit runs first) and the
   effective sample size of the aligned positions (ArviZ bulk ESS over all
   ``2N`` coordinates: minimum and median), as ESS per second.
   Goal: the fit takes under 30 s on one core ("well under a minute").
2. Time per sweep against a straightforward NumPy implementation of the same
   Metropolis-within-Gibbs node update (one vectorised ``N``-dot-product and
   ``N``-logarithm pass per node, same proposals, without the compiled
   kernel's product trick and group move), timed on a few sweeps of the same
   graph. The ratio is reported (no goal).

Single-threaded by default (the thread variables are set before numpy is imported).

Usage::

    python benchmarks/bench_rdpg.py              # N = 1,000, 4 chains x (500 + 500) sweeps (~20 s)
    python benchmarks/bench_rdpg.py --quick      # N = 300
    python benchmarks/bench_rdpg.py --n 2000 --draws 1000 --warmup 1000

Exits with status 1 when the goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import platform  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import probspace  # noqa: E402
from probspace.inference import _rdpg  # noqa: E402

GOAL_FIT_SECONDS = 30.0


def simulate(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0.0, np.pi / 2, n)
    radius = rng.uniform(0.5, 0.9, n)
    Z = np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    return _rdpg.sample_graphs(_rdpg.edge_probabilities(Z), rng).astype(np.float64)


def numpy_sweeps(A: np.ndarray, X: np.ndarray, steps: np.ndarray, n_sweeps: int, rng: np.random.Generator) -> float:
    """The same node update in plain NumPy (support check, clipped Bernoulli log-likelihood, Gaussian prior)."""
    N, d = X.shape
    Ab = A.astype(bool)
    accepted = 0
    for _ in range(n_sweeps):
        for i in range(N):
            y = X[i] + steps[i] * rng.standard_normal(d)
            cur, prop = X @ X[i], X @ y
            others = np.arange(N) != i
            if prop[others].min() < 0 or prop[others].max() > 1:
                continue
            cur = np.clip(cur, _rdpg.EPS, 1 - _rdpg.EPS)
            prop = np.clip(prop, _rdpg.EPS, 1 - _rdpg.EPS)
            ll_cur = np.where(Ab[i], np.log(cur), np.log1p(-cur))[others].sum()
            ll_prop = np.where(Ab[i], np.log(prop), np.log1p(-prop))[others].sum()
            if np.log(rng.random()) < ll_prop - ll_cur - 0.5 * (y @ y - X[i] @ X[i]):
                X[i] = y
                accepted += 1
    return accepted / (N * n_sweeps)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1000, help="nodes")
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--reference-sweeps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="N = 300")
    args = parser.parse_args()
    n = 300 if args.quick else args.n
    print(f"probspace {probspace.__version__}, numpy {np.__version__}, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.2f}")
    import arviz as az

    A = simulate(n, args.seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probspace.RDPG(2, n_chains=1, n_draws=5, n_warmup=5, random_state=0).fit(simulate(20, 1))  # compile
        model = probspace.RDPG(2, n_chains=args.chains, n_draws=args.draws, n_warmup=args.warmup,
                               random_state=args.seed, progress=False)
        t0 = time.perf_counter()
        model.fit(A)
        fit_s = time.perf_counter() - t0
        draws = model.draws_["position"]
        ess = np.asarray(az.ess(az.convert_to_dataset({"position": draws}))["position"]).ravel()
        rhat = np.asarray(az.rhat(az.convert_to_dataset({"position": draws}))["position"]).ravel()
    sweeps = args.chains * (args.warmup + args.draws)
    per_sweep = fit_s / sweeps
    print(f"graph: N={n}, {int(A.sum() // 2)} edges; {args.chains} chains x ({args.warmup} + {args.draws}) sweeps")
    print(f"probspace RDPG.fit: {fit_s:.2f} s ({per_sweep * 1e3:.2f} ms per sweep), acceptance "
          f"{model.sample_stats_['acceptance_rate'].mean():.2f}, max R-hat {rhat.max():.3f}")
    print(f"bulk ESS over {ess.size} coordinates: min {ess.min():.0f}, median {np.median(ess):.0f} "
          f"(of {args.chains * args.draws} draws) -> ESS/s min {ess.min() / fit_s:.1f}, "
          f"median {np.median(ess) / fit_s:.1f}")

    rng = np.random.default_rng(args.seed)
    X = _rdpg.support_start(model.ase_, rng, 0.0)
    steps = model.step_size_[0].copy()
    t0 = time.perf_counter()
    acc = numpy_sweeps(A, X, steps, args.reference_sweeps, rng)
    ref_per_sweep = (time.perf_counter() - t0) / args.reference_sweeps
    print(f"NumPy reference (same node update): {ref_per_sweep * 1e3:.1f} ms per sweep (acceptance {acc:.2f}); "
          f"compiled kernel (with its group move) {ref_per_sweep / per_sweep:.1f}x faster per sweep; "
          f"the reference would take {ref_per_sweep * sweeps:.0f} s for this fit")
    ok = fit_s < GOAL_FIT_SECONDS
    print(f"GOAL RDPG posterior on {n} nodes in under {GOAL_FIT_SECONDS:.0f} s: {fit_s:.1f} s "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
