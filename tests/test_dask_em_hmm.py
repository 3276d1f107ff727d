"""Distributed EM of every HMM family with additive statistics (synchronous scheduler), against in-memory EM.

The oracles: hmmlearn's own EM from the same start (PoissonHMM, CategoricalHMM), probspace's in-memory EM loop
from the same start (native families and constrained fits), and each emission's ``m_step`` on the data.
"""

import copy
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from hmmlearn import base as hmm_base  # noqa: E402
from hmmlearn import hmm  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from probspace import GMMHMM, HMM, BernoulliHMM, CategoricalHMM, GaussianHMM, PoissonHMM  # noqa: E402
from probspace.dask import expected_statistics, fit, partial_fit  # noqa: E402
from probspace.dask._em import hmm_statistics  # noqa: E402
from probspace.emissions import registered_emission  # noqa: E402
from probspace.inference import _hmm  # noqa: E402

N_ITER = 4
A = np.array([[0.9, 0.06, 0.04], [0.1, 0.85, 0.05], [0.05, 0.15, 0.8]])
MANY = np.array([300, 250, 400, 200, 350])


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _emit(kind, z, rng):
    if kind == "poisson":
        return rng.poisson(np.array([[1.0, 6.0], [5.0, 0.5], [12.0, 3.0]])[z]).astype(float)
    if kind == "categorical":
        B = np.array([[0.6, 0.2, 0.1, 0.1], [0.1, 0.1, 0.5, 0.3], [0.25, 0.25, 0.25, 0.25]])
        return (rng.random(len(z))[:, None] > np.cumsum(B[z], axis=1)[:, :-1]).sum(axis=1, keepdims=True) * 1.0
    if kind == "bernoulli":
        return (rng.random((len(z), 3)) < np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.3], [0.5, 0.5, 0.9]])[z]) * 1.0
    means = np.array([[-2.0, 5.0], [0.0, 7.0], [2.5, 4.0]])
    return means[z] + rng.normal(size=(len(z), 2)) @ np.array([[1.0, 0.3], [0.0, 0.8]])


def _data(kind, one_sequence, seed):
    rng = np.random.default_rng(seed)
    lengths = np.array([2000]) if one_sequence else MANY
    z = _hmm.sample_chain(np.array([0.5, 0.3, 0.2]), A, lengths.sum(), rng)
    return _emit(kind, z, rng), lengths


def _start(model, X, lengths):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.set_params(max_iter=2).fit(X, lengths=lengths)


def _in_memory(start, X, lengths):
    """N_ITER iterations of probspace's in-memory EM loop (native families, constrained fits) from ``start``."""
    ref = copy.deepcopy(start)
    ref.tol = -np.inf
    ref._fit_X = X
    ref._em_loop(X, lengths, N_ITER, "EM")
    del ref._fit_X
    return ref._point()


def _hmmlearn(start, X, lengths):
    """N_ITER iterations of hmmlearn's own EM from ``start`` (the backend's constructor values)."""
    b = start.backend_
    common = {"n_iter": N_ITER, "tol": -np.inf, "init_params": "", "startprob_prior": b.startprob_prior,
              "transmat_prior": b.transmat_prior}  # n_iter and tol in the constructor: monitor_ caches them
    if isinstance(start, PoissonHMM):
        ref = hmm.PoissonHMM(3, lambdas_prior=b.lambdas_prior, lambdas_weight=b.lambdas_weight, params="stl",
                             **common)
        ref.lambdas_ = start.lambdas_
    else:
        ref = hmm.CategoricalHMM(3, n_features=start.emissionprob_.shape[1], emissionprob_prior=b.emissionprob_prior,
                                 params="ste", **common)
        ref.emissionprob_ = start.emissionprob_
    ref.startprob_, ref.transmat_ = start.startprob_, start.transmat_
    ref.fit(X.astype(np.int64), lengths)
    name = "lambdas" if isinstance(start, PoissonHMM) else "emissionprob"
    return {"startprob": ref.startprob_, "transmat": ref.transmat_, name: getattr(ref, name + "_")}


