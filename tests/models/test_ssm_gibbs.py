"""LinearGaussianSSM(sampler="gibbs"): conjugate closed forms, the Nile variances against a grid posterior, outputs."""

import os
import tempfile

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

import probspace
from probspace import LinearGaussianSSM
from probspace.datasets import load_nile
from probspace.diagnostics import loo_waic

ONE = np.eye(1)
TINY = 1e-12 * ONE  # Q and P0 this small make the state path known: x_t = mu0 for every t
NILE_M0, NILE_P0 = np.array([1000.0]), np.array([[1e5]])
LOCAL_LEVEL_FIXED = ["transition_matrix", "observation_matrix", "initial_mean", "initial_covariance"]
#: Nile prior: R ~ IG(2, 15000), Q ~ IG(2, 1500) (df 4; scale twice the rate).
NILE_PRIOR = {"observation_covariance_df": 4.0, "observation_covariance_scale": 30000.0,
              "transition_covariance_df": 4.0, "transition_covariance_scale": 3000.0}


def known_path_model(p, **kw):
    """A model whose path is known (x_t = 0), with only R free: R's posterior is inverse-Wishart in closed form."""
    return LinearGaussianSSM(1, transition_matrix=ONE, observation_matrix=np.ones((p, 1)), transition_covariance=TINY,
                             initial_mean=np.zeros(1), initial_covariance=TINY,
                             fixed=["transition_matrix", "observation_matrix", "transition_covariance",
                                    "initial_mean", "initial_covariance"], random_state=0, **kw)


def test_known_path_inverse_gamma_with_missing_values():
    # R | y ~ IG((df + n_obs) / 2, (scale + sum of observed y^2) / 2): the missing entries are imputed
    # inside the chain and must drop out exactly.
    rng = np.random.default_rng(1)
    y = rng.normal(scale=1.5, size=(60, 1))
    y[rng.random(60) < 0.25] = np.nan
    df, scale = 3.0, 2.0
    model = known_path_model(1, sampler="gibbs", n_chains=2, n_draws=1500, n_warmup=50,
                             prior={"observation_covariance_df": df, "observation_covariance_scale": scale}).fit(y)
    draws = model.draws_["observation_covariance"][:, ::3, 0, 0].ravel()  # thinned: the imputation couples draws
    obs = y[~np.isnan(y)]
    exact = stats.invgamma(0.5 * (df + obs.size), scale=0.5 * (scale + np.sum(obs**2)))
    assert stats.kstest(draws, exact.cdf).pvalue > 1e-6
    assert set(model.draws_) == {"observation_covariance"}  # held arrays are not in draws_


def test_known_path_inverse_wishart_full_covariance():
    # Two features, full R: R | y ~ IW(df + n, scale + sum y y'); its (0, 0) entry is IG((df + n - 1) / 2, S_00 / 2)
    # and R_01 / R_00 given R_00 ... we test the two diagonal marginals and the mean of the off-diagonal entry.
    rng = np.random.default_rng(2)
    y = rng.multivariate_normal([0, 0], [[1.0, 0.6], [0.6, 2.0]], size=80)
    df, scale = 5.0, np.eye(2)
    model = known_path_model(2, sampler="gibbs", n_chains=1, n_draws=2000, n_warmup=10,
                             prior={"observation_covariance_df": df, "observation_covariance_scale": scale}).fit(y)
    R = model.draws_["observation_covariance"][0]
    post_scale = scale + y.T @ y
    nu = df + y.shape[0]
    for i in range(2):
        exact = stats.invgamma(0.5 * (nu - 1), scale=0.5 * post_scale[i, i])
        assert stats.kstest(R[:, i, i], exact.cdf).pvalue > 1e-6
    mean01 = post_scale[0, 1] / (nu - 3)
    se = R[:, 0, 1].std() / np.sqrt(R.shape[0])
    assert abs(R[:, 0, 1].mean() - mean01) < 6 * se


def normal_posterior(Z, y, noise_var, prior_mean, prior_sd):
    """Closed-form posterior of w in y = Z w + e, e ~ N(0, noise_var), w ~ N(prior_mean, prior_sd^2 I)."""
    prec = Z.T @ Z / noise_var + np.eye(Z.shape[1]) / prior_sd**2
    cov = np.linalg.inv(prec)
    return cov @ (Z.T @ y / noise_var + prior_mean / prior_sd**2), cov


