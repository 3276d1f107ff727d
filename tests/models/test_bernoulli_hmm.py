"""BernoulliHMM: the one-file emission (probspace/emissions/_bernoulli.py) composed into an HMM."""

import itertools

import numpy as np
import pytest
from scipy import stats

import probspace as ps


def _toy():
    X = np.array([[1, 0, 1], [1, 1, 0], [0, 0, 1], [np.nan, 1, 1]])
    return X


def test_posterior_and_likelihood_match_enumeration():
    X = _toy()
    model = ps.BernoulliHMM(2, random_state=0, max_iter=5).fit(np.r_[X[:3], [[0, 1, 0]]])
    pi, A, p = model.startprob_, model.transmat_, model.probs_
    obs = ~np.isnan(X)

    def emit(t, k):  # NaN entries summed out
        x = np.nan_to_num(X[t])
        return np.prod(np.where(obs[t], np.where(x == 1, p[k], 1 - p[k]), 1.0))

    joint = {}
    for path in itertools.product(range(2), repeat=len(X)):
        w = pi[path[0]] * emit(0, path[0])
        for t in range(1, len(X)):
            w *= A[path[t - 1], path[t]] * emit(t, path[t])
        joint[path] = w
    total = sum(joint.values())
    marg = np.zeros((len(X), 2))
    for path, w in joint.items():
        marg[np.arange(len(X)), path] += w / total
    post = model.posterior(X)
    np.testing.assert_allclose(post.marginals, marg, rtol=1e-10)
    np.testing.assert_allclose(model.log_likelihood(X), [np.log(total)], rtol=1e-12)
    paths = np.array(list(joint))
    np.testing.assert_allclose(np.exp(post.log_prob(paths)), np.array(list(joint.values())) / total, rtol=1e-10)


def test_em_recovers_the_probabilities():
    parts = [ps.BernoulliHMM._conformance_data(np.random.default_rng(seed)) for seed in range(8)]
    X, lengths = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    model = ps.BernoulliHMM(2, random_state=0).fit(X, lengths=lengths)
    order = np.argsort(model.probs_[:, 0])[::-1]
    np.testing.assert_allclose(model.probs_[order], [[0.9, 0.8, 0.1], [0.1, 0.3, 0.85]], atol=0.07)
    assert np.all(np.diff(model.history_) > -1e-9)  # EM never lowers the likelihood


def test_missing_values_fit_and_rejected_values():
    X, _ = ps.BernoulliHMM._conformance_data(np.random.default_rng(2))
    X[::7, 1] = np.nan
    model = ps.BernoulliHMM(2, random_state=0).fit(X)
    assert np.all(np.isfinite(model.log_likelihood(X)))
    with pytest.raises(ValueError, match="0 and 1"):
        ps.BernoulliHMM(2).fit(np.array([[0.0], [2.0], [1.0]]))


def test_gibbs_draws_the_exact_beta_posterior():
    # K=1: every sweep is an exact, independent draw from the conjugate Beta posterior of each feature.
    X = (np.random.default_rng(3).random((50, 2)) < [0.3, 0.8]).astype(float)
    m = ps.BernoulliHMM(1, sampler="gibbs", prior={"alpha": 2.0, "beta": [1.0, 3.0]}, n_chains=2, n_draws=3000,
                        n_warmup=10, random_state=0).fit(X)
    p = m.draws_["probs"][..., 0, :].reshape(-1, 2)
    ones = X.sum(axis=0)
    for d, b in enumerate((1.0, 3.0)):
        exact = stats.beta(2.0 + ones[d], b + len(X) - ones[d])
        assert stats.kstest(p[:, d], exact.cdf).pvalue > 1e-3
    assert m.prior_["alpha"].tolist() == [2.0, 2.0] and m.mcmc_.sampler == "gibbs"


def test_gibbs_fit_answers_through_the_engine(tmp_path):
    X, lengths = ps.BernoulliHMM._conformance_data(np.random.default_rng(4))
    m = ps.BernoulliHMM(2, sampler="gibbs", n_chains=2, n_draws=30, n_warmup=20, random_state=0).fit(X, lengths=lengths)
    assert m.draws_["probs"].shape == (2, 30, 2, 3)
    assert np.all(np.diff(m.draws_["probs"][..., 0], axis=-1) >= 0)  # relabelled by the first probability
    Xf, Zf = m.forecast(X, 3, 5, lengths=lengths, random_state=0)
    assert Xf.shape == (5, 3, 3) and Zf.shape == (5, 3)
    m.save(tmp_path / "b.npz")
    loaded = ps.load(tmp_path / "b.npz")
    np.testing.assert_array_equal(loaded.posterior(X, lengths=lengths).mean, m.posterior(X, lengths=lengths).mean)


def test_nuts_is_refused_with_the_reason():
    X, _ = ps.BernoulliHMM._conformance_data(np.random.default_rng(5))
    with pytest.raises(ValueError, match="supports sampler \\['gibbs'\\]"):
        ps.BernoulliHMM(2, sampler="nuts").fit(X)
