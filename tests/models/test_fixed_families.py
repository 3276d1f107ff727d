"""``fixed=`` on AutoregressiveHMM, SemiMarkovHMM, InputDrivenHMM and GMMHMM (issue #17 item 1).

Held entries must come back bit for bit, structural zeros stay exactly 0,
EM never decreases its objective, the constrained optimum is the one a
brute-force grid over the free parameter finds (tiny cases with one free
number), the constrained M-steps are the exact maximisers of their expected
complete-data objectives (no perturbation of the free entries does better),
and Gibbs draws of free entries follow their closed-form conditionals.
"""

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.optimize import minimize_scalar

import probspace
from probspace import GMMHMM, HMM, AutoregressiveHMM, GaussianHMM, InputDrivenHMM, SemiMarkovHMM
from probspace.emissions._autoregressive import AutoregressiveEmission, lagged_rows
from probspace.inference import _hsmm, _iohmm
from probspace.models._hsmm import duration_pmf
from probspace.models.hmm._autoregressive import _ar_conformance_data


def _quiet(model, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kw)


def _held_equal(got, value):
    value = np.asarray(value, dtype=np.float64)
    held = ~np.isnan(value)
    return np.array_equal(np.asarray(got)[held], value[held])


def _maximise(f, lo, hi):
    """Global maximiser of a smooth 1-D function on [lo, hi]: a fine grid, then a bounded refinement."""
    grid = np.linspace(lo, hi, 401)
    vals = np.array([f(u) for u in grid])
    i = int(np.argmax(vals))
    a, b = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    res = minimize_scalar(lambda u: -f(u), bounds=(a, b), method="bounded", options={"xatol": 1e-10})
    return (res.x, -res.fun) if -res.fun >= vals[i] else (grid[i], vals[i])


# -- 1. AutoregressiveHMM ---------------------------------------------------------------------------------
def test_autoregressive_held_states_are_bit_identical_and_em_is_monotone():
    X, lengths = _ar_conformance_data(np.random.default_rng(0))
    fixed = {"coefs": [[[0.8]], [[np.nan]]], "intercepts": [[np.nan], [3.0]], "covars": [[[np.nan]], [[0.09]]],
             "transmat": [[np.nan, np.nan], [0.15, np.nan]]}
    model = _quiet(AutoregressiveHMM(2, fixed=fixed, min_covar=1e-12, max_iter=300, tol=1e-10, random_state=0), X,
                   lengths=lengths)
    for name in ("coefs", "intercepts", "covars", "transmat"):
        assert _held_equal(getattr(model, name + "_"), fixed[name]), name
    assert model.transmat_[1, 1] == 0.85 and np.allclose(model.transmat_.sum(axis=1), 1.0)
    assert np.all(np.diff(model.history_) * X.shape[0] >= -1e-8)
    # free entries near the generating values (0.5 intercept of state 0, -0.6 coefficient of state 1)
    assert abs(model.intercepts_[0, 0] - 0.5) < 0.2 and abs(model.coefs_[1, 0, 0] + 0.6) < 0.2


def test_autoregressive_topology_keeps_structural_zeros():
    X, lengths = _ar_conformance_data(np.random.default_rng(1))
    model = _quiet(AutoregressiveHMM(3, topology="left-to-right", bandwidth=1, max_iter=30, random_state=0), X,
                   lengths=lengths)
    assert model.transmat_[0, 2] == 0.0 and np.all(model.transmat_[np.tril_indices(3, -1)] == 0.0)
    assert np.array_equal(model.startprob_, [1.0, 0.0, 0.0])


def _ar_q(emission, X, gamma, params):
    """Expected complete-data log-likelihood of the emission: sum_t sum_k gamma_tk log N(x_t; A_k r_t + b_k, S_k)."""
    return float((gamma * emission.log_frames(X, params)).sum())