def test_observed_states_transition_coefficient_is_normal():
    # R tiny: the states are observed (x = y); A | x is the normal posterior of a regression of x_t on x_t-1.
    rng = np.random.default_rng(4)
    x = np.zeros(120)
    x[0] = 2.0
    for t in range(1, 120):
        x[t] = 0.8 * x[t - 1] + rng.normal(scale=0.7)
    Q = 0.49
    model = LinearGaussianSSM(1, observation_matrix=ONE, observation_covariance=1e-10 * ONE,
                              transition_covariance=Q * ONE,
                              initial_mean=[2.0], initial_covariance=1e-10 * ONE,
                              fixed=["observation_matrix", "observation_covariance", "transition_covariance",
                                     "initial_mean", "initial_covariance"], sampler="gibbs", n_chains=1,
                              n_draws=2000, n_warmup=5, max_iter=0, random_state=0,
                              prior={"transition_coef_mean": 0.0, "transition_coef_sd": 2.0}).fit(x[:, None])
    mean, cov = normal_posterior(x[:-1, None], x[1:], Q, 0.0, 2.0)
    draws = model.draws_["transition_matrix"][0, :, 0, 0]
    assert stats.kstest(draws, stats.norm(mean[0], np.sqrt(cov[0, 0])).cdf).pvalue > 1e-6


def test_known_path_observation_coefficients_with_held_entry_and_inputs():
    # Path known (x_t = 5 * 0.97^t); R fixed and diagonal, so the rows of [C D] are independent regressions.
    # C[0] is held at 1: row 0 draws D[0] alone; row 1 draws (C[1], D[1]) jointly.
    rng = np.random.default_rng(5)
    T = 80
    x = 5.0 * 0.97 ** np.arange(T)
    u = rng.normal(size=(T, 1))
    R = np.array([0.5, 0.8])
    Y = np.column_stack([x + 0.3 * u[:, 0], -0.7 * x + 1.2 * u[:, 0]]) + rng.normal(size=(T, 2)) * np.sqrt(R)
    C = np.array([[1.0], [0.0]])
    model = LinearGaussianSSM(1, transition_matrix=np.array([[0.97]]), transition_covariance=TINY,
                              initial_mean=[5.0], initial_covariance=TINY, observation_matrix=C,
                              observation_covariance=np.diag(R), control_matrix=np.zeros((1, 1)),
                              fixed={"transition_matrix": True, "transition_covariance": True, "initial_mean": True,
                                     "initial_covariance": True, "observation_covariance": True,
                                     "control_matrix": True, "observation_matrix": np.array([[True], [False]])},
                              sampler="gibbs", n_chains=1, n_draws=2000, n_warmup=5, max_iter=0, random_state=0,
                              prior={"observation_coef_mean": 0.0, "observation_coef_sd": 3.0}).fit(Y, u)
    assert np.all(model.draws_["observation_matrix"][..., 0, 0] == 1.0)
    m0, v0 = normal_posterior(u, Y[:, 0] - x, R[0], 0.0, 3.0)
    m1, v1 = normal_posterior(np.column_stack([x, u[:, 0]]), Y[:, 1], R[1], 0.0, 3.0)
    checks = [(model.draws_["feedthrough_matrix"][0, :, 0, 0], m0[0], v0[0, 0]),
              (model.draws_["observation_matrix"][0, :, 1, 0], m1[0], v1[0, 0]),
              (model.draws_["feedthrough_matrix"][0, :, 1, 0], m1[1], v1[1, 1])]
    for draws, mean, var in checks:
        assert stats.kstest(draws, stats.norm(mean, np.sqrt(var)).cdf).pvalue > 1e-6


def local_level_loglik(y, R, Q, m0, P0):
    """Exact log-likelihood of the local level model, vectorised over arrays of (R, Q)."""
    m, P = np.full(R.shape, m0), np.full(R.shape, P0)
    total = np.zeros(R.shape)
    for t, obs in enumerate(y):
        if t:
            P = P + Q
        S = P + R
        total += -0.5 * (np.log(2 * np.pi * S) + (obs - m) ** 2 / S)
        K = P / S
        m, P = m + K * (obs - m), (1 - K) * P
    return total


