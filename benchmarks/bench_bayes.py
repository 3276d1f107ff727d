"""Benchmark probspace's MCMC engines (Gibbs, NUTS) against NumPyro and Pyro measured in the same process.

Two measurements (see the Bayesian rows of ``/work/shared/design/performance-anchors.md``):

1. Bayesian 2-component 1-D Gaussian mixture on the Old Faithful eruption durations
   (``probspace.datasets.load_old_faithful().data[:, :1]``, 272 points), 4 chains x 1000 draws
   after 1000 warm-up draws (``--quick``: 250 + 250). Metric: the minimum over the two component
   means of the bulk ESS (``arviz.ess(..., method="bulk")`` on the (chain, draw) array, draws of
   every engine ordered so that component 0 has the smaller mean), divided by the wall time of
   the whole fit. Engines:

   - probspace ``GaussianMixture(2, sampler="gibbs", ...)``: compiled blocked Gibbs. An untimed
     warm-up fit comes first (numba kernels compile or load from the disk cache on first use),
     and the timed call is the whole ``fit`` (it includes the 4 short EM fits that start the
     chains), repeated ``--repeats`` times (median; same seed, so the draws are identical).
   - probspace ``GaussianMixture(2, sampler="nuts", ...)``: Pyro NUTS on the marginal likelihood.
   - NumPyro NUTS on the same model and priors (components summed out with ``logsumexp``), read
     from ``model.prior_`` of the Gibbs fit: weights ~ Dirichlet(1, 1); per component
     sigma2 ~ InverseGamma(dof / 2, scale / 2) and mean | sigma2 ~ Normal(mean,
     sqrt(sigma2 / mean_precision)). Run when ``numpyro`` is importable, with
     ``chain_method="vectorized"`` and ``"parallel"`` (``numpyro.set_host_device_count(4)``: 4 XLA
     host devices sharing the machine's cores), in float64 (the precision of probspace's
     engines) and, for information, float32 (NumPyro's default). Each configuration runs once
     untimed (JAX tracing and XLA compilation) and once timed with another key.

   - probspace ``GaussianMixture(2, sampler="nuts")`` is probspace's compiled NUTS (chains on
     threads; an untimed short fit first loads or compiles it); ``sampler="nuts-pyro"`` is the
     Pyro engine that ``"nuts"`` ran before (issue 19).

   Goals: Gibbs ESS/s >= 2x the best NumPyro float64 ESS/s; probspace NUTS ESS/s >= 0.5x the best
   NumPyro float64 ESS/s (issue 19); Gibbs / probspace NUTS is printed.
2. 2-state Gaussian HMM on the first 80 eruption durations (time order), NUTS, one chain,
   ``--hmm-warmup`` + ``--hmm-draws`` iterations (default 20 + 20, ``--quick`` 5 + 5), float64 on
   both sides:

   - probspace ``GaussianHMM(2, sampler="nuts", n_chains=1, ...)``: the states are summed out by
     the compiled forward-backward kernel, which also returns the exact gradient.
   - Pyro's generic enumeration of the same model: ``z_t ~ Categorical`` with
     ``infer={"enumerate": "parallel"}`` in a ``pyro.markov`` loop, startprob and transmat rows
     ~ Dirichlet, variances and means with the conjugate-form priors above (``prior_`` of the
     probspace fit), ``pyro.infer.mcmc.NUTS(model, max_plate_nesting=0)``, started from an EM fit
     (probspace's chain starts from an EM fit too). Pyro's enumeration is slow (the anchor: 237 s
     for 40 iterations), hence the few iterations.

   Metric: seconds per NUTS iteration of the whole call (setup included on both sides) and
   seconds per potential-energy evaluation (one gradient each; counted by wrapping probspace's
   ``hmm_log_likelihood`` and by a counter in the Pyro model). Tree depths differ between two
   short runs, so the per-evaluation ratio is the steadier one. Goal: Pyro / probspace seconds
   per iteration >= 3.

3. The same HMM, effective draws per second (issue 19): min bulk ESS over the two ordered state
   means per wall second of the whole fit, 4 chains x (1000 + 1000) (``--hmm-ess-warmup``), for
   probspace's compiled NUTS, probspace's Pyro engine (``sampler="nuts-pyro"``, 100 + 100 per
   chain: ``--hmm-pyro-iters``; ESS/s is comparable across run lengths) and NumPyro NUTS on the
   forward algorithm (``jax.lax.scan``), float64, ``vectorized`` and ``parallel`` chains, a
   compiling run first. Goal: probspace NUTS ESS/s >= 0.5x the best NumPyro.

Both sides' models are checked to be the stated ones: their log joint densities at one point are
compared with a direct NumPy/SciPy evaluation.

Usage::

    .venv-bench/bin/python benchmarks/bench_bayes.py           # with NumPyro (~4-5 minutes)
    .venv/bin/python benchmarks/bench_bayes.py --quick         # smoke run; NumPyro skipped if absent
    python benchmarks/bench_bayes.py --hmm-warmup 10 --hmm-draws 10 --repeats 5

Single-threaded BLAS (the thread variables below are set before numpy is imported; the
environment wins) and one torch thread. Exits with status 1 when a goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import gc  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
import pyro  # noqa: E402
import pyro.distributions as pdist  # noqa: E402
import torch  # noqa: E402
from pyro.infer.mcmc import MCMC, NUTS  # noqa: E402
from scipy import stats  # noqa: E402
from scipy.special import logsumexp  # noqa: E402

import probspace  # noqa: E402
import probspace.datasets  # noqa: E402
from probspace import GaussianHMM, GaussianMixture  # noqa: E402

try:  # importing numpyro imports jax, but JAX reads XLA_FLAGS only when its backend starts (first use)
    import numpyro  # noqa: E402
except ImportError:  # pragma: no cover - depends on the environment
    numpyro = None

GOAL_GIBBS_VS_NUMPYRO = 2.0  # Gibbs min ESS-bulk/s / best NumPyro (float64) min ESS-bulk/s
GOAL_HMM_SPEEDUP = 3.0  # Pyro enumeration s/iteration / probspace s/iteration
GOAL_NUTS_VS_NUMPYRO = 0.5  # probspace NUTS min ESS-bulk/s / best NumPyro (float64), mixture and HMM (issue 19)
HMM_ESS_CHAINS = 4
N_CHAINS = 4
HMM_T = 80


# -- helpers ----------------------------------------------------------------------------------
def clock() -> float:
    return time.perf_counter()


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def ordered(means: np.ndarray) -> np.ndarray:
    """(chain, draw, K) component means sorted within each draw (component 0 = smaller mean)."""
    return np.sort(np.asarray(means, dtype=np.float64), axis=-1)


def mean_diagnostics(means: np.ndarray) -> dict:
    """Bulk ESS and R-hat of each component mean of (chain, draw, K) ordered draws."""
    ess = [float(az.ess(means[:, :, k], method="bulk")) for k in range(means.shape[-1])]
    rhat = [float(az.rhat(means[:, :, k])) for k in range(means.shape[-1])] if means.shape[0] > 1 else [np.nan]
    return {"ess": ess, "rhat": max(rhat), "post_mean": means.mean(axis=(0, 1))}


def mixture_log_joint(x, w, var, mu, hyper) -> float:
    """Log joint density of the mixture model (components summed out), evaluated with SciPy."""
    a, b, m0, kappa0 = hyper["a"], hyper["b"], hyper["m0"], hyper["kappa0"]
    lp = stats.dirichlet.logpdf(w, hyper["alpha"])
    lp += stats.invgamma.logpdf(var, a, scale=b).sum()
    lp += stats.norm.logpdf(mu, m0, np.sqrt(var / kappa0)).sum()
    lp += logsumexp(np.log(w) + stats.norm.logpdf(x[:, None], mu, np.sqrt(var)), axis=1).sum()
    return float(lp)


def hmm_log_likelihood(x, start, trans, mu, var) -> float:
    """Forward algorithm in log space with NumPy (the reference for the model checks)."""
    frames = stats.norm.logpdf(x[:, None], mu, np.sqrt(var))
    alpha = np.log(start) + frames[0]
    log_trans = np.log(trans)
    for t in range(1, len(x)):
        alpha = logsumexp(alpha[:, None] + log_trans, axis=0) + frames[t]
    return float(logsumexp(alpha))


# -- (1) mixture --------------------------------------------------------------------------------
def mixture_hyper(model) -> dict:
    """Scalar hyper-parameters of the 1-D mixture prior from a fitted model's ``prior_``."""
    p = model.prior_
    return {"alpha": np.asarray(p["weights"], dtype=np.float64), "m0": float(np.ravel(p["mean"])[0]),
            "kappa0": float(p["mean_precision"]), "a": 0.5 * float(p["dof"]),
            "b": 0.5 * float(np.ravel(p["scale"])[0])}


