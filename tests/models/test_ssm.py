"""LinearGaussianSSM: the Kalman smoother against statsmodels and against the dense joint Gaussian, EM, bad input."""

import os
import tempfile
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.linalg import solve_discrete_are
from sklearn.exceptions import NotFittedError

import probspace
from probspace import InvalidParameterError, LinearGaussianSSM
from probspace.datasets import load_nile
from probspace.inference import _kalman
from probspace.models._ssm import _simulate

try:  # the reference implementation (test extra); the other checks run without it
    import statsmodels.api as sm
except ImportError:  # pragma: no cover
    sm = None
needs_statsmodels = pytest.mark.skipif(sm is None, reason="statsmodels (the test extra) is not installed")

ONE = np.eye(1)
LOCAL_LEVEL_FIXED = ["transition_matrix", "observation_matrix", "initial_mean", "initial_covariance"]
# Known initial state on both sides (statsmodels' default is (approximate) diffuse).
NILE_M0, NILE_P0 = np.array([1000.0]), np.array([[1e5]])


def rotating_model():
    A = 0.9 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
    C = np.array([[1.0, 0.0], [0.5, 1.0], [-1.0, 0.5]])
    Q = np.array([[0.3, 0.1], [0.1, 0.2]])
    R = np.diag([0.2, 0.3, 0.1]) + 0.05
    return A, C, Q, R, np.array([1.0, -1.0]), np.eye(2)


def known(params):
    names = ("transition_matrix", "observation_matrix", "transition_covariance", "observation_covariance",
             "initial_mean", "initial_covariance")
    return LinearGaussianSSM(params[0].shape[0], **dict(zip(names, params, strict=True)), fixed="all")


def with_gaps(Y):
    Y = Y.copy()
    Y[5] = np.nan
    Y[10, 1] = np.nan
    Y[11, [0, 2]] = np.nan
    return Y


def local_level(sigma2_eps, sigma2_eta):
    return known((ONE, ONE, np.array([[sigma2_eta]]), np.array([[sigma2_eps]]), NILE_M0, NILE_P0))


def statsmodels_local_level(y):
    mod = sm.tsa.UnobservedComponents(y, "llevel", loglikelihood_burn=0)
    mod.ssm.initialize_known(NILE_M0, NILE_P0)
    return mod


