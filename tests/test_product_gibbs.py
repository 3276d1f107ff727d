"""Gibbs sampling of product emissions (issue #17): exact against closed forms, equal to the parts' own updates."""

import numba
import numpy as np
import pytest
from scipy import stats

from probspace import HMM, load
from probspace.emissions import GaussianEmission, PoissonEmission
from probspace.emissions._product import ProductEmission

PARTS = [("gaussian", [0, 2]), ("poisson", [1])]  # interleaved columns: the kernel gathers each part's block
PRIOR = {"gaussian0_mean": [0.5, -1.0], "gaussian0_mean_precision": 2.0, "gaussian0_dof": 5.0,
         "gaussian0_scale": [1.0, 2.0], "poisson1_rate_shape": 2.0, "poisson1_rate_rate": 0.5}


def _data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.normal(1.0, 1.5, n), rng.poisson(3.0, n), rng.normal(-2.0, 0.7, n)]).astype(float)


@pytest.fixture(scope="module")
def one_state_fit():
    X = _data()
    X = np.column_stack([X, np.random.default_rng(9).integers(0, 3, X.shape[0])])
    parts = [*PARTS, ("categorical", [3], {"n_symbols": 3})]
    prior = {**PRIOR, "categorical2_emissionprob": [3.0, 1.0, 0.5]}
    model = HMM(1, emission="product", emission_params={"parts": parts}, sampler="gibbs", prior=prior, n_chains=2,
                n_draws=1500, n_warmup=10, random_state=0).fit(X)
    return X, model


def test_one_state_matches_the_closed_form_posteriors(one_state_fit):
    """K = 1: no path uncertainty, each sweep draws the parameters exactly (iid) from the conjugate posterior."""
    X, model = one_state_fit
    d = model.draws_
    n = X.shape[0]
    # Gaussian part, per feature: Normal-inverse-Gamma; sigma^2 ~ InvGamma(nu_n / 2, psi_n / 2), mu ~ Student-t
    for j, col in enumerate([0, 2]):
        x = X[:, col]
        m0, k0, nu0, psi0 = PRIOR["gaussian0_mean"][j], 2.0, 5.0, PRIOR["gaussian0_scale"][j]
        kn, nun = k0 + n, nu0 + n
        mn = (k0 * m0 + x.sum()) / kn
        psin = psi0 + ((x - x.mean()) ** 2).sum() + k0 * n / kn * (x.mean() - m0) ** 2
        var = d["gaussian0_covars"][..., 0, j].ravel()
        mu = d["gaussian0_means"][..., 0, j].ravel()
        assert stats.kstest(var, stats.invgamma(nun / 2, scale=psin / 2).cdf).pvalue > 1e-5
        t = stats.t(nun, loc=mn, scale=np.sqrt(psin / (nun * kn)))
        assert stats.kstest(mu, t.cdf).pvalue > 1e-5
        assert abs(mu.mean() - mn) < 5 * t.std() / np.sqrt(mu.size)
    # Poisson part: Gamma(a0 + sum x, b0 + n)
    lam = d["poisson1_lambdas"][..., 0, 0].ravel()
    post = stats.gamma(2.0 + X[:, 1].sum(), scale=1.0 / (0.5 + n))
    assert stats.kstest(lam, post.cdf).pvalue > 1e-5
    assert abs(lam.mean() - post.mean()) < 5 * post.std() / np.sqrt(lam.size)
    assert model.prior_["poisson1_rate_shape"] == 2.0
    # categorical part (its prior a Dirichlet concentration under the prefixed array name): Beta marginals
    alpha = np.array([3.0, 1.0, 0.5]) + np.bincount(X[:, 3].astype(int), minlength=3)
    for s in range(3):
        p = d["categorical2_emissionprob"][..., 0, s].ravel()
        assert stats.kstest(p, stats.beta(alpha[s], alpha.sum() - alpha[s]).cdf).pvalue > 1e-5


@numba.njit
def _seed(s):  # pragma: no cover - compiled
    np.random.seed(s)


def test_product_update_is_the_parts_updates_in_turn():
    """Same numba stream: the product's update equals the Gaussian's then the Poisson's on their own columns."""
    X = _data(60, 1)
    rng = np.random.default_rng(2)
    K = 2
    z = rng.integers(0, K, X.shape[0]).astype(np.int64)
    product = ProductEmission([list(p) for p in PARTS]).for_data(X)
    gauss, pois = GaussianEmission("diag"), PoissonEmission()
    start = {"gaussian0_means": rng.normal(size=(K, 2)), "gaussian0_covars": rng.uniform(0.5, 2, (K, 2)),
             "poisson1_lambdas": rng.uniform(1, 4, (K, 1))}
    from probspace._bayes import PriorReader

    hyper = product.resolve_hyper(PriorReader(PRIOR, "test"), X, K)
    packed = product.pack_hyper(hyper, 3)
    for fixed in ([False, False, False], [True, False, False], [False, False, True]):
        theta = product.pack(start)
        _seed(7)
        product.update_kernel(X, z, K, packed, np.array(fixed), theta)
        got = product.unpack(theta, K, 3)
        Xg, Xp = np.ascontiguousarray(X[:, [0, 2]]), np.ascontiguousarray(X[:, [1]])
        tg = gauss.pack({"means": start["gaussian0_means"], "covars": start["gaussian0_covars"]})
        tp = pois.pack({"lambdas": start["poisson1_lambdas"]})
        hg = gauss.pack_hyper({k[10:]: v for k, v in hyper.items() if k.startswith("gaussian0_")}, 2)
        hp = pois.pack_hyper({k[9:]: v for k, v in hyper.items() if k.startswith("poisson1_")}, 1)
        _seed(7)
        gauss.update_kernel(Xg, z, K, hg, np.array(fixed[:2]), tg)
        pois.update_kernel(Xp, z, K, hp, np.array(fixed[2:]), tp)
        np.testing.assert_array_equal(got["gaussian0_means"], tg[:2 * K].reshape(K, 2))
        np.testing.assert_array_equal(got["gaussian0_covars"], tg[2 * K:].reshape(K, 2))
        np.testing.assert_array_equal(got["poisson1_lambdas"], tp.reshape(K, 1))
        for name, held in zip(product.names, fixed, strict=True):
            if held:
                np.testing.assert_array_equal(got[name], start[name])
    # and the product's log-density kernel is the sum of the parts' (the Gibbs driver's path sampling reads it)
    params = product.unpack(product.pack(start), K, 3)
    out = np.empty((X.shape[0], K))
    product.frames_kernel(X, product.aux(X), product.pack(params), out)
    np.testing.assert_allclose(out, product.log_frames(X, params), rtol=1e-13)