@pytest.mark.parametrize("held_names", [("coefs",), ("intercepts",), ("coefs", "covars"), ("intercepts", "covars")])
def test_autoregressive_constrained_m_step_beats_every_perturbation_of_the_free_arrays(held_names):
    rng = np.random.default_rng(2)
    X = lagged_rows(rng.normal(size=(120, 2)).cumsum(axis=0) * 0.3, np.array([120]), 1)
    em = AutoregressiveEmission(order=1, n_features=2, min_covar=0.0)
    K = 2
    gamma = rng.dirichlet(np.ones(K), size=X.shape[0])
    start = {"coefs": rng.normal(size=(K, 2, 2)) * 0.3, "intercepts": rng.normal(size=(K, 2)),
             "covars": np.array([np.eye(2) * 0.5, [[1.0, 0.3], [0.3, 0.7]]])}
    held = {n: np.where(np.arange(K)[(slice(None),) + (None,) * (start[n].ndim - 1)] == 0, start[n], np.nan)
            for n in held_names}  # state 0 held, state 1 free
    out = em.m_step(X, gamma, start, held=held)
    for n in held_names:
        assert np.array_equal(out[n][0], start[n][0])
    best = _ar_q(em, X, gamma, out)
    for _ in range(200):
        trial = {k: v.copy() for k, v in out.items()}
        for n in ("coefs", "intercepts", "covars"):
            step = 1e-3 * rng.normal(size=trial[n].shape)
            if n == "covars":
                step = step + np.swapaxes(step, -1, -2)
            free = np.ones(K, dtype=bool)
            if n in held_names:
                free[0] = False
            trial[n][free] += step[free]
        assert _ar_q(em, X, gamma, trial) <= best + 1e-9


def test_autoregressive_gibbs_holds_whole_arrays_and_draws_the_exact_matrix_normal():
    """K=1, covariance held: B = [a; b_c] | Sigma is matrix-normal (centred coordinates) with a closed form."""
    rng = np.random.default_rng(4)
    x = np.empty(150)
    x[0] = 1.0
    for t in range(1, 150):
        x[t] = 0.6 * x[t - 1] + 1.0 + 0.5 * rng.normal()
    X = x[:, None]
    sigma = 0.3
    model = AutoregressiveHMM(1, sampler="gibbs", fixed={"covars": [[[sigma]]]}, n_chains=2, n_draws=2000,
                              n_warmup=20, max_iter=20, random_state=0).fit(X)
    assert np.all(model.draws_["covars"] == sigma)
    prior = model.prior_
    c = float(np.asarray(prior["centre"]).ravel()[0])
    r = np.column_stack([x[:-1] - c, np.ones(149)])
    yv = x[1:] - c
    a0, b0 = float(np.ravel(prior["coefs_mean"])[0]), float(np.ravel(prior["intercepts_mean"])[0])
    M0 = np.array([a0, b0 + a0 * c - c])
    P0 = np.asarray(prior["regression_precision"])
    Pn = P0 + r.T @ r
    Mn = np.linalg.solve(Pn, P0 @ M0 + r.T @ yv)
    cov = sigma * np.linalg.inv(Pn)
    a = model.draws_["coefs"].reshape(-1)
    assert stats.kstest(a, stats.norm(Mn[0], np.sqrt(cov[0, 0])).cdf).pvalue > 1e-3
    bc = model.draws_["intercepts"].reshape(-1) + a * c - c  # the centred intercept
    assert stats.kstest(bc, stats.norm(Mn[1], np.sqrt(cov[1, 1])).cdf).pvalue > 1e-3


# -- 2. SemiMarkovHMM -----------------------------------------------------------------------------------------
def _segments(seed=0, n=30):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(5 * (i % 3), 1, size=(rng.integers(4, 10), 1)) for i in range(n)])


