"""Gibbs holds what EM holds (issue #17 item 1): held emission entries and states, every Gibbs emission.

Every frame is labelled, so the state path is known and each free parameter's
conditional is closed-form (or one-dimensional, on a grid): held entries must
be bit-identical in every draw, structural zeros exactly 0, and the free
entries must follow their exact conditional given the held ones. Conjugate
updates then draw independent samples (KS tests, p > 1e-3); the Student-t
update is a Markov chain (its precision weights are latent), checked with
ESS-based Monte Carlo standard errors.
"""

import warnings

import arviz as az
import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln

from probspace import HMM, GaussianHMM
from probspace.emissions import GaussianEmission
from probspace.inference._gibbs import run_chain

#: KS p-values below this fail (each test makes a handful of comparisons).
P_MIN = 1e-3


def _fit(model, X, z):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X, labels=z)


def _ks(draws, dist):
    p = stats.kstest(np.ravel(draws), dist.cdf).pvalue
    assert p > P_MIN, p
    return p


def _labels(counts, seed=0):
    """A labelled path: runs of each state in turn (every frame known)."""
    rng = np.random.default_rng(seed)
    runs = np.concatenate([np.full(rng.integers(3, 7), k) for _ in range(40) for k in range(len(counts))])
    z = []
    left = list(counts)
    for k in runs:
        if left[k] > 0:
            z.append(k)
            left[k] -= 1
    return np.array(z)


def _gibbs(cls, K, **kw):
    return cls(K, sampler="gibbs", n_chains=2, n_draws=2000, n_warmup=20, random_state=0, **kw)


# -- entries: features independent given the states -------------------------------------------------
def test_bernoulli_free_entries_are_beta_given_the_held_ones():
    z = _labels([30, 25])
    rng = np.random.default_rng(1)
    X = (rng.random((z.size, 3)) < np.array([[0.2, 0.6, 0.5], [0.7, 0.9, 0.3]])[z]).astype(float)
    prior = {"alpha": [1.0, 2.0, 0.5], "beta": [3.0, 1.0, 0.5]}
    held = np.array([[0.3, np.nan, np.nan], [np.nan, 0.9, np.nan]])
    model = _fit(_gibbs(HMM, 2, emission="bernoulli", prior=prior, fixed={"probs": held}), X, z)
    draws = model.draws_["probs"].reshape(-1, 2, 3)
    for k in range(2):
        for d in range(3):
            if np.isfinite(held[k, d]):
                assert np.all(draws[:, k, d] == held[k, d])
                continue
            ones, n = X[z == k, d].sum(), (z == k).sum()
            _ks(draws[:, k, d], stats.beta(prior["alpha"][d] + ones, prior["beta"][d] + n - ones))


def test_poisson_free_entries_are_gamma_given_the_held_ones():
    z = _labels([20, 30])
    rng = np.random.default_rng(2)
    X = rng.poisson(np.array([[1.0, 4.0], [6.0, 0.5]])[z]).astype(float)
    prior = {"rate_shape": [2.0, 1.0], "rate_rate": [0.5, 2.0]}
    held = np.array([[1.5, np.nan], [np.nan, np.nan]])
    model = _fit(_gibbs(HMM, 2, emission="poisson", prior=prior, fixed={"lambdas": held}), X, z)
    draws = model.draws_["lambdas"].reshape(-1, 2, 2)
    assert np.all(draws[:, 0, 0] == 1.5)
    for k, d in ((0, 1), (1, 0), (1, 1)):
        a = prior["rate_shape"][d] + X[z == k, d].sum()
        b = prior["rate_rate"][d] + (z == k).sum()
        _ks(draws[:, k, d], stats.gamma(a, scale=1.0 / b))


