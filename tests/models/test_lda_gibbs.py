"""Collapsed Gibbs LDA: the kernels against exact enumeration of the collapsed posterior, and the model's API."""

import itertools
import os
import tempfile
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from scipy.special import gammaln
from sklearn.exceptions import NotFittedError

from probspace import LDA, load
from probspace.inference import _lda as kernels
from probspace.posteriors import FiniteMixture

# Two tiny documents over three words: 6 tokens, so K = 3 topics give 3**6 = 729 joint assignments.
DOC_PTR = np.array([0, 3, 6], dtype=np.int64)
WORD = np.array([0, 0, 1, 1, 2, 2], dtype=np.int32)
ALPHA = np.array([0.3, 0.7, 1.2])  # asymmetric: a topic index mix-up changes the distribution
BETA = 0.4
V, K = 3, 3
P_MIN = 1e-6  # a wrong sampler gives p-values far below it; chance alone almost never (any CPU, any seed)


def log_joint(z, doc_ptr=DOC_PTR, word=WORD, alpha=ALPHA, beta=BETA):
    """Collapsed ``log p(w, z)`` of one assignment, written out from the Dirichlet-multinomial formulas."""
    n_dk = np.zeros((doc_ptr.size - 1, K))
    n_kw = np.zeros((K, V))
    for d in range(doc_ptr.size - 1):
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            n_dk[d, z[i]] += 1
            n_kw[z[i], word[i]] += 1
    a = alpha.sum()
    lz = (gammaln(a) - gammaln(a + n_dk.sum(1)) + (gammaln(alpha + n_dk) - gammaln(alpha)).sum(1)).sum()
    lw = (gammaln(V * beta) - gammaln(V * beta + n_kw.sum(1)) + (gammaln(beta + n_kw) - gammaln(beta)).sum(1)).sum()
    return lz + lw


def exact_posterior(n_tokens, log_fn):
    """Probabilities of every joint assignment, indexed by the base-K code of ``z``."""
    states = np.array(list(itertools.product(range(K), repeat=n_tokens)))
    logp = np.array([log_fn(z) for z in states])
    p = np.exp(logp - logp.max())
    return p / p.sum()


def encode(z):
    return (np.asarray(z) * K ** np.arange(z.shape[-1])[::-1]).sum(-1)