@pytest.mark.parametrize("duration, fixed", [
    ("nonparametric", {"duration_pmf": np.vstack([np.r_[0.0, 0.1, 0.2, np.full(12, np.nan)], np.full(15, np.nan),
                                                  np.r_[np.zeros(5), np.full(10, np.nan)]]),
                       "transmat": [[np.nan, 0.7, np.nan], [np.nan, 0.0, np.nan], [np.nan] * 3],
                       "means": [[0.0], [np.nan], [np.nan]], "startprob": [np.nan, 0.2, np.nan]}),
    ("poisson", {"rate": [3.0, np.nan, np.nan], "covars": [[1.0], [np.nan], [1.0]]}),
    ("negative_binomial", {"n": [2.0, np.nan, np.nan], "p": [np.nan, 0.3, np.nan]}),
])
def test_semi_markov_em_keeps_held_entries_and_structural_zeros(duration, fixed):
    X = _segments()
    model = _quiet(SemiMarkovHMM(3, max_duration=15, duration=duration, fixed=fixed, max_iter=100, tol=1e-9,
                                 random_state=0), X)
    params = {"startprob": model.startprob_, "transmat": model.transmat_, "duration_pmf": model.duration_pmf_,
              **model.duration_params_, **model.emission_arrays_}
    for name, value in fixed.items():
        assert _held_equal(params[name], value), name
    assert np.all(np.diagonal(model.transmat_) == 0.0)
    assert np.allclose(model.transmat_.sum(axis=1), 1.0) and np.allclose(model.duration_pmf_.sum(axis=1), 1.0)
    if duration == "nonparametric":
        assert np.all(model.duration_pmf_[2, :5] == 0.0) and model.duration_pmf_[0, 0] == 0.0
    assert np.all(np.diff(model.history_) * X.shape[0] >= -1e-8), "EM with held entries must not decrease"


def _hsmm_loglik(model, X, **change):
    p = {"startprob": model.startprob_, "transmat": model.transmat_, "duration_pmf": model.duration_pmf_, **change}
    return float(_hsmm.forward_backward(p["startprob"], p["transmat"], p["duration_pmf"], model._log_frameprob(X),
                                        None).log_likelihood.sum())


def test_semi_markov_em_reaches_the_brute_force_optimum_of_the_one_free_duration_entry():
    # Everything held except duration row 1, whose first entry is held at 0.2: one free number u, the rest 0.8 - u.
    rng = np.random.default_rng(5)
    z = np.concatenate([np.full(d, k % 2) for k, d in enumerate(rng.choice([2, 3], size=40))])
    X = rng.normal(1.5 * z, 1.0)[:, None]  # overlapping emissions: the segmentation is uncertain
    pmf = np.array([[0.1, 0.5, 0.4], [0.2, np.nan, np.nan]])
    fixed = {"startprob": [0.5, 0.5], "duration_pmf": pmf, "means": [[0.0], [1.5]], "covars": [[1.0], [1.0]]}
    model = _quiet(SemiMarkovHMM(2, max_duration=3, fixed=fixed, max_iter=500, tol=1e-12, random_state=0), X)
    assert np.array_equal(model.duration_pmf_[0], pmf[0]) and model.duration_pmf_[1, 0] == 0.2

    def ll(u):
        return _hsmm_loglik(model, X, duration_pmf=np.array([pmf[0], [0.2, u, 0.8 - u]]))

    u_best, ll_best = _maximise(ll, 0.0, 0.8)
    assert model.duration_pmf_[1, 1] == pytest.approx(u_best, abs=2e-3)
    assert ll(model.duration_pmf_[1, 1]) >= ll_best - 1e-6
    assert model.duration_pmf_[1, 2] == pytest.approx(0.8 - model.duration_pmf_[1, 1], abs=1e-15)


def test_semi_markov_em_reaches_the_brute_force_optimum_of_a_free_poisson_rate():
    rng = np.random.default_rng(6)
    z = np.concatenate([np.full(d, k % 2) for k, d in enumerate(1 + rng.poisson([2.0, 4.0] * 15))])
    X = rng.normal(2.0 * z, 1.0)[:, None]
    fixed = {"startprob": [1.0, 0.0], "rate": [2.0, np.nan], "means": [[0.0], [2.0]], "covars": [[1.0], [1.0]]}
    model = _quiet(SemiMarkovHMM(2, max_duration=12, duration="poisson", fixed=fixed, max_iter=500, tol=1e-12,
                                 random_state=0), X)
    assert model.duration_params_["rate"][0] == 2.0 and model.startprob_[1] == 0.0

    def ll(rate):
        return _hsmm_loglik(model, X, duration_pmf=duration_pmf("poisson", {"rate": [2.0, rate]}, 12))

    r_best, ll_best = _maximise(ll, 0.05, 11.0)
    assert model.duration_params_["rate"][1] == pytest.approx(r_best, rel=2e-3)
    assert ll(model.duration_params_["rate"][1]) >= ll_best - 1e-6


