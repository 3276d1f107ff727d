"""LDA against scikit-learn, the Dirichlet posterior against closed forms, and LDA's extras."""

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from sklearn import decomposition
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.pipeline import Pipeline

from probspace import LDA
from probspace.posteriors import Dirichlet


@pytest.fixture(scope="module")
def corpus():
    X, _ = LDA._conformance_data(np.random.default_rng(0))
    return X


@pytest.fixture(scope="module")
def fitted(corpus):
    return LDA(2, max_iter=30, random_state=0).fit(corpus)


@pytest.mark.parametrize("sparse", [False, True])
def test_matches_scikit_learn(corpus, sparse):
    X = sp.csr_matrix(corpus) if sparse else corpus
    lda = LDA(2, max_iter=30, random_state=0).fit(X)
    b = lda.backend_
    assert isinstance(b, decomposition.LatentDirichletAllocation)
    np.testing.assert_allclose(lda.posterior(X).concentration, b.transform(X, normalize=False))
    np.testing.assert_allclose(lda.posterior(X).mean, b.transform(X), atol=1e-12)
    np.testing.assert_allclose(lda.embed(X), lda.transform(X))
    # The documented relation: per-document bounds + the topic term = scikit-learn's score.
    ll = lda.log_likelihood(X)
    assert ll.shape == (corpus.shape[0],) and np.all(np.isfinite(ll))
    assert ll.sum() + lda.topic_term() == pytest.approx(b.score(X), rel=1e-10)
    assert lda.components_ is b.components_


def test_same_fit_as_scikit_learn_with_the_same_seed(corpus):
    from probspace._random import as_generator, sklearn_seed

    ours = LDA(2, max_iter=15, evaluate_every=-1, random_state=3).fit(corpus)
    theirs = decomposition.LatentDirichletAllocation(2, max_iter=15, random_state=sklearn_seed(as_generator(3)))
    np.testing.assert_allclose(ours.components_, theirs.fit(corpus).components_)


def test_dirichlet_closed_forms_and_draws():
    alpha = np.array([[0.3, 2.0, 5.0], [40.0, 10.0, 0.05], [1.0, 1.0, 1.0]])
    post = Dirichlet(alpha)
    n = 40000
    draws = post.sample(n, random_state=0)
    assert draws.shape == (n, 3, 3) and np.allclose(draws.sum(-1), 1.0) and np.all(np.isfinite(draws))
    se = np.sqrt(post.variance / n)
    assert np.all(np.abs(draws.mean(0) - post.mean) < 5 * se + 1e-12)
    for i in range(3):
        ref = stats.dirichlet(alpha[i])
        assert post.entropy()[i] == pytest.approx(ref.entropy(), abs=1e-10)
        np.testing.assert_allclose(post.variance[i], ref.var(), rtol=1e-12)
        x = draws[:5, i]
        x = np.clip(x, 1e-300, None)
        x /= x.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(post.log_prob(draws[:5])[:, i], [ref.logpdf(v) for v in x], rtol=1e-8)


def test_credible_intervals_cover():
    post = Dirichlet(np.array([[2.0, 3.0, 0.5]]))
    lo, hi = post.credible_interval(0.9)
    np.testing.assert_allclose(lo[0, 0], stats.beta(2.0, 3.5).ppf(0.05))
    draws = post.sample(50000, random_state=1)[:, 0]
    coverage = ((draws >= lo[0]) & (draws <= hi[0])).mean(axis=0)
    assert np.all(np.abs(coverage - 0.9) < 5 * np.sqrt(0.09 / 50000))
    with pytest.raises(ValueError, match="level"):
        post.credible_interval(1.5)


def test_tiny_concentrations_do_not_underflow():
    post = Dirichlet(np.full((2, 4), 1e-3))
    draws = post.sample(1000, random_state=0)
    assert np.all(np.isfinite(draws)) and np.allclose(draws.sum(-1), 1.0)
    assert np.all(np.isfinite(post.log_prob(draws)))


def test_dirichlet_mode_and_errors():
    np.testing.assert_allclose(Dirichlet(np.array([3.0, 2.0, 2.0])).mode, [0.5, 0.25, 0.25])
    with pytest.raises(ValueError, match="exceeds 1"):
        _ = Dirichlet(np.array([0.5, 2.0])).mode
    with pytest.raises(ValueError, match="positive"):
        Dirichlet(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match="probability vectors"):
        Dirichlet(np.array([1.0, 1.0])).log_prob(np.array([0.7, 0.7]))


