"""Fully Bayesian fits (MCMC): exact conjugate cases, SBC, agreement of the engines, diagnostics, errors."""

import warnings

import numpy as np
import pytest
from scipy import stats

import probspace as ps
from probspace import _bayes
from probspace.datasets import load_discoveries, load_old_faithful
from probspace.inference import _gibbs
from probspace.testing import check_model

FAST = {"n_chains": 2, "n_draws": 200, "n_warmup": 100}


def _ess(draws):
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(az.convert_to_dataset({"x": np.asarray(draws)}), method="bulk")["x"])


# -- exact conjugate cases ------------------------------------------------------------
def test_single_component_gibbs_draws_the_normal_inverse_gamma_posterior():
    # K=1: labels are trivial and each sweep is an exact, independent draw from the conjugate posterior.
    X = np.random.default_rng(0).normal(1.5, 0.7, size=(40, 1))
    prior = {"mean": 0.0, "mean_precision": 0.5, "dof": 3.0, "scale": 2.0}
    m = ps.GaussianMixture(1, sampler="gibbs", prior=prior, n_chains=2, n_draws=4000, n_warmup=10,
                           random_state=0).fit(X)
    mu = m.draws_["means"][..., 0, 0].ravel()
    var = m.draws_["covariances"][..., 0, 0, 0].ravel()
    n, xbar, ss = len(X), X.mean(), ((X - X.mean()) ** 2).sum()
    kn, nun = 0.5 + n, 3.0 + n
    psin = 2.0 + ss + 0.5 * n / kn * xbar**2
    exact_var = stats.invgamma(nun / 2, scale=psin / 2)
    exact_mu = stats.t(df=nun, loc=n * xbar / kn, scale=np.sqrt(psin / nun / kn))
    for drawn, exact in ((var, exact_var), (mu, exact_mu)):
        se = drawn.std() / np.sqrt(drawn.size)
        assert abs(drawn.mean() - exact.mean()) < 4.5 * se
        assert stats.kstest(drawn, exact.cdf).pvalue > 1e-3


def test_single_state_poisson_hmm_draws_the_gamma_posterior():
    X = np.random.default_rng(1).poisson(3.0, size=(60, 2)).astype(float)
    m = ps.PoissonHMM(1, sampler="gibbs", prior={"rate_shape": 2.0, "rate_rate": 0.5}, n_chains=2, n_draws=3000,
                      n_warmup=10, random_state=0).fit(X)
    lam = m.draws_["lambdas"][..., 0, :].reshape(-1, 2)
    for d in range(2):
        exact = stats.gamma(2.0 + X[:, d].sum(), scale=1.0 / (0.5 + len(X)))
        assert stats.kstest(lam[:, d], exact.cdf).pvalue > 1e-3


def test_single_state_categorical_hmm_draws_the_dirichlet_posterior():
    X = np.array([[0, 1, 2, 2, 2, 1, 0, 2, 2, 1, 2, 2]]).T.astype(float)
    m = ps.CategoricalHMM(1, sampler="gibbs", prior={"emissionprob": 0.5}, n_chains=2, n_draws=3000, n_warmup=10,
                          random_state=0).fit(X)
    probs = m.draws_["emissionprob"][..., 0, :].reshape(-1, 3)
    counts = np.bincount(X[:, 0].astype(int), minlength=3)
    alpha = 0.5 + counts
    for j in range(3):
        exact = stats.beta(alpha[j], alpha.sum() - alpha[j])
        assert stats.kstest(probs[:, j], exact.cdf).pvalue > 1e-3


def test_gibbs_label_draws_match_enumeration_given_the_sampled_parameters():
    # The posterior of an MCMC fit averages the exact label posterior over draws: check one draw by hand.
    X = load_old_faithful().data[:, :1]
    m = ps.GaussianMixture(2, sampler="gibbs", n_chains=1, n_draws=5, n_warmup=5, random_state=0).fit(X)
    post = m.posterior(X[:3])
    w, mu, var = (m.draws_[k][0, 2] for k in ("weights", "means", "covariances"))
    joint = w * stats.norm.pdf(X[:3], mu[:, 0], np.sqrt(var[:, 0, 0]))
    np.testing.assert_allclose(post.component(2).probs, joint / joint.sum(axis=1, keepdims=True), rtol=1e-10)
    mean = np.mean([post.component(s).probs for s in range(5)], axis=0)
    np.testing.assert_allclose(post.mean, mean, rtol=1e-12)


