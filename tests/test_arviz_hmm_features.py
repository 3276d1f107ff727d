"""Issue #17 features in the ArviZ output: known states (``labels=``) and covariates, on both ArviZ lines."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import stats

import probspace
from probspace import GaussianHMM, GaussianMixture, InputDrivenHMM
from probspace.diagnostics import arviz_major_version
from probspace.diagnostics._arviz import _import_arviz
from probspace.models import LinearGaussianSSM
from probspace.testing import parametrize_with_model_checks

az = _import_arviz()
MAJOR = arviz_major_version()


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return call()


def _two_regimes(seed=0):
    """Two sequences (25 and 15 frames) switching between levels 0 and 4."""
    rng = np.random.default_rng(seed)
    X = np.r_[np.zeros((12, 1)), np.full((13, 1), 4.0), np.full((8, 1), 4.0), np.zeros((7, 1))]
    return X + rng.normal(scale=1.2, size=X.shape), np.array([25, 15])


def _labels(n, known):
    labels = np.full(n, -1)
    for t, k in known.items():
        labels[t] = k
    return labels


def test_to_arviz_with_labels_gives_the_conditioned_posterior():
    X, lengths = _two_regimes()
    model = GaussianHMM(2, random_state=0).fit(X, lengths=lengths)
    high = int(np.argmax(model.means_[:, 0]))
    # frame 11 sits at the switch: the label moves its neighbours' marginals
    labels = _labels(40, {0: 1 - high, 11: high, 30: high})
    n = 1500
    data = model.to_arviz(X, n_samples=n, lengths=lengths, labels=labels, random_state=0)
    path = data["latent_posterior"]["path"].values.reshape(n, -1)
    known = labels >= 0
    assert np.all(path[:, known] == labels[known]), "a path draw leaves a known state"
    np.testing.assert_array_equal(data["constant_data"]["labels"].values, labels)
    expected = model.posterior(X, lengths=lengths, labels=labels).mean
    np.testing.assert_allclose(data["constant_data"]["state_marginals"].values, expected, rtol=0, atol=1e-12)
    plain = model.posterior(X, lengths=lengths).mean
    assert np.max(np.abs(plain - expected)) > 0.05, "the labels do not move the marginals: the test cannot fail"
    # path-draw frequencies against the conditioned marginals: exact binomial test, Bonferroni over frames
    free = ~known
    counts = (path[:, free] == 1).sum(axis=0)
    p = np.clip(expected[free, 1], 0, 1)
    pvalue = np.minimum(1, 2 * np.minimum(stats.binom.cdf(counts, n, p), stats.binom.sf(counts - 1, n, p)))
    assert pvalue.min() >= 1e-6 / free.sum(), pvalue.min()
    replicated = data["posterior_predictive"]["x"].values
    assert replicated.shape == (1, n, 40, 1)
    # replicated frames follow the conditioned path: at a known state their mean is that state's mean
    z = stats.norm.ppf(1 - 1e-6 / 6)
    for t in np.flatnonzero(known):
        mu, sd = model.means_[labels[t], 0], np.sqrt(model.covars_[labels[t], 0, 0])
        assert abs(replicated[0, :, t, 0].mean() - mu) <= z * sd / np.sqrt(n)


def test_to_inference_data_with_labels_on_an_mcmc_fit_scores_the_labelled_joint():
    X, lengths = _two_regimes(1)
    model = _quiet(lambda: GaussianHMM(2, sampler="gibbs", n_chains=2, n_draws=30, n_warmup=30,
                                       random_state=0).fit(X, lengths=lengths))
    path = model.predict(X, lengths=lengths)
    data = _quiet(lambda: probspace.to_inference_data(model, X, n_draws=30, lengths=lengths, labels=path,
                                                      random_state=0))
    np.testing.assert_array_equal(data["latent_posterior"]["path"].values[0, 0], path)
    # every frame known: each pointwise term is the closed form log A[z_{t-1}, z_t] (log pi[z_0]) + log N(x_t)
    post = data["posterior"]
    loglik = data["log_likelihood"]["x"].values
    starts = np.r_[0, np.cumsum(lengths)[:-1]]
    for c in range(2):
        for d in (0, 17, 29):
            mu = post["means"].values[c, d, :, 0]
            var = post["covars"].values[c, d].reshape(2, -1)[:, 0]
            chain = np.log(post["transmat"].values[c, d])[np.r_[0, path[:-1]], path]
            chain[starts] = np.log(post["startprob"].values[c, d])[path[starts]]
            expected = chain + stats.norm.logpdf(X[:, 0], mu[path], np.sqrt(var[path]))
            np.testing.assert_allclose(loglik[c, d], expected, rtol=1e-10, atol=1e-10)
    assert len(_quiet(lambda: az.summary(data))) > 0
    loo = _quiet(lambda: az.loo(data))
    assert np.isfinite(float(loo["elpd_loo"] if MAJOR == 0 else loo.elpd))


def test_labels_in_to_arviz_bad_input():
    X, lengths = _two_regimes()
    model = GaussianHMM(2, random_state=0).fit(X, lengths=lengths)
    with pytest.raises(ValueError, match="labels .*one entry per frame"):
        model.to_arviz(X, n_samples=2, lengths=lengths, labels=np.zeros(39, dtype=int))
    with pytest.raises(ValueError, match=r"labels .*\[-1, 1\]"):
        model.to_arviz(X, n_samples=2, lengths=lengths, labels=np.full(40, 2))
    mixture = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="GaussianMixture takes no labels"):
        probspace.to_inference_data(mixture, X, n_draws=2, labels=np.zeros(40, dtype=int))


# -- the conformance suite through the condition path (covariates, inputs) ---------------------------------------
# (InputDrivenHMM() runs the suite with covariates in tests/models/test_iohmm.py)
CONDITIONAL = [InputDrivenHMM(emission="glm"),
               LinearGaussianSSM(control_matrix=np.zeros((2, 1)), feedthrough_matrix=np.zeros((3, 1)))]


@parametrize_with_model_checks(CONDITIONAL)
def test_conformance_with_covariates(model, check):
    check()


@pytest.mark.parametrize("model", CONDITIONAL, ids=lambda m: f"{type(m).__name__}-{getattr(m, 'emission', 'ssm')}")
def test_the_suite_fits_conditional_families_with_their_condition(model):
    from probspace.testing import _fitted

    est, X, _ = _fitted(model)
    if isinstance(est, InputDrivenHMM):
        assert est.n_covariates_ == 2 and np.any(est.transition_coef_ != 0)
    else:
        assert est.n_inputs_ == 1 and np.any(est.control_matrix_ != 0)
    with pytest.raises(ValueError, match="y"):
        est.log_likelihood(X)  # fitted with a condition: it is needed


# -- issue #17 features that are not constructor options: labels and weights through every call and save/load -------
@pytest.mark.parametrize("make", [lambda: probspace.HMM(2, emission="studentt", random_state=0),
                                  lambda: probspace.AutoregressiveHMM(2, order=1, random_state=0),
                                  lambda: GaussianHMM(2, fixed={"means": [[0.0], [np.nan]]}, random_state=0)],
                         ids=["studentt", "autoregressive", "held-entries"])
def test_every_hmm_variant_conditions_its_arviz_output_on_labels(make):
    X, lengths = _two_regimes(2)
    model = _quiet(lambda: make().fit(X, lengths=lengths))
    labels = _labels(40, {3: 1, 20: 0})
    data = model.to_arviz(X, n_samples=30, lengths=lengths, labels=labels, random_state=0)
    path = data["latent_posterior"]["path"].values.reshape(30, -1)
    assert np.all(path[:, [3, 20]] == [1, 0])
    np.testing.assert_allclose(data["constant_data"]["state_marginals"].values,
                               model.posterior(X, lengths=lengths, labels=labels).mean, atol=1e-12)
    assert len(_quiet(lambda: az.summary(data))) > 0


def test_labels_and_weights_survive_save_and_load(tmp_path):
    X, lengths = _two_regimes(3)
    fit_labels = _labels(40, {0: 0, 15: 1})
    weight = np.array([1.0, 3.0])
    model = GaussianHMM(2, random_state=0).fit(X, lengths=lengths, labels=fit_labels, sequence_weight=weight)
    model.save(tmp_path / "m.npz")
    back = probspace.load(tmp_path / "m.npz")
    labels = _labels(40, {5: 0, 30: 1})
    kw = {"lengths": lengths, "labels": labels}
    np.testing.assert_array_equal(back.posterior(X, **kw).mean, model.posterior(X, **kw).mean)
    ll = model.log_likelihood(X, **kw)
    np.testing.assert_array_equal(back.log_likelihood(X, **kw), ll)
    assert np.all(ll < model.log_likelihood(X, lengths=lengths))  # log p(x, known states) < log p(x)
    score = model.score(X, sequence_weight=weight, **kw)
    assert back.score(X, sequence_weight=weight, **kw) == score
    np.testing.assert_allclose(score, weight @ ll / weight.sum(), rtol=1e-14)
    assert not np.isclose(score, ll.mean())
    a = model.to_arviz(X, n_samples=10, random_state=0, **kw)
    b = back.to_arviz(X, n_samples=10, random_state=0, **kw)
    np.testing.assert_array_equal(a["latent_posterior"]["path"].values, b["latent_posterior"]["path"].values)
    # the streaming filter of the loaded model replays the original's
    f, g = model.filter(), back.filter()
    for x in X[:10]:
        np.testing.assert_array_equal(f.update(x).filtered, g.update(x).filtered)


@pytest.mark.parametrize("make", [
    lambda: GaussianHMM(2, topology="left-to-right", sampler="gibbs", n_chains=2, n_draws=30, n_warmup=20,
                        random_state=0),
    lambda: GaussianHMM(2, fixed={"transmat": [[0.9, np.nan], [np.nan, np.nan]]}, sampler="gibbs", n_chains=2,
                        n_draws=30, n_warmup=20, random_state=0)], ids=["topology", "held-entries"])
def test_constrained_mcmc_fits_give_arviz_output_that_loo_accepts(make):
    X, lengths = _two_regimes(4)
    X, lengths = X[:25], lengths[:1]  # one sequence: low, then high (left-to-right)
    model = _quiet(lambda: make().fit(X, lengths=lengths, labels=_labels(25, {0: 0})))
    data = model.to_arviz(X, n_samples=30, lengths=lengths, random_state=0)
    assert 0 < len(_quiet(lambda: az.summary(data))) <= 40
    loo = _quiet(lambda: az.loo(data))
    assert np.isfinite(float(loo["elpd_loo"] if MAJOR == 0 else loo.elpd))