def test_short_documents_get_wide_posteriors(fitted, corpus):
    post = fitted.posterior(corpus)
    lengths = corpus.sum(axis=1)
    # The variational E-step gives alpha_0 = K alpha + (number of tokens), exactly...
    np.testing.assert_allclose(post.total_concentration, 2 * fitted.doc_topic_prior_ + lengths, rtol=1e-6)
    # ...so every marginal variance is at most 1 / (4 (alpha_0 + 1)): it shrinks with length.
    assert np.all(post.variance.max(axis=1) <= 1 / (4 * (post.total_concentration + 1)) + 1e-12)
    short, long = np.argmin(lengths), np.argmax(lengths)
    lo, hi = post.credible_interval(0.9)
    assert (hi - lo)[short].max() > (hi - lo)[long].max()


def test_empty_document_posterior_is_the_prior(fitted, corpus):
    X = np.vstack([corpus[:2], np.zeros((1, corpus.shape[1]))])
    post = fitted.posterior(X)
    np.testing.assert_allclose(post.concentration[2], fitted.doc_topic_prior_)
    assert np.isfinite(fitted.log_likelihood(X)[2])


def test_token_topic_draws_sum_to_counts(fitted, corpus):
    tokens = fitted.sample_token_topics(corpus[:5], n_samples=7, random_state=0)
    assert tokens.draws.shape == (7, tokens.counts.size, 2)
    np.testing.assert_array_equal(tokens.draws.sum(axis=-1), np.broadcast_to(tokens.counts, (7, tokens.counts.size)))
    draws = tokens.to_dense(corpus[:5].shape)
    assert draws.shape == (7, 5, corpus.shape[1], 2)
    np.testing.assert_array_equal(draws.sum(axis=-1), np.broadcast_to(corpus[:5], (7,) + corpus[:5].shape))
    rows, cols, counts, probs = fitted.token_topic_probs(corpus[:5])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)
    # Draws match n_dw * phi_dwk: over n draws, topic 0's share of each word type is Binomial(n n_dw, phi_dw0)
    # (topic 1 has the rest). Exact test, Bonferroni at 1e-6: some cells expect under one token in all the
    # draws, where "within k standard errors" fails far more often than its normal tail says.
    n = 4000
    many = fitted.sample_token_topics(corpus[:5], n_samples=n, random_state=1)
    topic0 = many.draws[..., 0].sum(axis=0)
    p = probs[:, 0]
    pvalues = np.minimum(1.0, 2.0 * np.minimum(stats.binom.cdf(topic0, n * counts, p),
                                               stats.binom.sf(topic0 - 1, n * counts, p)))
    assert pvalues.min() > 1e-6 / counts.size, f"smallest p-value {pvalues.min():.2e}"


def test_topic_posterior_and_top_words(fitted):
    texts = ["alpha beta gamma"] * 3 + ["delta epsilon"] * 3
    vec = CountVectorizer().fit(texts)
    topics = fitted.topic_posterior()
    assert topics.batch_shape == (2,) and topics.event_shape == (12,)
    np.testing.assert_allclose(topics.mean, fitted.components_ / fitted.components_.sum(1, keepdims=True))
    words = fitted.top_words(3)
    assert len(words) == 2 and len(words[0]) == 3
    for _, mean, lo, hi in words[0]:
        assert lo < mean < hi
    with pytest.raises(ValueError, match="feature_names has 5 entries"):
        fitted.top_words(3, feature_names=vec)


def test_pipeline_with_count_vectorizer():
    rng = np.random.default_rng(0)
    vocab_a = ["gene", "cell", "protein", "dna", "rna"]
    vocab_b = ["star", "galaxy", "orbit", "planet", "light"]
    texts = [" ".join(rng.choice(vocab_a if i % 2 else vocab_b, size=rng.integers(3, 20))) for i in range(60)]
    pipe = Pipeline([("counts", CountVectorizer()), ("lda", LDA(2, max_iter=30, random_state=0))]).fit(texts)
    theta = pipe.transform(texts)
    assert theta.shape == (60, 2)
    assert np.isfinite(pipe.score(texts))
    lda = pipe.named_steps["lda"]
    words = lda.top_words(5, feature_names=pipe.named_steps["counts"])
    assert {w for w, *_ in words[0]} in (set(vocab_a), set(vocab_b))
    post = lda.posterior(pipe.named_steps["counts"].transform(texts[:4]))
    assert post.batch_shape == (4,)


