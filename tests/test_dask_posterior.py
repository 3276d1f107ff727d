"""Lazy posteriors over dask arrays (synchronous scheduler): equal to in-memory, draws independent of chunking."""

import itertools
import subprocess
import sys
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

from scipy import stats  # noqa: E402

from probspace import LDA, PPCA, RBM, FactorAnalysis, GaussianHMM, GaussianMixture, MarkovChain  # noqa: E402
from probspace.dask import ChunkedMarkovChain, chunk_sequences, chunked_forward_backward  # noqa: E402
from probspace.dask._posterior import block_lengths  # noqa: E402
from probspace.inference import _hmm  # noqa: E402


@pytest.fixture(autouse=True)
def synchronous():
    with dask.config.set(scheduler="synchronous"):
        yield


def _gauss(rng, n=300):
    return np.r_[rng.normal(-2, 1, (n // 2, 2)), rng.normal(2, 1, (n - n // 2, 2))]


def _hmm_data(rng):
    lengths = np.array([40, 25, 60, 35, 40])
    z = _hmm.sample_chain(np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.2, 0.8]]), lengths.sum(), rng)
    return (np.where(z[:, None] == 0, -1.5, 1.5) + rng.normal(size=(lengths.sum(), 1))), lengths


def _lda_data(rng):
    return rng.poisson(1.0, size=(60, 12)).astype(float)


CASES = {
    "gmm": (lambda: GaussianMixture(2, random_state=0), _gauss, ("mean", "probs", "mode")),
    "fa": (lambda: FactorAnalysis(2, random_state=0), lambda rng: rng.normal(size=(120, 4)) @ rng.normal(size=(4, 4)),
           ("mean", "loc")),
    "ppca": (lambda: PPCA(2, random_state=0), lambda rng: rng.normal(size=(120, 4)) @ rng.normal(size=(4, 4)),
             ("mean", "loc")),
    "lda": (lambda: LDA(3, random_state=0, max_iter=5), _lda_data, ("mean", "concentration")),
    "rbm": (lambda: RBM(3, random_state=0, n_iter=3), lambda rng: (rng.random((80, 6)) < 0.4).astype(float),
            ("mean", "probs")),
}


@pytest.mark.parametrize("name", CASES)
def test_lazy_equals_in_memory(name):
    make, data, fields = CASES[name]
    rng = np.random.default_rng(0)
    X = data(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # short fits: convergence is not the point here
        model = make().fit(X)
    ref = model.posterior(X)
    lazy = model.posterior(da.from_array(X, chunks=(23, X.shape[1])))
    for f in fields:
        np.testing.assert_allclose(getattr(lazy, f).compute(), getattr(ref, f), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lazy.entropy().compute(), ref.entropy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lazy.log_likelihood().compute(), model.log_likelihood(X), rtol=0, atol=1e-12)
    computed = lazy.compute()
    assert type(computed) is type(ref)
    np.testing.assert_allclose(computed.mean, ref.mean, rtol=0, atol=1e-12)
    assert lazy.batch_shape == ref.batch_shape and lazy.event_shape == ref.event_shape
    # seeded draws: identical under two chunkings, shaped as the in-memory draws, different across seeds
    other = model.posterior(da.from_array(X, chunks=(7, X.shape[1])))
    a = lazy.sample(4, random_state=5).compute()
    b = other.sample(4, random_state=5).compute()
    if np.issubdtype(a.dtype, np.integer):
        np.testing.assert_array_equal(a, b)
    else:  # same random numbers; the loc of a row may differ in its last bit with the BLAS block size
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)
    assert a.shape == ref.sample(4).shape
    assert not np.array_equal(a, lazy.sample(4, random_state=6).compute())


