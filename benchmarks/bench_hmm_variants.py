"""Benchmark the HMM variants of issue 17: the semi-Markov HMM and the input-driven HMM, against what users run instead.

Semi-Markov (``SemiMarkovHMM`` / :class:`probspace.posteriors.SemiMarkovChain`): K = 4 states, maximum
duration D = 50, T frames of a simulated HSMM with Poisson durations and Gaussian emissions.

1. Exact marginals and log-likelihood: probspace's segment forward-backward (``posterior(X).marginals``
   on a fitted model, emissions included) against the usual way to run an HSMM with HMM software: an
   ordinary HMM over K * D expanded states (state, frames left), run by probspace's compiled HMM
   kernel (``MarkovChain``; the same kernel ``GaussianHMM`` uses, faster than hmmlearn's). Checked:
   the marginals summed over the expanded states and the log-likelihood agree to 1e-8. Goal: ratio <= 1.
2. The same against a straightforward NumPy implementation of the segment forward recursion (vectorised
   over states, loops over frames and durations; log-likelihood only), for information.
3. 100 joint segmentation draws on a computed posterior, for information.

Input-driven (``InputDrivenHMM`` / :class:`probspace.posteriors.TimeVaryingMarkovChain`): K = 4 states,
M = 3 covariates, T frames.

4. Marginals with one transition matrix per frame: ``posterior(X, y).marginals`` against a NumPy
   forward-backward (vectorised per frame) on the same matrices; equal to 1e-8. Goal: ratio <= 0.5.
5. For information: the same posterior against ``GaussianHMM.posterior(X).marginals`` with one fixed
   matrix (what time-varying transitions cost), and one EM iteration of each.

Timings are medians of ``--repeats`` interleaved runs, ratios from this run only; single-threaded.

Usage::

    python benchmarks/bench_hmm_variants.py            # T = 20,000 (~1 minute)
    python benchmarks/bench_hmm_variants.py --quick    # T = 3,000

Exits with status 1 when a goal is not met.
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
from scipy.special import logsumexp, softmax  # noqa: E402

from probspace import GaussianHMM, InputDrivenHMM, SemiMarkovHMM  # noqa: E402
from probspace.inference import _hsmm  # noqa: E402
from probspace.posteriors import MarkovChain  # noqa: E402

GOAL_HSMM_RATIO = 1.0  # SemiMarkovHMM posterior marginals / expanded-state HMM marginals
GOAL_IOHMM_RATIO = 0.5  # InputDrivenHMM posterior marginals / NumPy time-varying forward-backward


def timeit(funcs, repeats):
    """Interleaved medians: A, B, ..., then reversed, ``repeats`` times."""
    times = {name: [] for name in funcs}
    order = list(funcs)
    for r in range(repeats):
        for name in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            funcs[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in times.items()}, times


# -- semi-Markov -------------------------------------------------------------------------------------------
def simulate_hsmm(rng, T, K, D):
    rates = np.linspace(3, 20, K)
    means = np.arange(K, dtype=float)[:, None] * 1.5
    z, k = [], 0
    while len(z) < T:
        z += [k] * min(D, 1 + rng.poisson(rates[k]))
        k = (k + 1 + rng.integers(K - 1)) % K
    z = np.array(z[:T])
    return means[z] + rng.normal(size=(T, 1))


def expanded_hmm(startprob, transmat, pmf):
    """An ordinary HMM over (state, frames left) equal to the HSMM, right-censoring included."""
    K, D = pmf.shape
    n = K * D  # index k * D + (r - 1): state k with r frames left, this one included
    start = (startprob[:, None] * pmf).ravel()
    A = np.zeros((n, n))
    for k in range(K):
        for r in range(2, D + 1):
            A[k * D + r - 1, k * D + r - 2] = 1.0
        A[k * D, :] = (transmat[k][:, None] * pmf).ravel()
    return start, A


def numpy_segment_loglik(startprob, transmat, pmf, logb):
    """Reference: the segment forward recursion in NumPy (log space), log-likelihood of one sequence."""
    T, K = logb.shape
    D = pmf.shape[1]
    with np.errstate(divide="ignore"):
        log_dur = np.log(pmf)
        log_surv = np.log(np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1])
        log_trans = np.log(transmat)
    cum = np.vstack([np.zeros(K), np.cumsum(logb, axis=0)])
    start = np.empty((T, K))
    end = np.empty((T, K))
    for t in range(T):
        start[t] = np.log(startprob) if t == 0 else logsumexp(end[t - 1][:, None] + log_trans, axis=0)
        d = np.arange(1, min(D, t + 1) + 1)
        s = t - d + 1
        terms = start[s] + log_dur[:, d - 1].T + (cum[t + 1] - cum[s])
        end[t] = logsumexp(terms, axis=0)
    d = np.arange(1, min(D, T) + 1)
    s = T - d
    return logsumexp(start[s] + log_surv[:, d - 1].T + (cum[T] - cum[s]))


def bench_hsmm(T, repeats, rng):
    K, D = 4, 50
    X = simulate_hsmm(rng, T, K, D)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = SemiMarkovHMM(K, max_duration=D, max_iter=3, random_state=0).fit(X[:3000])
    logb = model._log_frameprob(X)
    start, A = expanded_hmm(model.startprob_, model.transmat_, model.duration_pmf_)
    logb_big = np.repeat(logb, D, axis=1)

    ours = model.posterior(X)
    ref = MarkovChain(start, A, logb_big)
    collapsed = ref.marginals.reshape(T, K, D).sum(axis=2)
    err_m = np.abs(ours.marginals - collapsed).max()
    err_l = abs(ours.log_likelihood[0] - ref.log_likelihood[0])
    small = slice(0, min(T, 3000))
    err_np = abs(_hsmm.forward_backward(model.startprob_, model.transmat_, model.duration_pmf_,
                                        logb[small]).log_likelihood[0]
                 - numpy_segment_loglik(model.startprob_, model.transmat_, model.duration_pmf_, logb[small]))
    print(f"  checks: max |marginal diff| {err_m:.2e}, |loglik diff| {err_l:.2e} (expanded HMM); "
          f"|loglik diff| {err_np:.2e} (NumPy reference, T={small.stop})")
    med, _ = timeit({
        "probspace SemiMarkovHMM.posterior(X).marginals": lambda: model.posterior(X).marginals,
        "expanded-state HMM (K*D states), compiled HMM kernel": lambda: MarkovChain(start, A, logb_big).marginals,
    }, repeats)
    (name_a, ta), (name_b, tb) = med.items()
    ratio = ta / tb
    print(f"  {name_a}: {ta:.3f} s\n  {name_b}: {tb:.3f} s\n  ratio {ratio:.3f}")
    med_np, _ = timeit({
        "kernel": lambda: _hsmm.forward_backward(model.startprob_, model.transmat_, model.duration_pmf_, logb[small]),
        "numpy": lambda: numpy_segment_loglik(model.startprob_, model.transmat_, model.duration_pmf_, logb[small]),
    }, max(1, repeats // 2))
    print(f"  NumPy segment forward (log-likelihood only, T={small.stop}): {med_np['numpy']:.3f} s; probspace full "
          f"forward-backward {med_np['kernel']:.4f} s: ratio {med_np['kernel'] / med_np['numpy']:.4f}")
    post = model.posterior(X)
    t0 = time.perf_counter()
    post.sample(100, random_state=0)
    print(f"  100 joint segmentation draws: {time.perf_counter() - t0:.3f} s")
    ok = err_m < 1e-8 and err_l < 1e-8 * max(1.0, abs(ref.log_likelihood[0])) and err_np < 1e-6
    return ratio, ok


# -- input-driven ------------------------------------------------------------------------------------------
def numpy_tv_marginals(startprob, A, logb):
    """Reference: scaled forward-backward with one transition matrix per frame, vectorised per frame."""
    T, K = logb.shape
    shift = logb.max(axis=1, keepdims=True)
    b = np.exp(logb - shift)
    alpha = np.empty((T, K))
    c = np.empty(T)
    a = startprob * b[0]
    c[0] = a.sum()
    alpha[0] = a / c[0]
    for t in range(1, T):
        a = (alpha[t - 1] @ A[t]) * b[t]
        c[t] = a.sum()
        alpha[t] = a / c[t]
    beta = np.ones(K)
    out = np.empty((T, K))
    out[-1] = alpha[-1]
    for t in range(T - 2, -1, -1):
        beta = A[t + 1] @ (b[t + 1] * beta) / c[t + 1]
        out[t] = alpha[t] * beta
    return out, np.log(c).sum() + shift.sum()


def bench_iohmm(T, repeats, rng):
    K, M = 4, 3
    y = rng.normal(size=(T, M))
    W = rng.normal(size=(K, K, M))
    Bias = 2.0 * np.eye(K)
    A = softmax(Bias[None] + np.einsum("ijm,tm->tij", W, y), axis=2)
    z = np.zeros(T, dtype=int)
    u = rng.random(T)
    for t in range(1, T):
        z[t] = min(np.searchsorted(np.cumsum(A[t, z[t - 1]]), u[t]), K - 1)
    X = z[:, None] * 1.5 + rng.normal(size=(T, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = InputDrivenHMM(K, max_iter=3, random_state=0).fit(X, y)
        hmm = GaussianHMM(K, max_iter=3, random_state=0).fit(X)
    A_fit = model.transition_matrices(y)
    ours = model.posterior(X, y)
    ref, ref_ll = numpy_tv_marginals(model.startprob_, A_fit, model._log_frameprob(X))
    err = np.abs(ours.marginals - ref).max()
    err_l = abs(ours.log_likelihood[0] - ref_ll)
    print(f"  checks: max |marginal diff| {err:.2e}, |loglik diff| {err_l:.2e} (NumPy reference)")
    med, _ = timeit({
        "probspace InputDrivenHMM.posterior(X, y).marginals": lambda: model.posterior(X, y).marginals,
        "NumPy time-varying forward-backward (same matrices)": lambda: numpy_tv_marginals(
            model.startprob_, model.transition_matrices(y), model._log_frameprob(X)),
        "probspace GaussianHMM.posterior(X).marginals (fixed matrix)": lambda: hmm.posterior(X).marginals,
    }, repeats)
    names = list(med)
    ratio = med[names[0]] / med[names[1]]
    for name in names:
        print(f"  {name}: {med[name]:.4f} s")
    print(f"  ratio vs NumPy {ratio:.3f}; vs fixed-matrix GaussianHMM {med[names[0]] / med[names[2]]:.2f}")
    em, _ = timeit({
        "InputDrivenHMM, 5 EM iterations": lambda: InputDrivenHMM(K, max_iter=5, tol=0.0, random_state=0).fit(X, y),
        "GaussianHMM, 5 EM iterations": lambda: GaussianHMM(K, max_iter=5, tol=0.0, random_state=0).fit(X),
    }, max(1, repeats // 2))
    (na, ta), (nb, tb) = em.items()
    print(f"  {na}: {ta:.3f} s; {nb}: {tb:.3f} s (ratio {ta / tb:.2f}, for information)")
    return ratio, err < 1e-8 and err_l < 1e-8 * max(1.0, abs(ref_ll))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--t", type=int, default=20_000)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    T = 3000 if args.quick else args.t
    rng = np.random.default_rng(args.seed)
    print(f"load average at start: {os.getloadavg()}")
    warnings.simplefilter("ignore")
    # compile the kernels first
    bench_hsmm(500, 1, np.random.default_rng(1))
    bench_iohmm(500, 1, np.random.default_rng(1))
    print(f"\n== semi-Markov HMM, K=4, D=50, T={T} ==")
    r_h, ok_h = bench_hsmm(T, args.repeats, rng)
    print(f"\n== input-driven HMM, K=4, M=3, T={T} ==")
    r_i, ok_i = bench_iohmm(T, args.repeats, rng)
    print(f"\nload average at end: {os.getloadavg()}")
    goals = [
        (f"HSMM marginals vs expanded-state HMM: ratio {r_h:.3f} <= {GOAL_HSMM_RATIO}", r_h <= GOAL_HSMM_RATIO),
        ("HSMM equal to the expanded-state HMM and the NumPy reference (1e-8)", ok_h),
        (f"IOHMM marginals vs NumPy forward-backward: ratio {r_i:.3f} <= {GOAL_IOHMM_RATIO}", r_i <= GOAL_IOHMM_RATIO),
        ("IOHMM equal to the NumPy reference (1e-8)", ok_i),
    ]
    for text, passed in goals:
        print(f"GOAL {text}: {'PASS' if passed else 'FAIL'}")
    return 0 if all(p for _, p in goals) else 1


if __name__ == "__main__":
    sys.exit(main())