def test_hmm_regime_probabilities_average_the_exact_marginals():
    X = load_discoveries().data.reshape(-1, 1)
    m = ps.PoissonHMM(2, sampler="gibbs", n_chains=1, n_draws=4, n_warmup=20, random_state=0).fit(X)
    post = m.posterior(X)
    manual = []
    for s in range(4):
        p = {k: v[0, s] for k, v in m.draws_.items()}
        chain = ps.posteriors.MarkovChain(p["startprob"], p["transmat"],
                                          stats.poisson.logpmf(X, p["lambdas"][:, 0]), None)
        manual.append(chain.marginals)
    np.testing.assert_allclose(post.marginals, np.mean(manual, axis=0), atol=1e-10)
    ll = [ps.posteriors.MarkovChain(m.draws_["startprob"][0, s], m.draws_["transmat"][0, s],
                                    stats.poisson.logpmf(X, m.draws_["lambdas"][0, s][:, 0]), None).log_likelihood
          for s in range(4)]
    np.testing.assert_allclose(m.log_likelihood(X), np.log(np.mean(np.exp(ll))), rtol=1e-10)


def test_kernel_diag_and_full_agree_in_one_dimension():
    # In one dimension the Normal-inverse-Gamma and Normal-inverse-Wishart updates are the same model
    # and consume the same random numbers, so the chains are identical.
    X = load_old_faithful().data[:, :1]
    a = ps.GaussianMixture(2, sampler="gibbs", covariance_type="diag", n_chains=1, n_draws=50, n_warmup=10,
                           random_state=3).fit(X)
    b = ps.GaussianMixture(2, sampler="gibbs", covariance_type="full", n_chains=1, n_draws=50, n_warmup=10,
                           random_state=3).fit(X)
    np.testing.assert_allclose(a.draws_["means"], b.draws_["means"], rtol=1e-10)
    np.testing.assert_allclose(a.draws_["covariances"], b.draws_["covariances"][..., 0], rtol=1e-10)


# -- simulation-based calibration -------------------------------------------------------
def _sbc_ranks(simulate, fit, statistics, n_reps, thin, rng):
    """Ranks of the true statistics among thinned posterior draws, one row per replication."""
    ranks = []
    for _ in range(n_reps):
        truth, X, lengths = simulate(rng)
        model = fit(X, lengths, int(rng.integers(2**31)))
        draws = {k: v[0, ::thin] for k, v in model.draws_.items()}
        t, d = statistics(truth), statistics(draws)
        ranks.append((d < t[None]).sum(axis=0))
    return np.array(ranks), next(iter(draws.values())).shape[0]


def _uniform_pvalues(ranks, n_draws, n_bins=8):
    edges = np.linspace(0, n_draws + 1, n_bins + 1)
    pvals = []
    for j in range(ranks.shape[1]):
        counts, _ = np.histogram(ranks[:, j], bins=edges)
        pvals.append(stats.chisquare(counts).pvalue)
    return np.array(pvals)


def _sorted(key, *arrays):
    """Sort the state axis (the last axis of ``key``) of every array by ``key``."""
    order = np.argsort(key, axis=-1)
    out = []
    for a in arrays:
        idx = order.reshape(order.shape + (1,) * (a.ndim - order.ndim))
        out.append(np.take_along_axis(a, idx, axis=order.ndim - 1))
    return out


GAUSS_PRIOR = {"weights": 4.0, "mean": 0.0, "mean_precision": 0.05, "dof": 6.0, "scale": 5.0}


def _draw_niw(rng, K, D):
    m0, k0, nu0, psi0 = np.zeros(D), 0.05, 6.0, 5.0 * np.eye(D)
    covs = np.array([stats.invwishart(nu0, psi0).rvs(random_state=rng).reshape(D, D) for _ in range(K)])
    means = np.array([rng.multivariate_normal(m0, c / k0) for c in covs])
    return means, covs


