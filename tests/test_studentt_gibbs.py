"""Student-t emissions' Gibbs sampler (issue #17): exact posterior on a grid, chains, ArviZ, save/load, bad input."""

import arviz as az
import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from probspace import HMM, load
from probspace.emissions import StudentTEmission
from probspace.emissions._studentt import _t_frames

#: A tiny data set with one outlier: the posterior of (mu, sigma^2, nu) is far from Gaussian, and computable on a grid.
DATA = np.array([-0.5, 0.3, 1.1, 0.2, -1.0, 0.7, 0.1, 6.0])[:, None]
PRIOR = {"mean": 0.0, "mean_precision": 0.5, "dof": 3.0, "scale": 2.0, "dofs_shape": 2.0, "dofs_rate": 0.1}
BOUNDS = (1.0, 60.0)


def _grid_posterior():
    """Marginal posteriors of mu, nu and sigma^2 by integration over (mu, log sigma^2, log nu), same prior."""
    mu = np.linspace(-4.0, 6.0, 401)
    log_s2 = np.linspace(np.log(0.02), np.log(60.0), 240)
    log_nu = np.linspace(np.log(BOUNDS[0]), np.log(BOUNDS[1]), 160)
    M, L, V = np.meshgrid(mu, log_s2, log_nu, indexing="ij", sparse=True)
    s2, nu = np.exp(L), np.exp(V)
    x = DATA[:, 0]
    lp = np.zeros(np.broadcast_shapes(M.shape, L.shape, V.shape))
    for xi in x:  # Student-t likelihood
        lp += gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu) - 0.5 * np.log(nu * np.pi * s2) \
            - 0.5 * (nu + 1) * np.log1p((xi - M) ** 2 / (nu * s2))
    # mu | s2 ~ N(0, s2 / kappa0); s2 ~ InvGamma(dof / 2, scale / 2) (the one-dimensional inverse-Wishart); nu ~ Gamma
    lp += stats.norm.logpdf(M, PRIOR["mean"], np.sqrt(s2 / PRIOR["mean_precision"]))
    lp += stats.invgamma.logpdf(s2, 0.5 * PRIOR["dof"], scale=0.5 * PRIOR["scale"]) + L  # Jacobian of log s2
    lp += stats.gamma.logpdf(nu, PRIOR["dofs_shape"], scale=1.0 / PRIOR["dofs_rate"]) + V  # Jacobian of log nu
    p = np.exp(lp - lp.max())
    for axis, n in enumerate(p.shape):  # trapezoid rule: half weight at the ends (nu = 1 carries real mass)
        ends = np.ones(n)
        ends[[0, -1]] = 0.5
        p *= ends.reshape([-1 if a == axis else 1 for a in range(3)])
    p /= p.sum()
    return mu, p.sum(axis=(1, 2)), np.exp(log_nu), p.sum(axis=(0, 1)), np.exp(log_s2), p.sum(axis=(0, 2))


@pytest.fixture(scope="module")
def k1_fit():
    model = HMM(1, emission="studentt", sampler="gibbs", prior=PRIOR, n_chains=4, n_draws=4000, n_warmup=500,
                emission_params={"dof_bounds": BOUNDS, "dof_init": 5.0}, random_state=3)
    return model.fit(DATA)


def test_one_state_matches_the_grid_posterior(k1_fit):
    """Means and quartiles of mu, nu and sigma^2 against the grid posterior, within 5 MC standard errors (ESS)."""
    mu_grid, p_mu, nu_grid, p_nu, s2_grid, p_s2 = _grid_posterior()
    for name, draws, grid, p in [("means", k1_fit.mcmc_.draws["means"][..., 0, 0], mu_grid, p_mu),
                                 ("dofs", k1_fit.mcmc_.draws["dofs"][..., 0], nu_grid, p_nu),
                                 ("covars", k1_fit.mcmc_.draws["covars"][..., 0, 0, 0], s2_grid, p_s2)]:
        ess = float(az.ess(draws))  # of every kept draw (to_arviz thins to 500 per chain)
        assert ess > 1000, (name, ess)
        mean = p @ grid
        sd = np.sqrt(p @ (grid - mean) ** 2)
        assert abs(draws.mean() - mean) < 5 * sd / np.sqrt(ess), (name, draws.mean(), mean, sd, ess)
        cdf = np.cumsum(p)
        for q in (0.25, 0.5, 0.75):
            cut = grid[np.searchsorted(cdf, q)]
            exact = np.interp(cut, grid, cdf)  # grid mass at or below the cut
            frac = (draws <= cut).mean()
            assert abs(frac - exact) < 5 * np.sqrt(exact * (1 - exact) / ess) + 0.01, (name, q, frac, exact, ess)


def test_chains_mix_and_arviz_accepts_them(k1_fit):
    idata = k1_fit.to_arviz(DATA)
    assert float(az.rhat(idata, var_names=["means"])["means"].max()) < 1.01
    assert float(az.ess(idata, var_names=["dofs"])["dofs"].min()) > 100
    assert np.all(np.isfinite(idata.sample_stats["lp"]))
    assert np.isfinite(az.loo(idata).elpd_loo)