def probspace_mixture(X, sampler, n_warmup, n_draws, seed):
    t0 = clock()
    model = GaussianMixture(2, sampler=sampler, n_chains=N_CHAINS, n_draws=n_draws, n_warmup=n_warmup,
                            random_state=seed).fit(X)
    return clock() - t0, model


def bench_gibbs(X, n_warmup, n_draws, repeats, seed):
    t0 = clock()
    GaussianMixture(2, sampler="gibbs", n_chains=1, n_draws=20, n_warmup=20, random_state=seed).fit(X)
    first = clock() - t0
    times, model = [], None
    for _ in range(repeats):
        gc.collect()
        dt, model = probspace_mixture(X, "gibbs", n_warmup, n_draws, seed)
        times.append(dt)
    row = {"name": "probspace Gibbs", "wall": statistics.median(times), "runs": times,
           **mean_diagnostics(model.draws_["means"][..., 0]), "div": None,
           "note": f"first call (compile/cache load, 20+20 sweeps, 1 chain) {first:.2f} s"}
    return row, model


def bench_probspace_nuts(X, n_warmup, n_draws, seed, sampler="nuts-pyro"):
    first = None
    if sampler == "nuts":  # compiled: load (or compile) the numba sampler first, untimed
        t0 = clock()
        GaussianMixture(2, sampler="nuts", n_chains=1, n_draws=5, n_warmup=5, random_state=seed).fit(X)
        first = clock() - t0
    gc.collect()
    dt, model = probspace_mixture(X, sampler, n_warmup, n_draws, seed)
    div = int(model.sample_stats_["diverging"].sum())
    steps = model.sample_stats_["step_size"][:, -1]
    name = "probspace NUTS (compiled, threads)" if sampler == "nuts" else "probspace NUTS (Pyro, marginal)"
    note = "step sizes " + " ".join(f"{s:.3f}" for s in steps)
    if first is not None:
        note += f"; first call (compile/cache load) {first:.2f} s"
    return {"name": name, "wall": dt, "runs": [dt], **mean_diagnostics(model.draws_["means"][..., 0]), "div": div,
            "note": note, "sampler": sampler}