# -- statsmodels agreement ---------------------------------------------------------------------
@needs_statsmodels
@pytest.mark.parametrize("gaps", [False, True])
def test_nile_local_level_matches_statsmodels(gaps):
    y = load_nile().data.copy()
    if gaps:  # Durbin and Koopman's missing-data illustration: years 21-40 and 61-80 removed
        y[20:40] = np.nan
        y[60:80] = np.nan
    params = [15099.0, 1469.1]  # (irregular, level) variances, the MLE of Durbin and Koopman (2001), section 2.10
    res = statsmodels_local_level(y[:, 0]).smooth(params)
    model = local_level(*params).fit(y)
    post = model.posterior(y)
    np.testing.assert_allclose(post.mean[:, 0], res.smoothed_state[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(post.variance[:, 0], res.smoothed_state_cov[0, 0], rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(post.filtered.mean[:, 0], res.filtered_state[0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(model.log_likelihood(y)[0], res.llf, rtol=0, atol=1e-6)
    np.testing.assert_allclose(post.log_predictive, res.llf_obs, rtol=0, atol=1e-8)


@needs_statsmodels
def test_multivariate_with_missing_entries_matches_statsmodels():
    params = rotating_model()
    Y = with_gaps(_simulate(*params, 60, np.random.default_rng(0))[0])
    A, C, Q, R, m0, P0 = params
    mod = sm.tsa.statespace.MLEModel(Y, k_states=2)
    mod["design"], mod["obs_cov"], mod["transition"], mod["selection"], mod["state_cov"] = C, R, A, np.eye(2), Q
    mod.ssm.initialize_known(m0, P0)
    res = mod.ssm.smooth()
    post = known(params).fit(Y).posterior(Y)
    np.testing.assert_allclose(post.mean, res.smoothed_state.T, atol=1e-8)
    np.testing.assert_allclose(post.covariance, np.moveaxis(res.smoothed_state_cov, -1, 0), atol=1e-8)
    np.testing.assert_allclose(post.log_likelihood[0], res.llf_obs.sum(), atol=1e-8)


@needs_statsmodels
def test_em_local_level_reaches_statsmodels_mle():
    # The likelihood is flat near the optimum: statsmodels' default L-BFGS stops at -639.3006909, its
    # Nelder-Mead at -639.3006772; EM goes at least as high as either and agrees with Nelder-Mead's point.
    y = load_nile().data
    mod = statsmodels_local_level(y[:, 0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = [mod.fit(start_params=[15000.0, 1500.0], disp=False, maxiter=5000, method=method)
                for method in ("lbfgs", "nm")]
    model = LinearGaussianSSM(1, transition_matrix=ONE, observation_matrix=ONE, initial_mean=NILE_M0,
                              initial_covariance=NILE_P0, fixed=LOCAL_LEVEL_FIXED, max_iter=5000, tol=1e-10).fit(y)
    assert model.converged_
    assert np.all(np.diff(model.history_) >= -1e-12)
    loglik = model.log_likelihood(y)[0]
    assert loglik >= max(fit.llf for fit in fits) - 1e-8
    np.testing.assert_allclose(loglik, mod.loglike([model.observation_covariance_[0, 0],
                                                    model.transition_covariance_[0, 0]]), atol=1e-8)
    nm = fits[1].params
    np.testing.assert_allclose(model.observation_covariance_[0, 0], nm[0], rtol=1e-4)
    np.testing.assert_allclose(model.transition_covariance_[0, 0], nm[1], rtol=1e-4)
    for fit in fits:  # and both optimisers' points within 0.5% (the flat direction)
        np.testing.assert_allclose([model.observation_covariance_[0, 0], model.transition_covariance_[0, 0]],
                                   fit.params, rtol=5e-3)
    # frozen parameters are unchanged to the bit
    assert model.transition_matrix_[0, 0] == 1.0 and model.observation_matrix_[0, 0] == 1.0
    np.testing.assert_array_equal(model.initial_covariance_, NILE_P0)
    np.testing.assert_array_equal(model.initial_mean_, NILE_M0)


# -- the dense joint Gaussian ----------------------------------------------------------------------
def dense_joint(params, T):
    """Mean and covariance of (x_1..x_T, y_1..y_T) of one sequence, stacked frame by frame."""
    A, C, Q, R, m0, P0 = params
    d = A.shape[0]
    mean = [m0]
    var = [P0]
    for _ in range(1, T):
        mean.append(A @ mean[-1])
        var.append(A @ var[-1] @ A.T + Q)
    Sxx = np.zeros((T * d, T * d))
    for t in range(T):
        for s in range(t, T):
            block = np.linalg.matrix_power(A, s - t) @ var[t]  # Cov(x_s, x_t)
            Sxx[s * d:(s + 1) * d, t * d:(t + 1) * d] = block
            Sxx[t * d:(t + 1) * d, s * d:(s + 1) * d] = block.T
    Cb = np.kron(np.eye(T), C)
    mx = np.concatenate(mean)
    return mx, Sxx, Cb @ mx, Cb @ Sxx, Cb @ Sxx @ Cb.T + np.kron(np.eye(T), R)


def dense_posterior(params, Y):
    """Exact posterior of the stacked states given the observed entries of Y, and log p(y_obs)."""
    T, d = Y.shape[0], params[0].shape[0]
    mx, Sxx, my, Syx, Syy = dense_joint(params, T)
    obs = ~np.isnan(Y.ravel())
    y = Y.ravel()[obs]
    Soo, Sox = Syy[np.ix_(obs, obs)], Syx[obs]
    gain = np.linalg.solve(Soo, Sox).T
    mean = mx + gain @ (y - my[obs])
    cov = Sxx - gain @ Sox
    loglik = stats.multivariate_normal(my[obs], Soo).logpdf(y) if obs.any() else 0.0
    return mean.reshape(T, d), 0.5 * (cov + cov.T), loglik


def test_smoother_equals_dense_conditioning():
    params = rotating_model()
    rng = np.random.default_rng(1)
    lengths = np.array([4, 3])
    Y = np.concatenate([_simulate(*params, n, rng)[0] for n in lengths])
    Y[1] = np.nan
    Y[2, 0] = np.nan
    Y[5, [1, 2]] = np.nan
    post = known(params).fit(Y, lengths=lengths).posterior(Y, lengths=lengths)
    paths = post.sample(3, random_state=0)
    d = 2
    for seq, (lo, hi) in zip(post.sequences, [(0, 4), (4, 7)], strict=True):
        mean, cov, loglik = dense_posterior(params, Y[lo:hi])
        T = hi - lo
        blocks = cov.reshape(T, d, T, d)
        np.testing.assert_allclose(seq.mean, mean, atol=1e-10)
        np.testing.assert_allclose(seq.covariance, np.stack([blocks[t, :, t] for t in range(T)]), atol=1e-10)
        np.testing.assert_allclose(seq.lag_covariance[:-1], np.stack([blocks[t + 1, :, t] for t in range(T - 1)]),
                                   atol=1e-10)
        np.testing.assert_allclose(seq.log_likelihood[0], loglik, atol=1e-10)
        dense = stats.multivariate_normal(mean.ravel(), cov)
        x = paths[:, lo:hi]
        np.testing.assert_allclose(seq.log_prob(x), dense.logpdf(x.reshape(3, -1)), atol=1e-9)
        np.testing.assert_allclose(seq.entropy(), dense.entropy(), atol=1e-10)
    marginals = post.marginals  # a MultivariateNormal per frame
    np.testing.assert_array_equal(marginals.mean, post.mean)
    np.testing.assert_array_equal(marginals.covariance_matrix, post.covariance)
    assert marginals.log_prob(paths).shape == (3, 7) and post.sample(()).shape == (7, 2)
    # the whole-posterior values are the sums over the independent sequences
    np.testing.assert_allclose(post.log_prob(paths), sum(s.log_prob(paths[:, lo:hi]) for s, (lo, hi)
                                                        in zip(post.sequences, [(0, 4), (4, 7)], strict=True)))


def test_simulation_smoother_draws_match_the_exact_joint_posterior():
    # Whole-path draws: their Mahalanobis distances under the dense posterior are chi-square(T d), which
    # per-frame (marginal) draws fail; mean and every covariance entry within Monte Carlo error.
    params = rotating_model()
    Y = _simulate(*params, 6, np.random.default_rng(2))[0]
    Y[2] = np.nan
    mean, cov, _ = dense_posterior(params, Y)
    n = 20000
    draws = known(params).fit(Y).posterior(Y).sample(n, random_state=3).reshape(n, -1)
    k = mean.size
    diff = draws - mean.ravel()
    maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    assert stats.kstest(maha, stats.chi2(k).cdf).pvalue > 1e-6
    z = 5.5  # ~ Bonferroni over the k + k (k + 1) / 2 statistics at p ~ 1e-6
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.all(np.abs(diff.mean(axis=0)) < z * se_mean)
    prod = diff[:, :, None] * diff[:, None, :]
    se_cov = prod.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(prod.mean(axis=0) - cov) < z * se_cov + 1e-12)


def test_long_series_is_stable_and_reaches_the_riccati_steady_state():
    params = rotating_model()
    A, C, Q, R = params[:4]
    Y = _simulate(*params, 100_000, np.random.default_rng(4))[0]
    ks = _kalman.kalman_smoother(Y, *params)
    steady = solve_discrete_are(A.T, C.T, Q, R)  # the predicted covariance's fixed point
    np.testing.assert_allclose(ks.predicted_cov[-1], steady, rtol=1e-10, atol=1e-12)
    assert np.all(np.isfinite(ks.smoothed_mean)) and np.isfinite(ks.log_likelihood[0])
    np.testing.assert_array_equal(ks.smoothed_cov, np.swapaxes(ks.smoothed_cov, 1, 2))
    assert np.linalg.eigvalsh(ks.smoothed_cov).min() > 0
    # the smoothed covariance settles too (to the same matrix far from both ends)
    np.testing.assert_allclose(ks.smoothed_cov[1000], ks.smoothed_cov[50_000], rtol=1e-10)


# -- EM ----------------------------------------------------------------------------------------------
def test_em_is_monotone_with_missing_values_and_keeps_fixed_parameters():
    params = rotating_model()
    rng = np.random.default_rng(5)
    lengths = np.array([80, 60])
    Y = np.concatenate([_simulate(*params, n, rng)[0] for n in lengths])
    Y[rng.random(Y.shape) < 0.15] = np.nan
    Y[[3, 90]] = np.nan
    C = params[1].copy()
    model = LinearGaussianSSM(2, observation_matrix=C, fixed=["observation_matrix"], max_iter=60, tol=0,
                              random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Y, lengths=lengths)
    assert model.n_iter_ == 60 and model.history_.size == 61
    assert np.all(np.diff(model.history_) * Y.shape[0] >= -1e-8)
    assert model.history_[-1] > model.history_[0] + 0.1
    np.testing.assert_array_equal(model.observation_matrix_, C)
    np.testing.assert_allclose(model.history_[-1] * Y.shape[0], model.log_likelihood(Y, lengths=lengths).sum())


def test_free_em_is_monotone_from_its_own_start():
    X, lengths = LinearGaussianSSM._conformance_data(np.random.default_rng(0))
    model = LinearGaussianSSM(4, max_iter=40, tol=0, random_state=0)  # d > p: random starting loadings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(X, lengths=lengths)
    assert np.all(np.diff(model.history_) * X.shape[0] >= -1e-8)


def test_sequences_are_independent_and_share_the_start():
    params = rotating_model()
    rng = np.random.default_rng(6)
    parts = [_simulate(*params, n, rng)[0] for n in (30, 20)]
    model = known(params).fit(parts[0])
    joint = model.log_likelihood(np.concatenate(parts), lengths=[30, 20])
    np.testing.assert_allclose(joint, [model.log_likelihood(p)[0] for p in parts], rtol=1e-12)
    means = model.posterior(np.concatenate(parts), lengths=[30, 20]).mean
    np.testing.assert_allclose(means[30:], model.posterior(parts[1]).mean, rtol=1e-12)


# -- the rest of the API ------------------------------------------------------------------------------------
def test_forecast_mean_and_shapes():
    params = rotating_model()
    Y = _simulate(*params, 40, np.random.default_rng(7))[0]
    model = known(params).fit(Y)
    Xf, Zf = model.forecast(Y, 3, n_samples=20000, random_state=0)
    assert Xf.shape == (20000, 3, 3) and Zf.shape == (20000, 3, 2)
    A, C = params[:2]
    m = model.posterior(Y).filtered.mean[-1]
    for h in range(3):
        m = A @ m
        assert np.all(np.abs(Xf[:, h].mean(axis=0) - C @ m) < 6 * Xf[:, h].std(axis=0) / np.sqrt(20000))


def test_arviz_output_has_time_and_latent_dim():
    import arviz as az

    y = load_nile().data
    model = local_level(15099.0, 1469.1).fit(y)
    data = model.to_arviz(y, n_samples=50, random_state=0)
    state = data["latent_posterior"]["state"]
    assert state.dims == ("chain", "draw", "time", "latent_dim") and state.shape == (1, 50, 100, 1)
    np.testing.assert_allclose(data["constant_data"]["log_predictive"].values.sum(), model.log_likelihood(y)[0])
    assert data["posterior"].attrs["inference_method"] == "exact"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(data, group="latent_posterior", var_names=["state"], kind="stats")
    assert summary.shape[0] == 100


def test_save_load_roundtrip_is_exact():
    params = rotating_model()
    Y = with_gaps(_simulate(*params, 30, np.random.default_rng(8))[0])
    model = LinearGaussianSSM(2, max_iter=5, random_state=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Y)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ssm.npz")
        model.save(path)
        loaded = probspace.load(path)
    for name in ("transition_matrix_", "observation_covariance_", "initial_mean_", "history_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.posterior(Y).sample(2, random_state=0), model.posterior(Y).sample(
        2, random_state=0))


# -- bad input ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "message"), [
    ({"fixed": ["transition_matrix"]}, "'transition_matrix' is in fixed but was not given"),
    ({"transition_matrix": np.eye(3)}, r"transition_matrix must have shape \(2, 2\)"),
    ({"observation_matrix": np.ones((2, 2))}, r"observation_matrix must have shape \(3, 2\)"),
    ({"transition_covariance": np.array([[1.0, 2.0], [2.0, 1.0]])}, "transition_covariance must be positive definite"),
    ({"observation_covariance": np.array([[1.0, 0, 0], [0.5, 1, 0], [0, 0, 1]])}, "must be symmetric"),
    ({"initial_mean": np.array([np.nan, 0.0])}, "initial_mean must be finite"),
])
def test_bad_parameters_are_value_errors(kwargs, message):
    X, lengths = LinearGaussianSSM._conformance_data(np.random.default_rng(0))
    model = LinearGaussianSSM(2, max_iter=2, **kwargs)
    with pytest.raises(ValueError, match=message):
        model.fit(X, lengths=lengths)
    assert not hasattr(model, "backend_")


@pytest.mark.parametrize(("kwargs", "name"), [({"fixed": ["A"]}, "fixed"), ({"fixed": "some"}, "fixed"),
                                              ({"max_iter": -1}, "max_iter"), ({"min_covar": -1.0}, "min_covar"),
                                              ({"n_components": 1.5}, "n_components")])
def test_bad_settings_are_invalid_parameter_errors(kwargs, name):
    with pytest.raises(InvalidParameterError, match=name):
        LinearGaussianSSM(**kwargs).fit(np.zeros((5, 1)))


def test_bad_data():
    X, lengths = LinearGaussianSSM._conformance_data(np.random.default_rng(0))
    bad = X.copy()
    bad[:, 1] = np.nan
    with pytest.raises(ValueError, match=r"no observed value in column\(s\) \[1\]"):
        LinearGaussianSSM(2).fit(bad)
    with pytest.raises(ValueError, match="add up to"):
        LinearGaussianSSM(2).fit(X, lengths=[10, 10])
    inf = X.copy()
    inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        LinearGaussianSSM(2).fit(inf)
    with pytest.raises(NotFittedError):
        LinearGaussianSSM(2).forecast(X, 2)
    model = known(rotating_model()).fit(X)
    with pytest.raises(ValueError, match="n_steps"):
        model.forecast(X, 0)
    with pytest.raises(ValueError, match="must end in shape"):
        model.posterior(X).log_prob(np.zeros((2, 5, 2)))


# -- inputs (control / covariates): x_t = A x_t-1 + B u_t + w_t, y_t = C x_t + D u_t + v_t -----------------
def input_model():
    B = np.array([[0.5, 0.0], [-0.3, 0.8]])
    D = np.array([[1.0, 0.0], [0.0, -2.0], [0.5, 0.5]])
    return rotating_model(), B, D


def with_inputs(params, B, D, T, rng):
    U = rng.normal(size=(T, 2))  # white inputs (a slowly varying one is partly confounded with the state)
    Y, Z = _simulate(*params, T, rng, state_offset=U @ B.T, obs_offset=U @ D.T)
    return Y, U


@needs_statsmodels
def test_inputs_match_statsmodels_intercepts():
    params, B, D = input_model()
    Y, U = with_inputs(params, B, D, 50, np.random.default_rng(9))
    Y = with_gaps(Y)
    A, C, Q, R, m0, P0 = params
    mod = sm.tsa.statespace.MLEModel(Y, k_states=2)
    mod["design"], mod["obs_cov"], mod["transition"], mod["selection"], mod["state_cov"] = C, R, A, np.eye(2), Q
    mod["obs_intercept"] = (U @ D.T).T
    intercept = np.zeros((2, 50))
    intercept[:, :-1] = (U[1:] @ B.T).T  # statsmodels: c_t enters the state at t + 1
    mod["state_intercept"] = intercept
    mod.ssm.initialize_known(m0, P0)
    res = mod.ssm.smooth()
    model = LinearGaussianSSM(2, **dict(zip(
        ("transition_matrix", "observation_matrix", "transition_covariance", "observation_covariance",
         "initial_mean", "initial_covariance"), params, strict=True)), control_matrix=B, feedthrough_matrix=D,
        fixed="all").fit(Y, U)
    post = model.posterior(Y, U)
    np.testing.assert_allclose(post.mean, res.smoothed_state.T, atol=1e-8)
    np.testing.assert_allclose(post.covariance, np.moveaxis(res.smoothed_state_cov, -1, 0), atol=1e-8)
    np.testing.assert_allclose(model.log_likelihood(Y, U)[0], res.llf_obs.sum(), atol=1e-8)
    assert model.n_inputs_ == 2


def test_em_with_inputs_is_monotone_and_recovers_the_input_effects():
    params, B, D = input_model()
    rng = np.random.default_rng(10)
    Y, U = with_inputs(params, B, D, 2000, rng)
    Y[rng.random(Y.shape) < 0.1] = np.nan
    A, C = params[:2]
    # A and C fixed (the state's scale and rotation are otherwise not identified): B, D, Q, R, mu0, P0 by EM
    fixed = {"transition_matrix": A, "observation_matrix": C, "fixed": ["transition_matrix", "observation_matrix"]}
    model = LinearGaussianSSM(2, **fixed, max_iter=200, tol=1e-4, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Y, U)
    assert np.all(np.diff(model.history_) * Y.shape[0] >= -1e-8)
    # estimation error of B and D at T = 2000 is ~0.02 (checked over seeds); 0.1 is ~5 standard errors
    np.testing.assert_allclose(model.control_matrix_, B, atol=0.1)
    np.testing.assert_allclose(model.feedthrough_matrix_, D, atol=0.1)
    truth = known(params).set_params(control_matrix=B, feedthrough_matrix=D).fit(Y, U)
    assert model.log_likelihood(Y, U)[0] > truth.log_likelihood(Y, U)[0]
    # the fit with inputs explains the data better than without them
    without = LinearGaussianSSM(2, **fixed, max_iter=50, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        without.fit(Y)
    assert model.score(Y, U) > without.score(Y) + 0.5


def test_inputs_in_sample_forecast_arviz_and_save():
    params, B, D = input_model()
    Y, U = with_inputs(params, B, D, 40, np.random.default_rng(11))
    model = LinearGaussianSSM(2, max_iter=5, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Y, U)
    X_new, Z_new = model.sample(7, y=U[:7], random_state=0)
    assert X_new.shape == (7, 3) and Z_new.shape == (7, 2)
    Xf, Zf = model.forecast(Y, 4, n_samples=5, y=U, y_future=U[:4], random_state=0)
    assert Xf.shape == (5, 4, 3)
    data = model.to_arviz(Y, n_samples=5, y=U, random_state=0)
    np.testing.assert_allclose(data["constant_data"]["smoothed_mean"].values, model.posterior(Y, U).mean)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ssm.npz")
        model.save(path)
        loaded = probspace.load(path)
    np.testing.assert_array_equal(loaded.log_likelihood(Y, U), model.log_likelihood(Y, U))
    np.testing.assert_array_equal(loaded.control_matrix_, model.control_matrix_)


def test_bad_inputs():
    params, B, D = input_model()
    Y, U = with_inputs(params, B, D, 30, np.random.default_rng(12))
    model = LinearGaussianSSM(2, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Y, U)
    with pytest.raises(ValueError, match=r"fitted with 2 input\(s\) per frame: pass them as y"):
        model.posterior(Y)
    with pytest.raises(ValueError, match="y has 1 input"):
        model.log_likelihood(Y, U[:, 0])
    with pytest.raises(ValueError, match=r"one row per frame, shape \(30, n_inputs\)"):
        model.posterior(Y, U[:10])
    bad = U.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="must be finite"):
        LinearGaussianSSM(2).fit(Y, bad)
    with pytest.raises(ValueError, match=r"shape \(5, n_inputs\); got shape \(4, 2\)"):
        model.sample(5, y=U[:4])
    with pytest.raises(ValueError, match="control_matrix multiplies the inputs, but fit received none"):
        LinearGaussianSSM(2, control_matrix=B).fit(Y)
    with pytest.raises(ValueError, match=r"control_matrix must have shape \(2, 2\)"):
        LinearGaussianSSM(2, control_matrix=np.ones((2, 3))).fit(Y, U)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        no_inputs = LinearGaussianSSM(2, max_iter=2).fit(Y)
    with pytest.raises(ValueError, match="fitted with 0"):
        no_inputs.posterior(Y, U)


# -- held entries (structural zeros, diagonal covariances) ------------------------------------------------
@pytest.mark.parametrize("pattern", ["columns", "entries"])
def test_partial_regression_solves_the_restricted_normal_equations(pattern):
    # _regress minimises tr(S^-1 (Syy - W Syz' - Syz W' + W Szz W')) over the free entries: its gradient
    # S^-1 (W Szz - Syz) vanishes there, and the held entries are untouched.
    from probspace.models._ssm import _regress

    rng = np.random.default_rng(13)
    M = rng.normal(size=(5, 5))
    Szz = M @ M.T + np.eye(5)
    L = rng.normal(size=(3, 3))
    S = L @ L.T + np.eye(3)
    Syz, W0 = rng.normal(size=(3, 5)), rng.normal(size=(3, 5))
    held = np.zeros((3, 5), dtype=bool)
    if pattern == "columns":
        held[:, [1, 4]] = True
    else:
        held[0, 1] = held[2, 3] = held[1, 0] = True
    W = _regress(Syz, Szz, W0, held, S)
    np.testing.assert_array_equal(W[held], W0[held])
    grad = np.linalg.solve(S, W @ Szz - Syz)
    np.testing.assert_allclose(grad[~held], 0.0, atol=1e-10)


def test_held_entries_stay_exact_and_em_reaches_a_stationary_point():
    params = rotating_model()
    A = params[0].copy()
    A[0, 1] = 0.0  # a structural zero
    truth = (A, params[1], params[2], np.diag([0.3, 0.4, 0.2]), params[4], params[5])
    rng = np.random.default_rng(14)
    Y = _simulate(*truth, 400, rng)[0]
    Y[rng.random(Y.shape) < 0.1] = np.nan
    fixed = {"transition_matrix": np.array([[False, True], [False, False]]), "observation_matrix": True,
             "initial_mean": np.array([True, False]), "initial_covariance": True,
             "observation_covariance": ~np.eye(3, dtype=bool)}
    model = LinearGaussianSSM(2, transition_matrix=A, observation_matrix=params[1], initial_mean=[1.0, 0.0],
                              initial_covariance=np.eye(2), observation_covariance=np.eye(3), fixed=fixed,
                              max_iter=400, tol=1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(Y)
    assert np.all(np.diff(model.history_) * Y.shape[0] >= -1e-8)
    assert model.transition_matrix_[0, 1] == 0.0 and model.initial_mean_[0] == 1.0
    R = model.observation_covariance_
    np.testing.assert_array_equal(R, np.diag(np.diag(R)))
    np.testing.assert_array_equal(model.observation_matrix_, params[1])
    # at the fit, the log-likelihood is flat in every free entry (central differences)
    fitted = {name: getattr(model, name + "_") for name in ("transition_matrix", "observation_matrix",
              "transition_covariance", "observation_covariance", "initial_mean", "initial_covariance")}

    def loglik(name, index, step):
        value = fitted[name].copy()
        value[index] += step
        if name.endswith("covariance") and len(set(index)) == 2:
            value[index[::-1]] += step
        return known(tuple({**fitted, name: value}.values())).fit(Y[:2]).log_likelihood(Y)[0]

    def newton_step(name, index, step=1e-4):
        up, mid, down = loglik(name, index, step), loglik(name, index, 0.0), loglik(name, index, -step)
        return -((up - down) / (2 * step)) / ((up - 2 * mid + down) / step**2)

    # the Newton step to the maximum along each free entry is negligible (EM's slow tail leaves ~1e-6)
    for name, index in [("transition_matrix", (0, 0)), ("transition_matrix", (1, 0)), ("transition_matrix", (1, 1)),
                        ("transition_covariance", (0, 1)), ("transition_covariance", (1, 1)),
                        ("observation_covariance", (2, 2)), ("initial_mean", (1,))]:
        assert abs(newton_step(name, index)) < 1e-4, (name, index, newton_step(name, index))
    # along a held entry it is not (the check can fail)
    assert abs(newton_step("transition_matrix", (0, 1))) > 1e-3


def test_bad_masks():
    X, lengths = LinearGaussianSSM._conformance_data(np.random.default_rng(0))
    with pytest.raises(ValueError, match=r"boolean mask of shape \(2, 2\)"):
        LinearGaussianSSM(2, transition_matrix=np.eye(2), fixed={"transition_matrix": np.ones((3, 3), bool)}).fit(X)
    with pytest.raises(ValueError, match="off-diagonal"):
        LinearGaussianSSM(2, transition_covariance=np.eye(2),
                          fixed={"transition_covariance": np.array([[True, False], [False, False]])}).fit(X)
    with pytest.raises(ValueError, match="must be diagonal where fixed holds its off-diagonal"):
        LinearGaussianSSM(2, transition_covariance=np.array([[1.0, 0.5], [0.5, 1.0]]),
                          fixed={"transition_covariance": ~np.eye(2, dtype=bool)}).fit(X)
    with pytest.raises(InvalidParameterError, match="fixed"):
        LinearGaussianSSM(2, fixed={"A": True}).fit(X)


@needs_statsmodels
def test_forecast_distribution_matches_statsmodels_and_the_draws():
    y = load_nile().data
    params = [15099.0, 1469.1]
    res = statsmodels_local_level(y[:, 0]).smooth(params)
    model = local_level(*params).fit(y)
    fc = model.forecast_distribution(y, 5)
    ref = res.get_forecast(5)
    np.testing.assert_allclose(fc.mean[:, 0], ref.predicted_mean, atol=1e-6)
    np.testing.assert_allclose(fc.covariance_matrix[:, 0, 0], ref.var_pred_mean, rtol=1e-10)
    draws = model.forecast(y, 5, n_samples=20000, random_state=0)[0][:, :, 0]
    assert np.all(np.abs(draws.mean(axis=0) - fc.mean[:, 0]) < 6 * np.sqrt(fc.variance[:, 0] / 20000))
    assert np.all(np.abs(draws.var(axis=0) / fc.variance[:, 0] - 1) < 6 * np.sqrt(2 / 20000))