def test_sample_documents(fitted):
    X, theta = fitted.sample(200, random_state=0)
    assert X.shape == (200, 12) and theta.shape == (200, 2)
    # Lengths are Poisson(mean_doc_length_): their mean is within 6 standard errors.
    assert abs(X.sum(axis=1).mean() - fitted.mean_doc_length_) < 6 * np.sqrt(fitted.mean_doc_length_ / 200)
    X2, _ = fitted.sample(4, doc_length=[5, 0, 7, 100], random_state=1)
    np.testing.assert_array_equal(X2.sum(axis=1), [5, 0, 7, 100])
    with pytest.raises(ValueError, match="doc_length"):
        fitted.sample(2, doc_length=-3)


def test_completion_perplexity(fitted, corpus):
    perp = fitted.completion_perplexity(corpus, random_state=0)
    assert 1.0 < perp < corpus.shape[1]  # better than a uniform guess over the vocabulary
    assert perp == fitted.completion_perplexity(corpus, random_state=0)
    one_topic = LDA(1, max_iter=30, random_state=0).fit(corpus)
    assert perp < one_topic.completion_perplexity(corpus, random_state=0)


def test_partial_fit_streams(corpus):
    lda = LDA(2, learning_method="online", random_state=0)
    for chunk in np.array_split(corpus, 4):
        lda.partial_fit(chunk)
    assert lda.n_iter_ == 4
    assert lda.mean_doc_length_ == pytest.approx(corpus.sum(axis=1).mean())
    assert np.all(np.isfinite(lda.log_likelihood(corpus)))
    with pytest.raises(ValueError, match="expecting 12 features"):
        lda.partial_fit(corpus[:, :5])


def test_bad_input(fitted, corpus):
    with pytest.raises(ValueError, match="non-negative"):
        LDA(2).fit(np.array([[1, -2], [3, 4]]))
    with pytest.raises(ValueError, match="integer word counts"):
        LDA(2).fit(np.array([[1.5, 2], [3, 4]]))
    with pytest.raises(ValueError, match="NaN"):
        fitted.posterior(np.where(corpus == 0, np.nan, corpus))
    with pytest.raises(ValueError, match="X has 5 features, but LDA is expecting 12"):
        fitted.posterior(corpus[:, :5])


def test_to_arviz(fitted, corpus):
    data = fitted.to_arviz(corpus, n_samples=20, random_state=0)
    theta = data["latent_posterior"]["theta"]
    assert theta.dims == ("chain", "draw", "doc", "topic") and theta.shape == (1, 20, 60, 2)
    assert data["posterior"].attrs["inference_method"] == "variational"
    np.testing.assert_allclose(data["posterior"]["theta_mean"].values[0], theta.values[0].mean(axis=1))
    assert data["posterior"]["theta_mean"].dims == ("chain", "draw", "topic")
    assert "log_likelihood" not in data.groups()  # a variational bound per document: no PSIS-LOO
    assert data["observed_data"]["x"].dims == ("doc", "term")
    rep = data["posterior_predictive"]["x"].values[0]
    assert rep.shape == (20, 60, 12)
    np.testing.assert_array_equal(rep.sum(axis=-1), np.broadcast_to(corpus.sum(axis=1), (20, 60)))


def test_history_is_the_perplexity_trace(corpus):
    """Guards reading scikit-learn's verbose report: one training perplexity per evaluation."""
    model = LDA(2, max_iter=12, evaluate_every=3, perp_tol=1e-9, random_state=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(corpus)
    assert model.history_.shape == (model.n_iter_ // 3,) and model.history_.size >= 2
    assert np.all(np.diff(model.history_) > -1e-6)  # the bound rises
    # the last evaluation and scikit-learn's own final perplexity are of the same fit
    np.testing.assert_allclose(model.history_[-1], -np.log(model.backend_.bound_), rtol=1e-3)
    fixed = LDA(2, max_iter=4, evaluate_every=-1, random_state=0).fit(corpus)
    np.testing.assert_allclose(fixed.history_, [-np.log(fixed.backend_.bound_)])
