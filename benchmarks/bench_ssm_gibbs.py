"""Benchmark LinearGaussianSSM(sampler="gibbs") against the statsmodels Gibbs recipe, same run.

What users write without probspace: statsmodels' documented recipe for Bayesian state space
models ("Gibbs sampling with the simulation smoother"): an ``UnobservedComponents`` local level
model, ``mod.update(params)`` and ``sim.simulate()`` for the state path each iteration, then the
two variances drawn by hand from their inverse-gamma conditionals. Both sides sample the same
posterior (Nile local level model, known initial state N(1000, 1e5), priors R ~ IG(2, 15000),
Q ~ IG(2, 1500)); the script first checks that their posterior means agree within Monte Carlo
error, then reports the same-run ratio of time per sweep. Usage::

    python benchmarks/bench_ssm_gibbs.py            # 4000 sweeps per side, 3 repeats
    python benchmarks/bench_ssm_gibbs.py --quick    # 1000 sweeps, 1 repeat

Goal: probspace / statsmodels <= 1.0 (time per sweep). Exits with status 1 when it is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
import statsmodels  # noqa: E402
import statsmodels.api as sm  # noqa: E402

from probspace import LinearGaussianSSM  # noqa: E402
from probspace.datasets import load_nile  # noqa: E402

GOAL_RATIO = 1.0
A_R, B_R, A_Q, B_Q = 2.0, 15000.0, 2.0, 1500.0  # inverse-gamma shapes and scales


def probspace_gibbs(y, n_sweeps, seed):
    one = np.eye(1)
    model = LinearGaussianSSM(
        1, transition_matrix=one, observation_matrix=one, initial_mean=[1000.0], initial_covariance=[[1e5]],
        fixed=["transition_matrix", "observation_matrix", "initial_mean", "initial_covariance"], sampler="gibbs",
        n_chains=1, n_draws=n_sweeps, n_warmup=0, max_iter=0, observation_covariance=[[15000.0]],
        transition_covariance=[[1500.0]], random_state=seed,
        prior={"observation_covariance_df": 2 * A_R, "observation_covariance_scale": 2 * B_R,
               "transition_covariance_df": 2 * A_Q, "transition_covariance_scale": 2 * B_Q}).fit(y)
    return model.draws_["observation_covariance"][0, :, 0, 0], model.draws_["transition_covariance"][0, :, 0, 0]


def statsmodels_gibbs(y, n_sweeps, seed):
    rng = np.random.default_rng(seed)
    mod = sm.tsa.UnobservedComponents(y[:, 0], "llevel")
    mod.ssm.initialize_known(np.array([1000.0]), np.array([[1e5]]))
    sim = mod.simulation_smoother()
    R, Q = 15000.0, 1500.0
    out = np.empty((n_sweeps, 2))
    n = y.shape[0]
    for i in range(n_sweeps):
        mod.update(np.array([R, Q]))
        sim.simulate(measurement_disturbance_variates=rng.standard_normal(n),
                     state_disturbance_variates=rng.standard_normal(n),
                     initial_state_variates=rng.standard_normal(1))
        x = sim.simulated_state[0]
        R = (B_R + 0.5 * np.sum((y[:, 0] - x) ** 2)) / rng.gamma(A_R + 0.5 * n)
        Q = (B_Q + 0.5 * np.sum(np.diff(x) ** 2)) / rng.gamma(A_Q + 0.5 * (n - 1))
        out[i] = R, Q
    return out[:, 0], out[:, 1]


def mc_se(draws, n_batches=20):
    """Batch-means Monte Carlo standard error of the mean."""
    batches = np.array_split(draws, n_batches)
    return np.std([b.mean() for b in batches], ddof=1) / np.sqrt(n_batches)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_sweeps, repeats = (1000, 1) if args.quick else (4000, 3)
    y = load_nile().data
    print(f"statsmodels {statsmodels.__version__}; Nile local level, {n_sweeps} Gibbs sweeps per side")
    probspace_gibbs(y, 20, 0)  # compile the kernels outside the timings
    warnings.simplefilter("ignore")
    ok = True
    burn = n_sweeps // 10
    draws = {"probspace": probspace_gibbs(y, n_sweeps, 1), "statsmodels": statsmodels_gibbs(y, n_sweeps, 1)}
    for k, name in enumerate(("observation variance", "level variance")):
        a, b = (draws[s][k][burn:] for s in ("probspace", "statsmodels"))
        z = (a.mean() - b.mean()) / np.hypot(mc_se(a), mc_se(b))
        print(f"  {name}: posterior mean {a.mean():.0f} (probspace) vs {b.mean():.0f} (statsmodels), |z| {abs(z):.1f}")
        ok &= abs(z) < 5
    times = {"probspace": [], "statsmodels": []}
    for i in range(repeats):
        order = ("probspace", "statsmodels") if i % 2 == 0 else ("statsmodels", "probspace")
        for side in order:
            fn = probspace_gibbs if side == "probspace" else statsmodels_gibbs
            t0 = time.perf_counter()
            fn(y, n_sweeps, 2 + i)
            times[side].append((time.perf_counter() - t0) / n_sweeps)
    tp, ts = statistics.median(times["probspace"]), statistics.median(times["statsmodels"])
    ratio = tp / ts
    verdict = "PASS" if ratio <= GOAL_RATIO else "FAIL"
    print(f"  time per sweep: probspace {1e3 * tp:.2f} ms, statsmodels recipe {1e3 * ts:.2f} ms, "
          f"ratio {ratio:.2f} (goal <= {GOAL_RATIO}) {verdict}")
    print("posterior means agree" if ok else "posterior means DISAGREE")
    sys.exit(0 if ok and ratio <= GOAL_RATIO else 1)


if __name__ == "__main__":
    main()