def numpyro_mixture_model(x, alpha, m0, kappa0, a, b):
    import jax.numpy as jnp
    import numpyro.distributions as ndist
    from jax.scipy.special import logsumexp as jlogsumexp

    w = numpyro.sample("weights", ndist.Dirichlet(alpha))
    var = numpyro.sample("variances", ndist.InverseGamma(a * jnp.ones(2, x.dtype), b).to_event(1))
    mu = numpyro.sample("means", ndist.Normal(m0, jnp.sqrt(var / kappa0)).to_event(1))
    frames = ndist.Normal(mu, jnp.sqrt(var)).log_prob(x[:, None])
    numpyro.factor("log_likelihood", jlogsumexp(jnp.log(w) + frames, axis=1).sum())


def numpyro_args(x, hyper, dtype):
    import jax.numpy as jnp

    return (jnp.asarray(x, dtype=dtype), jnp.asarray(hyper["alpha"], dtype=dtype), jnp.asarray(hyper["m0"], dtype),
            jnp.asarray(hyper["kappa0"], dtype), jnp.asarray(hyper["a"], dtype), jnp.asarray(hyper["b"], dtype))


def check_numpyro_model(x, hyper, point) -> float:
    """|NumPyro log joint - SciPy log joint| at ``point`` (float64)."""
    import jax.numpy as jnp
    from numpyro.infer.util import log_density

    numpyro.enable_x64(True)
    params = {k: jnp.asarray(v, dtype=jnp.float64) for k, v in point.items()}
    lj, _ = log_density(numpyro_mixture_model, numpyro_args(x, hyper, jnp.float64), {}, params)
    ref = mixture_log_joint(x, point["weights"], point["variances"], point["means"], hyper)
    return abs(float(lj) - ref)


def bench_numpyro(x, hyper, method, x64, n_warmup, n_draws, seed):
    import jax
    import jax.numpy as jnp
    from numpyro.infer import MCMC as NMCMC
    from numpyro.infer import NUTS as NNUTS

    numpyro.enable_x64(x64)
    dtype = jnp.float64 if x64 else jnp.float32
    args = numpyro_args(x, hyper, dtype)
    mcmc = NMCMC(NNUTS(numpyro_mixture_model), num_warmup=n_warmup, num_samples=n_draws, num_chains=N_CHAINS,
                 chain_method=method, progress_bar=False)

    def run(key):
        t0 = clock()
        mcmc.run(jax.random.PRNGKey(key), *args, extra_fields=("diverging", "num_steps"))
        samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
        return clock() - t0, samples

    gc.collect()
    first, _ = run(seed)  # traces and compiles
    gc.collect()
    dt, samples = run(seed + 1)
    extra = mcmc.get_extra_fields(group_by_chain=True)
    div = int(np.asarray(extra["diverging"]).sum())
    grads = float(np.asarray(extra["num_steps"]).mean())
    bits = 64 if x64 else 32
    return {"name": f"NumPyro NUTS {method}, float{bits}", "wall": dt, "runs": [dt],
            **mean_diagnostics(ordered(samples["means"])), "div": div, "x64": x64, "method": method,
            "note": f"first run incl. compile {first:.2f} s; {grads:.1f} leapfrog steps/draw"}


def print_mixture_table(rows, n_warmup, n_draws):
    print(f"    {'engine':<34}{'wall s':>8}{'ESS mu0':>9}{'ESS mu1':>9}{'minESS/s':>10}{'R-hat':>7}{'div':>5}"
          f"   posterior means mu0, mu1 | notes")
    for r in rows:
        r["ess_per_s"] = min(r["ess"]) / r["wall"]
        div = "-" if r["div"] is None else str(r["div"])
        runs = f" (runs {' '.join(f'{v:.3f}' for v in r['runs'])})" if len(r["runs"]) > 1 else ""
        print(f"    {r['name']:<34}{r['wall']:>8.3f}{r['ess'][0]:>9.0f}{r['ess'][1]:>9.0f}{r['ess_per_s']:>10.0f}"
              f"{r['rhat']:>7.3f}{div:>5}   {r['post_mean'][0]:.4f}, {r['post_mean'][1]:.4f} | {r['note']}{runs}")
    print(f"    (wall: whole fit, {N_CHAINS} chains x ({n_warmup} warm-up + {n_draws} draws); ESS: arviz bulk ESS "
          "of each ordered component mean; div: divergent draws)")