# A segmentation the data fix beyond doubt (means 0 and 1000 held): the Gibbs conditionals have closed forms.
RUNS = [(0, 3), (1, 4), (0, 5), (1, 2), (0, 4), (1, 6), (0, 3), (1, 3), (0, 5), (1, 3)]  # the last is censored


def test_semi_markov_gibbs_free_duration_entries_follow_their_scaled_dirichlet():
    rng = np.random.default_rng(7)
    z = np.concatenate([np.full(d, k) for k, d in RUNS])
    X = rng.normal(1000.0 * z, 1.0)[:, None]
    D = 6
    pmf = np.full((2, D), np.nan)
    pmf[0, 0], pmf[0, 1] = 0.0, 0.1  # state 0: no one-frame segments, 0.1 on two frames, the rest free
    fixed = {"duration_pmf": pmf, "means": [[0.0], [1000.0]], "covars": [[1.0], [1.0]]}
    model = SemiMarkovHMM(2, max_duration=D, sampler="gibbs", fixed=fixed, n_chains=2, n_draws=1500, n_warmup=50,
                          max_iter=20, random_state=0).fit(X)
    draws = model.draws_["duration_pmf"].reshape(-1, 2, D)
    assert np.all(draws[:, 0, 0] == 0.0) and np.all(draws[:, 0, 1] == 0.1)
    assert np.all(model.draws_["means"] == [[0.0], [1000.0]])
    assert np.allclose(draws.sum(axis=-1), 1.0)
    # state 0 never closes the sequence: its counts are the completed segments, its free entries 0.9 * Dirichlet
    counts = np.zeros(D)
    for k, d in RUNS[:-1]:
        if k == 0:
            counts[d - 1] += 1
    a = np.asarray(model.prior_["duration_pmf"])[0, 2:] + counts[2:]
    for j in range(a.size):
        exact = stats.beta(a[j], a.sum() - a[j], scale=0.9)
        assert stats.kstest(draws[:, 0, 2 + j], exact.cdf).pvalue > 1e-3, j


def test_semi_markov_gibbs_keeps_held_rates_and_rejects_partial_coupled_holds():
    X = _segments(n=15)
    model = SemiMarkovHMM(3, max_duration=12, duration="poisson", sampler="gibbs", n_chains=1, n_draws=30,
                          n_warmup=10, max_iter=10, fixed={"rate": [3.0, np.nan, np.nan], "transmat": [
                              [0.0, 0.6, np.nan], [np.nan, 0.0, np.nan], [np.nan, np.nan, 0.0]]}, random_state=0)
    _quiet(model, X)
    assert np.all(model.draws_["rate"][..., 0] == 3.0) and np.std(model.draws_["rate"][..., 1]) > 0
    assert np.all(model.draws_["transmat"][..., 0, 1] == 0.6)
    assert np.all(np.diagonal(model.draws_["transmat"], axis1=-2, axis2=-1) == 0.0)
    # a full covariance held for one state (the Gaussian Gibbs update holds coupled arrays per state)
    held = [[1.0, 0.2], [0.2, 1.0]]
    full = SemiMarkovHMM(2, max_duration=10, sampler="gibbs", emission_params={"covariance_type": "full"},
                         fixed={"covars": [held, np.full((2, 2), np.nan)]}, n_chains=1, n_draws=5, n_warmup=5,
                         random_state=0)
    _quiet(full, np.c_[X, X + 0.1 * np.sin(np.arange(len(X)))[:, None]][:40])
    assert np.all(full.draws_["covars"][..., 0, :, :] == np.array(held))
    assert np.std(full.draws_["covars"][..., 1, 0, 0]) > 0
    with pytest.raises(ValueError, match="all entries of a state or none"):
        SemiMarkovHMM(2, max_duration=10, sampler="gibbs", emission_params={"covariance_type": "full"},
                      fixed={"covars": [[[1.0, np.nan], [np.nan, 1.0]], np.full((2, 2), np.nan)]}, n_draws=5,
                      n_warmup=5).fit(np.c_[X, X][:40])