def test_compiled_density_matches_numpy():
    rng = np.random.default_rng(0)
    params = {"means": rng.normal(size=(3, 2)), "covars": np.array([[[1.0, 0.3], [0.3, 0.5]], [[2.0, -0.4],
                                                                   [-0.4, 1.0]], [[0.3, 0.0], [0.0, 0.2]]]),
              "dofs": np.array([1.5, 4.0, 30.0])}
    X = rng.standard_t(3, size=(50, 2))
    em = StudentTEmission()
    out = np.empty((50, 3))
    _t_frames(X, np.zeros(50), em.pack(params), out)
    np.testing.assert_allclose(out, em.log_frames(X, params), rtol=1e-12, atol=1e-12)


def test_two_state_gibbs_reproducible_save_load(tmp_path):
    X, lengths = HMM(emission="studentt")._conformance_data(np.random.default_rng(0))

    def fit():
        return HMM(2, emission="studentt", sampler="gibbs", n_chains=2, n_draws=100, n_warmup=50,
                   random_state=1).fit(X, lengths=lengths)

    model = fit()
    np.testing.assert_array_equal(model.mcmc_.draws["dofs"], fit().mcmc_.draws["dofs"])
    assert np.all(np.diff(model.mcmc_.draws["means"][..., 0], axis=-1) > 0)  # relabelled by the means
    lo, hi = StudentTEmission().dof_bounds
    assert np.all((model.mcmc_.draws["dofs"] >= lo) & (model.mcmc_.draws["dofs"] <= hi))
    model.save(tmp_path / "t.npz")
    back = load(tmp_path / "t.npz")
    for name, arr in model.mcmc_.draws.items():
        np.testing.assert_array_equal(back.mcmc_.draws[name], arr)
    np.testing.assert_array_equal(back.log_likelihood(X, lengths=lengths), model.log_likelihood(X, lengths=lengths))
    held = HMM(2, emission="studentt", sampler="gibbs", n_chains=1, n_draws=20, n_warmup=10, random_state=1,
               emission_params={"fit_dof": False, "dof_init": 4.0}).fit(X, lengths=lengths)
    np.testing.assert_array_equal(held.mcmc_.draws["dofs"], 4.0)


def test_bad_sampler_and_prior_are_rejected():
    X, lengths = HMM(emission="studentt")._conformance_data(np.random.default_rng(0))
    with pytest.raises(ValueError, match="supports sampler \\['gibbs'\\]"):
        HMM(2, emission="studentt", sampler="nuts").fit(X, lengths=lengths)
    with pytest.raises(ValueError, match="dofs_rate"):
        HMM(2, emission="studentt", sampler="gibbs", prior={"dofs_rate": -1.0}).fit(X, lengths=lengths)
    with pytest.raises(ValueError, match="unknown entries"):
        HMM(2, emission="studentt", sampler="gibbs", prior={"nu": 3.0}).fit(X, lengths=lengths)


def test_gaussian_limit_matches_gaussian_gibbs_in_two_dimensions():
    """With nu held huge, the weighted Normal-inverse-Wishart step is the Gaussian one: same posterior (D = 2)."""
    rng = np.random.default_rng(5)
    X = rng.multivariate_normal([1.0, -1.0], [[1.0, 0.8], [0.8, 2.0]], size=15)
    prior = {"mean": [0.0, 0.0], "mean_precision": 0.5, "dof": 4.0, "scale": [[1.0, 0.2], [0.2, 1.0]]}
    common = {"sampler": "gibbs", "prior": prior, "n_chains": 2, "n_draws": 3000, "n_warmup": 200, "random_state": 0}
    t = HMM(1, emission="studentt", emission_params={"fit_dof": False, "dof_init": 1e7, "dof_bounds": (1.0, 1e7)},
            **common).fit(X)
    g = HMM(1, emission="gaussian", emission_params={"covariance_type": "full"}, **common).fit(X)
    for name in ("means", "covars"):
        a, b = (m.mcmc_.draws[name].reshape(6000, -1) for m in (t, g))
        se = np.sqrt(a.var(axis=0) / len(a) + b.var(axis=0) / len(b))  # draws are independent here (K = 1, nu fixed)
        assert np.all(np.abs(a.mean(axis=0) - b.mean(axis=0)) < 5 * se), (name, a.mean(axis=0), b.mean(axis=0), se)


def test_held_means_stay_put_and_the_rest_is_sampled():
    import pyro.distributions as pdist
    import torch

    X, lengths = HMM(emission="studentt")._conformance_data(np.random.default_rng(0))
    means = np.array([[-3.0, 0.0], [3.0, 1.0]])
    model = HMM(2, emission="studentt", sampler="gibbs", n_chains=1, n_draws=30, n_warmup=10, random_state=0,
                prior={"means": pdist.Delta(torch.as_tensor(means))}).fit(X, lengths=lengths)
    np.testing.assert_array_equal(model.mcmc_.draws["means"][0], np.broadcast_to(means, (30, 2, 2)))
    assert np.ptp(model.mcmc_.draws["covars"][0, :, 0, 0, 0]) > 0 and np.ptp(model.mcmc_.draws["dofs"][0, :, 0]) > 0
