"""Distributed EM (synchronous scheduler): statistics and iterations equal single-process ones."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from hmmlearn import hmm  # noqa: E402
from scipy.special import digamma  # noqa: E402
from sklearn import mixture  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from probspace import LDA, FactorAnalysis, GaussianHMM, GaussianMixture  # noqa: E402
from probspace.dask import expected_statistics, fit, partial_fit  # noqa: E402
from probspace.dask._em import _LDA, gmm_statistics, hmm_statistics, lda_statistics  # noqa: E402
from probspace.inference import _hmm  # noqa: E402


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _data(rng, n=1200, offset=0.0):
    centres = np.array([[-2.0, 0.0, 1.0], [2.0, 1.0, -1.0], [0.0, -2.5, 0.0]])
    return offset + centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 3)) @ np.diag([1.0, 0.7, 1.3])


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_em_iterations_equal_sklearn_from_same_start(covariance_type):
    rng = np.random.default_rng(0)
    X = _data(rng, offset=50.0)
    start = GaussianMixture(3, covariance_type=covariance_type, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start.fit(X)
    b = start.backend_
    ref = mixture.GaussianMixture(3, covariance_type=covariance_type, max_iter=5, tol=0.0, weights_init=b.weights_,
                                  means_init=b.means_, precisions_init=b.precisions_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        ref.fit(X)
    # statistics: per block and reduced equal the single-process statistics
    single = gmm_statistics(X, {"weights": b.weights_, "means": b.means_,
                                "precisions_cholesky": b.precisions_cholesky_, "covariance_type": covariance_type})
    dist = expected_statistics(start, da.from_array(X, chunks=(97, 3)), split_every=3)
    for k in single:
        np.testing.assert_allclose(dist[k], single[k], rtol=1e-10, atol=1e-10)
    fit(start, da.from_array(X, chunks=(97, 3)), max_iter=5, tol=0.0, split_every=3)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(start, name), getattr(ref, name), rtol=1e-8, atol=1e-8)
    assert start.n_iter_ == 5 and not start.converged_
    np.testing.assert_allclose(start.posterior(X).mean, ref.predict_proba(X), atol=1e-8)


def test_fit_unfitted_and_partial_fit():
    rng = np.random.default_rng(1)
    X = _data(rng, n=3000)
    Xd = da.from_array(X, chunks=(500, 3))
    gm = fit(GaussianMixture(3, random_state=0), Xd, init_size=600)
    assert gm.converged_ and np.all(np.diff(gm.history_) > -1e-9)
    ll = gm.score(X)
    before = gm.means_.copy()
    partial_fit(gm, Xd)
    assert gm.n_iter_ == 1
    np.testing.assert_allclose(gm.means_, before, atol=1e-2)
    assert gm.score(X) >= ll - 1e-9
    # the same seed, the same fit
    again = fit(GaussianMixture(3, random_state=0), Xd, init_size=600)
    np.testing.assert_array_equal(again.means_, fit(GaussianMixture(3, random_state=0), Xd, init_size=600).means_)


def _hmm_start(rng, covariance_type):
    lengths = np.array([300, 250, 400, 200, 350])
    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.85, 0.05], [0.05, 0.15, 0.8]])
    z = _hmm.sample_chain(np.array([0.5, 0.3, 0.2]), A, lengths.sum(), rng)
    means = np.array([[-2.0, 10.0], [0.0, 12.0], [2.5, 9.0]])
    X = means[z] + rng.normal(size=(lengths.sum(), 2)) @ np.array([[1.0, 0.3], [0.0, 0.8]])
    start = GaussianHMM(3, covariance_type=covariance_type, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X, lengths=lengths)
    return X, lengths, start


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
@pytest.mark.parametrize("one_sequence", [False, True])
def test_hmm_em_equals_hmmlearn_from_same_start(covariance_type, one_sequence):
    X, lengths, start = _hmm_start(np.random.default_rng(3), covariance_type)
    if one_sequence:
        lengths = np.array([X.shape[0]])
    ref = hmm.GaussianHMM(3, covariance_type=covariance_type, n_iter=4, tol=-np.inf, init_params="", params="stmc")
    ref.startprob_, ref.transmat_, ref.means_ = start.startprob_, start.transmat_, start.means_
    ref.covars_ = start._emission_point()["covars"]  # hmmlearn's layout for each covariance_type
    # statistics: distributed (per block or per chunk of one sequence) equal single-process ones
    stats = expected_statistics(start, da.from_array(X, chunks=(170, 2)), lengths=lengths, split_every=2)
    single = hmm_statistics(start, X, lengths, start._point())
    for k in single:
        np.testing.assert_allclose(stats[k], single[k], rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(stats["loglik"], start.log_likelihood(X, lengths=lengths).sum(), rtol=1e-12)
    ref.fit(X, lengths=lengths)
    fit(start, da.from_array(X, chunks=(170, 2)), lengths=lengths, max_iter=4, tol=-np.inf, split_every=2)
    np.testing.assert_allclose(start.startprob_, ref.startprob_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(start.transmat_, ref.transmat_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(start.means_, ref.means_, rtol=1e-8, atol=1e-8)
    want = ref._covars_[:, 0] if covariance_type == "spherical" and ref._covars_.ndim == 2 else ref._covars_
    np.testing.assert_allclose(start._emission_point()["covars"], want, rtol=1e-8, atol=1e-8)


def test_em_errors():
    rng = np.random.default_rng(2)
    X = _data(rng, n=200)
    with pytest.raises(NotImplementedError, match="supports GaussianMixture, LDA, GaussianHMM"):
        fit(FactorAnalysis(2), da.from_array(X, chunks=50))
    with pytest.raises(ValueError, match="fixed or topology"):
        fit(GaussianHMM(2, topology="banded"), da.from_array(X, chunks=50))
    with pytest.raises(NotImplementedError, match="bayesian"):
        fit(GaussianMixture(2, bayesian=True), da.from_array(X, chunks=50))
    with pytest.raises(ValueError, match="2-D"):
        fit(GaussianMixture(2), X)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="split_every"):
        expected_statistics(gm, da.from_array(X, chunks=50), split_every=1)
    with pytest.raises(ValueError, match="features"):
        partial_fit(gm, da.zeros((10, 2), chunks=5))


def test_hmm_fit_unfitted_one_long_sequence():
    X, lengths, _ = _hmm_start(np.random.default_rng(4), "diag")
    Xd = da.from_array(X, chunks=(300, 2))
    model = fit(GaussianHMM(3, random_state=0, max_iter=30), Xd, init_size=400)
    assert np.all(np.diff(model.history_) > -1e-9)
    ll = model.score(X)
    partial_fit(model, Xd, lengths=lengths)
    assert model.n_iter_ == 1 and model.score(X) >= ll - 1e-3


def _corpus(rng, n_docs=150, V=30, K=3):
    topics = rng.dirichlet(np.full(V, 0.2), size=K)
    theta = rng.dirichlet(np.full(K, 0.3), size=n_docs)
    return np.stack([rng.multinomial(rng.integers(20, 60), p) for p in theta @ topics]).astype(float)


def test_lda_vb_statistics_and_fit():
    rng = np.random.default_rng(5)
    X = _corpus(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LDA(3, max_iter=3, random_state=0).fit(X)
    params = _LDA(model).params()
    # the per-document E-step is scikit-learn's transform (the same fixed point from the same start)
    gamma_ref = model.backend_.transform(X, normalize=False)
    single = lda_statistics(X, params)
    dist = expected_statistics(model, da.from_array(X, chunks=(40, 30)), split_every=2)
    np.testing.assert_allclose(dist["sstats"], single["sstats"], rtol=1e-10, atol=1e-10)
    assert dist["docs"] == X.shape[0]
    # distributed iterations equal the same iterations in one process (one block)
    one = LDA(3, max_iter=3, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        one.fit(X)
    fit(one, da.from_array(X, chunks=(X.shape[0], 30)), max_iter=3, tol=0.0)
    fit(model, da.from_array(X, chunks=(40, 30)), max_iter=3, tol=0.0, split_every=2)
    np.testing.assert_allclose(model.components_, one.components_, rtol=1e-8)
    assert model.n_iter_ == 3
    # the updated model's own posterior (scikit-learn's transform) uses the new topic-word weights
    assert not np.allclose(model.posterior(X).concentration, gamma_ref)
    np.testing.assert_allclose(model.backend_.exp_dirichlet_component_,
                               _LDA(model).params()["exp_topic_word"], rtol=1e-12)


def test_lda_e_step_matches_sklearn_transform():
    rng = np.random.default_rng(6)
    X = _corpus(rng, n_docs=60)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LDA(3, max_iter=5, random_state=0, mean_change_tol=1e-10, max_doc_update_iter=500).fit(X)
    p = _LDA(model).params()
    # our statistics equal the ones implied by scikit-learn's converged document concentrations
    gamma = model.backend_.transform(X, normalize=False)
    e_theta = np.exp(digamma(gamma) - digamma(gamma.sum(1, keepdims=True)))
    expB = p["exp_topic_word"]
    expected = (e_theta.T @ (X / (e_theta @ expB + np.finfo(float).eps))) * expB
    np.testing.assert_allclose(lda_statistics(X, p)["sstats"], expected, rtol=1e-6, atol=1e-8)


def test_dask_fitted_models_save_and_load(tmp_path):
    import probspace

    X, lengths, start = _hmm_start(np.random.default_rng(8), "full")
    fit(start, da.from_array(X, chunks=(300, 2)), lengths=lengths, max_iter=2, tol=0.0)
    start.save(tmp_path / "hmm.probspace")
    back = probspace.load(tmp_path / "hmm.probspace")
    np.testing.assert_array_equal(back.covars_, start.covars_)
    np.testing.assert_array_equal(back.posterior(X, lengths=lengths).mean, start.posterior(X, lengths=lengths).mean)
    gm = fit(GaussianMixture(3, random_state=0), da.from_array(_data(np.random.default_rng(8)), chunks=(300, 3)))
    gm.save(tmp_path / "gm.probspace")
    back = probspace.load(tmp_path / "gm.probspace")
    X = _data(np.random.default_rng(9), n=50)
    np.testing.assert_array_equal(back.posterior(X).mean, gm.posterior(X).mean)