CASES = {
    "PoissonHMM": ("poisson", lambda: PoissonHMM(3, lambdas_prior=0.5, lambdas_weight=0.2, transmat_prior=1.5,
                                                 random_state=0), _hmmlearn),
    "CategoricalHMM": ("categorical", lambda: CategoricalHMM(3, emissionprob_prior=1.5, startprob_prior=2.0,
                                                             random_state=0), _hmmlearn),
    "BernoulliHMM": ("bernoulli", lambda: BernoulliHMM(3, probs_prior=1.2, transmat_prior=1.3, random_state=0),
                     _in_memory),
    "HMM-gaussian-full": ("gaussian", lambda: HMM(3, emission="gaussian",
                                                  emission_params={"covariance_type": "full"}, random_state=0),
                          _in_memory),
    "HMM-gaussian-tied": ("gaussian", lambda: HMM(3, emission="gaussian",
                                                  emission_params={"covariance_type": "tied"}, random_state=0),
                          _in_memory),
    "HMM-gaussian-spherical": ("gaussian", lambda: HMM(3, emission="gaussian", emission_params={
        "covariance_type": "spherical"}, random_state=0), _in_memory),
    "HMM-poisson": ("poisson", lambda: HMM(3, emission="poisson", emission_params={"rate_prior": 0.5,
                                                                                   "rate_weight": 0.2},
                                           startprob_prior=1.5, random_state=0), _in_memory),
    "HMM-categorical": ("categorical", lambda: HMM(3, emission="categorical", random_state=0), _in_memory),
    "HMM-bernoulli": ("bernoulli", lambda: HMM(3, emission="bernoulli", random_state=0), _in_memory),
    # constrained fits: held entries (NaN: free) and a topology, the in-memory constrained EM loop as oracle
    "PoissonHMM-fixed": ("poisson", lambda: PoissonHMM(3, fixed={"lambdas": [[np.nan, 6.0], [np.nan, np.nan],
                                                                             [12.0, np.nan]]}, random_state=0),
                         _in_memory),
    "CategoricalHMM-banded": ("categorical", lambda: CategoricalHMM(3, topology="banded", random_state=0),
                              _in_memory),
    "HMM-gaussian-held-means": ("gaussian", lambda: HMM(3, emission="gaussian", fixed={
        "means": [[-2.0, np.nan], [np.nan, np.nan], [np.nan, 4.0]]}, random_state=0), _in_memory),
}


def _assert_params(got, want, rtol=1e-8, atol=1e-8):
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("one_sequence", [False, True], ids=["many-sequences", "one-long-sequence"])
@pytest.mark.parametrize("case", list(CASES))
def test_distributed_em_equals_in_memory_em(case, one_sequence):
    kind, make, oracle = CASES[case]
    X, lengths = _data(kind, one_sequence, seed=len(case))
    start = _start(make(), X, lengths)
    Xd = da.from_array(X, chunks=(300, X.shape[1]))
    # statistics: per block (or per chunk of one sequence) and reduced, equal the single-process statistics
    stats = expected_statistics(start, Xd, lengths=lengths, split_every=2)
    single = hmm_statistics(start, X, lengths, start._point())
    assert set(stats) == set(single)
    for k in single:
        np.testing.assert_allclose(stats[k], single[k], rtol=1e-10, atol=1e-10, err_msg=k)
    np.testing.assert_allclose(stats["loglik"], start.log_likelihood(X, lengths=lengths).sum(), rtol=1e-12)
    # iterations: the same parameters as the in-memory EM from the same start, and the same score
    want = oracle(start, X, lengths)
    ref = copy.deepcopy(start)
    ref._set_point(want)
    fit(start, Xd, lengths=lengths, max_iter=N_ITER, tol=-np.inf, split_every=2)
    assert start.n_iter_ == N_ITER  # (MAP priors: the likelihood need not rise, as in hmmlearn)
    _assert_params(start._point(), want)
    np.testing.assert_allclose(start.score(X, lengths=lengths), ref.score(X, lengths=lengths), rtol=1e-10)
    cons = start._constraints()
    if cons:  # held entries exactly
        for name, held in cons.held.items():
            given = ~np.isnan(held)
            np.testing.assert_array_equal(start._point()[name][given], held[given])