def bench_mixture(args, n_warmup, n_draws):
    X = probspace.datasets.load_old_faithful().data[:, :1]
    x = X[:, 0].astype(np.float64)
    print(f"[1] Bayesian mixture: K=2, Old Faithful eruption durations (N={X.shape[0]}), {N_CHAINS} chains x "
          f"({n_warmup} warm-up + {n_draws} draws); load average {load()}")
    rows = []
    gibbs, model = bench_gibbs(X, n_warmup, n_draws, args.repeats, args.seed)
    rows.append(gibbs)
    hyper = mixture_hyper(model)
    print(f"    prior (model.prior_): weights ~ Dirichlet({hyper['alpha'].tolist()}); sigma2 ~ InverseGamma("
          f"{hyper['a']:.4g}, {hyper['b']:.4g}); mu | sigma2 ~ Normal({hyper['m0']:.4f}, sqrt(sigma2 / "
          f"{hyper['kappa0']:.4g}))")
    point = {"weights": model.weights_, "variances": np.ravel(model.draws_["covariances"].mean(axis=(0, 1))),
             "means": np.ravel(model.means_)}
    rows.append(bench_probspace_nuts(X, n_warmup, n_draws, args.seed, "nuts"))
    if not args.skip_probspace_nuts:
        rows.append(bench_probspace_nuts(X, n_warmup, n_draws, args.seed, "nuts-pyro"))
    if numpyro is None:
        print("    NumPyro: not importable in this environment, skipped (see benchmarks/README.md for the venv)")
    else:
        import jax

        print(f"    NumPyro {numpyro.__version__}, jax {jax.__version__}: {jax.local_device_count()} host devices "
              f"on {os.cpu_count()} cpus; model check |log joint - SciPy| = "
              f"{check_numpyro_model(x, hyper, point):.1e} at the Gibbs posterior mean")
        for x64 in (True, False) if not args.numpyro_float64_only else (True,):
            for method in args.numpyro_methods:
                rows.append(bench_numpyro(x, hyper, method, x64, n_warmup, n_draws, args.seed))
        numpyro.enable_x64(True)
    print_mixture_table(rows, n_warmup, n_draws)
    print(f"    load average after: {load()}")
    ratios = {}
    g = rows[0]["ess_per_s"]
    for r in rows[1:]:
        ratios[r["name"]] = g / r["ess_per_s"]
        print(f"    Gibbs / {r['name']}: {g / r['ess_per_s']:.1f}x min ESS-bulk/s, {r['wall'] / rows[0]['wall']:.1f}x "
              "less wall time")
    best64 = [r for r in rows if r.get("x64")]
    best = max(best64, key=lambda r: r["ess_per_s"]) if best64 else None
    nuts = {r["sampler"]: r["ess_per_s"] for r in rows if "sampler" in r}
    if "nuts-pyro" in nuts:
        print(f"    probspace NUTS compiled / Pyro engine: {nuts['nuts'] / nuts['nuts-pyro']:.1f}x min ESS-bulk/s")
    print()
    return g, best, ratios, nuts["nuts"]


# -- (2) HMM ------------------------------------------------------------------------------------
class EvalCounter:
    """Count calls of ``probspace.inference._nuts.hmm_log_likelihood`` (one per potential evaluation)."""

    def __init__(self):
        self.count = 0
        self.module = None
        self.original = None
        try:
            from probspace.inference import _nuts

            self.module = _nuts
            self.original = _nuts.hmm_log_likelihood
        except (ImportError, AttributeError):
            pass

    def __enter__(self):
        if self.original is not None:
            original = self.original

            def counted(*a, **kw):
                self.count += 1
                return original(*a, **kw)

            self.module.hmm_log_likelihood = counted
        return self

    def __exit__(self, *exc):
        if self.original is not None:
            self.module.hmm_log_likelihood = self.original


def make_pyro_hmm(hyper, K, counter):
    """Pyro model with the states enumerated (``pyro.markov`` + ``enumerate="parallel"``), float64."""
    f64 = torch.float64
    alpha_pi = torch.as_tensor(hyper["alpha_pi"], dtype=f64)
    alpha_A = torch.as_tensor(hyper["alpha_A"], dtype=f64)
    a = torch.full((K,), hyper["a"], dtype=f64)
    b = torch.full((K,), hyper["b"], dtype=f64)
    m0 = torch.full((K,), hyper["m0"], dtype=f64)
    kappa0 = hyper["kappa0"]

    def model(x):
        counter[0] += 1
        startprob = pyro.sample("startprob", pdist.Dirichlet(alpha_pi))
        transmat = pyro.sample("transmat", pdist.Dirichlet(alpha_A).to_event(1))
        var = pyro.sample("variances", pdist.InverseGamma(a, b).to_event(1))
        mu = pyro.sample("means", pdist.Normal(m0, torch.sqrt(var / kappa0)).to_event(1))
        z = None
        for t in pyro.markov(range(x.shape[0])):
            probs = startprob if z is None else transmat[z]
            z = pyro.sample(f"z_{t}", pdist.Categorical(probs), infer={"enumerate": "parallel"})
            pyro.sample(f"x_{t}", pdist.Normal(mu[z], torch.sqrt(var[z])), obs=x[t])

    return model