def test_hmm_lazy_over_sequences():
    rng = np.random.default_rng(1)
    X, lengths = _hmm_data(rng)
    model = GaussianHMM(2, random_state=0).fit(X, lengths=lengths)
    ref = model.posterior(X, lengths=lengths)
    # chunks that cut sequences are moved to sequence boundaries
    lazy = model.posterior(da.from_array(X, chunks=(50, 1)), lengths=lengths)
    assert block_lengths(lazy.X.chunks[0], lengths) is not None
    np.testing.assert_allclose(lazy.marginals.compute(), ref.marginals, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(lazy.mode.compute(), ref.mode)
    np.testing.assert_allclose(lazy.entropy().compute(), ref.sequence_entropy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(lazy.log_likelihood().compute(), model.log_likelihood(X, lengths=lengths),
                               rtol=0, atol=1e-12)
    assert lazy.batch_shape == (5,)
    other = model.posterior(chunk_sequences(X, lengths, chunk_size=1), lengths=lengths)
    assert other.X.numblocks[0] == 5
    np.testing.assert_array_equal(lazy.sample(3, random_state=2).compute(), other.sample(3, random_state=2).compute())


def test_chunk_sequences_and_errors():
    X = np.zeros((10, 1))
    assert chunk_sequences(X, [3, 3, 4], chunk_size=6).chunks[0] == (6, 4)
    assert chunk_sequences(X, [3, 3, 4], chunk_size=5).chunks[0] == (3, 3, 4)
    assert chunk_sequences(X, [3, 3, 4], chunk_size=100).chunks[0] == (10,)
    with pytest.raises(ValueError, match="add up"):
        chunk_sequences(X, [3, 3], chunk_size=5)
    with pytest.raises(ValueError, match="chunk_size"):
        chunk_sequences(X, [10], chunk_size=0)
    gm = GaussianMixture(2, random_state=0).fit(_gauss(np.random.default_rng(0)))
    with pytest.raises(ValueError, match="3 features"):
        gm.posterior(da.zeros((10, 3), chunks=5))
    with pytest.raises(ValueError, match="2-D"):
        gm.posterior(da.zeros(10, chunks=5))
    with pytest.raises(ValueError, match="lengths"):
        gm.posterior(da.zeros((10, 2), chunks=5), lengths=[10])
    with pytest.raises(ValueError, match="NaN|finite|infinity"):
        gm.posterior(da.full((10, 2), np.nan, chunks=5)).mean.compute()
    with pytest.raises(ValueError, match="n_samples"):
        gm.posterior(da.zeros((10, 2), chunks=5)).sample(0)


def _random_hmm(rng, T, K):
    pi = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    logb = rng.normal(scale=2.0, size=(T, K))
    return pi, A, logb


@pytest.mark.parametrize("chunks", [1, 3, 17, 100])
def test_chunked_forward_backward_equals_monolithic(chunks):
    rng = np.random.default_rng(3)
    pi, A, logb = _random_hmm(rng, 100, 3)
    A[0, 2] = 0.0  # a forbidden transition
    A /= A.sum(axis=1, keepdims=True)
    ref = _hmm.forward_backward(pi, A, logb)
    got = chunked_forward_backward(pi, A, da.from_array(logb, chunks=(chunks, 3)))
    np.testing.assert_allclose(got.marginals, ref.marginals, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.filtered, ref.filtered, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.log_predictive, ref.log_predictive, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(got.log_likelihood, ref.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(got.transition_counts, ref.transition_counts, rtol=1e-10, atol=1e-10)
    post = ChunkedMarkovChain(pi, A, da.from_array(logb, chunks=(chunks, 3)))
    np.testing.assert_allclose(post.entropy().compute(), MarkovChain(pi, A, logb).entropy(), rtol=1e-10)


def test_hmm_single_long_sequence_is_chunked():
    rng = np.random.default_rng(4)
    X, _ = _hmm_data(rng)
    model = GaussianHMM(2, random_state=0).fit(X)
    lazy = model.posterior(da.from_array(X, chunks=(30, 1)))
    assert isinstance(lazy, ChunkedMarkovChain)
    ref = model.posterior(X)
    np.testing.assert_allclose(lazy.marginals.compute(), ref.marginals, rtol=0, atol=1e-10)
    np.testing.assert_allclose(lazy.log_likelihood.compute(), model.log_likelihood(X), rtol=1e-12)
    np.testing.assert_allclose(lazy.compute().marginals, ref.marginals, rtol=0, atol=1e-12)
    a = lazy.sample(5, random_state=1).compute()
    assert a.shape == (5, X.shape[0])
    np.testing.assert_array_equal(a, lazy.sample(5, random_state=1).compute())


def _brute_force(pi, A, logb):
    T, K = logb.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    logp = np.log(pi[paths[:, 0]]) + logb[0, paths[:, 0]]
    for t in range(1, T):
        logp += np.log(A[paths[:, t - 1], paths[:, t]]) + logb[t, paths[:, t]]
    p = np.exp(logp - logp.max())
    return paths, p / p.sum()


@pytest.mark.parametrize("T,K", [(8, 2), (7, 3)])
def test_chunked_paths_chi_square(T, K):
    rng = np.random.default_rng(10 + T)
    pi, A, logb = _random_hmm(rng, T, K)
    paths, p = _brute_force(pi, A, logb)
    n = 40_000
    draws = ChunkedMarkovChain(pi, A, da.from_array(logb, chunks=(3, K))).sample(n, random_state=0).compute()
    codes = (draws.astype(np.int64) * K ** np.arange(T - 1, -1, -1)).sum(axis=1)
    observed = np.bincount(codes, minlength=K**T)
    expected = n * p
    big = expected >= 5
    obs = np.r_[observed[big], observed[~big].sum()]
    exp = np.r_[expected[big], expected[~big].sum()]
    assert stats.chisquare(obs, exp).pvalue > 1e-6


@pytest.mark.slow
def test_chunked_forward_backward_long_sequence():
    rng = np.random.default_rng(7)
    pi, A, logb = _random_hmm(rng, 1_000_000, 3)
    ref = _hmm.forward_backward(pi, A, logb)
    got = chunked_forward_backward(pi, A, da.from_array(logb, chunks=(100_000, 3)))
    np.testing.assert_allclose(got.marginals, ref.marginals, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.log_likelihood, ref.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(got.transition_counts, ref.transition_counts, rtol=1e-10)


def test_import_probspace_does_not_import_dask():
    code = "import sys, probspace; print('dask' in sys.modules, 'distributed' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def test_progress_bar_reports_blocks():
    import io

    from dask.diagnostics import ProgressBar

    X = np.random.default_rng(0).normal(size=(200, 2))
    gm = GaussianMixture(2, random_state=0).fit(X)
    out = io.StringIO()
    with ProgressBar(out=out, minimum=0):
        gm.posterior(da.from_array(X, chunks=(50, 2))).mean.compute(scheduler="threads")
    assert "100%" in out.getvalue()


def test_keyed_draws_follow_the_posterior():
    from probspace import Categorical, MultivariateNormal
    from probspace.dask._posterior import keyed_sample

    rng = np.random.default_rng(9)
    probs = rng.dirichlet(np.ones(4), size=5)
    n = 20_000
    labels = keyed_sample(Categorical(probs), 11, 1000, n)
    freq = np.stack([(labels == k).mean(axis=0) for k in range(4)], axis=1)
    z = (freq - probs) / np.sqrt(probs * (1 - probs) / n)
    assert np.abs(z).max() < 5.5
    cov = np.array([[2.0, 0.6], [0.6, 1.0]])
    loc = rng.normal(size=(3, 2))
    draws = keyed_sample(MultivariateNormal(loc, cov), 12, 0, n)
    se_mean = np.sqrt(np.diag(cov) / n)
    assert np.abs((draws.mean(axis=0) - loc) / se_mean).max() < 5.5
    emp = np.einsum("sni,snj->nij", draws - loc, draws - loc) / n
    se_cov = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)  # Gaussian: var of x_i x_j
    assert np.abs((emp - cov) / se_cov).max() < 5.5
    from probspace.posteriors import DiagonalNormal

    scale = np.array([[0.5, 2.0]])
    d = keyed_sample(DiagonalNormal(loc[:1], scale), 13, 5, n)
    assert np.abs((d.mean(axis=0) - loc[:1]) / (scale / np.sqrt(n))).max() < 5.5
    assert np.abs(d.std(axis=0) / scale - 1).max() < 5.5 / np.sqrt(2 * n)
    # the numbers of an observation depend on its global index only, not on its block
    np.testing.assert_array_equal(keyed_sample(Categorical(probs), 11, 1000, 5)[:, 1:],
                                  keyed_sample(Categorical(probs[1:]), 11, 1001, 5))
