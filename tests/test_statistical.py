"""Slow statistical checks (run in CI's separate step: ``pytest -m slow``).

Tolerances come from Monte Carlo error with fixed seeds, Bonferroni-corrected
over the number of simultaneous comparisons.
"""

import numpy as np
import pytest
from scipy import stats

from probspace import GaussianMixture
from probspace.datasets import load_old_faithful

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def X():
    return load_old_faithful().data


def test_label_draws_match_responsibilities_at_scale(X):
    """200,000 joint draws of all 272 labels; every label frequency within MC error."""
    gm = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
    post = gm.posterior(X)
    n = 200_000
    draws = post.sample(n, random_state=0)
    freq = np.stack([(draws == k).mean(axis=0) for k in range(3)], axis=1)
    p = post.probs
    se = np.sqrt(p * (1 - p) / n) + 1e-12
    z = stats.norm.ppf(1 - 1e-3 / (2 * p.size))
    assert np.all(np.abs(freq - p) <= z * se + 1e-12)
    # Pooled chi-square over the observations whose labels are uncertain.
    uncertain = (p.min(axis=1) > 1e-3)
    if uncertain.any():
        counts = freq[uncertain] * n
        chi2 = ((counts - n * p[uncertain]) ** 2 / (n * p[uncertain])).sum()
        dof = uncertain.sum() * 2
        assert stats.chi2.sf(chi2, dof) > 1e-3


def test_wishart_precision_draws_have_the_exact_variance(X):
    """Var(Lambda_ij) = nu (W_ij^2 + W_ii W_jj) for Lambda ~ Wishart(nu, W)."""
    gm = GaussianMixture(2, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                         random_state=0).fit(X)
    n = 100_000
    prec = gm.sample_parameters(n, random_state=2)["precisions"]
    b = gm.backend_
    for k in range(2):
        nu = b.degrees_of_freedom_[k]
        W = np.linalg.inv(nu * b.covariances_[k])
        var = nu * (W**2 + np.outer(np.diag(W), np.diag(W)))
        sample_var = prec[:, k].var(axis=0)
        # The sampling SE of a variance is about var * sqrt(2 / n) * sqrt(kurtosis factor); allow 6 of them.
        assert np.all(np.abs(sample_var - var) <= 6 * var * np.sqrt(2 * 3 / n))


def test_posterior_predictive_reproduces_the_data_distribution(X):
    """Replicated data drawn given latent label draws match the observed moments."""
    gm = GaussianMixture(2, random_state=0).fit(X)
    data = gm.to_arviz(X, n_samples=2000, random_state=0)
    rep = data["posterior_predictive"]["x"].values[0]  # (draw, obs, feature)
    means = rep.mean(axis=1)  # per-draw sample mean
    # The observed mean lies inside the central 99.9% of replicated means.
    lo, hi = np.percentile(means, [0.05, 99.95], axis=0)
    assert np.all((X.mean(axis=0) > lo) & (X.mean(axis=0) < hi))
