"""RBM and DBN: exact partition function, AIS, Gibbs stationarity, scikit-learn equivalence, bad input."""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn import neural_network

from probspace import DBN, RBM, load
from probspace.inference._rbm import ais_log_partition, free_energy, log_partition_exact
from probspace.posteriors import Bernoulli
from probspace.testing import parametrize_with_model_checks


def _random_rbm(H, D, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    return rng.normal(scale=scale, size=(H, D)), rng.normal(size=H), rng.normal(size=D)


def _all(n):
    return np.array(list(itertools.product([0.0, 1.0], repeat=n)))


def _brute_log_joint(W, b, c):
    V, Hs = _all(W.shape[1]), _all(W.shape[0])
    return V, Hs, V @ c + (Hs @ b)[:, None] + Hs @ W @ V.T  # (2^H, 2^D): -E(v, h)


@parametrize_with_model_checks([RBM(), RBM(n_components=25, max_exact_units=4, n_ais_betas=200), DBN()])
def test_rbm_conformance(model, check):
    check()


@pytest.mark.parametrize(("H", "D"), [(3, 4), (5, 2), (1, 6), (6, 6)])
def test_partition_function_matches_enumeration_over_v_and_h(H, D):
    W, b, c = _random_rbm(H, D, seed=H * 10 + D)
    _, _, neg_energy = _brute_log_joint(W, b, c)
    exact = logsumexp(neg_energy)
    assert abs(log_partition_exact(W, b, c) - exact) < 1e-10
    assert abs(log_partition_exact(W, b, c, chunk=3) - exact) < 1e-10  # the chunked path
    V = _all(D)
    np.testing.assert_allclose(-free_energy(V, W, b, c), logsumexp(neg_energy, axis=0), atol=1e-10)


def test_model_log_likelihood_is_exact_and_normalised():
    X = (np.random.default_rng(0).random((80, 5)) < 0.4).astype(float)
    rbm = RBM(3, n_iter=5, random_state=0).fit(X)
    assert rbm._model_tags().exact_log_likelihood and rbm.log_partition_se_ == 0.0
    assert np.isclose(logsumexp(rbm.log_likelihood(_all(5))), 0.0, atol=1e-10)


def test_ais_within_three_standard_errors_of_exact():
    W, b, c = _random_rbm(24, 8, seed=3, scale=0.5)
    exact = log_partition_exact(W, b, c)  # enumerates the 2^8 visible configurations
    est = ais_log_partition(W, b, c, np.random.default_rng(0), n_chains=200, n_betas=500)
    assert not est.exact and 0 < est.se < 0.5
    assert abs(est.log_z - exact) < 3 * est.se, (est, exact)


def test_large_model_uses_ais_and_says_so():
    X = (np.random.default_rng(1).random((60, 24)) < 0.3).astype(float)
    rbm = RBM(22, n_iter=2, n_ais_betas=100, random_state=0).fit(X)
    assert not rbm._model_tags().exact_log_likelihood and rbm.log_partition_se_ > 0


def test_gibbs_stationary_distribution_matches_exact_joint():
    W, b, c = _random_rbm(2, 3, seed=7)
    V, Hs, neg_energy = _brute_log_joint(W, b, c)
    p = np.exp(neg_energy - logsumexp(neg_energy)).ravel()  # index h * 2^D + v
    rbm = RBM(2, random_state=0).fit(np.eye(3))  # replace the fitted parameters by the test's
    rbm.backend_.components_, rbm.backend_.intercept_hidden_, rbm.backend_.intercept_visible_ = W, b, c
    rbm.burn_in = 30
    Xs, Zs = rbm.sample(20000, random_state=1)
    idx = (Zs @ (2 ** np.arange(2)[::-1])).astype(int) * 8 + (Xs @ (2 ** np.arange(3)[::-1])).astype(int)
    counts = np.bincount(idx, minlength=p.size)
    assert stats.chisquare(counts, p * counts.sum()).pvalue > 1e-6
    chains = rbm.gibbs(400, n_chains=4, burn_in=20, random_state=2)
    assert chains["v"].shape == (4, 400, 3) and chains["free_energy"].shape == (4, 400)


def test_gibbs_chains_rhat_and_ess_through_arviz():
    az = pytest.importorskip("arviz")
    X = (np.random.default_rng(0).random((100, 6)) < 0.3).astype(float)
    chains = RBM(4, n_iter=5, burn_in=100, random_state=0).fit(X).gibbs(300, n_chains=4, random_state=0)
    ds = az.convert_to_dataset({k: chains[k] for k in ("free_energy", "active_visible")})
    rhat = float(az.rhat(ds)["free_energy"])
    assert rhat < 1.05 and float(az.ess(ds)["free_energy"]) > 100


def test_posterior_mean_equals_sklearn_transform():
    X = (np.random.default_rng(0).random((120, 9)) < 0.35).astype(float)
    rbm = RBM(5, n_iter=4, random_state=0).fit(X)
    post = rbm.posterior(X)
    assert isinstance(post, Bernoulli) and post.method == "exact"
    np.testing.assert_array_equal(post.mean, rbm.backend_.transform(X))
    # the backend is scikit-learn's own fit: same seed, same weights
    ref = neural_network.BernoulliRBM(5, n_iter=4, random_state=rbm.backend_.random_state).fit(X)
    np.testing.assert_array_equal(ref.components_, rbm.components_)


def test_bernoulli_posterior_against_enumeration():
    post = Bernoulli(np.array([[0.2, 0.7, 1.0], [0.5, 0.0, 0.9]]))
    Z = _all(3)[:, None, :].repeat(2, axis=1)
    lp = post.log_prob(Z)
    np.testing.assert_allclose(np.exp(lp).sum(axis=0), 1.0)
    pz = np.exp(lp)
    plogp = np.multiply(pz, lp, out=np.zeros_like(pz), where=pz > 0)
    np.testing.assert_allclose(-plogp.sum(axis=0), post.entropy())
    np.testing.assert_allclose((pz[..., None] * Z).sum(axis=0), post.mean)
    with pytest.raises(ValueError, match="0 or 1"):
        post.log_prob(np.full((2, 3), 0.5))
    with pytest.raises(ValueError):
        Bernoulli(np.array([[1.5]]))


def test_save_load_roundtrip(tmp_path):
    X = (np.random.default_rng(0).random((60, 8)) < 0.3).astype(float)
    for model in (RBM(4, n_iter=3, random_state=0), DBN(2, hidden_layers=(5,), n_iter=3, random_state=0)):
        model.fit(X)
        path = tmp_path / f"{type(model).__name__}.npz"
        model.save(path)
        restored = load(path)
        np.testing.assert_array_equal(restored.posterior(X).mean, model.posterior(X).mean)
        np.testing.assert_array_equal(restored.log_likelihood(X), model.log_likelihood(X))


@pytest.mark.parametrize("model", [RBM(3, n_iter=2), DBN(2, hidden_layers=(3,), n_iter=2)])
def test_bad_input(model):
    X = (np.random.default_rng(0).random((30, 5)) < 0.5).astype(float)
    with pytest.raises(ValueError, match="binary"):
        model.fit(X + 0.5)
    model.fit(X)
    with pytest.raises(ValueError, match="binary"):
        model.posterior(X * 2)
    with pytest.raises(ValueError, match="binary"):
        model.log_likelihood(np.full((2, 5), 0.3))
    with pytest.raises(ValueError, match="5"):
        model.posterior(X[:, :4])
    bad = X.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        model.posterior(bad)


def test_dbn_posterior_is_labelled_approximate_and_bound_below_top_likelihood():
    X = (np.random.default_rng(0).random((100, 8)) < 0.3).astype(float)
    dbn = DBN(3, hidden_layers=(6,), n_iter=5, random_state=0).fit(X)
    assert dbn.posterior(X).method == "variational" and not dbn._model_tags().exact_posterior
    ll = dbn.log_likelihood(X)
    assert ll.shape == (100,) and np.all(np.isfinite(ll)) and np.all(ll < 0)
    Xs, Z = dbn.sample(5, random_state=0)
    assert Xs.shape == (5, 8) and Z.shape == (5, 3) and set(np.unique(Xs)) <= {0.0, 1.0}
