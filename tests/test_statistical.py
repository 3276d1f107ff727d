"""Slow statistical checks (run in CI's separate step: ``pytest -m slow``).

Every check holds with margin for any draw stream, not only for the fixed seed:
floating-point results differ between CPUs, so the seed alone does not pin the
draws. Counts get exact binomial tests and moments get tolerances of several
Monte Carlo standard errors, with the family-wise false-alarm rate of each test
at most about 1e-6 (Bonferroni over the simultaneous comparisons).
"""

import numpy as np
import pytest
from scipy import stats

from probspace import GaussianMixture
from probspace.datasets import load_old_faithful

pytestmark = pytest.mark.slow

ALPHA = 1e-6  # family-wise false-alarm rate of each test


def binomial_pvalues(counts, n, p):
    """Exact two-sided binomial p-values (twice the smaller tail), elementwise."""
    return np.minimum(1.0, 2.0 * np.minimum(stats.binom.cdf(counts, n, p), stats.binom.sf(counts - 1, n, p)))


@pytest.fixture(scope="module")
def X():
    return load_old_faithful().data


def test_label_draws_match_responsibilities_at_scale(X):
    """200,000 joint draws of all 272 labels; every label count passes an exact binomial test.

    (A normal approximation is wrong here: labels of probability 1e-7 are drawn
    about once in 30 runs, 5 standard errors away, and would fail one seed in five.)
    """
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    post = gm.posterior(X)
    n = 200_000
    draws = post.sample(n, random_state=0)
    counts = np.stack([(draws == k).sum(axis=0) for k in range(3)], axis=1)
    p = post.probs
    pvalues = binomial_pvalues(counts, n, p)
    assert pvalues.min() > ALPHA / p.size, f"smallest p-value {pvalues.min():.2e}"
    # Pooled Pearson chi-square over every observation with at least two labels expected 5+ times (the
    # rarer labels merged into its least likely such label): picks up a small bias shared by many rows.
    expected = n * p
    chi2, dof = 0.0, 0
    for i in range(p.shape[0]):
        major = np.flatnonzero(expected[i] >= 5)
        if major.size < 2:
            continue
        obs, exp = counts[i, major].astype(float), expected[i, major].copy()
        smallest = np.argmin(exp)
        obs[smallest] += n - obs.sum()
        exp[smallest] += n - exp.sum()
        chi2 += ((obs - exp) ** 2 / exp).sum()
        dof += major.size - 1
    assert dof >= 100, dof  # the fit has that many uncertain labels; the test has power
    # Two-sided: too good a fit (e.g. stratified rather than random draws) fails too.
    assert ALPHA / 2 < stats.chi2.sf(chi2, dof) < 1 - ALPHA / 2, (chi2, dof)


def test_wishart_precision_draws_have_the_exact_variance(X):
    """Var(Lambda_ij) = nu (W_ij^2 + W_ii W_jj) for Lambda ~ Wishart(nu, W)."""
    gm = GaussianMixture(2, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                         random_state=0).fit(X)
    n = 100_000
    prec = gm.sample_parameters(n, random_state=2)["precisions"]
    b = gm.backend_
    z = stats.norm.ppf(1 - ALPHA / (2 * 2 * 3))  # 2 components x 3 distinct entries: 5.4 standard errors
    for k in range(2):
        nu = b.degrees_of_freedom_[k]
        W = np.linalg.inv(nu * b.covariances_[k])
        var = nu * (W**2 + np.outer(np.diag(W), np.diag(W)))
        sq = (prec[:, k] - prec[:, k].mean(axis=0)) ** 2
        # The sample variance is a mean of squared deviations: its standard error comes from the draws'
        # own fourth moment (about var * sqrt(2 / n) here, 0.45% of the variance).
        se = sq.std(axis=0) / np.sqrt(n)
        assert np.all(np.abs(sq.mean(axis=0) - var) <= z * se), (sq.mean(axis=0), var, se)


def test_posterior_predictive_reproduces_the_data_distribution(X):
    """Replicated data drawn given latent label draws match the observed mean and its spread.

    The replicated mean's expectation is mean_n sum_k r_nk mu_k, the observed mean at an EM fixed
    point (where sum_n r_nk x_n = N_k mu_k); its variance is (1 / N^2) sum_n Var(x_rep_n), with x_rep_n
    a mixture over the labels of observation n.
    """
    gm = GaussianMixture(2, random_state=0).fit(X)
    n_draws = 2000
    data = gm.to_arviz(X, n_samples=n_draws, random_state=0)
    rep = data["posterior_predictive"]["x"].values[0]  # (draw, obs, feature)
    means = rep.mean(axis=1)  # per-draw sample mean
    r = gm.posterior(X).probs
    m_n = r @ gm.means_
    second = np.einsum("nk,kij->nij", r, gm.covariances_ + np.einsum("ki,kj->kij", gm.means_, gm.means_))
    var_n = np.diagonal(second, axis1=1, axis2=2) - m_n**2
    var_mean = var_n.sum(axis=0) / len(X) ** 2
    z = stats.norm.ppf(1 - ALPHA / (2 * 4))  # 2 features x (mean, variance): 5.2 standard errors
    # The observed mean sits at the centre of the replicated ones (EM stops near, not at, the fixed point).
    assert np.all(np.abs(m_n.mean(axis=0) - X.mean(axis=0)) <= 0.05 * np.sqrt(var_mean))
    assert np.all(np.abs(means.mean(axis=0) - m_n.mean(axis=0)) <= z * np.sqrt(var_mean / n_draws))
    # The replicated means are sums of 272 independent terms, close to Gaussian: Var(s^2) = 2 var^2 / (n - 1).
    assert np.all(np.abs(means.var(axis=0, ddof=1) - var_mean) <= z * var_mean * np.sqrt(2 / (n_draws - 1)))