@pytest.mark.slow
def test_nile_variances_match_grid_posterior():
    y = load_nile().data
    lr, lq = np.meshgrid(np.linspace(np.log(4e3), np.log(4e4), 300), np.linspace(np.log(50), np.log(2e4), 300),
                         indexing="ij")
    R, Q = np.exp(lr), np.exp(lq)
    ll = local_level_loglik(y[:, 0], R, Q, NILE_M0[0], NILE_P0[0, 0])
    model = LinearGaussianSSM(1, transition_matrix=ONE, observation_matrix=ONE, initial_mean=NILE_M0,
                              initial_covariance=NILE_P0, fixed=LOCAL_LEVEL_FIXED, sampler="gibbs", n_chains=2,
                              n_draws=3000, n_warmup=300, prior=NILE_PRIOR, random_state=0).fit(y)
    # the vectorised filter agrees with the model's own Kalman filter at one grid point
    point = LinearGaussianSSM(1, transition_matrix=ONE, observation_matrix=ONE, initial_mean=NILE_M0,
                              initial_covariance=NILE_P0, observation_covariance=R[120, 200:201, None],
                              transition_covariance=Q[120, 200:201, None], fixed="all").fit(y)
    assert np.isclose(point.log_likelihood(y)[0], ll[120, 200], rtol=1e-10)
    log_prior = (stats.invgamma(2, scale=15000).logpdf(R) + stats.invgamma(2, scale=1500).logpdf(Q)
                 + lr + lq)  # the grid is uniform in the logs: Jacobian R * Q
    logw = ll + log_prior
    w = np.exp(logw - logsumexp(logw)).ravel()
    import arviz as az

    idata = model.to_arviz(y, n_samples=3000, random_state=0)
    for name, grid in (("observation_covariance", R), ("transition_covariance", Q)):
        draws = model.draws_[name][:, :, 0, 0]
        ess = float(az.ess(draws))
        exact_mean = float(w @ grid.ravel())
        exact_sd = float(np.sqrt(w @ (grid.ravel() - exact_mean) ** 2))
        se = exact_sd / np.sqrt(ess)
        assert abs(draws.mean() - exact_mean) < 5 * se, (name, draws.mean(), exact_mean, se, ess)
        order = np.argsort(grid.ravel())
        cdf = np.cumsum(w[order])
        for q in (0.1, 0.5, 0.9):
            exact_q = grid.ravel()[order][np.searchsorted(cdf, q)]
            # the draws' quantile at the exact quantile's level: binomial MC error, ESS draws
            level = float(np.mean(draws <= exact_q))
            assert abs(level - q) < 5 * np.sqrt(q * (1 - q) / ess), (name, q, level)
    assert float(az.rhat(idata, var_names=["transition_covariance"])["transition_covariance"].max()) < 1.05


@pytest.fixture(scope="module")
def nile_fit():
    y = load_nile().data.copy()
    y[[20, 21, 60]] = np.nan
    model = LinearGaussianSSM(1, transition_matrix=ONE, observation_matrix=ONE, initial_mean=NILE_M0,
                              initial_covariance=NILE_P0, fixed=LOCAL_LEVEL_FIXED, sampler="gibbs", n_chains=2,
                              n_draws=150, n_warmup=50, prior=NILE_PRIOR, random_state=0).fit(y)
    return model, y


def test_gibbs_outputs(nile_fit):
    model, y = nile_fit
    assert set(model.draws_) == {"transition_covariance", "observation_covariance"}
    assert model.draws_["observation_covariance"].shape == (2, 150, 1, 1)
    assert model.sample_stats_["total_log_likelihood"].shape == (2, 150)
    # lp: the log joint under the prior used (here two inverse-gamma densities)
    R, Q = (model.draws_[k][..., 0, 0] for k in ("observation_covariance", "transition_covariance"))
    lp = (model.sample_stats_["total_log_likelihood"] + stats.invgamma.logpdf(R, 2, scale=15000)
          + stats.invgamma.logpdf(Q, 2, scale=1500))
    assert np.allclose(model.sample_stats_["lp"], lp, rtol=1e-12)
    assert np.array_equal(model.observation_matrix_, ONE)  # held arrays stay exactly as given
    assert model.observation_covariance_[0, 0] == pytest.approx(model.draws_["observation_covariance"].mean())
    post = model.posterior(y)
    assert post.method == "mcmc" and post.mean.shape == (100, 1)
    # the mixture's mean is the average of the exact per-draw smoothed means
    comp = [post.component(s).mean for s in (0, 299)]
    assert np.all(np.isfinite(comp))
    assert post.sample(4, random_state=0).shape == (4, 100, 1)
    # the log posterior predictive density: log of the mean over draws of p(y | draw)
    ll = model.log_likelihood(y)
    per = model.sample_stats_["total_log_likelihood"].ravel()
    assert ll[0] == pytest.approx(logsumexp(per) - np.log(per.size), rel=1e-10)
    draws = model.sample_parameters(5, random_state=0)
    assert draws["transition_covariance"].shape == (5, 1, 1)


def test_gibbs_to_arviz_and_loo(nile_fit):
    import arviz as az

    model, y = nile_fit
    data = model.to_arviz(y, n_samples=40, random_state=0)
    assert data["latent_posterior"]["state"].shape == (2, 40, 100, 1)
    assert data["log_likelihood"]["x"].shape == (2, 40, 100)
    summary = az.summary(data, var_names=["transition_covariance", "observation_covariance"])
    assert np.all(np.isfinite(summary["r_hat"]))
    assert np.isfinite(loo_waic(data)["elpd_loo"])  # az.loo on either ArviZ line