@pytest.mark.slow
@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_sbc_gaussian_mixture(covariance_type):
    K, D, N = 2, 2 if covariance_type == "full" else 1, 60
    rng = np.random.default_rng(11)

    def simulate(rng):
        w = rng.dirichlet([4.0] * K)
        means, covs = _draw_niw(rng, K, D)
        if covariance_type == "diag":
            covs = covs * np.eye(D)
        z = rng.choice(K, size=N, p=w)
        X = np.array([rng.multivariate_normal(means[k], covs[k]) for k in z])
        return {"weights": w, "means": means, "covariances": covs if covariance_type == "full" else
                np.diagonal(covs, axis1=1, axis2=2)}, X, None

    def fit(X, lengths, seed):
        return ps.GaussianMixture(K, covariance_type=covariance_type, sampler="gibbs", prior=GAUSS_PRIOR,
                                  n_chains=1, n_draws=400, n_warmup=100, random_state=seed).fit(X)

    def statistics(p):
        lead = p["weights"].ndim - 1
        w, m, c = _sorted(p["means"][..., 0], p["weights"], p["means"], p["covariances"])
        return np.concatenate([w[..., :1], m.reshape(m.shape[:lead] + (-1,)), c.reshape(c.shape[:lead] + (-1,))],
                              axis=-1)

    ranks, n = _sbc_ranks(simulate, fit, statistics, 200, 10, rng)
    assert _uniform_pvalues(ranks, n).min() > 1e-3 / ranks.shape[1]


def _simulate_hmm(rng, K, T, emit):
    start = rng.dirichlet([2.0] * K)
    trans = np.array([rng.dirichlet([2.0] * K) for _ in range(K)])
    z = ps.inference.sample_chain(start, trans, T, rng)
    return start, trans, z, emit(z)


@pytest.mark.slow
@pytest.mark.parametrize("family", ["gaussian", "poisson", "categorical"])
def test_sbc_hmm(family):
    K, T = 2, 80
    rng = np.random.default_rng(5)
    hmm_prior = {"startprob": 2.0, "transmat": 2.0}

    def simulate(rng):
        if family == "gaussian":
            means, covs = _draw_niw(rng, K, 1)
            start, trans, z, X = _simulate_hmm(rng, K, T, lambda z: rng.normal(means[z, 0], np.sqrt(covs[z, 0, 0])))
            return {"transmat": trans, "key": means[:, 0]}, X[:, None], None
        if family == "poisson":
            lam = rng.gamma(3.0, 1.0 / 0.5, size=K)
            start, trans, z, X = _simulate_hmm(rng, K, T, lambda z: rng.poisson(lam[z]))
            return {"transmat": trans, "key": lam}, X[:, None].astype(float), None
        B = rng.dirichlet([1.0] * 3, size=K)
        start, trans, z, X = _simulate_hmm(
            rng, K, T, lambda z: (rng.random(len(z))[:, None] > np.cumsum(B[z], axis=1)[:, :-1]).sum(axis=1))
        if len(np.unique(X)) < 3:  # the model's alphabet is what it sees; keep all three symbols present
            X[:3] = [0, 1, 2]
        return {"transmat": trans, "key": B @ np.arange(3.0)}, X[:, None].astype(float), None

    def fit(X, lengths, seed):
        cls, extra = {"gaussian": (ps.GaussianHMM, {"mean": 0.0, "mean_precision": 0.05, "dof": 6.0, "scale": 5.0}),
                      "poisson": (ps.PoissonHMM, {"rate_shape": 3.0, "rate_rate": 0.5}),
                      "categorical": (ps.CategoricalHMM, {"emissionprob": 1.0})}[family]
        return cls(K, sampler="gibbs", prior={**hmm_prior, **extra}, n_chains=1, n_draws=400, n_warmup=100,
                   random_state=seed).fit(X)

    def statistics(p):
        keys = {"gaussian": lambda: p["means"][..., 0], "poisson": lambda: p["lambdas"][..., 0],
                "categorical": lambda: p["emissionprob"] @ np.arange(3.0)}
        key = p["key"] if "key" in p else keys[family]()
        trans = p["transmat"]
        order = np.argsort(key, axis=-1)
        trans = np.take_along_axis(trans, order[..., :, None], axis=-2)
        trans = np.take_along_axis(trans, order[..., None, :], axis=-1)
        return np.concatenate([np.sort(key, axis=-1), trans[..., [0, 1], [0, 1]]], axis=-1)

    ranks, n = _sbc_ranks(simulate, fit, statistics, 150, 10, rng)
    assert _uniform_pvalues(ranks, n).min() > 1e-3 / ranks.shape[1]