def chi_square_pvalue(codes, p):
    """Pearson chi-square of observed state codes against ``p``, pooling states expected fewer than 5 times."""
    observed = np.bincount(codes, minlength=p.size)
    expected = p * codes.size
    big = expected >= 5
    obs = np.append(observed[big], observed[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    return stats.chisquare(obs, exp).pvalue


def run_chains(sweep, n_chains, n_sweeps, seed, alpha=ALPHA, beta=BETA):
    """Final states of independent chains started from uniform random assignments."""
    rng = np.random.default_rng(seed)
    out = np.empty((n_chains, WORD.size), dtype=np.int64)
    n_dk = np.zeros((2, K), np.int32)
    n_wk = np.zeros((V, K), np.int32)
    n_k = np.zeros(K, np.int32)
    for c in range(n_chains):
        z = rng.integers(0, K, WORD.size).astype(np.int32)
        kernels.count_topics(DOC_PTR, WORD, z, n_dk, n_wk, n_k)
        sweep(DOC_PTR, WORD, z, n_dk, n_wk, n_k, alpha, beta, n_sweeps, int(rng.integers(2**31 - 1)))
        out[c] = z
    return out


def numpy_chains(n_chains, n_sweeps, seed, *, exclude=True):
    """Independent chains of a plain numpy Gibbs sampler, vectorised over chains.

    ``exclude=False`` is a classic bug: the token's own assignment stays in
    the counts of its full conditional.
    """
    rng = np.random.default_rng(seed)
    R = np.arange(n_chains)
    z = rng.integers(0, K, (n_chains, WORD.size))
    doc = np.repeat(np.arange(DOC_PTR.size - 1), np.diff(DOC_PTR))
    n_dk = np.zeros((n_chains, DOC_PTR.size - 1, K))
    n_wk = np.zeros((n_chains, V, K))
    for i in range(WORD.size):
        np.add.at(n_dk, (R, doc[i], z[:, i]), 1)
        np.add.at(n_wk, (R, WORD[i], z[:, i]), 1)
    for _ in range(n_sweeps):
        for i in range(WORD.size):
            d, w, t = doc[i], WORD[i], z[:, i]
            if exclude:
                n_dk[R, d, t] -= 1
                n_wk[R, w, t] -= 1
            p = (ALPHA + n_dk[:, d]) * (BETA + n_wk[:, w]) / (V * BETA + n_wk.sum(1))
            cum = np.cumsum(p, axis=1)
            k = (rng.random(n_chains)[:, None] * cum[:, -1:] > cum).sum(1)
            if not exclude:
                n_dk[R, d, t] -= 1
                n_wk[R, w, t] -= 1
            z[:, i] = k
            n_dk[R, d, k] += 1
            n_wk[R, w, k] += 1
    return z


P_EXACT = exact_posterior(WORD.size, log_joint)


@pytest.mark.parametrize("sweep", [kernels.sweep_dense, kernels.sweep_sparse], ids=["dense", "sparse"])
def test_token_assignments_match_exact_collapsed_posterior(sweep):
    # 20 000 independent chains, 25 sweeps each: the final states are independent draws (the 6-token chain
    # forgets its start within a few sweeps), so Pearson's test applies to their frequencies over 729 states.
    codes = encode(run_chains(sweep, 20_000, 25, seed=1))
    assert chi_square_pvalue(codes, P_EXACT) > P_MIN


def test_chi_square_rejects_wrong_samplers():
    # The harness accepts a plain numpy sampler and rejects the same sampler with the token left in its own
    # counts, and the right kernel run under another prior: the test has the power to see such errors.
    assert chi_square_pvalue(encode(numpy_chains(20_000, 25, seed=2)), P_EXACT) > P_MIN
    wrong = encode(numpy_chains(20_000, 25, seed=2, exclude=False))
    assert chi_square_pvalue(wrong, P_EXACT) < P_MIN
    other_prior = encode(run_chains(kernels.sweep_dense, 20_000, 25, seed=3, beta=2 * BETA))
    assert chi_square_pvalue(other_prior, P_EXACT) < P_MIN


def test_fold_in_matches_exact_conditional():
    # Topics fixed: p(z_d | w_d, phi) is proportional to prod_k Gamma(alpha_k + n_dk) * prod_i phi[z_i, w_i].
    phi = np.array([[0.6, 0.3, 0.1], [0.1, 0.2, 0.7], [0.3, 0.4, 0.3]])  # (K, V)
    doc = np.array([0, 2, 1, 2, 0], dtype=np.int32)

    def log_fn(z):
        n = np.bincount(z, minlength=K)
        return (gammaln(ALPHA + n)).sum() + np.log(phi[z, doc]).sum()

    p = exact_posterior(doc.size, log_fn)
    copies = 20_000  # documents are independent given the topics: one call samples many copies
    word = np.tile(doc, copies)
    doc_ptr = np.arange(copies + 1, dtype=np.int64) * doc.size
    z = np.random.default_rng(4).integers(0, K, word.size).astype(np.int32)
    counts = np.zeros((1, copies, K), np.int64)
    z_out = np.zeros((1, word.size), np.int32)
    kernels.fold_in(doc_ptr, word, z, np.ascontiguousarray(phi.T), ALPHA, 25, 1, counts, z_out, 5)
    codes = encode(z_out[0].reshape(copies, doc.size))
    assert chi_square_pvalue(codes, p) > P_MIN
    np.testing.assert_array_equal(counts[0], np.stack([np.bincount(r, minlength=K) for r in
                                                       z_out[0].reshape(copies, doc.size)]))


def test_log_joint_kernel_matches_formula():
    z = np.array([0, 2, 1, 1, 0, 2], dtype=np.int32)
    n_dk = np.zeros((2, K), np.int32)
    n_wk = np.zeros((V, K), np.int32)
    n_k = np.zeros(K, np.int32)
    kernels.count_topics(DOC_PTR, WORD, z, n_dk, n_wk, n_k)
    lz, lw = kernels.log_joint(n_dk, n_wk, n_k, ALPHA, BETA)
    assert lz + lw == pytest.approx(log_joint(z), rel=1e-12)


def test_model_log_joint_draws_match_exact_expectation():
    # The fitted model's own chain (per-sweep seeding, thinning, bookkeeping) against the exact posterior:
    # the mean of the recorded log joint over the draws is E[log p(w, z) | w], enumerated over 729 states.
    X = np.array([[2, 1, 0], [0, 1, 2]])
    alpha, beta = 0.5, 0.4
    sym = np.full(K, alpha)
    fn = lambda z: log_joint(z, alpha=sym, beta=beta)  # noqa: E731
    states = np.array(list(itertools.product(range(K), repeat=WORD.size)))
    values = np.array([fn(z) for z in states])
    p = exact_posterior(WORD.size, fn)
    exact = float(p @ values)
    lda = LDA(K, doc_topic_prior=alpha, topic_word_prior=beta, algorithm="gibbs", n_chains=1, n_warmup=20,
              n_draws=10_000, thin=2, random_state=0).fit(X)
    lp = lda.sample_stats_["lp"][0]
    batches = lp.reshape(50, -1).mean(axis=1)  # batch means: Monte Carlo error under autocorrelation
    mcse = batches.std(ddof=1) / np.sqrt(batches.size)
    assert abs(lp.mean() - exact) < 5 * mcse, (lp.mean(), exact, mcse)


# -- the model ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def corpus():
    X, _ = LDA._conformance_data(np.random.default_rng(0))
    return X


@pytest.fixture(scope="module")
def gibbs(corpus):
    return LDA(2, algorithm="gibbs", n_chains=2, n_warmup=30, n_draws=20, random_state=0).fit(corpus)


def test_fit_state_and_posteriors(gibbs, corpus):
    D, V_ = corpus.shape
    assert gibbs.sampler == "collapsed_gibbs" and gibbs.converged_
    assert gibbs.n_iter_ == 30 + 20 * 2 and gibbs.history_.shape == (70,)
    assert gibbs.draws_["topic_share"].shape == (2, 20, 2)
    assert gibbs.sample_stats_["lp"].shape == (2, 20)
    np.testing.assert_allclose(gibbs.draws_["topic_share"].sum(-1), 1.0)
    assert gibbs.components_.shape == (2, V_) and np.all(gibbs.components_ > 0)
    # the two chains found the same two topics (matched labels), and they are the generating ones
    chains = gibbs.backend_.chain_components_
    chains = chains / chains.sum(-1, keepdims=True)
    assert np.abs(chains[0] - chains[1]).sum(-1).max() < 0.3
    post = gibbs.posterior(corpus)
    assert isinstance(post, FiniteMixture) and post.method == "mcmc" and post.n_draws == 40
    np.testing.assert_allclose(post.mean.sum(-1), 1.0)
    np.testing.assert_array_equal(gibbs.embed(corpus), post.mean)  # a fixed function of X
    assert gibbs.topic_posterior().method == "mcmc"
    np.testing.assert_allclose(gibbs.topic_posterior().mean,
                               gibbs.components_ / gibbs.components_.sum(1, keepdims=True))
    ll = gibbs.log_likelihood(corpus)
    assert ll.shape == (D,) and np.all(np.isfinite(ll)) and np.all(ll < 0)
    assert 1 < gibbs.completion_perplexity(corpus, random_state=0) < V_


def test_gibbs_beats_a_random_topic_model_and_agrees_with_vb(gibbs, corpus):
    vb = LDA(2, max_iter=50, random_state=0).fit(corpus)
    perp_g = gibbs.completion_perplexity(corpus, random_state=1)
    perp_vb = vb.completion_perplexity(corpus, random_state=1)
    assert perp_g < 1.05 * perp_vb
    # the document-topic means agree with VB's up to the label permutation
    a, b = gibbs.embed(corpus), vb.embed(corpus)
    err = min(np.abs(a - b).mean(), np.abs(a - b[:, ::-1]).mean())
    assert err < 0.1


def test_training_posterior(gibbs, corpus):
    post = gibbs.training_posterior()
    assert post.batch_shape == (corpus.shape[0],) and post.n_draws == 2
    # the fit's own counts and fold-in with the fitted topics agree on the training documents
    assert np.abs(post.mean - gibbs.posterior(corpus).mean).max() < 0.15
    with pytest.raises(ValueError, match="Gibbs"):
        LDA(2, max_iter=5, evaluate_every=-1, random_state=0).fit(corpus).training_posterior()


def test_token_topic_draws(gibbs, corpus):
    draws = gibbs.sample_token_topics(corpus, 5, random_state=0)
    assert draws.draws.shape == (5, draws.counts.size, 2)
    np.testing.assert_array_equal(draws.draws.sum(-1), np.broadcast_to(draws.counts, (5, draws.counts.size)))
    again = gibbs.sample_token_topics(corpus, 5, random_state=0)
    np.testing.assert_array_equal(draws.draws, again.draws)
    rows, cols, counts, probs = gibbs.token_topic_probs(corpus)
    np.testing.assert_allclose(probs.sum(1), 1.0)


def test_reproducible_and_save_load(gibbs, corpus):
    again = LDA(2, algorithm="gibbs", n_chains=2, n_warmup=30, n_draws=20, random_state=0).fit(corpus)
    np.testing.assert_array_equal(again.components_, gibbs.components_)
    np.testing.assert_array_equal(again.sample_stats_["lp"], gibbs.sample_stats_["lp"])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "lda.npz")
        gibbs.save(path)
        loaded = load(path)
    assert loaded.sampler == "collapsed_gibbs"
    np.testing.assert_array_equal(loaded.components_, gibbs.components_)
    np.testing.assert_array_equal(loaded.posterior(corpus).mean, gibbs.posterior(corpus).mean)
    np.testing.assert_array_equal(loaded.draws_["topic_share"], gibbs.draws_["topic_share"])


def test_arviz_diagnostics(gibbs, corpus):
    import arviz as az

    data = gibbs.to_arviz(corpus, n_samples=10, random_state=0)
    assert data["latent_posterior"]["theta"].shape == (2, 10, corpus.shape[0], 2)
    assert data["sample_stats"]["lp"].shape == (2, 10)
    assert data["log_likelihood"]["x"].shape == (2, 10, corpus.shape[0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rhat = az.rhat(data["sample_stats"] if az.__version__.startswith("1") else data.sample_stats)
        ess = az.ess(data, group="log_likelihood") if not az.__version__.startswith("0") else az.ess(
            data.log_likelihood)
        az.summary(data, var_names=["topic_share"])
    assert np.isfinite(float(rhat["lp"]))  # defined across the two chains (a short run: no threshold here)
    assert np.all(np.asarray(ess["x"]) > 0)


def test_sparse_input_and_many_topics_kernel(corpus):
    # K >= 40 selects the SparseLDA kernel; sparse X gives the same fit as dense X
    a = LDA(40, algorithm="gibbs", n_chains=1, n_warmup=5, n_draws=3, thin=1, random_state=0).fit(corpus)
    b = LDA(40, algorithm="gibbs", n_chains=1, n_warmup=5, n_draws=3, thin=1,
            random_state=0).fit(sp.csr_matrix(corpus))
    np.testing.assert_array_equal(a.components_, b.components_)
    assert a.posterior(corpus).mean.shape == (corpus.shape[0], 40)


def test_bad_input(gibbs, corpus):
    with pytest.raises(NotFittedError):
        LDA(algorithm="gibbs").posterior(corpus)
    with pytest.raises(ValueError, match="algorithm"):
        LDA(algorithm="collapsed").fit(corpus)
    for name, value in (("n_chains", 0), ("n_draws", 0), ("thin", 0), ("n_warmup", -1), ("progress", "yes")):
        with pytest.raises(ValueError, match=name):
            LDA(algorithm="gibbs", **{name: value}).fit(corpus)
    with pytest.raises(ValueError, match="integer"):
        gibbs.posterior(corpus + 0.5)
    with pytest.raises(ValueError):
        gibbs.posterior(-corpus)
    with pytest.raises(ValueError, match=str(corpus.shape[1])):
        gibbs.posterior(corpus[:, :-1])
    with pytest.raises(ValueError, match="partial_fit"):
        gibbs.partial_fit(corpus)
    with pytest.raises(ValueError, match="Gibbs"):
        gibbs.topic_term()
    empty_doc = corpus.copy()
    empty_doc[0] = 0  # a document without words: its posterior is the prior
    np.testing.assert_allclose(gibbs.posterior(empty_doc).mean[0], 0.5)


def test_progress_bar(corpus, capsys):
    LDA(2, algorithm="gibbs", n_chains=1, n_warmup=2, n_draws=2, progress=True, random_state=0).fit(corpus)
    assert "Gibbs" in capsys.readouterr().err
