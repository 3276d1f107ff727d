"""probspace's compiled NUTS: exact gradients, the stated density, closed-form posteriors, thread independence."""

import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln, logsumexp

import probspace as ps
from probspace.datasets import load_old_faithful
from probspace.inference import _hmm
from probspace.inference import _nuts_numba as nn


def _ess(draws):
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(az.convert_to_dataset({"x": np.asarray(draws)}), method="bulk")["x"])


def _model(kind, hmm, K, D, S, free, rng, N=30):
    """A compiled-NUTS model tuple with random data, hyper-parameters and held-fixed values."""
    X = {0: lambda: rng.normal(size=(N, D)), 1: lambda: rng.poisson(3, size=(N, D)).astype(float),
         2: lambda: rng.integers(0, S, size=(N, 1)).astype(float)}[kind]()
    aux = gammaln(X + 1).sum(axis=1) if kind == 1 else np.zeros(N)
    bounds = np.array([0, 12, N]) if hmm else np.array([0, N])
    hyper = {0: lambda: np.r_[rng.normal(size=D), 0.3, 1.7, rng.uniform(0.5, 1, D)],
             1: lambda: np.r_[rng.uniform(1, 2, D), rng.uniform(0.2, 1, D)],
             2: lambda: rng.uniform(0.5, 2, S)}[kind]()
    n_e1 = K * S if kind == 2 else K * D
    n_e2 = K * D if kind == 0 else 0
    fixed = np.r_[np.full(K, 1 / K), np.full(K * K, 1 / K), np.full(n_e1, 1 / S if kind == 2 else 1.3),
                  np.full(n_e2, 0.2)]
    free = np.array(free, dtype=bool) & np.array([True, bool(hmm), True, kind == 0])
    model = (X, aux, bounds, rng.uniform(0.5, 2, K), rng.uniform(0.5, 2, (K, K)), hyper, fixed, free,
             np.array([kind, hmm, K, D, S]))
    dim = ((K - 1) * free[0] + K * (K - 1) * free[1] + (K * (S - 1) if kind == 2 else n_e1) * free[2]
           + n_e2 * free[3])
    return model, int(dim)


@pytest.mark.parametrize("kind, D, S", [(0, 2, 0), (1, 2, 0), (2, 1, 4)])
@pytest.mark.parametrize("hmm", [0, 1])
@pytest.mark.parametrize("free", [(1, 1, 1, 1), (1, 0, 0, 1), (0, 1, 1, 0)])
def test_gradient_is_exact(kind, D, S, hmm, free):
    rng = np.random.default_rng(kind * 10 + hmm)
    model, dim = _model(kind, hmm, 3, D, S, free, rng)
    q = rng.normal(size=dim) * 0.5
    g = np.empty(dim)
    nn.log_density(q, g, *model)
    num = np.empty(dim)
    for j in range(dim):
        e = np.zeros(dim)
        e[j] = 1e-6
        num[j] = (nn.log_density(q + e, np.empty(dim), *model) - nn.log_density(q - e, np.empty(dim), *model)) / 2e-6
    np.testing.assert_allclose(g, num, rtol=1e-5, atol=1e-5)


def _reference_log_density(model, q):
    """scipy: log-likelihood (latents summed out) + log prior + log Jacobian of the maps, all arrays free."""
    X, aux, bounds, alpha_pi, alpha_A, hyper, fixed, free, ints = model
    kind, hmm, K, D, S = (int(v) for v in ints)
    theta = np.empty(fixed.size)
    nn.constrain(q, ints, free, fixed, theta)
    pi, A = theta[:K], theta[K:K + K * K].reshape(K, K)
    e1 = theta[K + K * K:K + K * K + K * D].reshape(K, D)
    out = stats.dirichlet(alpha_pi).logpdf(pi) + np.log(pi).sum()  # additive log-ratio Jacobian: prod p
    if kind == 0:
        mu = theta[K + K * K + K * D:].reshape(K, D)
        m0, kappa0, a, b = hyper[:D], hyper[D], hyper[D + 1], hyper[D + 2:]
        f = np.stack([stats.norm(mu[k], np.sqrt(e1[k])).logpdf(X).sum(axis=1) for k in range(K)], axis=1)
        out += stats.invgamma(a, scale=b).logpdf(e1).sum() + np.log(e1).sum()
        out += stats.norm(m0, np.sqrt(e1 / kappa0)).logpdf(mu).sum()
    else:
        f = np.stack([stats.poisson(e1[k]).logpmf(X).sum(axis=1) for k in range(K)], axis=1)
        out += stats.gamma(hyper[:D], scale=1 / hyper[D:]).logpdf(e1).sum() + np.log(e1).sum()
    if hmm:
        out += sum(stats.dirichlet(alpha_A[i]).logpdf(A[i]) + np.log(A[i]).sum() for i in range(K))
        return out + _hmm.forward_backward(pi, A, f, np.diff(bounds)).log_likelihood.sum()
    return out + logsumexp(np.log(pi) + f, axis=1).sum()


@pytest.mark.parametrize("kind, hmm", [(0, 0), (0, 1), (1, 1)])
def test_log_density_is_the_stated_posterior_up_to_a_constant(kind, hmm):
    rng = np.random.default_rng(3)
    model, dim = _model(kind, hmm, 2, 2, 0, (1, 1, 1, 1), rng)
    q1, q2 = rng.normal(size=dim), rng.normal(size=dim)
    ours = nn.log_density(q1, np.empty(dim), *model) - nn.log_density(q2, np.empty(dim), *model)
    ref = _reference_log_density(model, q1) - _reference_log_density(model, q2)
    assert ours == pytest.approx(ref, rel=1e-10, abs=1e-8)


