"""Emission components: one compiled density per emission, its torch twin equal to it, missing values summed out."""

import numpy as np
import pytest
from scipy import stats

from probspace.emissions import (
    BernoulliEmission,
    CategoricalEmission,
    GaussianEmission,
    GaussianMixtureEmission,
    PoissonEmission,
)

RNG = np.random.default_rng(0)
K, D, N = 3, 2, 40
MEANS = RNG.normal(size=(K, D))
A = RNG.normal(size=(K, D, D))
FULL = A @ np.swapaxes(A, 1, 2) + np.eye(D)
VARS = RNG.uniform(0.5, 2.0, size=(K, D))


def _reference(emission, X, params):
    """scipy densities, missing values summed out by hand."""
    out = np.zeros((X.shape[0], K))
    for i, x in enumerate(X):
        obs = ~np.isnan(x)
        for k in range(K):
            if isinstance(emission, GaussianEmission):
                cov = (np.diag(params["covars"][k]) if emission.covariance_type == "diag" else params["covars"][k])
                if obs.any():
                    out[i, k] = stats.multivariate_normal(params["means"][k][obs], cov[np.ix_(obs, obs)]).logpdf(x[obs])
            elif isinstance(emission, PoissonEmission):
                out[i, k] = stats.poisson(params["lambdas"][k][obs]).logpmf(x[obs]).sum()
            elif isinstance(emission, BernoulliEmission):
                out[i, k] = stats.bernoulli(params["probs"][k][obs]).logpmf(x[obs]).sum()
            elif obs[0]:
                out[i, k] = np.log(params["emissionprob"][k, int(x[0])])
    return out


