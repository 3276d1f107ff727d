"""GaussianMixture against its backend, against brute force, and its extras."""

import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import mixture
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from probspace import GaussianMixture, InvalidParameterError
from probspace.datasets import load_old_faithful
from probspace.inference._gaussian import as_full, log_gaussian

COV_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(scope="module")
def faithful():
    return load_old_faithful().data


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("bayesian", [False, True])
def test_matches_backend(faithful, covariance_type, bayesian):
    gm = GaussianMixture(3, covariance_type=covariance_type, bayesian=bayesian, random_state=0).fit(faithful)
    cls = mixture.BayesianGaussianMixture if bayesian else mixture.GaussianMixture
    assert isinstance(gm.backend_, cls)
    np.testing.assert_allclose(gm.log_likelihood(faithful), gm.backend_.score_samples(faithful), rtol=0, atol=1e-8)
    np.testing.assert_allclose(gm.posterior(faithful).probs, gm.backend_.predict_proba(faithful), atol=1e-12)
    assert gm.score(faithful) == pytest.approx(gm.backend_.score(faithful), abs=1e-8)
    assert gm.weights_ is gm.backend_.weights_  # a view, not a copy
    scale = len(faithful) if bayesian else 1
    np.testing.assert_allclose(gm.history_ * scale, gm.backend_.lower_bounds_)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_posterior_and_likelihood_by_brute_force(faithful, covariance_type):
    """Bayes' rule by hand from the public parameters, with scipy densities."""
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=1).fit(faithful)
    K, D = 2, faithful.shape[1]
    covs = as_full(gm.covariances_, covariance_type, K, D)
    joint = np.column_stack([
        gm.weights_[k] * stats.multivariate_normal(gm.means_[k], covs[k]).pdf(faithful) for k in range(K)
    ])
    np.testing.assert_allclose(gm.log_likelihood(faithful), np.log(joint.sum(axis=1)), rtol=0, atol=1e-8)
    np.testing.assert_allclose(gm.posterior(faithful).probs, joint / joint.sum(axis=1, keepdims=True), atol=1e-10)
    np.testing.assert_allclose(
        log_gaussian(faithful, gm.means_, gm.precisions_, covariance_type),
        np.log(joint / gm.weights_),
        atol=1e-8,
    )


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_generative_sample_follows_the_model(faithful, covariance_type):
    gm = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(faithful)
    n = 40000
    X, z = gm.sample(n, random_state=3)
    counts = np.bincount(z, minlength=2)
    # 1e-6, not 1e-3: the seed does not pin the draws on every CPU, so the test must pass for any stream.
    assert stats.chisquare(counts, n * gm.weights_).pvalue > 1e-6
    assert not np.all(np.diff(z) >= 0), "labels must not be grouped by component"
    covs = as_full(gm.covariances_, covariance_type, 2, 2)
    for k in range(2):
        Xk = X[z == k]
        se = np.sqrt(np.diag(covs[k]) / len(Xk))
        assert np.all(np.abs(Xk.mean(axis=0) - gm.means_[k]) < 5 * se)
        # Standard error of a Gaussian sample covariance: sqrt((s_ii s_jj + s_ij^2) / n).
        d = np.diag(covs[k])
        se_cov = np.sqrt((np.outer(d, d) + covs[k] ** 2) / len(Xk))
        assert np.all(np.abs(np.cov(Xk.T) - covs[k]) < 5 * se_cov)


def test_unseeded_samples_differ_and_seeded_repeat(faithful):
    gm = GaussianMixture(2, random_state=0).fit(faithful)
    assert not np.array_equal(gm.sample(5)[0], gm.sample(5)[0])
    np.testing.assert_array_equal(gm.sample(5, random_state=9)[0], gm.sample(5, random_state=9)[0])
    gen = np.random.default_rng(4)
    gm2 = GaussianMixture(2, random_state=gen).fit(faithful)
    assert gm2.rng_ is gen


def test_bic_aic_match_backend(faithful):
    gm = GaussianMixture(2, random_state=0).fit(faithful)
    assert gm.bic(faithful) == pytest.approx(gm.backend_.bic(faithful))
    assert gm.aic(faithful) == pytest.approx(gm.backend_.aic(faithful))
    bics = [GaussianMixture(k, random_state=0).fit(faithful).bic(faithful) for k in (1, 2)]
    assert bics[1] < bics[0]
    with pytest.raises(ValueError, match="bayesian=True"):
        GaussianMixture(2, bayesian=True, random_state=0).fit(faithful).bic(faithful)