def _within_mc_error(draws, mean, var, z=4.5):
    """Mean and variance of correlated draws (chain, draw) against exact values, with ESS-based standard errors."""
    ess = _ess(draws)
    x = draws.ravel()
    assert abs(x.mean() - mean) < z * np.sqrt(var / ess), (x.mean(), mean)
    # sd of a sample variance ~ var * sqrt((kurtosis - 1) / n); a normal's kurtosis is 3, Student t's a bit more
    assert abs(x.var() - var) < z * var * np.sqrt(4.0 / ess), (x.var(), var)


def test_multivariate_normal_target_mean_and_covariance():
    # One component with its variances held fixed: the means' posterior is exactly normal,
    # N((kappa0 m0 + n xbar) / (kappa0 + n), sigma^2 / (kappa0 + n)) per feature, independent across features.
    import torch
    from pyro.distributions import Delta

    rng = np.random.default_rng(0)
    var = np.array([0.5, 2.0, 1.0])
    X = rng.normal([1.0, -2.0, 0.5], np.sqrt(var), size=(25, 3))
    kappa0, m0 = 0.5, np.array([0.0, 1.0, 0.0])
    prior = {"mean": m0, "mean_precision": kappa0, "covariances": Delta(torch.as_tensor(var[None]), event_dim=2)}
    m = ps.GaussianMixture(1, covariance_type="diag", sampler="nuts", prior=prior, n_chains=2, n_draws=1500,
                           n_warmup=500, random_state=0).fit(X)
    mu = m.draws_["means"][:, :, 0, :]
    n = len(X)
    post_mean = (kappa0 * m0 + n * X.mean(axis=0)) / (kappa0 + n)
    post_var = var / (kappa0 + n)
    for d in range(3):
        _within_mc_error(mu[..., d], post_mean[d], post_var[d])
    corr = np.corrcoef(mu.reshape(-1, 3).T)[np.triu_indices(3, 1)]
    assert np.all(np.abs(corr) < 0.1)  # independent features (sd of a correlation ~ 1 / sqrt(ESS) ~ 0.02)


def test_single_component_draws_the_normal_inverse_gamma_posterior():
    X = np.random.default_rng(0).normal(1.5, 0.7, size=(40, 1))
    prior = {"mean": 0.0, "mean_precision": 0.5, "dof": 3.0, "scale": 2.0}
    m = ps.GaussianMixture(1, sampler="nuts", prior=prior, n_chains=2, n_draws=1500, n_warmup=500,
                           random_state=0).fit(X)
    mu = m.draws_["means"][..., 0, 0]
    var = m.draws_["covariances"][..., 0, 0, 0]
    n, xbar, ss = len(X), X.mean(), ((X - X.mean()) ** 2).sum()
    kn, nun = 0.5 + n, 3.0 + n
    psin = 2.0 + ss + 0.5 * n / kn * xbar**2
    exact_var = stats.invgamma(nun / 2, scale=psin / 2)
    exact_mu = stats.t(df=nun, loc=n * xbar / kn, scale=np.sqrt(psin / nun / kn))
    _within_mc_error(mu, exact_mu.mean(), exact_mu.var())
    _within_mc_error(var, exact_var.mean(), exact_var.var(), z=6.0)  # skewed: a looser bound on the variance


def test_single_state_poisson_and_categorical_posteriors():
    X = np.random.default_rng(1).poisson(3.0, size=(60, 2)).astype(float)
    m = ps.PoissonHMM(1, sampler="nuts", prior={"rate_shape": 2.0, "rate_rate": 0.5}, n_chains=2, n_draws=1500,
                      n_warmup=500, random_state=0).fit(X)
    for d in range(2):
        exact = stats.gamma(2.0 + X[:, d].sum(), scale=1.0 / (0.5 + len(X)))
        _within_mc_error(m.draws_["lambdas"][..., 0, d], exact.mean(), exact.var())
    X = np.array([[0, 1, 2, 2, 2, 1, 0, 2, 2, 1, 2, 2]]).T.astype(float)
    m = ps.CategoricalHMM(1, sampler="nuts", prior={"emissionprob": 0.5}, n_chains=2, n_draws=1500, n_warmup=500,
                          random_state=0).fit(X)
    alpha = 0.5 + np.bincount(X[:, 0].astype(int), minlength=3)
    for j in range(3):
        exact = stats.beta(alpha[j], alpha.sum() - alpha[j])
        _within_mc_error(m.draws_["emissionprob"][..., 0, j], exact.mean(), exact.var())


def test_chains_do_not_depend_on_the_thread_count(monkeypatch):
    X = load_old_faithful().data[:80, :1]
    fits = []
    for n in ("1", "2"):
        monkeypatch.setenv("PROBSPACE_NUM_THREADS", n)
        fits.append(ps.GaussianHMM(2, sampler="nuts", n_chains=2, n_draws=50, n_warmup=50, random_state=3).fit(X))
    for name, value in fits[0].draws_.items():
        np.testing.assert_array_equal(value, fits[1].draws_[name])
    st = fits[0].sample_stats_
    assert np.all(st["energy"] + st["lp"] >= 0) and np.all(st["n_steps"] >= 1)
    assert np.all((st["tree_depth"] >= 0) & (st["tree_depth"] <= 10))


def test_adaptation_windows_follow_stan():
    np.testing.assert_array_equal(nn.adaptation_windows(1000), [[75, 100], [100, 150], [150, 250], [250, 450],
                                                                [450, 950]])
    assert nn.adaptation_windows(10).shape == (0, 2)
    w = nn.adaptation_windows(100)
    assert w[0, 0] == 15 and w[-1, 1] == 90
