"""MultivariateNormal and PointMass posteriors: densities against scipy, Monte Carlo moments, bad input."""

import numpy as np
import pytest
from scipy import stats

from probspace.posteriors import MultivariateNormal, PointMass


def _spd(rng, d, n=None):
    shape = (d, d) if n is None else (n, d, d)
    A = rng.normal(size=shape)
    return A @ np.swapaxes(A, -1, -2) + 0.5 * np.eye(d)


@pytest.mark.parametrize("shared", [True, False])
def test_log_prob_and_entropy_match_scipy(shared):
    rng = np.random.default_rng(0)
    N, d = 5, 3
    loc = rng.normal(size=(N, d))
    cov = _spd(rng, d) if shared else _spd(rng, d, N)
    post = MultivariateNormal(loc, cov)
    z = rng.normal(size=(4, N, d))
    covs = np.broadcast_to(cov, (N, d, d))
    expected = np.stack([[stats.multivariate_normal(loc[i], covs[i]).logpdf(z[s, i]) for i in range(N)]
                         for s in range(4)])
    np.testing.assert_allclose(post.log_prob(z), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(post.log_prob(z[0]), expected[0], rtol=1e-12)
    ent = [stats.multivariate_normal(loc[i], covs[i]).entropy() for i in range(N)]
    np.testing.assert_allclose(post.entropy(), ent, rtol=1e-12)
    np.testing.assert_allclose(post.variance, np.diagonal(covs, axis1=1, axis2=2))
    assert post.covariance_matrix.shape == cov.shape  # a shared covariance is stored once
    np.testing.assert_array_equal(post.mean, loc)
    np.testing.assert_array_equal(post.mode, loc)


@pytest.mark.parametrize("shared", [True, False])
def test_scale_tril_gives_the_same_distribution(shared):
    rng = np.random.default_rng(1)
    cov = _spd(rng, 2) if shared else _spd(rng, 2, 3)
    loc = rng.normal(size=(3, 2))
    a = MultivariateNormal(loc, cov)
    b = MultivariateNormal(loc, scale_tril=np.linalg.cholesky(cov))
    np.testing.assert_allclose(b.covariance_matrix, cov, rtol=1e-12)
    np.testing.assert_allclose(a.scale_tril, b.scale_tril)
    z = rng.normal(size=(3, 2))
    np.testing.assert_allclose(a.log_prob(z), b.log_prob(z), rtol=1e-12)
    np.testing.assert_array_equal(a.sample(4, random_state=2), b.sample(4, random_state=2))


@pytest.mark.parametrize("shared", [True, False])
def test_joint_draws_have_the_covariance(shared):
    """Sample means and covariances (off-diagonal too: joint draws) within 6 standard errors."""
    rng = np.random.default_rng(2)
    N, d, n = 3, 3, 40000
    cov = _spd(rng, d) if shared else _spd(rng, d, N)
    loc = rng.normal(size=(N, d))
    post = MultivariateNormal(loc, cov)
    draws = post.sample(n, random_state=3)
    assert draws.shape == (n, N, d)
    covs = np.broadcast_to(cov, (N, d, d))
    for i in range(N):
        var = np.diag(covs[i])
        assert np.all(np.abs(draws[:, i].mean(axis=0) - loc[i]) < 6 * np.sqrt(var / n))
        # Standard error of a Gaussian sample covariance: sqrt((s_ii s_jj + s_ij^2) / n).
        se = np.sqrt((np.outer(var, var) + covs[i] ** 2) / n)
        assert np.all(np.abs(np.cov(draws[:, i].T) - covs[i]) < 6 * se)


def test_credible_interval_has_its_coverage():
    rng = np.random.default_rng(4)
    post = MultivariateNormal(rng.normal(size=(2, 2)), _spd(rng, 2))
    lo, hi = post.credible_interval(0.9)
    np.testing.assert_allclose((hi - lo) / 2, stats.norm.ppf(0.95) * np.sqrt(post.variance))
    draws = post.sample(20000, random_state=5)
    inside = ((draws > lo) & (draws < hi)).mean(axis=0)
    # Binomial(20000, 0.9) frequency: standard error 0.0021.
    assert np.all(np.abs(inside - 0.9) < 6 * np.sqrt(0.09 / 20000))
    with pytest.raises(ValueError, match="level"):
        post.credible_interval(1.0)


def test_sample_shapes_and_seeds():
    post = MultivariateNormal(np.zeros((4, 2)), np.eye(2))
    assert post.sample(()).shape == (4, 2)
    assert post.sample((2, 3)).shape == (2, 3, 4, 2)
    np.testing.assert_array_equal(post.sample(3, random_state=1), post.sample(3, random_state=1))
    assert not np.array_equal(post.sample(3), post.sample(3))
    with pytest.raises(ValueError, match="batch_shape"):
        post.log_prob(np.zeros((3, 2)))


@pytest.mark.parametrize(("loc", "cov", "tril", "match"), [
    (np.zeros(2), np.eye(2), None, "loc"),
    (np.zeros((3, 2)), np.eye(3), None, "shape"),
    (np.zeros((3, 2)), np.ones((2, 2, 2)), None, "shape"),
    (np.zeros((3, 2)), np.array([[1.0, 2.0], [2.0, 1.0]]), None, "positive definite"),
    (np.zeros((3, 2)), np.array([[1.0, 0.5], [0.0, 1.0]]), None, "symmetric"),
    (np.full((3, 2), np.nan), np.eye(2), None, "finite"),
    (np.zeros((3, 2)), None, np.array([[1.0, 1.0], [0.0, 1.0]]), "lower triangular"),
    (np.zeros((3, 2)), None, np.array([[-1.0, 0.0], [0.0, 1.0]]), "positive diagonal"),
    (np.zeros((3, 2)), None, None, "exactly one"),
    (np.zeros((3, 2)), np.eye(2), np.eye(2), "exactly one"),
])
def test_bad_parameters(loc, cov, tril, match):
    with pytest.raises(ValueError, match=match):
        MultivariateNormal(loc, cov, scale_tril=tril)


def test_point_mass():
    loc = np.array([[0.0, 1.0], [2.0, 3.0], [-1.0, 0.5]])
    post = PointMass(loc)
    assert post.batch_shape == (3,) and post.event_shape == (2,)
    draws = post.sample(5)
    assert draws.shape == (5, 3, 2)
    assert np.all(draws == loc)
    draws[0, 0, 0] = 99.0  # draws are a writable copy, not a view of loc
    assert post.loc[0, 0] == 0.0
    lp = post.log_prob(post.sample((2, 4)))
    assert lp.shape == (2, 4, 3) and np.all(lp == 0.0)
    other = loc.copy()
    other[1, 1] += 1e-12
    np.testing.assert_array_equal(post.log_prob(other), [0.0, -np.inf, 0.0])
    np.testing.assert_array_equal(post.variance, np.zeros_like(loc))
    np.testing.assert_array_equal(post.entropy(), np.full(3, -np.inf))
    np.testing.assert_array_equal(post.mean, loc)
    np.testing.assert_array_equal(post.mode, loc)
    lo, hi = post.credible_interval(0.5)
    np.testing.assert_array_equal(lo, loc)
    np.testing.assert_array_equal(hi, loc)
    assert post.method == "exact"
    with pytest.raises(ValueError, match="shape"):
        PointMass(np.zeros(3))
    with pytest.raises(ValueError, match="finite"):
        PointMass(np.array([[np.inf, 0.0]]))
    with pytest.raises(ValueError, match="batch_shape"):
        post.log_prob(np.zeros((2, 2)))