def test_categorical_free_entries_share_the_mass_left_as_a_dirichlet():
    """Row k's free entries: ``(1 - held mass) * Dirichlet(alpha_free + counts_free)``; held zeros stay 0."""
    z = _labels([40, 35])
    rng = np.random.default_rng(3)
    B = np.array([[0.3, 0.5, 0.0, 0.2], [0.1, 0.3, 0.2, 0.4]])
    X = np.array([rng.choice(4, p=B[k]) for k in z], dtype=float)[:, None]
    alpha = np.array([1.0, 2.0, 0.5, 1.5])
    held = np.array([[0.2, np.nan, 0.0, np.nan], [np.nan, np.nan, np.nan, 0.1]])
    model = _fit(_gibbs(HMM, 2, emission="categorical", prior={"emissionprob": alpha},
                        fixed={"emissionprob": held}), X, z)
    draws = model.draws_["emissionprob"].reshape(-1, 2, 4)
    assert np.all(draws[:, 0, 0] == 0.2) and np.all(draws[:, 0, 2] == 0.0) and np.all(draws[:, 1, 3] == 0.1)
    assert np.allclose(draws.sum(axis=-1), 1.0)
    for k in range(2):
        free = np.isnan(held[k])
        mass = 1.0 - np.nansum(held[k])
        a = alpha + np.bincount(X[z == k, 0].astype(int), minlength=4)
        for j in np.flatnonzero(free):
            # a Dirichlet's marginal: Beta(a_j, sum of the other free a), scaled to the mass left
            _ks(draws[:, k, j] / mass, stats.beta(a[j], a[free].sum() - a[j]))


@pytest.fixture(scope="module")
def diag_fit():
    z = _labels([20, 25])
    rng = np.random.default_rng(4)
    X = np.array([[0.5, 1.0], [3.0, 2.0]])[z] + rng.normal(size=(z.size, 2)) * np.array([1.0, 0.7])
    prior = {"mean": [0.5, -1.0], "mean_precision": 2.0, "dof": 4.0, "scale": [1.0, 2.0]}
    fixed = {"means": [[0.0, np.nan], [np.nan, 2.0]], "covars": [[np.nan, 0.5], [np.nan, 0.7]]}
    return X, z, prior, _fit(_gibbs(GaussianHMM, 2, covariance_type="diag", prior=prior, fixed=fixed), X, z)


def _diag_conditionals(X, z, prior, k, d, mean=None, var=None):
    """Exact conditional of the free one(s) of (mean, variance) of state k, feature d (normal-inverse-gamma)."""
    x = X[z == k, d]
    n, m0, k0, nu0, psi0 = x.size, prior["mean"][d], prior["mean_precision"], prior["dof"], prior["scale"][d]
    kn, nun = k0 + n, nu0 + n
    mn = (k0 * m0 + x.sum()) / kn
    if mean is not None:  # held mean: its prior dropped, sigma^2 | mu ~ InvGamma
        return stats.invgamma(nun / 2, scale=(psi0 + ((x - mean) ** 2).sum()) / 2)
    if var is not None:  # held variance: mu | sigma^2 ~ N(mn, sigma^2 / kn)
        return stats.norm(mn, np.sqrt(var / kn))
    psin = psi0 + ((x - x.mean()) ** 2).sum() + k0 * n / kn * (x.mean() - m0) ** 2
    return stats.t(nun, loc=mn, scale=np.sqrt(psin / (nun * kn))), stats.invgamma(nun / 2, scale=psin / 2)


def test_diagonal_gaussian_holds_means_and_variances_entrywise(diag_fit):
    X, z, prior, model = diag_fit
    assert model.draws_["covars"].shape[2:] == (2, 2)  # diagonal draws: variances (K, D)
    means, var = model.draws_["means"].reshape(-1, 2, 2), model.draws_["covars"].reshape(-1, 2, 2)
    assert np.all(means[:, 0, 0] == 0.0) and np.all(var[:, 0, 1] == 0.5)
    assert np.all(means[:, 1, 1] == 2.0) and np.all(var[:, 1, 1] == 0.7)  # both held: never drawn
    _ks(var[:, 0, 0], _diag_conditionals(X, z, prior, 0, 0, mean=0.0))
    _ks(means[:, 0, 1], _diag_conditionals(X, z, prior, 0, 1, var=0.5))
    t_mean, ig_var = _diag_conditionals(X, z, prior, 1, 0)  # both free: the joint normal-inverse-gamma draw
    _ks(means[:, 1, 0], t_mean)
    _ks(var[:, 1, 0], ig_var)