def hmm_point(X, seed):
    """EM point fit (probspace, hmmlearn backend), states ordered by mean: the Pyro chain's start."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = GaussianHMM(2, random_state=seed).fit(X)
    order = np.argsort(em.means_[:, 0])
    trans = np.clip(em.transmat_[np.ix_(order, order)], 1e-6, None)
    start = np.clip(em.startprob_[order], 1e-6, None)
    return {"startprob": start / start.sum(), "transmat": trans / trans.sum(axis=1, keepdims=True),
            "variances": np.asarray(em.covars_).reshape(2, -1)[order, 0], "means": em.means_[order, 0]}


def unconstrain(point):
    """Constrained HMM parameters -> Pyro's unconstrained space, and the log |Jacobian| of the way back."""
    from torch.distributions import biject_to, constraints

    support = {"startprob": constraints.simplex, "transmat": constraints.simplex,
               "variances": constraints.positive, "means": constraints.real}
    out, logdet = {}, 0.0
    for name, value in point.items():
        v = torch.as_tensor(value, dtype=torch.float64)
        bij = biject_to(support[name])
        out[name] = bij.inv(v)
        logdet += float(bij.log_abs_det_jacobian(out[name], v).sum())
    return out, logdet


def check_pyro_model(model, x_t, point, hyper):
    """|Pyro potential-energy log joint - NumPy/SciPy log joint| at ``point``."""
    from pyro.infer.mcmc.util import initialize_model

    _, potential_fn, _, _ = initialize_model(model, model_args=(x_t,), max_plate_nesting=0)
    unconstrained, logdet = unconstrain(point)
    lj = -float(potential_fn(unconstrained)) - logdet
    x = x_t.numpy()
    ref = (stats.dirichlet.logpdf(point["startprob"], hyper["alpha_pi"])
           + sum(stats.dirichlet.logpdf(point["transmat"][k], hyper["alpha_A"][k]) for k in range(2))
           + stats.invgamma.logpdf(point["variances"], hyper["a"], scale=hyper["b"]).sum()
           + stats.norm.logpdf(point["means"], hyper["m0"], np.sqrt(point["variances"] / hyper["kappa0"])).sum()
           + hmm_log_likelihood(x, point["startprob"], point["transmat"], point["means"], point["variances"]))
    return abs(lj - ref)