# -- the engines on real data -------------------------------------------------------------
@pytest.mark.slow
def test_old_faithful_rhat_and_no_divergences_and_nuts_agrees_with_gibbs():
    import arviz as az

    X = load_old_faithful().data[:, :1]
    gibbs = ps.GaussianMixture(2, sampler="gibbs", random_state=0).fit(X)
    nuts = ps.GaussianMixture(2, sampler="nuts", random_state=0).fit(X)
    for model in (gibbs, nuts):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = az.summary(model.to_arviz(X, n_samples=1000, random_state=0),
                                 var_names=["weights", "means", "covariances"])
        assert summary["r_hat"].max() < 1.01, summary
    assert not nuts.sample_stats_["diverging"].any()
    for name in ("weights", "means", "covariances"):
        a, b = gibbs.draws_[name], nuts.draws_[name]
        a2, b2 = a.reshape(a.shape[:2] + (-1,)), b.reshape(b.shape[:2] + (-1,))
        for j in range(a2.shape[-1]):
            se = np.sqrt(a2[..., j].var() / _ess(a2[..., j]) + b2[..., j].var() / _ess(b2[..., j]))
            assert abs(a2[..., j].mean() - b2[..., j].mean()) < 4 * se, (name, j)


@pytest.mark.slow
def test_nuts_and_gibbs_agree_on_a_poisson_hmm():
    X = load_discoveries().data.reshape(-1, 1)
    kw = {"n_chains": 2, "n_draws": 600, "n_warmup": 400, "random_state": 1}
    gibbs = ps.PoissonHMM(2, sampler="gibbs", **kw).fit(X)
    nuts = ps.PoissonHMM(2, sampler="nuts", **kw).fit(X)
    for name in ("lambdas", "transmat"):
        a = gibbs.draws_[name].reshape(2, 600, -1)
        b = nuts.draws_[name].reshape(2, 600, -1)
        for j in range(a.shape[-1]):
            se = np.sqrt(a[..., j].var() / _ess(a[..., j]) + b[..., j].var() / _ess(b[..., j]))
            assert abs(a[..., j].mean() - b[..., j].mean()) < 4 * se, (name, j)


@pytest.mark.slow
def test_nuts_runs_the_conformance_suite():
    check_model(ps.GaussianMixture(sampler="nuts", covariance_type="diag", n_chains=2, n_draws=30, n_warmup=30))


def test_nuts_takes_a_non_conjugate_prior():
    import pyro.distributions as dist
    import torch

    X = load_discoveries().data.reshape(-1, 1)
    prior = {"lambdas": dist.LogNormal(torch.tensor(1.0, dtype=torch.float64), torch.tensor(1.0,
                                                                                          dtype=torch.float64))}
    m = ps.PoissonHMM(2, sampler="nuts", prior=prior, n_chains=1, n_draws=40, n_warmup=40, random_state=0).fit(X)
    assert m.draws_["lambdas"].shape == (1, 40, 2, 1)
    assert np.all(np.diff(m.draws_["lambdas"][..., 0], axis=-1) >= 0)  # ordered states
    assert "lambdas" in m.prior_ and "transmat" in m.prior_
    with pytest.raises(ValueError, match="conjugate"):
        ps.PoissonHMM(2, sampler="gibbs", prior=prior).fit(X)