@pytest.mark.parametrize("case", ["PoissonHMM", "HMM-poisson", "BernoulliHMM"])
def test_convergence_rule_equals_in_memory(case):
    """With a finite tol, the same iteration count, convergence flag and parameters as the in-memory EM."""
    kind, make, _ = CASES[case]
    X, lengths = _data(kind, False, seed=12)
    start = _start(make(), X, lengths)
    tol = 0.5
    if start._native_backend:
        ref = copy.deepcopy(start).set_params(tol=tol)
        ref._em_loop(X, lengths, 50, "EM")
        n_ref, params = ref.n_iter_, ref._point()
    else:
        b = start.backend_
        ref = hmm.PoissonHMM(3, lambdas_prior=b.lambdas_prior, lambdas_weight=b.lambdas_weight, params="stl",
                             n_iter=50, tol=tol, init_params="", transmat_prior=b.transmat_prior)
        ref.startprob_, ref.transmat_, ref.lambdas_ = start.startprob_, start.transmat_, start.lambdas_
        ref.fit(X.astype(np.int64), lengths)
        n_ref, params = ref.monitor_.iter, {"startprob": ref.startprob_, "transmat": ref.transmat_,
                                            "lambdas": ref.lambdas_}
    fit(start, da.from_array(X, chunks=(300, X.shape[1])), lengths=lengths, max_iter=50, tol=tol)
    assert start.converged_ and 2 < start.n_iter_ == n_ref < 50
    _assert_params(start._point(), params)


@pytest.mark.parametrize("name, settings", [
    ("poisson", {"rate_prior": 0.3, "rate_weight": 0.1}), ("bernoulli", {"probs_prior": 1.5}),
    ("categorical", {"n_symbols": 4, "concentration": 1.3}), ("gaussian", {"covariance_type": "diag"}),
    ("gaussian", {"covariance_type": "spherical"}), ("gaussian", {"covariance_type": "full"}),
    ("gaussian", {"covariance_type": "tied"})])
def test_m_step_from_stats_equals_m_step(name, settings):
    rng = np.random.default_rng(11)
    em = registered_emission(name)(**settings)
    kind = name
    X = _emit(kind, rng.integers(0, 3, 400), rng)
    if name != "categorical":  # missing values where the emission's M-step marginalises them
        full = settings.get("covariance_type") in ("full", "tied")
        X[rng.random(X.shape[0]) < 0.1] = np.nan
        if not full:
            X[rng.random(X.shape) < 0.1] = np.nan
    gamma = rng.dirichlet(np.ones(3), size=X.shape[0])
    params = em.init(np.where(np.isnan(X), 0.0, X), 3, rng)
    stats = em.suff_stats(X, gamma, params)
    # additive: two halves sum to the whole
    half = [em.suff_stats(X[s], gamma[s], params) for s in (slice(0, 150), slice(150, None))]
    for k in stats:
        np.testing.assert_allclose(half[0][k] + half[1][k], stats[k], rtol=1e-12, atol=1e-12)
    _assert_params(em.m_step_from_stats(stats, params), em.m_step(X, gamma, params), rtol=1e-11, atol=1e-12)
    if name == "gaussian":  # held means: covariances around them, as the constrained M-step
        held = np.full((3, 2), np.nan)
        held[0, 1] = 3.0
        _assert_params(em.m_step_from_stats(stats, params, means=held), em.m_step(X, gamma, params, means=held),
                       rtol=1e-11, atol=1e-12)


def test_wrong_variant_is_caught():
    """Not a tautology: the per-state Gamma prior (the emission's) differs from hmmlearn's PoissonHMM M-step."""
    kind, make, _ = CASES["PoissonHMM"]
    X, lengths = _data(kind, False, seed=3)
    start = _start(make(), X, lengths)
    stats = hmm_statistics(start, X, lengths, start._point())
    per_state = start._emission().m_step_from_stats(stats, start._point())["lambdas"]
    one = hmm.PoissonHMM(3, lambdas_prior=0.5, lambdas_weight=0.2, transmat_prior=1.5, n_iter=1, tol=-np.inf,
                         init_params="", params="stl")
    one.startprob_, one.transmat_, one.lambdas_ = start.startprob_, start.transmat_, start.lambdas_
    one.fit(X.astype(np.int64), lengths)
    assert np.max(np.abs(per_state - one.lambdas_)) > 1e-3
    fit(start, da.from_array(X, chunks=(300, 2)), lengths=lengths, max_iter=1, tol=-np.inf)
    np.testing.assert_allclose(start.lambdas_, one.lambdas_, rtol=1e-8)