def test_a_wrong_held_variance_conditional_is_detected(diag_fit):
    """The test above has power: dropping the mean's prior (N(xbar, var / n)) is rejected by far."""
    X, z, prior, model = diag_fit
    x = X[z == 0, 1]
    wrong = stats.norm(x.mean(), np.sqrt(0.5 / x.size))
    assert stats.kstest(model.draws_["means"][..., 0, 1].ravel(), wrong.cdf).pvalue < 1e-6


# -- states: coupled entries -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def full_fit():
    z = _labels([15, 25])
    rng = np.random.default_rng(5)
    C = np.array([[1.0, 0.5], [0.5, 0.8]])
    X = np.array([[1.0, -1.0], [3.0, 2.0]])[z] + rng.normal(size=(z.size, 2)) @ np.linalg.cholesky(C).T
    prior = {"mean": [0.0, 0.5], "mean_precision": 1.0, "dof": 5.0, "scale": [[1.0, 0.2], [0.2, 1.5]]}
    C1 = np.array([[0.8, 0.3], [0.3, 0.6]])
    fixed = {"means": [[1.2, -0.8], [np.nan, np.nan]], "covars": np.stack([np.full((2, 2), np.nan), C1])}
    return X, z, prior, C1, _fit(_gibbs(GaussianHMM, 2, covariance_type="full", prior=prior, fixed=fixed), X, z)


def test_full_gaussian_holds_whole_states(full_fit):
    """State 0's mean held: Sigma_0 ~ IW (mean prior dropped); state 1's covariance held: mu_1 ~ N(mn, C / kn)."""
    X, z, prior, C1, model = full_fit
    means, covs = model.draws_["means"].reshape(-1, 2, 2), model.draws_["covars"].reshape(-1, 2, 2, 2)
    assert np.all(means[:, 0] == [1.2, -0.8]) and np.all(covs[:, 1] == C1)
    m0, k0, nu0, psi0 = (np.asarray(prior[k], dtype=float) for k in ("mean", "mean_precision", "dof", "scale"))
    # Sigma_0 | mu_0 ~ IW(nu0 + n, psi0 + sum (x - mu)(x - mu)^T): a' Sigma^-1 a / a' Psi^-1 a ~ chi2(nu)
    r = X[z == 0] - [1.2, -0.8]
    nu, psi = nu0 + r.shape[0], psi0 + r.T @ r
    prec, psi_inv = np.linalg.inv(covs[:, 0]), np.linalg.inv(psi)
    for a in ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -2.0]):
        a = np.asarray(a)
        _ks(np.einsum("d,nde,e->n", a, prec, a) / (a @ psi_inv @ a), stats.chi2(nu))
    # mu_1 | Sigma_1 ~ N(mn, C1 / kn): each coordinate, and the Mahalanobis distance ~ chi2(2)
    x = X[z == 1]
    kn = k0 + x.shape[0]
    mn = (k0 * m0 + x.sum(axis=0)) / kn
    for d in range(2):
        _ks(means[:, 1, d], stats.norm(mn[d], np.sqrt(C1[d, d] / kn)))
    r = means[:, 1] - mn
    _ks(kn * np.einsum("nd,de,ne->n", r, np.linalg.inv(C1), r), stats.chi2(2))


def test_run_chain_rejects_a_partly_held_state_of_a_coupled_array():
    em = GaussianEmission("full")
    K, D = 2, 2
    state = {"pi": np.full(K, 0.5), "A": np.full((K, K), 0.5),
             "theta": em.pack({"means": np.zeros((K, D)), "covars": np.tile(np.eye(D), (K, 1, 1))})}
    X = np.random.default_rng(0).normal(size=(10, D))
    free = {"means": np.array([[False, True], [True, True]])}
    with pytest.raises(ValueError, match="per state"):
        run_chain(em, True, X, np.array([0, 10]), np.ones(K), np.ones((K, K)), np.zeros(D + 2 + D * D), state, 5,
                  5, 0, free=free)


def test_full_gaussian_model_rejects_a_partly_held_state():
    X = np.random.default_rng(0).normal(size=(30, 2))
    with pytest.raises(ValueError, match="all entries of a state or none"):
        GaussianHMM(2, covariance_type="full", sampler="gibbs", fixed={"means": [[0.0, np.nan], [np.nan] * 2]},
                    n_draws=5, n_warmup=5).fit(X)