def test_hmm_nuts_gradient_is_exact():
    torch = pytest.importorskip("torch")
    from probspace.inference._nuts import hmm_log_likelihood

    rng = np.random.default_rng(0)
    frames = torch.tensor(rng.normal(size=(30, 3)), requires_grad=True)
    log_start = torch.log(torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)).requires_grad_()
    log_trans = torch.log(torch.tensor(rng.dirichlet([1, 1, 1], size=3))).requires_grad_()
    bounds = np.array([0, 12, 30])

    def reference(ls, lt, lf):  # forward algorithm in torch, differentiated by autograd
        total = 0.0
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            alpha = ls + lf[lo]
            for t in range(lo + 1, hi):
                alpha = torch.logsumexp(alpha[:, None] + lt, dim=0) + lf[t]
            total = total + torch.logsumexp(alpha, dim=0)
        return total

    ours = torch.autograd.grad(hmm_log_likelihood(log_start, log_trans, frames, bounds),
                               [log_start, log_trans, frames])
    ref = torch.autograd.grad(reference(log_start, log_trans, frames), [log_start, log_trans, frames])
    np.testing.assert_allclose(float(hmm_log_likelihood(log_start, log_trans, frames, bounds).detach()),
                               float(reference(log_start, log_trans, frames).detach()), rtol=1e-12)
    for a, b in zip(ours, ref, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-12)


# -- API behaviour ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def faithful_gibbs():
    X = load_old_faithful().data[:, :1]
    return ps.GaussianMixture(2, sampler="gibbs", random_state=0, **FAST).fit(X), X


def test_draws_are_ordered_and_point_estimates_are_posterior_means(faithful_gibbs):
    m, X = faithful_gibbs
    assert m.draws_["means"].shape == (2, 200, 2, 1)
    assert np.all(m.draws_["means"][..., 0, 0] <= m.draws_["means"][..., 1, 0])
    np.testing.assert_allclose(m.means_, m.draws_["means"].mean(axis=(0, 1)))
    np.testing.assert_allclose(m.weights_, m.draws_["weights"].mean(axis=(0, 1)))
    assert m.prior_["dof"] == 3.0 and m.prior_["mean_precision"] == 0.01
    assert set(m.sample_stats_) == {"total_log_likelihood"}


def test_to_arviz_keeps_chains_and_supports_loo(faithful_gibbs):
    m, X = faithful_gibbs
    idata = m.to_arviz(X, n_samples=50, random_state=0)
    assert idata.posterior["means"].shape == (2, 50, 2, 1)
    assert idata.posterior["label"].shape == (2, 50, 272)
    assert idata.log_likelihood["x"].shape == (2, 50, 272)
    assert idata.posterior_predictive["x"].shape == (2, 50, 272, 1)
    out = ps.diagnostics.loo_waic(idata)
    assert np.isfinite(out["elpd_loo"]) and out["max_pareto_k"] < 0.7


def test_same_seed_same_chains_and_save_load(tmp_path):
    X = load_old_faithful().data[:, :1]
    a = ps.GaussianHMM(2, sampler="gibbs", random_state=4, n_chains=2, n_draws=30, n_warmup=10).fit(X)
    b = ps.GaussianHMM(2, sampler="gibbs", random_state=4, n_chains=2, n_draws=30, n_warmup=10).fit(X)
    for k in a.draws_:
        np.testing.assert_array_equal(a.draws_[k], b.draws_[k])
    a.save(tmp_path / "m.npz")
    c = ps.load(tmp_path / "m.npz")
    for k in a.draws_:
        np.testing.assert_array_equal(a.draws_[k], c.draws_[k])
    np.testing.assert_array_equal(a.posterior(X).mean, c.posterior(X).mean)
    np.testing.assert_array_equal(a.posterior(X).sample(3, random_state=0), c.posterior(X).sample(3, random_state=0))
    np.testing.assert_array_equal(a.log_likelihood(X), c.log_likelihood(X))


def test_forecast_and_sample_use_parameter_draws():
    X = load_discoveries().data.reshape(-1, 1)
    m = ps.PoissonHMM(2, sampler="gibbs", random_state=0, **FAST).fit(X)
    Xf, Zf = m.forecast(X, 5, 200, random_state=0)
    assert Xf.shape == (200, 5, 1) and Zf.shape == (200, 5)
    Xs, Zs = m.sample(30, random_state=1)
    assert Xs.shape == (30, 1) and Zs.shape == (30,)
    params = m.sample_parameters(7, random_state=0)
    assert params["lambdas"].shape == (7, 2, 1)


