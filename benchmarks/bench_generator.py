"""Benchmark GeneratorPosterior's NUTS against plain Pyro NUTS on the same target, same run.

The target: codes ``z ~ N(0, I_d)`` of a small fixed MLP generator
``g: R^d -> R^64`` (two tanh hidden layers of 32, float64, seeded weights), with
Gaussian observation noise, for a few observations generated from the model.
Two code sizes: ``d = 2`` and ``d = 16``. Reported per size:

- ESS per second of ``GeneratorPosterior(g, ...).posterior(X)`` (fit included): the
  smallest bulk ESS (ArviZ) over all code coordinates of all observations, divided
  by the wall time;
- the same for the reference, plain Pyro: ``MCMC(NUTS(model))`` with a model function
  (``pyro.sample`` of the codes and of the observations), the same chains, warm-up,
  draws, target acceptance and diagonal mass-matrix adaptation, one torch thread;
- the ratio probspace / reference (higher is better; >= 1 means no loss against
  writing the Pyro model by hand). Repeats are ABBA-interleaved, medians reported.

Usage::

    python benchmarks/bench_generator.py            # 2 chains x (300 warm-up + 500 draws), 3 repeats
    python benchmarks/bench_generator.py --quick    # 150 + 200, 1 repeat
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import probspace  # noqa: E402


def _generator(d: int, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(d, 32), torch.nn.Tanh(), torch.nn.Linear(32, 32), torch.nn.Tanh(),
                               torch.nn.Linear(32, 64)).double().eval()


def _min_ess(draws: np.ndarray) -> float:
    """Smallest bulk ESS over all coordinates of ``draws`` (n_chains, n_draws, ...)."""
    flat = draws.reshape(draws.shape[0], draws.shape[1], -1)
    return float(min(az.ess(flat[:, :, j]) for j in range(flat.shape[2])))


def _probspace(g, X, d, sigma, warmup, draws, seed):
    start = time.perf_counter()
    gp = probspace.GeneratorPosterior(g, n_components=d, noise_scale=sigma, n_chains=2, n_warmup=warmup,
                                      n_draws=draws, random_state=seed).fit(X)
    post = gp.posterior(X)
    elapsed = time.perf_counter() - start
    return _min_ess(post.draws), elapsed


def _pyro(g, X, d, sigma, warmup, draws, seed):
    import pyro
    import pyro.distributions as dist
    from pyro.infer.mcmc import MCMC, NUTS

    Xt = torch.as_tensor(X)
    n = X.shape[0]

    def model():
        z = pyro.sample("z", dist.Normal(torch.zeros(n, d, dtype=torch.float64), 1.0).to_event(2))
        pyro.sample("x", dist.Normal(g(z), sigma).to_event(2), obs=Xt)

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    start = time.perf_counter()
    chains = []
    try:
        for c in range(2):
            pyro.set_rng_seed(seed + c)
            init = {"z": torch.as_tensor(np.random.default_rng(seed + c).normal(size=(n, d)) * 0.5)}
            mcmc = MCMC(NUTS(model, target_accept_prob=0.8, adapt_step_size=True, adapt_mass_matrix=True,
                             full_mass=False), num_samples=draws, warmup_steps=warmup, initial_params=init,
                        disable_progbar=True)
            mcmc.run()
            chains.append(mcmc.get_samples()["z"].numpy())
    finally:
        torch.set_num_threads(threads)
    elapsed = time.perf_counter() - start
    return _min_ess(np.stack(chains)), elapsed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--n-obs", type=int, default=4)
    parser.add_argument("--sigma", type=float, default=0.3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warmup, draws = (150, 200) if args.quick else (300, 500)
    repeats = args.repeats or (1 if args.quick else 3)
    print(f"load average {os.getloadavg()[0]:.2f}; torch {torch.__version__}; 2 chains x ({warmup} warm-up + "
          f"{draws} draws), {args.n_obs} observations, {repeats} repeat(s)")
    for d in (2, 16):
        g = _generator(d, args.seed)
        rng = np.random.default_rng(args.seed)
        with torch.no_grad():
            X = g(torch.as_tensor(rng.normal(size=(args.n_obs, d)))).numpy()
        X = X + args.sigma * rng.normal(size=X.shape)
        rates = {"probspace": [], "pyro": []}
        runs = {"probspace": [], "pyro": []}
        for r in range(repeats):
            order = ("probspace", "pyro") if r % 2 == 0 else ("pyro", "probspace")
            for name in order:
                fn = _probspace if name == "probspace" else _pyro
                ess, seconds = fn(g, X, d, args.sigma, warmup, draws, args.seed + r)
                rates[name].append(ess / seconds)
                runs[name].append(f"ESS {ess:.0f} in {seconds:.2f} s")
        a, b = statistics.median(rates["probspace"]), statistics.median(rates["pyro"])
        print(f"d = {d:2d} ({args.n_obs * d} sampled coordinates): probspace {a:8.1f} min-ESS/s "
              f"[{'; '.join(runs['probspace'])}]")
        print(f"{'':35s}pyro      {b:8.1f} min-ESS/s [{'; '.join(runs['pyro'])}]")
        print(f"{'':35s}ratio probspace / pyro = {a / b:.2f}")
    print(f"load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
