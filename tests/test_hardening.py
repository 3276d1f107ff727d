"""Regression tests for the hardening issue: degenerate data, extreme scales, warnings, tags."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from probspace import GMMHMM, LDA, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM
from probspace.datasets import load_discoveries, load_nile


def _finite(model) -> bool:
    return all(np.all(np.isfinite(v)) for v in model._get_parameters().values())


def _two_regimes(n=150, seed=0):
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(0.0, 1.0, (n // 2, 1)), rng.normal(4.0, 2.0, (n - n // 2, 1))]


# -- fits that used to return NaN parameters ---------------------------------------------------------
@pytest.mark.parametrize("value", [0.0, 1.0, 7.0])
def test_poisson_hmm_on_constant_counts_estimates_the_constant_rate(value):
    X = np.full((50, 1), value)
    model = PoissonHMM(2, random_state=0).fit(X)
    assert _finite(model)
    np.testing.assert_allclose(model.lambdas_, value, atol=1e-8)
    assert np.isfinite(model.score(X))


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
@pytest.mark.parametrize("offset", [1e7, 1e8, -3e9])
def test_gaussian_hmm_fits_shifted_data_exactly_as_well(covariance_type, offset):
    X = _two_regimes(100)
    a = GaussianHMM(2, covariance_type=covariance_type, random_state=0).fit(X)
    b = GaussianHMM(2, covariance_type=covariance_type, random_state=0).fit(X + offset)
    # X + offset is itself rounded to the spacing of floats near |offset|: that is the only error allowed.
    ulp = np.spacing(abs(offset))
    np.testing.assert_allclose(b.means_ - offset, a.means_, atol=1e3 * ulp)
    per_frame_a = a.posterior(X).log_predictive
    per_frame_b = b.posterior(X + offset).log_predictive
    np.testing.assert_allclose(per_frame_b, per_frame_a, atol=1e4 * ulp)
    assert np.all(np.diff(b.history_) > -1e-6)  # EM never loses likelihood


def test_gaussian_hmm_on_far_apart_tight_clusters():
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0.0, 1e-3, (60, 1)), rng.normal(1e6, 1e-3, (40, 1))]
    model = GaussianHMM(2, random_state=0).fit(X)
    assert _finite(model)
    np.testing.assert_allclose(np.sort(model.means_.ravel()), [0.0, 1e6], atol=1e-2)
    path = model.predict(X)
    assert len(set(path[:60])) == 1 and len(set(path[60:])) == 1 and path[0] != path[-1]


@pytest.mark.parametrize("X", [np.ones((50, 1)), _two_regimes(150)], ids=["constant", "two-regimes"])
def test_gmm_hmm_stays_finite(X):
    model = GMMHMM(3, n_mix=2, random_state=0).fit(X)
    assert _finite(model)
    assert np.isfinite(model.score(X))


def test_diagonal_density_is_stable_far_from_the_origin():
    from probspace.inference._gaussian import diag_log_density

    rng = np.random.default_rng(1)
    x, mu, var = rng.normal(size=(20, 3)), rng.normal(size=(4, 3)), rng.uniform(0.5, 2.0, (4, 3))
    near = diag_log_density(x, mu, var)
    far = diag_log_density(x + 1e9, mu + 1e9, var)
    np.testing.assert_allclose(far, near, atol=1e-5)  # the expanded form is off by ~1e2 nats here
    x[3, 1] = np.nan
    ref = -0.5 * (((x[3, [0, 2]] - mu[:, [0, 2]]) ** 2 / var[:, [0, 2]]) + np.log(2 * np.pi * var[:, [0, 2]])).sum(1)
    np.testing.assert_allclose(diag_log_density(x, mu, var)[3], ref)


@pytest.mark.parametrize("family", [GaussianMixture, GaussianHMM, GMMHMM])
def test_data_whose_squares_overflow_are_a_clear_error(family):
    X = np.random.default_rng(0).normal(size=(40, 2)) * 1e300
    with pytest.raises(ValueError, match="entries as large as .* Rescale X"):
        family(2, random_state=0).fit(X)


def test_a_fit_that_produces_nan_is_an_error_and_leaves_the_model_unfitted():
    class Broken(GaussianMixture):
        def _fit(self, X, lengths, rng):
            super()._fit(X, lengths, rng)
            self.backend_.means_ = np.full_like(self.backend_.means_, np.nan)

    X = np.random.default_rng(0).normal(size=(30, 2))
    model = Broken(2, random_state=0)
    with pytest.raises(ValueError, match="non-finite values .* means_"):
        model.fit(X)
    assert not model.__sklearn_is_fitted__()


@pytest.mark.parametrize("symbol", [1e9, 1e15])
def test_categorical_hmm_huge_symbol_is_a_clear_error_before_allocating(symbol):
    X = np.array([[0.0], [1.0], [symbol], [1.0]])
    with pytest.raises(ValueError, match="emission table .* Recode the symbols"):
        CategoricalHMM(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="emission table"):
        CategoricalHMM(2, n_symbols=int(symbol) + 1, random_state=0).fit(np.array([[0.0], [1.0]]))


# -- warnings ------------------------------------------------------------------------------------------
def test_unconverged_fits_warn_once():
    nile = load_nile().data
    with pytest.warns(ConvergenceWarning, match="GaussianHMM stopped after max_iter=3") as record:
        GaussianHMM(2, max_iter=3, tol=1e-9, random_state=0).fit(nile)
    assert sum(issubclass(w.category, ConvergenceWarning) for w in record) == 1


def test_default_fits_on_the_example_data_converge_without_warnings_or_log_lines(caplog):
    caplog.set_level(logging.DEBUG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nile = GaussianHMM(2, random_state=0).fit(load_nile().data)
        disc = PoissonHMM(2, random_state=0).fit(load_discoveries().data)
    assert nile.converged_ and disc.converged_
    assert not [r for r in caplog.records if r.name.startswith("hmmlearn")]


def test_hmmlearn_log_lines_become_one_warning_each():
    from probspace.models._hmm import _hmmlearn_log_as_warnings

    log = logging.getLogger("hmmlearn.base")
    with pytest.warns(UserWarning, match=r"3 times.*zero sum") as record:
        with _hmmlearn_log_as_warnings("Demo"):
            for _ in range(3):
                log.warning("Some rows of transmat_ have zero sum because no transition was observed.")
    assert len(record) == 1


def test_lda_warns_when_the_perplexity_has_not_settled():
    X = np.random.default_rng(0).poisson(2.0, size=(40, 12)).astype(float)
    with pytest.warns(ConvergenceWarning, match="LDA stopped after max_iter=2"):
        LDA(3, max_iter=2, evaluate_every=1, perp_tol=1e-12, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fixed = LDA(3, max_iter=2, evaluate_every=-1, random_state=0).fit(X)  # fixed passes: not checked
    assert not fixed.converged_


# -- MCMC fits: predict_proba ---------------------------------------------------------------------------
def test_gibbs_mixture_predict_proba():
    X = np.random.default_rng(0).normal(size=(40, 1)) + np.repeat([[0.0], [5.0]], 20, axis=0)
    model = GaussianMixture(2, sampler="gibbs", n_chains=2, n_draws=50, n_warmup=50, random_state=0).fit(X)
    probs = model.predict_proba(X)
    assert probs.shape == (40, 2)
    np.testing.assert_allclose(probs, model.posterior(X).mean)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


# -- tags that tell scikit-learn the truth --------------------------------------------------------------
@pytest.mark.parametrize("family", [PoissonHMM, CategoricalHMM, LDA])
def test_non_negative_families_declare_positive_only_and_say_so_in_sklearn_words(family):
    assert family().__sklearn_tags__().input_tags.positive_only
    with pytest.raises(ValueError, match="Negative values in data passed to"):
        family(2).fit(np.array([[1.0], [-1.0], [2.0], [0.0]]))


def test_lda_is_a_transformer_and_sklearn_checks_run():
    from sklearn.utils.estimator_checks import check_estimator

    assert LDA().__sklearn_tags__().transformer_tags is not None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(LDA(2, max_iter=5), on_fail=None)
    assert len(results) > 20
    failed = [r for r in results if r["status"] == "failed"]
    # LDA takes integer word counts; scikit-learn's generic checks feed real numbers.
    for r in failed:
        err, text = r["exception"], ""
        while err is not None:
            text, err = text + str(err), err.__cause__ or err.__context__
        assert "integer word counts" in text, (r["check_name"], text)
    X = np.random.default_rng(0).poisson(3.0, size=(30, 8)).astype(float)
    assert LDA(2, random_state=0).fit_transform(X).shape == (30, 2)


def test_gmm_hmm_fit_with_missing_values_is_a_clear_error():
    X = _two_regimes(60)
    X[5] = np.nan
    with pytest.raises(ValueError, match="GMMHMM.fit does not accept missing values"):
        GMMHMM(2, random_state=0).fit(X)
    model = GMMHMM(2, random_state=0).fit(np.delete(X, 5, axis=0))
    assert np.isfinite(model.score(X))  # posterior-side methods marginalise it


@pytest.mark.parametrize("family", [GaussianMixture, GaussianHMM, PoissonHMM, CategoricalHMM])
def test_a_prior_without_a_sampler_is_an_error(family):
    with pytest.raises(ValueError, match="applies only to MCMC fits"):
        family(2, prior={"weights": 2.0}).fit(np.ones((10, 1)))