def test_gibbs_save_load_and_seed(nile_fit):
    model, y = nile_fit
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "ssm")
        model.save(path)
        back = probspace.load(path)
    for k, v in model.draws_.items():
        assert np.array_equal(back.draws_[k], v)
    assert np.array_equal(back.sample_stats_["total_log_likelihood"], model.sample_stats_["total_log_likelihood"])
    assert np.array_equal(back.log_likelihood(y), model.log_likelihood(y))
    assert set(back.prior_) == set(model.prior_)
    assert all(np.array_equal(back.prior_[k], v) for k, v in model.prior_.items())
    assert np.array_equal(back.posterior(y).mean, model.posterior(y).mean)
    again = LinearGaussianSSM(**model.get_params()).fit(y)
    assert np.array_equal(again.draws_["transition_covariance"], model.draws_["transition_covariance"])


def test_gibbs_free_matrices_and_inputs():
    # Everything free, with inputs: runs, keeps held entries (a structural zero of A) and draws the rest.
    rng = np.random.default_rng(3)
    T = 80
    u = rng.normal(size=(T, 1))
    X = np.cumsum(rng.normal(size=(T, 2)), axis=0) + u
    A = np.array([[0.9, 0.0], [0.1, 0.8]])
    model = LinearGaussianSSM(2, transition_matrix=A, fixed={"transition_matrix": A == 0}, sampler="gibbs",
                              n_chains=2, n_draws=20, n_warmup=5, max_iter=5, random_state=0).fit(X, u)
    assert np.all(model.draws_["transition_matrix"][..., 0, 1] == 0)
    assert np.all(np.isfinite(model.sample_stats_["lp"]))
    assert model.draws_["control_matrix"].shape == (2, 20, 2, 1)
    assert model.draws_["feedthrough_matrix"].shape == (2, 20, 2, 1)
    assert np.isfinite(model.log_likelihood(X, u)).all()


@pytest.mark.parametrize("prior, match", [
    ({"nonsense": 1.0}, "unknown prior entry"),
    ({"observation_covariance_df": -1.0}, "must be a number above"),
    ({"observation_covariance_scale": -np.eye(1)}, "positive definite"),
    ({"transition_coef_sd": [1.0, 2.0, 3.0]}, "must be a scalar or an array of shape"),
    ({"initial_mean_sd": 0.0}, "must be positive"),
])
def test_gibbs_bad_prior(prior, match):
    y = np.random.default_rng(0).normal(size=(30, 1))
    with pytest.raises(ValueError, match=match):
        LinearGaussianSSM(1, sampler="gibbs", n_chains=1, n_draws=2, n_warmup=0, prior=prior, max_iter=2).fit(y)


def test_gibbs_bad_sampler():
    y = np.random.default_rng(0).normal(size=(30, 1))
    with pytest.raises(ValueError, match="sampler"):
        LinearGaussianSSM(1, sampler="nuts").fit(y)


def test_gibbs_with_everything_fixed_is_an_error():
    y = np.random.default_rng(0).normal(size=(30, 1))
    model = LinearGaussianSSM(1, transition_matrix=ONE, observation_matrix=ONE, transition_covariance=ONE,
                              observation_covariance=ONE, initial_mean=[0.0], initial_covariance=ONE, fixed="all",
                              sampler="gibbs")
    with pytest.raises(ValueError, match="LinearGaussianSSM: sampler=.gibbs. has nothing to sample"):
        model.fit(y)


def test_log_prior_matches_scipy():
    from probspace.models._ssm_bayes import log_prior

    rng = np.random.default_rng(6)
    S = stats.invwishart.rvs(df=5, scale=np.eye(2), size=3, random_state=rng)[None]  # (1, 3, 2, 2)
    B = rng.normal(size=(1, 3, 2, 1))
    prior = {"transition_coef_mean": np.hstack([np.eye(2), np.zeros((2, 1))]),
             "transition_coef_sd": np.full((2, 3), 2.0),
             "transition_covariance_df": 5.0, "transition_covariance_scale": np.diag([1.0, 2.0])}
    held = {"transition_covariance": np.zeros((2, 2), bool), "control_matrix": np.array([[False], [True]])}
    got = log_prior({"transition_covariance": S, "control_matrix": B}, held, prior)
    want = [stats.invwishart.logpdf(S[0, i], df=5.0, scale=np.diag([1.0, 2.0]))
            + stats.norm.logpdf(B[0, i, 0, 0], 0.0, 2.0) for i in range(3)]
    assert np.allclose(got[0], want, rtol=1e-10)