def test_predict_helpers(faithful):
    gm = GaussianMixture(2, random_state=0).fit(faithful)
    np.testing.assert_array_equal(gm.predict(faithful), gm.backend_.predict(faithful))
    np.testing.assert_array_equal(gm.predict_proba(faithful), gm.embed(faithful))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parameter_draws_match_variational_posterior(faithful, covariance_type):
    gm = GaussianMixture(2, covariance_type=covariance_type, bayesian=True,
                         weight_concentration_prior_type="dirichlet_distribution", random_state=0).fit(faithful)
    n = 4000
    draws = gm.sample_parameters(n, random_state=0)
    b = gm.backend_
    # Dirichlet weights: exact mean and variance.
    alpha = b.weight_concentration_
    mean_w = alpha / alpha.sum()
    sd_w = np.sqrt(mean_w * (1 - mean_w) / (alpha.sum() + 1))
    assert np.all(np.abs(draws["weights"].mean(0) - mean_w) < 5 * sd_w / np.sqrt(n))
    # Precisions: E[Lambda] = precisions_; means centred on means_.
    prec = draws["precisions"]
    se = prec.std(0) / np.sqrt(n)
    assert np.all(np.abs(prec.mean(0) - b.precisions_) <= 5 * se + 1e-12)
    se_mu = draws["means"].std(0) / np.sqrt(n)
    assert np.all(np.abs(draws["means"].mean(0) - b.means_) <= 5 * se_mu)


def test_stick_breaking_weights(faithful):
    gm = GaussianMixture(3, bayesian=True, random_state=0).fit(faithful)
    n = 3000
    w = gm.sample_parameters(n, random_state=1)["weights"]
    np.testing.assert_allclose(w.sum(axis=1), 1.0)
    # weights_ is the renormalised product of the sticks' means, not the mean of renormalised draws; the
    # gap is 1.5e-4 here, so 1e-3 on top of 6 Monte Carlo standard errors (about 4e-3 in all).
    se = w.std(axis=0) / np.sqrt(n)
    assert np.all(np.abs(w.mean(0) - gm.weights_) < 6 * se + 1e-3)


def test_em_fit_has_no_parameter_posterior(faithful):
    gm = GaussianMixture(2, random_state=0).fit(faithful)
    with pytest.raises(ValueError, match="point estimates"):
        gm.sample_parameters(3)


def test_bad_parameters_and_data(faithful):
    with pytest.raises(ValueError, match=r"n_components=5 must be at most .* \(n_samples=3\)"):
        GaussianMixture(5).fit(faithful[:3])
    with pytest.raises(InvalidParameterError, match="covariance_type.*'diag'.*Got 'ful'"):
        GaussianMixture(covariance_type="ful").fit(faithful)
    with pytest.raises(InvalidParameterError, match="random_state"):
        GaussianMixture(random_state="seed").fit(faithful)
    with pytest.raises(ValueError, match="only apply with bayesian=True"):
        GaussianMixture(2, weight_concentration_prior=0.1).fit(faithful)
    with pytest.raises(ValueError, match="takes no 'lengths'"):
        GaussianMixture(2).fit(faithful, lengths=[100, 172])
    gm = GaussianMixture(2, random_state=0).fit(faithful)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        gm.log_likelihood(np.ones((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        gm.posterior(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError, match="2-dimensional|2D array"):
        gm.posterior(np.ones(4))
    with pytest.raises(ValueError, match="0 sample"):
        gm.embed(np.ones((0, 2)))


def test_convergence_warning_is_a_warning(faithful):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GaussianMixture(3, max_iter=1, random_state=0).fit(faithful)
    assert any(issubclass(w.category, ConvergenceWarning) for w in caught)


def test_grid_search_over_n_components(faithful):
    search = GridSearchCV(GaussianMixture(random_state=0), {"n_components": [1, 2, 3]}, cv=3).fit(faithful)
    assert search.best_params_["n_components"] >= 2


def test_pointwise_log_likelihood_per_parameter_draw(faithful):
    gm = GaussianMixture(2, bayesian=True, random_state=0).fit(faithful)
    params = gm.sample_parameters(3, random_state=0)
    ll = gm._pointwise_log_likelihood(faithful, None, params)
    assert ll.shape == (3, 272)
    # Draw 0 by brute force with scipy.
    covs = np.linalg.inv(params["precisions"][0])
    dens = sum(params["weights"][0, k] * stats.multivariate_normal(params["means"][0, k], covs[k]).pdf(faithful)
               for k in range(2))
    np.testing.assert_allclose(ll[0], np.log(dens), atol=1e-8)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_compiled_responsibilities_equal_sklearn(covariance_type):
    """The compiled row-by-row posterior equals scikit-learn's predict_proba, also far out in the tails."""
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(size=(300, 3)) + rng.integers(0, 3, (300, 1)) * 4.0, [[1e3, -1e3, 5e2]]]
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X[:-1])
    probs = model.posterior(X).probs
    np.testing.assert_allclose(probs, model.backend_.predict_proba(X), rtol=0, atol=1e-12)
    assert np.all(np.isfinite(probs)) and np.allclose(probs.sum(axis=1), 1.0, rtol=0, atol=1e-14)