# -- 3. InputDrivenHMM ---------------------------------------------------------------------------------------
def _covariate_data(seed=0, n=300):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(n, 2))
    z = np.zeros(n, dtype=int)
    for t in range(1, n):
        stay = 1.0 / (1.0 + np.exp(-(2.0 + 1.5 * y[t, 0])))
        z[t] = z[t - 1] if rng.random() < stay else 1 - z[t - 1]
    return rng.normal(3.0 * z, 1.0)[:, None], y


def test_input_driven_held_entries_are_bit_identical_and_em_is_monotone():
    X, y = _covariate_data()
    b = [[0.0, np.nan], [np.nan, 0.0]]
    w = np.full((2, 2, 2), np.nan)
    w[:, :, 1] = 0.0  # the second covariate has no effect on the transitions
    fixed = {"transition_intercept": b, "transition_coef": w, "means": [[0.0], [np.nan]], "startprob": [0.5, 0.5]}
    # min_covar=0 makes the Gaussian M-step the exact maximiser (its floor alone can cost ~1e-6 at convergence)
    model = _quiet(InputDrivenHMM(2, fixed=fixed, emission_params={"min_covar": 1e-12}, max_iter=200, tol=1e-9,
                                  random_state=0), X, y)
    for name in fixed:
        assert _held_equal(getattr(model, name + "_"), fixed[name]), name
    assert np.all(np.diff(model.history_) * X.shape[0] >= -1e-8)
    assert abs(model.means_[1, 0] - 3.0) < 0.3


def test_input_driven_em_reaches_the_brute_force_optimum_of_the_one_free_weight():
    X, y = _covariate_data(seed=1, n=200)
    w = np.zeros((2, 2, 2))
    w[0, 0, 0] = np.nan  # one free covariate weight
    b = np.array([[2.0, 0.0], [0.0, 2.0]])
    fixed = {"transition_intercept": b, "transition_coef": w, "startprob": [1.0, 0.0], "means": [[0.0], [3.0]],
             "covars": [[1.0], [1.0]]}
    model = _quiet(InputDrivenHMM(2, fixed=fixed, alpha=0.1, max_iter=500, tol=1e-12, random_state=0), X, y)
    assert np.array_equal(model.transition_intercept_, b) and model.startprob_[1] == 0.0

    def objective(u):
        coef = w.copy()
        coef[0, 0, 0] = u
        fb = _iohmm.forward_backward(model.startprob_, model._transmats(y, coef=coef), model._frames(X, y), None)
        return float(fb.log_likelihood.sum()) - 0.5 * 0.1 * float((b ** 2).sum() + u ** 2)

    u_best, obj_best = _maximise(objective, -10.0, 10.0)
    assert model.transition_coef_[0, 0, 0] == pytest.approx(u_best, abs=2e-3)
    assert objective(model.transition_coef_[0, 0, 0]) >= obj_best - 1e-6
    assert model.history_[-1] * X.shape[0] == pytest.approx(obj_best, abs=1e-5)


def test_input_driven_glm_emission_holds_entries():
    X, y = _covariate_data(seed=2)
    rng = np.random.default_rng(2)
    Xg = (rng.random((X.shape[0], 1)) < 1.0 / (1.0 + np.exp(-2.0 * y[:, :1]))).astype(float)
    coef = np.full((2, 2, 2), np.nan)
    coef[:, :, 1] = 0.0
    model = _quiet(InputDrivenHMM(2, emission="glm", fixed={"glm_coef": coef}, max_iter=40, tol=1e-9,
                                  random_state=0), Xg, y)
    assert _held_equal(model.glm_coef_, coef)
    assert np.all(np.diff(model.history_) * X.shape[0] >= -1e-8)