@pytest.mark.parametrize(("make", "match"), [
    (lambda: ps.GaussianMixture(2, sampler="gibbs", bayesian=True), "not both"),
    (lambda: ps.GaussianMixture(2, sampler="gibbs", covariance_type="tied"), "'full' or 'diag'"),
    (lambda: ps.GaussianMixture(2, sampler="gibbs", prior={"typo": 1.0}), "unknown entries"),
    (lambda: ps.GaussianMixture(2, sampler="gibbs", prior={"dof": -1.0}), "prior\\['dof'\\]"),
    (lambda: ps.GaussianMixture(2, sampler="gibbs", prior={"scale": [1.0, 2.0, 3.0]}), "prior\\['scale'\\]"),
    (lambda: ps.GaussianMixture(2, sampler="gibbs", prior={"scale": [[1.0, 2.0], [2.0, 1.0]]}), "positive definite"),
    (lambda: ps.GaussianMixture(2, sampler="nuts", covariance_type="full"), "covariance_type='diag'"),
    (lambda: ps.GaussianMixture(2, sampler="metropolis"), "sampler"),
    (lambda: ps.GaussianMixture(2, sampler="gibbs", n_chains=0), "n_chains"),
])
def test_bad_requests_are_named(make, match):
    X = load_old_faithful().data
    with pytest.raises(ValueError, match=match):
        make().fit(X)


def test_missing_values_are_rejected_by_mcmc_fits():
    X = load_discoveries().data.reshape(-1, 1).astype(float)
    X[3] = np.nan
    with pytest.raises(ValueError, match="complete data"):
        ps.PoissonHMM(2, sampler="gibbs").fit(X)


def test_bic_refuses_mcmc_fits(faithful_gibbs):
    m, X = faithful_gibbs
    with pytest.raises(ValueError, match="Bayesian"):
        m.bic(X)


def test_relabel_permutes_transition_rows_and_columns():
    layout = _bayes.Layout(_gibbs.POISSON, True, "startprob", "lambdas", None)
    p = {"startprob": np.array([[0.2, 0.8]]), "transmat": np.array([[[0.9, 0.1], [0.3, 0.7]]]),
         "lambdas": np.array([[[5.0], [1.0]]])}
    out = _bayes.relabel(layout, p)
    np.testing.assert_array_equal(out["lambdas"][0, :, 0], [1.0, 5.0])
    np.testing.assert_array_equal(out["startprob"][0], [0.8, 0.2])
    np.testing.assert_array_equal(out["transmat"][0], [[0.7, 0.3], [0.1, 0.9]])


def test_compare_ranks_mcmc_fits_by_loo():
    X = load_old_faithful().data[:, :1]
    fits = {f"K={k}": ps.GaussianMixture(k, sampler="gibbs", random_state=0, **FAST).fit(X) for k in (1, 2)}
    table = ps.compare(fits, X, n_draws=200)
    assert table.index[0] == "K=2"
    assert np.isfinite(table["elpd_loo"]).all() and table["max_pareto_k"].max() < 0.7


def test_nuts_records_per_draw_statistics_even_for_few_draws():
    X = load_old_faithful().data[:, :1]
    m = ps.GaussianHMM(2, sampler="nuts", n_chains=1, n_draws=20, n_warmup=20, random_state=0).fit(X)
    st = m.sample_stats_
    assert set(st) == {"diverging", "acceptance_rate", "step_size", "total_log_likelihood"}
    assert st["diverging"].shape == (1, 20) and st["diverging"].dtype == bool
    assert np.all((st["acceptance_rate"] >= 0) & (st["acceptance_rate"] <= 1))
    assert np.all(st["step_size"] > 0)
    few = ps.GaussianMixture(2, sampler="nuts", n_chains=1, n_draws=2, n_warmup=5, random_state=0).fit(X)
    assert few.draws_["means"].shape == (1, 2, 2, 1)