def bench_hmm(args, n_warmup, n_draws):
    X = probspace.datasets.load_old_faithful().data[:HMM_T, :1].astype(np.float64)
    n_iter = n_warmup + n_draws
    print(f"[2] Bayesian HMM: K=2 Gaussian, first {HMM_T} eruption durations, NUTS, 1 chain x ({n_warmup} warm-up "
          f"+ {n_draws} draws), float64 on both sides; load average {load()}")

    # probspace: warm-up call first (imports, numba kernel load), then the timed one.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # (n_draws >= 4: Pyro's MCMC.diagnostics(), which probspace calls, asserts at least 4 draws)
        GaussianHMM(2, sampler="nuts", n_chains=1, n_warmup=2, n_draws=4, random_state=args.seed).fit(X)
    gc.collect()
    with EvalCounter() as counter, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = clock()
        model = GaussianHMM(2, sampler="nuts", n_chains=1, n_warmup=n_warmup, n_draws=n_draws,
                            random_state=args.seed).fit(X)
        ps_wall = clock() - t0
    ps_evals = counter.count if counter.original is not None and counter.count else None
    if ps_evals is None and "n_steps" in model.sample_stats_:  # compiled NUTS: its leapfrog steps (draws only)
        ps_evals = int(model.sample_stats_["n_steps"].sum() * n_iter / n_draws)
    p = model.prior_
    hyper = {"alpha_pi": np.asarray(p["startprob"], dtype=np.float64),
             "alpha_A": np.asarray(p["transmat"], dtype=np.float64), "m0": float(np.ravel(p["mean"])[0]),
             "kappa0": float(p["mean_precision"]), "a": 0.5 * float(p["dof"]),
             "b": 0.5 * float(np.ravel(p["scale"])[0])}
    ps_div = int(model.sample_stats_["diverging"].sum())
    ps_step = float(model.sample_stats_["step_size"][0, -1])
    ps_means = model.draws_["means"][0, :, :, 0].mean(axis=0)

    # Pyro's generic enumeration, same model and priors, float64, one torch thread.
    calls = [0]
    pyro_model = make_pyro_hmm(hyper, 2, calls)
    x_t = torch.as_tensor(X[:, 0], dtype=torch.float64)
    start = hmm_point(X, args.seed)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        check = check_pyro_model(pyro_model, x_t, start, hyper)
        initial, _ = unconstrain(start)
        stamps = []

        def hook(kernel, params, stage, i):
            stamps.append(clock())

        gc.collect()
        calls[0] = 0
        with torch.random.fork_rng():
            pyro.set_rng_seed(args.seed)
            kernel = NUTS(pyro_model, max_plate_nesting=0)
            mcmc = MCMC(kernel, num_samples=n_draws, warmup_steps=n_warmup, initial_params=initial,
                        disable_progbar=True, hook_fn=hook)
            t0 = clock()
            mcmc.run(x_t)
            py_wall = clock() - t0
        py_evals = calls[0]
        py_div = (len(next(iter(mcmc.diagnostics().get("divergences", {}).values()), []))
                  if n_draws >= 4 else None)  # Pyro's diagnostics() asserts at least 4 draws
        py_means = mcmc.get_samples()["means"].numpy().mean(axis=0)
        py_step = float(kernel.step_size)
        setup = stamps[0] - t0 if stamps else float("nan")
        steady = (stamps[-1] - stamps[0]) / (len(stamps) - 1) if len(stamps) > 1 else float("nan")
    finally:
        torch.set_num_threads(threads)

    def fmt(v, spec):
        return "-" if v is None else format(v, spec)

    ps_per_eval = ps_wall / ps_evals if ps_evals else None
    py_per_eval = py_wall / py_evals if py_evals else None
    print(f"    model check: Pyro log joint (enumerated) vs NumPy forward algorithm + SciPy priors at the EM point: "
          f"|diff| = {check:.1e}")
    print(f"    {'engine':<40}{'wall s':>9}{'s/iter':>9}{'evals':>7}{'evals/it':>9}{'ms/eval':>9}{'div':>5}"
          f"{'step':>8}   posterior means mu0, mu1")
    print(f"    {'probspace NUTS (compiled)':<40}{ps_wall:>9.3f}{ps_wall / n_iter:>9.4f}{fmt(ps_evals, 'd'):>7}"
          f"{fmt(ps_evals / n_iter if ps_evals else None, '.1f'):>9}{fmt(ps_per_eval and 1e3 * ps_per_eval, '.2f'):>9}"
          f"{ps_div:>5}{ps_step:>8.4f}   {ps_means[0]:.4f}, {ps_means[1]:.4f}")
    print(f"    {'Pyro NUTS, enumerated states':<40}{py_wall:>9.3f}{py_wall / n_iter:>9.4f}{py_evals:>7d}"
          f"{py_evals / n_iter:>9.1f}{1e3 * py_per_eval:>9.2f}{fmt(py_div, 'd'):>5}{py_step:>8.4f}   "
          f"{py_means[0]:.4f}, {py_means[1]:.4f}")
    print(f"    (wall: whole call; probspace's includes the EM start and the per-draw log-likelihoods, Pyro's its "
          f"setup: {setup:.2f} s to the end of its first iteration, then {steady:.3f} s per iteration; evals: "
          "potential-energy evaluations, each with its gradient, setup included; step: final step size)")
    speed = (py_wall / n_iter) / (ps_wall / n_iter)
    per_eval = py_per_eval / ps_per_eval if ps_per_eval else None
    print(f"    Pyro enumeration / probspace: {speed:.1f}x seconds per iteration"
          + (f", {per_eval:.1f}x seconds per evaluation" if per_eval else ""))
    print(f"    load average after: {load()}")
    print()
    return speed, per_eval


# -- (3) HMM: effective draws per second ---------------------------------------------------------
def numpyro_hmm_model(x, alpha_pi, alpha_A, m0, kappa0, a, b):
    """The Gaussian HMM of section 2 with the states summed out by the forward algorithm (``lax.scan``)."""
    import jax
    import jax.numpy as jnp
    import numpyro.distributions as ndist
    from jax.scipy.special import logsumexp as jlogsumexp

    K = alpha_pi.shape[0]
    start = numpyro.sample("startprob", ndist.Dirichlet(alpha_pi))
    trans = numpyro.sample("transmat", ndist.Dirichlet(alpha_A).to_event(1))
    var = numpyro.sample("variances", ndist.InverseGamma(a * jnp.ones(K, x.dtype), b).to_event(1))
    mu = numpyro.sample("means", ndist.Normal(m0, jnp.sqrt(var / kappa0)).to_event(1))
    frames = ndist.Normal(mu, jnp.sqrt(var)).log_prob(x[:, None])
    log_trans = jnp.log(trans)

    def step(alpha, lb):
        return jlogsumexp(alpha[:, None] + log_trans, axis=0) + lb, None

    alpha, _ = jax.lax.scan(step, jnp.log(start) + frames[0], frames[1:])
    numpyro.factor("log_likelihood", jlogsumexp(alpha))