# -- 4. GMMHMM ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
def test_gmm_hmm_holds_entries_through_the_constrained_em(covariance_type):
    X, lengths = GaussianHMM._conformance_data(np.random.default_rng(0))
    A = [[0.9, np.nan], [np.nan, np.nan]]
    weights = [[0.3, 0.7], [np.nan, np.nan]]
    model = _quiet(GMMHMM(2, n_mix=2, covariance_type=covariance_type, fixed={"transmat": A, "weights": weights},
                          max_iter=40, tol=1e-9, random_state=0), X, lengths=lengths)
    assert _held_equal(model.transmat_, A) and _held_equal(model.weights_, weights)
    assert model.transmat_[0, 1] == pytest.approx(0.1, abs=1e-15)
    assert np.allclose(model.weights_.sum(axis=1), 1.0)
    assert np.all(np.diff(model.history_[5:]) * X.shape[0] >= -1e-8)  # after hmmlearn's start, our EM
    assert np.isfinite(model.score(X, lengths=lengths))


@pytest.mark.parametrize("make", [
    lambda f: GMMHMM(2, n_mix=2, min_covar=1e-12, fixed=f, max_iter=60, tol=1e-10, random_state=0),
    lambda f: HMM(2, emission="gmm", emission_params={"n_mix": 2, "min_covar": 1e-12}, fixed=f, max_iter=60,
                  tol=1e-10, random_state=0),
])
def test_gmm_held_means_keep_em_monotone(make):
    # the covariances of a state with held means must be fitted around the held means (else the objective drops)
    X, lengths = GaussianHMM._conformance_data(np.random.default_rng(0))
    means = np.full((2, 2, X.shape[1]), np.nan)
    means[0] = [[0.0] * X.shape[1], [1.0] * X.shape[1]]
    model = _quiet(make({"means": means}), X, lengths=lengths)
    assert _held_equal(model.means_, means)
    start = 5 if isinstance(model, GMMHMM) else 0  # GMMHMM: hmmlearn's start, then the constrained EM
    assert np.all(np.diff(model.history_[start:]) * X.shape[0] >= -1e-8)


def test_gmm_hmm_topology():
    X, lengths = GaussianHMM._conformance_data(np.random.default_rng(1))
    model = _quiet(GMMHMM(3, topology="left-to-right", max_iter=20, random_state=0), X, lengths=lengths)
    assert np.all(model.transmat_[np.tril_indices(3, -1)] == 0.0)
    assert np.array_equal(model.startprob_, [1.0, 0.0, 0.0])


# -- 5. save/load and bad input --------------------------------------------------------------------------------
def _fitted_cases():
    X_ar, L_ar = _ar_conformance_data(np.random.default_rng(0))
    X_io, y_io = _covariate_data(n=150)
    X_g, L_g = GaussianHMM._conformance_data(np.random.default_rng(0))
    return [
        (AutoregressiveHMM(2, fixed={"intercepts": [[np.nan], [3.0]]}, max_iter=20, random_state=0), X_ar,
         dict(lengths=L_ar), "intercepts_"),
        (SemiMarkovHMM(2, max_duration=10, fixed={"means": [[0.0], [np.nan]]}, max_iter=20, random_state=0),
         _segments(n=10), {}, "means_"),
        (InputDrivenHMM(2, fixed={"transition_coef": [[[0.0, np.nan]] * 2] * 2}, max_iter=20, random_state=0), X_io,
         dict(y=y_io), "transition_coef_"),
        (GMMHMM(2, n_mix=2, fixed={"weights": [[0.5, 0.5], [np.nan] * 2]}, max_iter=20, random_state=0), X_g,
         dict(lengths=L_g), "weights_"),
    ]


@pytest.mark.parametrize("case", range(4))
def test_fitted_models_with_fixed_survive_save_and_load(case, tmp_path):
    model, X, kw, attr = _fitted_cases()[case]
    y = kw.pop("y", None)
    _quiet(model, X, y, **kw)
    model.save(tmp_path / "m.psp")
    back = probspace.load(tmp_path / "m.psp")
    name = next(iter(model.fixed))
    assert np.array_equal(np.asarray(back.fixed[name], dtype=float), np.asarray(model.fixed[name], dtype=float),
                          equal_nan=True)
    assert np.array_equal(getattr(back, attr), getattr(model, attr))
    assert back.get_params()["fixed"].keys() == model.get_params()["fixed"].keys()
    refit = _quiet(back, X, y, **kw)
    assert _held_equal(getattr(refit, attr), model.fixed[name])


