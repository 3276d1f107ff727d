"""Posterior objects: closed forms, draws against exact probabilities, errors."""

import numpy as np
import pytest
from scipy import stats

from probspace.posteriors import Categorical, Posterior
from probspace.posteriors._categorical import sample_categorical


@pytest.fixture
def probs():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(4) * 0.7, size=30)
    p[0] = [0.0, 1.0, 0.0, 0.0]  # degenerate row
    p[1] = [0.5, 0.0, 0.0, 0.5]  # zero-probability middle labels
    return p


def test_is_a_posterior(probs):
    post = Categorical(probs)
    assert isinstance(post, Posterior)
    assert post.batch_shape == (30,) and post.event_shape == ()
    assert post.is_exact and "Categorical" in repr(post)


def binomial_pvalues(counts, n, p):
    """Exact two-sided binomial p-values (twice the smaller tail), elementwise."""
    return np.minimum(1.0, 2.0 * np.minimum(stats.binom.cdf(counts, n, p), stats.binom.sf(counts - 1, n, p)))


# Family-wise false-alarm rate of each statistical test below: the seed does not pin the draws on every CPU,
# so each test must pass with margin for any stream (the bugs guarded give p-values far below it).
ALPHA = 1e-6


def test_label_frequencies_match_probabilities(probs):
    """Exact binomial test of every label count (Bonferroni), then a pooled chi-square, seeded."""
    n = 20000
    draws = Categorical(probs).sample(n, random_state=123)
    counts = np.stack([np.bincount(draws[:, i], minlength=4) for i in range(probs.shape[0])])
    assert counts[probs == 0].sum() == 0, "a zero-probability label was drawn"
    # Exact, so labels expected only a few times (here 2.8) are tested correctly too.
    pvalues = binomial_pvalues(counts, n, probs)
    assert pvalues.min() > ALPHA / probs.size, f"smallest p-value {pvalues.min():.2e}"
    # Pearson chi-square pooled over the rows (labels expected fewer than 5 times merged into the rarest
    # other label): sensitive to a small bias shared by every row, and, two-sided, to too regular draws.
    chi2, dof = 0.0, 0
    for i in range(probs.shape[0]):
        expected = n * probs[i]
        major = np.flatnonzero(expected >= 5)
        if major.size < 2:
            continue
        obs, exp = counts[i, major].astype(float), expected[major]
        smallest = np.argmin(exp)
        obs[smallest] += n - obs.sum()
        exp[smallest] += n - exp.sum()
        chi2 += ((obs - exp) ** 2 / exp).sum()
        dof += major.size - 1
    assert dof > 50, dof
    assert ALPHA / 2 < stats.chi2.sf(chi2, dof) < 1 - ALPHA / 2, (chi2, dof)


def test_draws_are_independent_across_observations():
    # Two observations with p = (0.5, 0.5): their labels must be independent.
    draws = Categorical(np.full((2, 2), 0.5)).sample(40000, random_state=5)
    table = np.histogram2d(draws[:, 0], draws[:, 1], bins=2)[0]
    assert stats.chi2_contingency(table).pvalue > ALPHA


def test_closed_forms(probs):
    post = Categorical(probs)
    np.testing.assert_array_equal(post.mean, probs)
    np.testing.assert_allclose(post.variance, probs * (1 - probs))
    np.testing.assert_array_equal(post.mode, probs.argmax(axis=1))
    expected = np.array([stats.entropy(row) for row in probs])
    np.testing.assert_allclose(post.entropy(), expected, atol=1e-12)
    z = np.array([[1] * 30, [0] * 30])
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(post.log_prob(z), np.log(probs[np.arange(30), z]))


def test_sample_shapes_and_dtype(probs):
    post = Categorical(probs)
    assert post.sample(()).shape == (30,)
    assert post.sample().shape == (1, 30)
    assert post.sample((2, 5)).shape == (2, 5, 30)
    assert post.sample(3).dtype == np.int8
    assert Categorical(np.full((3, 200), 1 / 200)).sample(2).dtype == np.int32


def test_single_category():
    assert np.all(Categorical(np.ones((5, 1))).sample(4, random_state=0) == 0)


def test_sampler_blocks_cover_every_observation():
    # More observations than one block, with labels known exactly.
    N = 300_001
    probs = np.zeros((N, 3))
    probs[np.arange(N), np.arange(N) % 3] = 1.0
    draws = sample_categorical(probs, 3, np.random.default_rng(0))
    np.testing.assert_array_equal(draws, np.broadcast_to(np.arange(N) % 3, (3, N)))


def test_seeding(probs):
    post = Categorical(probs, random_state=7)
    np.testing.assert_array_equal(post.sample(4, random_state=1), post.sample(4, random_state=1))
    first = post.sample(4)
    assert not np.array_equal(first, post.sample(4))
    np.testing.assert_array_equal(first, Categorical(probs, random_state=7).sample(4))


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.ones(3) / 3, "shape"),
        (np.array([[0.5, 0.6]]), "sum to one"),
        (np.array([[-0.5, 1.5]]), "non-negative"),
        (np.array([[np.nan, 1.0]]), "finite"),
    ],
)
def test_bad_probs(bad, match):
    with pytest.raises(ValueError, match=match):
        Categorical(bad)


@pytest.mark.parametrize("n", [0, -2, 1.5, True, (2, 0)])
def test_bad_sample_sizes(probs, n):
    with pytest.raises(ValueError, match="n_samples"):
        Categorical(probs).sample(n)


def test_bad_log_prob_values(probs):
    post = Categorical(probs)
    with pytest.raises(ValueError, match="shape"):
        post.log_prob(np.zeros(29, dtype=int))
    with pytest.raises(ValueError, match="integers"):
        post.log_prob(np.zeros(30))
    with pytest.raises(ValueError, match=r"\[0, 3\]"):
        post.log_prob(np.full(30, 4))


def test_base_moments_raise_naming_the_class():
    class Bare(Posterior):
        batch_shape = (1,)
        event_shape = ()

        def _sample_n(self, rng, n):
            return np.zeros((n, 1))

        def log_prob(self, value):
            return np.zeros(np.shape(value))

    for attr in ("mean", "variance", "mode"):
        with pytest.raises(NotImplementedError, match="Bare"):
            getattr(Bare(), attr)
    with pytest.raises(NotImplementedError, match="Bare"):
        Bare().entropy()
    with pytest.raises(ValueError, match="method"):
        Bare(method="guess")


def test_sampling_never_mutates_the_probabilities():
    for probs in (np.array([[0.3, 0.7]]), np.array([[0.2], [1.0]]) * np.array([[1.0]]), np.full((5, 3), 1 / 3)):
        before = probs.copy()
        sample_categorical(probs, 10, np.random.default_rng(0))
        np.testing.assert_array_equal(probs, before)