# -- Student-t: per state, against one-dimensional grids --------------------------------------------
T_PRIOR = {"mean": 0.0, "mean_precision": 0.5, "dof": 3.0, "scale": 2.0, "dofs_shape": 2.0, "dofs_rate": 0.1}
T_BOUNDS = (1.0, 60.0)


def _t_loglik(x, mu, s2, nu):
    """Sum over the frames ``x`` of ``log t_nu(x; mu, s2)``, broadcast over grids of mu, s2 or nu."""
    x = np.asarray(x)[:, None]
    return (gammaln(0.5 * (nu + 1)) - gammaln(0.5 * nu) - 0.5 * np.log(nu * np.pi * s2)
            - 0.5 * (nu + 1) * np.log1p((x - mu) ** 2 / (nu * s2))).sum(axis=0)


def _check_grid(draws, grid, logp):
    """Mean and quartiles of chains ``draws`` (chains, draws) against a grid density, within 5 ESS-based MCSE."""
    p = np.exp(logp - logp.max())
    p /= p.sum()
    ess = float(az.ess(draws))
    assert ess > 300, ess
    mean = p @ grid
    sd = np.sqrt(p @ (grid - mean) ** 2)
    z_mean = (draws.mean() - mean) / (sd / np.sqrt(ess))
    assert abs(z_mean) < 5, (z_mean, ess)
    cdf = np.cumsum(p)
    for q in (0.25, 0.5, 0.75):
        cut = grid[np.searchsorted(cdf, q)]
        exact = cdf[np.searchsorted(cdf, q)]
        frac = (draws <= cut).mean()
        assert abs(frac - exact) < 5 * np.sqrt(exact * (1 - exact) / ess), (q, frac, exact, ess)
    return z_mean


def test_studentt_holds_states_of_each_array():
    """Four labelled states: one held whole, then mean and dof held, scale and dof held, mean and scale held."""
    z = _labels([12, 14, 14, 16])
    rng = np.random.default_rng(6)
    X = (np.array([5.0, 0.0, 2.0, -3.0])[z] + rng.standard_t(4.0, z.size))[:, None]
    X[np.flatnonzero(z == 1)[0], 0] = 6.0  # an outlier in each of the states drawn
    X[np.flatnonzero(z == 2)[0], 0] = -4.0
    fixed = {"means": [[5.0], [0.2], [np.nan], [-3.0]], "dofs": [4.0, 3.0, 5.0, np.nan],
             "covars": [[[1.0]], [[np.nan]], [[1.5]], [[0.5]]]}
    model = _fit(HMM(4, emission="studentt", sampler="gibbs", prior=T_PRIOR, fixed=fixed, n_chains=2, n_draws=3000,
                     n_warmup=300, random_state=0, emission_params={"dof_bounds": T_BOUNDS, "dof_init": 5.0}), X, z)
    d = model.draws_
    means, s2, nu = d["means"][..., 0], d["covars"][..., 0, 0], d["dofs"]
    for k, m in enumerate([5.0, 0.2, None, -3.0]):
        if m is not None:
            assert np.all(means[..., k] == m)
    for k, v in ((0, 1.0), (2, 1.5), (3, 0.5)):
        assert np.all(s2[..., k] == v)
    for k, v in ((0, 4.0), (1, 3.0), (2, 5.0)):
        assert np.all(nu[..., k] == v)
    # state 1: sigma^2 | mu, nu, x with the inverse-gamma prior alone (held mean: its prior dropped)
    s2_grid = np.exp(np.linspace(np.log(0.01), np.log(40.0), 3000))
    x = X[z == 1, 0]
    logp = _t_loglik(x, 0.2, s2_grid, 3.0) + stats.invgamma.logpdf(s2_grid, 1.5, scale=1.0) + np.log(s2_grid)
    _check_grid(s2[..., 1], s2_grid, logp)  # log-spaced grid: the Jacobian makes its masses
    # state 2: mu | sigma^2, nu, x with mu ~ N(m0, sigma^2 / kappa0)
    mu_grid = np.linspace(-6.0, 8.0, 4000)
    x = X[z == 2, 0]
    logp = _t_loglik(x, mu_grid, 1.5, 5.0) + stats.norm.logpdf(mu_grid, 0.0, np.sqrt(1.5 / 0.5))
    _check_grid(means[..., 2], mu_grid, logp)
    # state 3: nu | mu, sigma^2, x with the truncated Gamma prior
    nu_grid = np.exp(np.linspace(np.log(T_BOUNDS[0]), np.log(T_BOUNDS[1]), 3000))
    x = X[z == 3, 0]
    logp = _t_loglik(x, -3.0, 0.5, nu_grid) + stats.gamma.logpdf(nu_grid, 2.0, scale=10.0) + np.log(nu_grid)
    _check_grid(nu[..., 3], nu_grid, logp)