def test_unfitted_fit_partial_fit_and_errors():
    X, lengths = _data("categorical", True, seed=5)
    Xd = da.from_array(X, chunks=(300, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the in-memory start on 600 rows
        model = fit(CategoricalHMM(3, random_state=0, max_iter=20, tol=1e-6), Xd, init_size=600)
    assert model.emissionprob_.shape == (3, 4) and np.all(np.diff(model.history_) > -1e-9)
    ll = model.score(X)
    partial_fit(model, Xd)
    assert model.n_iter_ == 1 and model.score(X) >= ll - 1e-9
    # a symbol the fitted model does not know: the family's own check
    with pytest.raises(ValueError, match="symbol"):
        expected_statistics(model, da.from_array(np.r_[X, [[7.0]]], chunks=(300, 1)))
    Xp, lp = _data("poisson", False, seed=6)
    pois = _start(PoissonHMM(3, random_state=0), Xp, lp)
    bad = Xp.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="finite X"):
        expected_statistics(pois, da.from_array(bad, chunks=(300, 2)), lengths=lp)
    # native families marginalise missing values, as their in-memory EM
    native = _start(HMM(3, emission="poisson", random_state=0), Xp, lp)
    stats = expected_statistics(native, da.from_array(bad, chunks=(300, 2)), lengths=lp)
    np.testing.assert_allclose(stats["loglik"], native.log_likelihood(bad, lengths=lp).sum(), rtol=1e-12)
    with pytest.raises(ValueError, match="distributed EM supports"):
        fit(HMM(2, emission="studentt"), da.from_array(np.random.default_rng(0).normal(size=(100, 2)), chunks=50))
    with pytest.raises(ValueError, match="distributed EM supports"):
        fit(GMMHMM(2), da.from_array(np.random.default_rng(0).normal(size=(100, 2)), chunks=50))
    with pytest.raises(NotImplementedError, match="bayesian"):
        fit(CategoricalHMM(2, bayesian=True), Xd)


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
def test_gaussian_hmm_floors_variances_as_its_backend(covariance_type):
    """GaussianHMM: min_covar floors the variances after each M-step, as the in-memory backend does."""
    X, lengths = _data("gaussian", False, seed=9)
    start = _start(GaussianHMM(3, covariance_type=covariance_type, min_covar=1.5, means_weight=0.5,
                               random_state=0), X, lengths)
    ref = copy.deepcopy(start.backend_)  # the in-memory backend (priors in the units of X), run on X
    ref.init_params, ref.n_iter = "", N_ITER
    ref.monitor_ = hmm_base.ConvergenceMonitor(-np.inf, N_ITER, False)
    ref.fit(X, lengths)
    fit(start, da.from_array(X, chunks=(300, 2)), lengths=lengths, max_iter=N_ITER, tol=-np.inf)
    low = np.linalg.eigvalsh(start.covars_)[:, 0]
    assert low.min() >= 1.5 - 1e-9 and np.isclose(low.min(), 1.5)  # the floor is active
    for name in ("startprob_", "transmat_", "means_"):
        np.testing.assert_allclose(getattr(start, name), getattr(ref, name), rtol=1e-8, atol=1e-8)
    want = ref._covars_[:, 0] if covariance_type == "spherical" and ref._covars_.ndim == 2 else ref._covars_
    np.testing.assert_allclose(start._emission_point()["covars"], want, rtol=1e-8, atol=1e-8)


@pytest.mark.slow
def test_local_cluster_poisson_hmm_equals_synchronous():
    distributed = pytest.importorskip("dask.distributed")
    X, lengths = _data("poisson", True, seed=7)
    start = _start(PoissonHMM(3, lambdas_prior=0.5, lambdas_weight=0.2, random_state=0), X, lengths)
    sync = copy.deepcopy(start)
    fit(sync, da.from_array(X, chunks=(300, 2)), max_iter=3, tol=-np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
        try:
            with distributed.Client(cluster) as client:
                fit(start, da.from_array(X, chunks=(300, 2)), max_iter=3, tol=-np.inf, scheduler=client)
        finally:
            cluster.close()
    _assert_params(start._point(), sync._point(), rtol=1e-12, atol=1e-12)