def bench_hmm_ess(args, n_warmup, n_draws):
    """min ESS-bulk/s of the two state means: probspace compiled NUTS, probspace Pyro NUTS, NumPyro."""
    X = probspace.datasets.load_old_faithful().data[:HMM_T, :1].astype(np.float64)
    print(f"[3] Bayesian HMM, effective draws per second: K=2 Gaussian, first {HMM_T} eruption durations, "
          f"{HMM_ESS_CHAINS} chains x ({n_warmup} warm-up + {n_draws} draws), float64; load average {load()}")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        GaussianHMM(2, sampler="nuts", n_chains=1, n_warmup=5, n_draws=5, random_state=args.seed).fit(X)
        for sampler, n_w, n_d in (("nuts", n_warmup, n_draws), ("nuts-pyro", args.hmm_pyro_iters,
                                                                 args.hmm_pyro_iters)):
            if sampler == "nuts-pyro" and args.skip_probspace_nuts:
                continue
            gc.collect()
            t0 = clock()
            model = GaussianHMM(2, sampler=sampler, n_chains=HMM_ESS_CHAINS, n_warmup=n_w, n_draws=n_d,
                                random_state=args.seed).fit(X)
            dt = clock() - t0
            name = "probspace NUTS (compiled, threads)" if sampler == "nuts" else \
                f"probspace NUTS (Pyro; {n_w} + {n_d})"
            rows.append({"name": name, "wall": dt, "runs": [dt], **mean_diagnostics(model.draws_["means"][..., 0]),
                         "div": int(model.sample_stats_["diverging"].sum()), "note": "", "sampler": sampler})
    hyper = {"alpha_pi": np.asarray(model.prior_["startprob"], dtype=np.float64),
             "alpha_A": np.asarray(model.prior_["transmat"], dtype=np.float64),
             "m0": float(np.ravel(model.prior_["mean"])[0]), "kappa0": float(model.prior_["mean_precision"]),
             "a": 0.5 * float(model.prior_["dof"]), "b": 0.5 * float(np.ravel(model.prior_["scale"])[0])}
    best = None
    if numpyro is None:
        print("    NumPyro: not importable in this environment, skipped")
    else:
        import jax
        import jax.numpy as jnp
        from numpyro.infer import MCMC as NMCMC
        from numpyro.infer import NUTS as NNUTS
        from numpyro.infer.util import log_density

        numpyro.enable_x64(True)
        f64 = jnp.float64
        nargs = (jnp.asarray(X[:, 0], f64), jnp.asarray(hyper["alpha_pi"], f64), jnp.asarray(hyper["alpha_A"], f64),
                 jnp.asarray(hyper["m0"], f64), jnp.asarray(hyper["kappa0"], f64), jnp.asarray(hyper["a"], f64),
                 jnp.asarray(hyper["b"], f64))
        point = hmm_point(X, args.seed)
        lj, _ = log_density(numpyro_hmm_model, nargs, {}, {k: jnp.asarray(v, f64) for k, v in point.items()})
        ref = (stats.dirichlet.logpdf(point["startprob"], hyper["alpha_pi"])
               + sum(stats.dirichlet.logpdf(point["transmat"][k], hyper["alpha_A"][k]) for k in range(2))
               + stats.invgamma.logpdf(point["variances"], hyper["a"], scale=hyper["b"]).sum()
               + stats.norm.logpdf(point["means"], hyper["m0"], np.sqrt(point["variances"] / hyper["kappa0"])).sum()
               + hmm_log_likelihood(X[:, 0], point["startprob"], point["transmat"], point["means"],
                                    point["variances"]))
        print("    NumPyro model check: |log joint - NumPy forward algorithm + SciPy priors| = "
              f"{abs(float(lj) - ref):.1e}")
        for method in args.numpyro_methods:
            mcmc = NMCMC(NNUTS(numpyro_hmm_model), num_warmup=n_warmup, num_samples=n_draws,
                         num_chains=HMM_ESS_CHAINS, chain_method=method, progress_bar=False)
            gc.collect()
            t0 = clock()
            mcmc.run(jax.random.PRNGKey(args.seed), *nargs, extra_fields=("diverging",))
            jax.block_until_ready(mcmc.get_samples())
            first = clock() - t0
            gc.collect()
            t0 = clock()
            mcmc.run(jax.random.PRNGKey(args.seed + 1), *nargs, extra_fields=("diverging",))
            samples = jax.block_until_ready(mcmc.get_samples(group_by_chain=True))
            dt = clock() - t0
            div = int(np.asarray(mcmc.get_extra_fields(group_by_chain=True)["diverging"]).sum())
            rows.append({"name": f"NumPyro NUTS {method}, float64", "wall": dt, "runs": [dt],
                         **mean_diagnostics(ordered(samples["means"])), "div": div,
                         "note": f"first run incl. compile {first:.2f} s", "x64": True, "method": method})
    print_mixture_table(rows, n_warmup, n_draws)
    numpyro_rows = [r for r in rows if r.get("x64")]
    best = max(numpyro_rows, key=lambda r: r["ess_per_s"]) if numpyro_rows else None
    nuts = {r["sampler"]: r["ess_per_s"] for r in rows if "sampler" in r}
    if "nuts-pyro" in nuts:
        print(f"    probspace NUTS compiled / Pyro engine: {nuts['nuts'] / nuts['nuts-pyro']:.1f}x min ESS-bulk/s")
    print(f"    load average after: {load()}")
    print()
    return nuts["nuts"], best


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="smoke run: mixture 250 + 250 draws per chain, HMM 5 + 5 NUTS iterations")
    parser.add_argument("--warmup", type=int, default=None, help="mixture warm-up draws per chain (default 1000)")
    parser.add_argument("--draws", type=int, default=None, help="mixture draws per chain (default 1000)")
    parser.add_argument("--hmm-warmup", type=int, default=None, help="HMM NUTS warm-up iterations (default 20)")
    parser.add_argument("--hmm-draws", type=int, default=None, help="HMM NUTS draws (default 20)")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of the Gibbs fit (median)")
    parser.add_argument("--numpyro-methods", nargs="+", default=["vectorized", "parallel"],
                        choices=["vectorized", "parallel", "sequential"], help="NumPyro chain methods")
    parser.add_argument("--numpyro-float64-only", action="store_true", help="skip the float32 NumPyro rows")
    parser.add_argument("--skip-probspace-nuts", action="store_true",
                        help="skip probspace's NUTS on the mixture (the slowest probspace row)")
    parser.add_argument("--hmm-ess-warmup", type=int, default=None,
                        help="HMM ESS section: warm-up and draws per chain (default 1000; --quick 250)")
    parser.add_argument("--hmm-pyro-iters", type=int, default=100,
                        help="HMM ESS section: Pyro-engine warm-up and draws per chain (slow; default 100)")
    parser.add_argument("--skip-mixture", action="store_true")
    parser.add_argument("--skip-hmm", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    n_warmup = args.warmup if args.warmup is not None else (250 if args.quick else 1000)
    n_draws = args.draws if args.draws is not None else (250 if args.quick else 1000)
    hmm_warmup = args.hmm_warmup if args.hmm_warmup is not None else (5 if args.quick else 20)
    hmm_draws = args.hmm_draws if args.hmm_draws is not None else (5 if args.quick else 20)
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)  # "Model is not converging" from the EM starts
    if numpyro is not None:
        numpyro.set_host_device_count(N_CHAINS)  # before JAX's backend starts; chains > devices would run in sequence

    threads = {v: os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}
    print("probspace MCMC benchmark: Bayesian mixture (Gibbs, NUTS) vs NumPyro; Bayesian HMM (NUTS) vs Pyro "
          "enumeration")
    print(f"python {platform.python_version()}, numpy {np.__version__}, torch {torch.__version__}, pyro "
          f"{pyro.__version__}, arviz {az.__version__}, numpyro "
          f"{numpyro.__version__ if numpyro is not None else 'not installed'}, probspace "
          f"{getattr(probspace, '__version__', '?')}; {os.cpu_count()} cpus; "
          + ", ".join(f"{k}={v}" for k, v in threads.items()) + "; torch threads 1 for the NUTS runs")
    print(f"load average at start (1, 5, 15 min): {load()}  (other processes on this machine distort the timings)")
    print()

    goals = []  # (description, value text, ok or None for skipped)
    if not args.skip_mixture:
        gibbs, best, ratios, nuts = bench_mixture(args, n_warmup, n_draws)
        if best is not None:
            r = nuts / best["ess_per_s"]
            goals.append((f"mixture: probspace NUTS min ESS-bulk/s >= {GOAL_NUTS_VS_NUMPYRO} x best NumPyro "
                          f"(float64, {best['method']})", f"{nuts:.0f} / {best['ess_per_s']:.0f} = {r:.2f}x",
                          r >= GOAL_NUTS_VS_NUMPYRO))
        if best is None:
            goals.append((f"Gibbs min ESS-bulk/s >= {GOAL_GIBBS_VS_NUMPYRO}x best NumPyro (float64)",
                          "NumPyro not installed", None))
        else:
            r = gibbs / best["ess_per_s"]
            goals.append((f"Gibbs min ESS-bulk/s >= {GOAL_GIBBS_VS_NUMPYRO}x best NumPyro (float64, "
                          f"{best['method']})", f"{gibbs:.0f} / {best['ess_per_s']:.0f} = {r:.1f}x",
                          r >= GOAL_GIBBS_VS_NUMPYRO))
    if not args.skip_hmm:
        speed, per_eval = bench_hmm(args, hmm_warmup, hmm_draws)
        goals.append((f"HMM NUTS: Pyro enumeration / probspace seconds per iteration >= {GOAL_HMM_SPEEDUP}",
                      f"{speed:.1f}x" + (f" (per evaluation {per_eval:.1f}x)" if per_eval else ""),
                      speed >= GOAL_HMM_SPEEDUP))
    if not args.skip_hmm:
        n_ess = args.hmm_ess_warmup if args.hmm_ess_warmup is not None else (250 if args.quick else 1000)
        nuts, best = bench_hmm_ess(args, n_ess, n_ess)
        if best is None:
            goals.append(("HMM: probspace NUTS ESS/s vs NumPyro", "NumPyro not installed", None))
        else:
            r = nuts / best["ess_per_s"]
            goals.append((f"HMM: probspace NUTS min ESS-bulk/s >= {GOAL_NUTS_VS_NUMPYRO} x best NumPyro "
                          f"(float64, {best['method']})", f"{nuts:.0f} / {best['ess_per_s']:.0f} = {r:.2f}x",
                          r >= GOAL_NUTS_VS_NUMPYRO))
    print(f"load average at end (1, 5, 15 min): {load()}")
    for desc, value, ok in goals:
        print(f"GOAL {desc}: {value} ... {'SKIPPED' if ok is None else 'PASS' if ok else 'FAIL'}")
    return 0 if all(ok is not False for _, _, ok in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
