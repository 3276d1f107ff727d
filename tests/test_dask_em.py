"""Distributed EM (synchronous scheduler): statistics and iterations equal single-process ones."""

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from sklearn import mixture  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402

from probspace import GaussianHMM, GaussianMixture  # noqa: E402
from probspace.dask import expected_statistics, fit, partial_fit  # noqa: E402
from probspace.dask._em import gmm_statistics  # noqa: E402


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


def test_em_errors():
    rng = np.random.default_rng(2)
    X = _data(rng, n=200)
    with pytest.raises(NotImplementedError, match="GaussianMixture"):
        fit(GaussianHMM(2), da.from_array(X, chunks=50))
    with pytest.raises(NotImplementedError, match="bayesian"):
        fit(GaussianMixture(2, bayesian=True), da.from_array(X, chunks=50))
    with pytest.raises(ValueError, match="2-D"):
        fit(GaussianMixture(2), X)
    gm = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="split_every"):
        expected_statistics(gm, da.from_array(X, chunks=50), split_every=1)
    with pytest.raises(ValueError, match="features"):
        partial_fit(gm, da.zeros((10, 2), chunks=5))