@pytest.mark.parametrize("make, fixed, match", [
    (lambda f: AutoregressiveHMM(2, fixed=f), {"nope": [1.0, 2.0]}, "fixed of AutoregressiveHMM names 'nope'"),
    (lambda f: AutoregressiveHMM(2, fixed=f), {"coefs": np.zeros((2, 1))}, r"fixed\['coefs'\].*shape \(2, 1, 1\)"),
    (lambda f: AutoregressiveHMM(2, fixed=f), {"covars": [[[-1.0]], [[np.nan]]]}, r"fixed\['covars'\].*positive"),
    (lambda f: AutoregressiveHMM(2, order=2, fixed=f), {"coefs": [[[0.5, np.nan]], [[np.nan, np.nan]]]},
     r"fixed\['coefs'\].*all entries of a state or none"),
    (lambda f: AutoregressiveHMM(2, sampler="gibbs", n_draws=5, n_warmup=5, fixed=f), {"coefs": [[[0.5]], [[0.1]]]},
     "fixed of AutoregressiveHMM.*holds 'coefs' alone"),
    (lambda f: SemiMarkovHMM(2, max_duration=10, fixed=f), {"transmat": [[0.5, 0.5], [np.nan, np.nan]]},
     r"fixed\['transmat'\].*diagonal"),
    (lambda f: SemiMarkovHMM(2, max_duration=10, fixed=f), {"duration_pmf": np.full((2, 10), 0.2)},
     r"fixed\['duration_pmf'\].*sum to 2 > 1"),
    (lambda f: SemiMarkovHMM(2, max_duration=10, duration="poisson", fixed=f), {"rate": [-1.0, np.nan]},
     r"fixed\['rate'\].*positive"),
    (lambda f: SemiMarkovHMM(2, max_duration=10, duration="negative_binomial", fixed=f), {"p": [1.5, np.nan]},
     r"fixed\['p'\].*\(0, 1\)"),
    (lambda f: SemiMarkovHMM(2, max_duration=10, duration="poisson", fixed=f), {"duration_pmf": np.ones((2, 10))},
     "fixed of SemiMarkovHMM names 'duration_pmf'"),
    (lambda f: SemiMarkovHMM(2, max_duration=10, fixed=f), {"startprob": [0.5, 0.2]},
     "fully held probability row must sum to 1"),
    (lambda f: InputDrivenHMM(2, fixed=f), {"transition_coef": np.zeros((2, 2, 3))},
     r"fixed\['transition_coef'\].*shape \(2, 2, 2\)"),
    (lambda f: InputDrivenHMM(2, fixed=f), {"startprob": [1.5, np.nan]}, r"fixed\['startprob'\].*\[0, 1\]"),
    (lambda f: InputDrivenHMM(2, fixed=f), {"transmat": np.eye(2)}, "fixed of InputDrivenHMM names 'transmat'"),
    (lambda f: InputDrivenHMM(2, fixed=f), {"means": [[np.inf], [0.0]]}, r"fixed\['means'\].*finite"),
    (lambda f: GMMHMM(2, n_mix=2, fixed=f), {"weights": [[0.5, 0.5, 0.0], [np.nan] * 3]},
     r"fixed\['weights'\].*shape \(2, 2\)"),
    (lambda f: GMMHMM(2, n_mix=2, fixed=f), [1, 2], "fixed"),
    (lambda f: SemiMarkovHMM(2, fixed=f), "transmat", "fixed"),
])
def test_bad_fixed_is_a_value_error_naming_fixed(make, fixed, match):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(5 * (i % 2), 1, size=(6, 1)) for i in range(12)])
    model = make(fixed)
    y = rng.normal(size=(X.shape[0], 2)) if isinstance(model, InputDrivenHMM) else None
    with pytest.raises(ValueError, match=match):
        _quiet(model, X, y)