CASES = {
    "gaussian-diag": (GaussianEmission("diag"), {"means": MEANS, "covars": VARS}, RNG.normal(size=(N, D))),
    "gaussian-full": (GaussianEmission("full"), {"means": MEANS, "covars": FULL}, RNG.normal(size=(N, D))),
    "poisson": (PoissonEmission(), {"lambdas": RNG.uniform(0.5, 4, size=(K, D))},
                RNG.poisson(2.0, size=(N, D)).astype(float)),
    "categorical": (CategoricalEmission(4), {"emissionprob": RNG.dirichlet(np.ones(4), size=K)},
                    RNG.integers(0, 4, size=(N, 1)).astype(float)),
    "bernoulli": (BernoulliEmission(), {"probs": RNG.uniform(0.1, 0.9, size=(K, D))},
                  (RNG.random((N, D)) < 0.5).astype(float)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_compiled_density_matches_scipy_with_missing_values(name):
    emission, params, X = CASES[name]
    X = X.copy()
    X[3, 0] = np.nan
    X[5, :] = np.nan
    np.testing.assert_allclose(emission.log_frames(X, params), _reference(emission, X, params), rtol=1e-10,
                               atol=1e-12)


@pytest.mark.parametrize("name", ["gaussian-diag", "poisson", "categorical"])
def test_torch_twin_equals_the_compiled_density(name):
    torch = pytest.importorskip("torch")
    emission, params, X = CASES[name]
    Xt = torch.as_tensor(X, dtype=torch.float64)
    values = {k: torch.as_tensor(v, dtype=torch.float64) for k, v in params.items()}
    twin = emission.torch_frames(Xt, emission.torch_aux(Xt), values).numpy()
    np.testing.assert_allclose(twin, emission.log_frames(X, params), rtol=1e-12, atol=1e-12)


def test_mixture_emission_reuses_the_gaussian_density():
    weights = RNG.dirichlet(np.ones(2), size=K)
    means, covs = RNG.normal(size=(K, 2, D)), np.broadcast_to(FULL[:, None], (K, 2, D, D))
    X = RNG.normal(size=(N, D))
    got = GaussianMixtureEmission("full").log_frames(X, {"weights": weights, "means": means, "covars": covs})
    ref = np.log(sum(weights[:, m] * np.exp(GaussianEmission("full").log_frames(
        X, {"means": means[:, m], "covars": covs[:, m]})) for m in range(2)))
    np.testing.assert_allclose(got, ref, rtol=1e-12)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pack_and_unpack_round_trip(name):
    emission, params, X = CASES[name]
    out = emission.unpack(emission.pack(params)[None], K, X.shape[1])
    for k, v in params.items():
        np.testing.assert_array_equal(out[k][0], v)


@pytest.mark.parametrize("name", sorted(CASES))
def test_sampling_follows_the_density(name):
    emission, params, _ = CASES[name]
    states = np.repeat(np.arange(K), 4000)
    draws = emission.sample(params, states, np.random.default_rng(1))
    assert draws.shape[0] == states.size and np.all(np.isfinite(emission.log_frames(draws.astype(float), params)))
    first = draws[states == 0].astype(float).mean(axis=0)
    expected = {"gaussian-diag": MEANS[0], "gaussian-full": MEANS[0], "poisson": params.get("lambdas", [0])[0],
                "categorical": [params["emissionprob"][0] @ np.arange(4)] if "emissionprob" in params else None,
                "bernoulli": params.get("probs", [0])[0]}[name]
    np.testing.assert_allclose(first, expected, atol=0.1)


# -- conjugate prior log densities (the ``lp`` of Gibbs fits) ---------------------------------------------------
def _gaussian_hyper():
    return {"mean": np.array([0.3, -0.2]), "mean_precision": 0.5, "dof": 4.0,
            "scale": np.array([[1.5, 0.3], [0.3, 0.8]])}


@pytest.mark.parametrize("fixed", [(), ("means",), ("covars",)])
def test_gaussian_full_log_prior_is_normal_inverse_wishart(fixed):
    em, h = GaussianEmission("full"), _gaussian_hyper()
    params = {"means": np.stack([MEANS, MEANS + 1.0]), "covars": np.stack([FULL, FULL * 0.5])}
    got = em.log_prior(params, h, fixed)
    for n in range(2):
        ref = 0.0
        for k in range(K):
            cov = params["covars"][n, k]
            if "covars" not in fixed:
                ref += stats.invwishart(h["dof"], h["scale"]).logpdf(cov)
            if "means" not in fixed:
                ref += stats.multivariate_normal(h["mean"], cov / h["mean_precision"]).logpdf(params["means"][n, k])
        np.testing.assert_allclose(got[n], ref, rtol=1e-10)


@pytest.mark.parametrize("fixed", [(), ("means",), ("covars",)])
def test_gaussian_diag_log_prior_is_normal_inverse_gamma(fixed):
    em, h = GaussianEmission("diag"), _gaussian_hyper()
    params = {"means": MEANS[None], "covars": VARS[None]}
    ref = 0.0
    if "covars" not in fixed:
        ref += stats.invgamma(h["dof"] / 2, scale=np.diag(h["scale"]) / 2).logpdf(VARS).sum()
    if "means" not in fixed:
        ref += stats.norm(h["mean"], np.sqrt(VARS / h["mean_precision"])).logpdf(MEANS).sum()
    np.testing.assert_allclose(em.log_prior(params, h, fixed), [ref], rtol=1e-10)


def test_discrete_emission_log_priors_match_scipy():
    rng = np.random.default_rng(3)
    B = rng.dirichlet(np.ones(4), size=(2, K))
    alpha = np.array([0.5, 1.0, 2.0, 3.0])
    ref = [sum(stats.dirichlet(alpha).logpdf(B[n, k]) for k in range(K)) for n in range(2)]
    np.testing.assert_allclose(CategoricalEmission(4).log_prior({"emissionprob": B}, {"emissionprob": alpha}), ref)
    lam = rng.gamma(2.0, 1.0, size=(2, K, D))
    h = {"rate_shape": np.array([2.0, 0.7]), "rate_rate": np.array([1.5, 0.2])}
    ref = stats.gamma(h["rate_shape"], scale=1 / h["rate_rate"]).logpdf(lam).sum(axis=(1, 2))
    np.testing.assert_allclose(PoissonEmission().log_prior({"lambdas": lam}, h), ref)
    p = rng.uniform(0.05, 0.95, size=(2, K, D))
    h = {"alpha": np.array([1.0, 2.5]), "beta": np.array([0.5, 3.0])}
    ref = stats.beta(h["alpha"], h["beta"]).logpdf(p).sum(axis=(1, 2))
    np.testing.assert_allclose(BernoulliEmission().log_prior({"probs": p}, h), ref)
    # held fixed (a Delta prior): no contribution
    np.testing.assert_array_equal(BernoulliEmission().log_prior({"probs": p}, h, ("probs",)), [0.0, 0.0])


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_threaded_gaussian_log_frames_equal_single_threaded_and_the_direct_formula(monkeypatch, covariance_type):
    from scipy.stats import multivariate_normal

    rng = np.random.default_rng(4)
    K, D, N = 3, 2, 70_000  # several row blocks
    means = rng.normal(size=(K, D)) + 1e6  # far from the origin: differences are taken before squaring
    var = rng.uniform(0.5, 2.0, size=(K, D))
    cov = var if covariance_type == "diag" else np.stack([np.diag(v) + 0.3 * np.sqrt(np.outer(v, v)) * (1 - np.eye(D))
                                                          for v in var])
    X = means[rng.integers(K, size=N)] + rng.normal(size=(N, D))
    X[::97, 1] = np.nan  # partly missing rows
    em = GaussianEmission(covariance_type)
    params = {"means": means, "covars": cov}
    monkeypatch.setenv("PROBSPACE_NUM_THREADS", "1")
    one = em.log_frames(X, params)
    monkeypatch.setenv("PROBSPACE_NUM_THREADS", "3")
    np.testing.assert_array_equal(em.log_frames(X, params), one)
    full = cov if covariance_type == "full" else np.stack([np.diag(v) for v in var])
    rows = np.flatnonzero(~np.isnan(X).any(axis=1))[:500]
    for k in range(K):
        ref = multivariate_normal(means[k], full[k]).logpdf(X[rows])
        np.testing.assert_allclose(one[rows, k], ref, rtol=1e-9, atol=1e-9)
        ref_missing = multivariate_normal(means[k, 0], full[k, 0, 0]).logpdf(X[::97, 0])
        np.testing.assert_allclose(one[::97, k], ref_missing, rtol=1e-9, atol=1e-9)