@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")
def test_product_gibbs_two_states_reproducible_save_load_arviz(tmp_path):
    az = pytest.importorskip("arviz")
    X, lengths = HMM(emission="product")._conformance_data(np.random.default_rng(0))
    parts = [("gaussian", [0, 1], {"covariance_type": "full"}), ("poisson", [2]), ("categorical", [3])]

    def fit():
        return HMM(2, emission="product", emission_params={"parts": parts}, sampler="gibbs", n_chains=2,
                   n_draws=150, n_warmup=100, random_state=3).fit(X, lengths=lengths)

    model = fit()
    again = fit()
    for name, value in model.draws_.items():
        np.testing.assert_array_equal(value, again.draws_[name])
    # relabelled by the first part's key (gaussian0_means, first feature), states well separated
    assert np.all(np.diff(model.draws_["gaussian0_means"][..., 0], axis=-1) > 0)
    np.testing.assert_allclose(model.poisson1_lambdas_[:, 0], [1.0, 6.0], atol=0.6)
    model.save(tmp_path / "g.npz")
    back = load(tmp_path / "g.npz")
    for name, value in model.draws_.items():
        np.testing.assert_array_equal(back.draws_[name], value)
    np.testing.assert_array_equal(back.log_likelihood(X, lengths=lengths), model.log_likelihood(X, lengths=lengths))
    idata = model.to_arviz(X, lengths=lengths)
    rhat = az.rhat(idata)
    assert float(rhat["poisson1_lambdas"].max()) < 1.1
    assert float(az.ess(idata)["gaussian0_means"].min()) > 50
    assert np.isfinite(az.loo(idata).elpd_loo)


def test_product_gibbs_bad_requests():
    X, lengths = HMM(emission="product")._conformance_data(np.random.default_rng(0))

    def fit(parts, **kw):
        return HMM(2, emission="product", emission_params={"parts": parts}, n_draws=5, n_warmup=5,
                   **kw).fit(X, lengths=lengths)

    ok = [("gaussian", [0, 1]), ("poisson", [2]), ("categorical", [3])]
    with pytest.raises(ValueError, match=r"part 'gmm0'.*conjugate Gibbs update; the 'gmm' emission has none"):
        fit([("gmm", [0, 1]), ("poisson", [2]), ("categorical", [3])], sampler="gibbs")
    # a Student-t part has a Gibbs update (scale-mixture augmentation), so it samples inside a product
    t = fit([("studentt", [0, 1]), ("poisson", [2]), ("categorical", [3])], sampler="gibbs", random_state=0)
    assert np.all(np.isfinite(t.mcmc_.draws["studentt0_dofs"]))
    with pytest.raises(ValueError, match=r"part 'gaussian0'.*covariance_type 'full' or 'diag'"):
        fit([("gaussian", [0, 1], {"covariance_type": "tied"}), ("poisson", [2]), ("categorical", [3])],
            sampler="gibbs")
    with pytest.raises(ValueError, match=r"supports sampler \['gibbs'\]; got 'nuts'"):
        fit(ok, sampler="nuts")
    with pytest.raises(ValueError, match=r"unknown entries \['mean'\]"):
        fit(ok, sampler="gibbs", prior={"mean": 0.0})
    with pytest.raises(ValueError, match=r"prior\['rate_shape'\].*part 'poisson1'.*positive"):
        fit(ok, sampler="gibbs", prior={"poisson1_rate_shape": -1.0})


def test_product_gibbs_holds_a_part_array_fixed():
    """A Delta prior on one part's array (prefixed name) holds it; the other parts are still drawn."""
    dist = pytest.importorskip("pyro.distributions")
    torch = pytest.importorskip("torch")
    X, lengths = HMM(emission="product")._conformance_data(np.random.default_rng(0))
    parts = [("gaussian", [0, 1]), ("poisson", [2]), ("categorical", [3])]
    lam = np.array([[1.0], [6.0]])
    model = HMM(2, emission="product", emission_params={"parts": parts}, sampler="gibbs", n_chains=2, n_draws=30,
                n_warmup=20, prior={"poisson1_lambdas": dist.Delta(torch.tensor(lam)).to_event(2)},
                random_state=0).fit(X, lengths=lengths)
    assert np.all(model.draws_["poisson1_lambdas"] == lam)
    assert np.ptp(model.draws_["gaussian0_means"][..., 0, 0]) > 0