# -- product: each part's entry flags reach the part's own update ------------------------------------
def test_product_routes_held_entries_to_each_part():
    z = _labels([30, 35])
    rng = np.random.default_rng(7)
    B = np.array([[0.5, 0.3, 0.2], [0.6, 0.0, 0.4]])
    X = np.column_stack([np.array([1.0, -2.0])[z] + rng.normal(size=z.size), rng.poisson(np.array([3.0, 1.0])[z]),
                         [rng.choice(3, p=B[k]) for k in z]]).astype(float)
    parts = [("gaussian", [0]), ("poisson", [1]), ("categorical", [2], {"n_symbols": 3})]
    prior = {"gaussian0_mean": 0.0, "gaussian0_mean_precision": 1.0, "gaussian0_dof": 3.0, "gaussian0_scale": 1.0,
             "poisson1_rate_shape": 2.0, "poisson1_rate_rate": 0.5, "categorical2_emissionprob": [1.0, 2.0, 0.5]}
    fixed = {"gaussian0_means": [[0.0], [np.nan]], "gaussian0_covars": [[np.nan], [0.8]],
             "poisson1_lambdas": [[np.nan], [2.0]], "categorical2_emissionprob": [[0.5, np.nan, np.nan],
                                                                                  [np.nan, 0.0, np.nan]]}
    model = _fit(_gibbs(HMM, 2, emission="product", emission_params={"parts": parts}, prior=prior, fixed=fixed), X,
                 z)
    d = {k: v.reshape((-1,) + v.shape[2:]) for k, v in model.draws_.items()}
    mu, var = d["gaussian0_means"][:, :, 0], d["gaussian0_covars"].reshape(-1, 2)
    lam, B_draws = d["poisson1_lambdas"][:, :, 0], d["categorical2_emissionprob"]
    assert np.all(mu[:, 0] == 0.0) and np.all(var[:, 1] == 0.8) and np.all(lam[:, 1] == 2.0)
    assert np.all(B_draws[:, 0, 0] == 0.5) and np.all(B_draws[:, 1, 1] == 0.0)
    x0, x1 = X[z == 0, 0], X[z == 1, 0]
    _ks(var[:, 0], stats.invgamma((3.0 + x0.size) / 2, scale=(1.0 + (x0**2).sum()) / 2))  # variance | mean 0
    kn = 1.0 + x1.size
    _ks(mu[:, 1], stats.norm(x1.sum() / kn, np.sqrt(0.8 / kn)))  # mean | variance 0.8
    _ks(lam[:, 0], stats.gamma(2.0 + X[z == 0, 1].sum(), scale=1.0 / (0.5 + (z == 0).sum())))
    alpha = np.array([1.0, 2.0, 0.5])
    a0 = alpha + np.bincount(X[z == 0, 2].astype(int), minlength=3)
    _ks(B_draws[:, 0, 1] / 0.5, stats.beta(a0[1], a0[2]))
    a1 = alpha + np.bincount(X[z == 1, 2].astype(int), minlength=3)
    _ks(B_draws[:, 1, 0], stats.beta(a1[0], a1[2]))


