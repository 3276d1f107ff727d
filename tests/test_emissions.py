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