# -- autoregressive: states of the regression (coefficients with intercepts) and of the noise -------------
def _ar_chain(free, n_sweeps=2000):
    """AR(1), two labelled regimes: state 0's regression held, state 1's noise variance held (0.5)."""
    from probspace.emissions import AutoregressiveEmission
    from probspace.emissions._autoregressive import lagged_rows
    from probspace.emissions._base import PriorReader

    rng = np.random.default_rng(8)
    z = _labels([60, 60])
    x = np.zeros(z.size)
    for t in range(1, z.size):
        x[t] = (0.8 * x[t - 1] + 0.5 if z[t] == 0 else -0.3 * x[t - 1] + 2.0) + rng.normal(0.0, [0.6, 0.8][z[t]])
    X = lagged_rows(x[:, None], None, 1)
    em = AutoregressiveEmission(order=1, n_features=1)
    prior = {"coefs_mean": 0.2, "intercepts_mean": 1.0, "regression_precision": [[2.0, 0.3], [0.3, 1.0]],
             "dof": 3.0, "scale": 1.5}
    hyper = em.resolve_hyper(PriorReader(prior, "test"), X, 2)
    params = {"coefs": np.array([[[0.7]], [[0.0]]]), "intercepts": np.array([[0.4], [1.0]]),
              "covars": np.array([[[1.0]], [[0.5]]])}
    state = {"pi": np.full(2, 0.5), "A": np.full((2, 2), 0.5), "theta": em.pack(params)}
    log_mask = np.where(np.eye(2, dtype=bool)[z], 0.0, -np.inf)
    out = run_chain(em, True, X, np.array([0, z.size]), np.ones(2), np.ones((2, 2)), em.pack_hyper(hyper, 1), state,
                    n_sweeps, n_sweeps, 0, log_mask=log_mask, free=free)
    return X, z, hyper, params, em.unpack(out["theta"], 2, 1)


def test_autoregressive_holds_states_of_the_regression_and_the_noise():
    free = {"coefs": np.array([[[False]], [[True]]]), "intercepts": np.array([[False], [True]]),
            "covars": np.array([[[True]], [[False]]])}
    X, z, hyper, params, draws = _ar_chain(free)
    assert np.all(draws["coefs"][:, 0] == 0.7) and np.all(draws["intercepts"][:, 0] == 0.4)
    assert np.all(draws["covars"][:, 1] == 0.5)
    ok = ~np.isnan(X).any(axis=1)
    c = hyper["centre"][0]
    # state 0, regression held: sigma^2 ~ InvGamma((nu0 + n) / 2, (psi0 + residual scatter) / 2), its prior dropped
    x0, lag0 = X[ok & (z == 0), 0], X[ok & (z == 0), 1]
    resid = x0 - 0.7 * lag0 - 0.4
    _ks(draws["covars"][:, 0, 0, 0], stats.invgamma((hyper["dof"] + x0.size) / 2,
                                                    scale=(hyper["scale"][0, 0] + resid @ resid) / 2))
    # state 1, noise held: the centred regression B = [a, b + a c - c] ~ N(Mn, 0.5 Pn^-1)
    r = np.column_stack([X[ok & (z == 1), 1] - c, np.ones((ok & (z == 1)).sum())])
    y = X[ok & (z == 1), 0] - c
    P0 = hyper["regression_precision"]
    M0 = np.array([hyper["coefs_mean"][0, 0], hyper["intercepts_mean"][0] + hyper["coefs_mean"][0, 0] * c - c])
    Pn = P0 + r.T @ r
    Mn = np.linalg.solve(Pn, P0 @ M0 + r.T @ y)
    cov = 0.5 * np.linalg.inv(Pn)
    a, b = draws["coefs"][:, 1, 0, 0], draws["intercepts"][:, 1, 0]
    B = np.column_stack([a, b + a * c - c])
    for j in range(2):
        _ks(B[:, j], stats.norm(Mn[j], np.sqrt(cov[j, j])))
    dev = B - Mn
    _ks(np.einsum("nd,de,ne->n", dev, np.linalg.inv(cov), dev), stats.chi2(2))


def test_autoregressive_holds_coefficients_and_intercepts_of_a_state_together():
    free = {"coefs": np.array([[[False]], [[True]]]), "intercepts": np.array([[True], [True]])}
    with pytest.raises(ValueError, match="together"):
        _ar_chain(free, n_sweeps=2)
