"""HMM kernels against brute-force enumeration of every path."""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from probspace.inference import _hmm as hmm


def random_hmm(K, T, seed, sparse=False, spread=1.0):
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(K))
    trans = rng.dirichlet(np.ones(K) * 0.7, size=K)
    if sparse:
        trans[0, 1:] = 0.0
        trans[0, 0] = 0.6
        trans[0, -1] = 0.4  # 0 -> {0, K-1}
        trans /= trans.sum(axis=1, keepdims=True)
    logb = rng.normal(scale=spread, size=(T, K))
    return start, trans, logb


def brute_force(start, trans, logb, lengths):
    """Per sequence: all paths, their log joint, and the derived exact quantities."""
    K = start.shape[0]
    out = []
    lo = 0
    with np.errstate(divide="ignore"):
        ls, lt = np.log(start), np.log(trans)
    for L in lengths:
        paths = np.array(list(itertools.product(range(K), repeat=L)))
        joint = ls[paths[:, 0]] + logb[lo + np.arange(L), paths].sum(axis=1)
        if L > 1:
            joint = joint + lt[paths[:, :-1], paths[:, 1:]].sum(axis=1)
        loglik = logsumexp(joint)
        post = np.exp(joint - loglik)
        marg = np.stack([np.bincount(paths[:, t], weights=post, minlength=K) for t in range(L)])
        pair = np.zeros((L, K, K))
        for t in range(L - 1):
            np.add.at(pair[t], (paths[:, t], paths[:, t + 1]), post)
        with np.errstate(invalid="ignore"):
            ent = -np.sum(np.where(post > 0, post * (joint - loglik), 0.0))
        best = paths[np.argmax(joint)]
        out.append(dict(paths=paths, joint=joint, loglik=loglik, post=post, marg=marg, pair=pair, ent=ent,
                        best=best, best_joint=joint.max()))
        lo += L
    return out


CASES = [
    dict(K=3, lengths=[5], seed=0),
    dict(K=2, lengths=[8], seed=1),
    dict(K=3, lengths=[1, 4, 2], seed=2),
    dict(K=3, lengths=[5], seed=3, sparse=True),
    dict(K=3, lengths=[3, 3], seed=4, spread=400.0),  # emissions 1000s of nats apart
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"K{c['K']}-L{c['lengths']}-{c['seed']}")
def test_forward_backward_matches_enumeration(case):
    lengths = np.array(case["lengths"])
    start, trans, logb = random_hmm(case["K"], lengths.sum(), case["seed"], case.get("sparse", False),
                                    case.get("spread", 1.0))
    truth = brute_force(start, trans, logb, lengths)
    fb = hmm.forward_backward(start, trans, logb, lengths)
    np.testing.assert_allclose(fb.log_likelihood, [t["loglik"] for t in truth], rtol=1e-12, atol=1e-8)
    np.testing.assert_allclose(fb.marginals, np.concatenate([t["marg"] for t in truth]), atol=1e-8)
    np.testing.assert_allclose(fb.transition_counts, [t["pair"].sum(axis=0) for t in truth], atol=1e-8)
    pair = hmm.pairwise_marginals(fb, trans, logb, lengths)
    np.testing.assert_allclose(pair, np.concatenate([t["pair"] for t in truth]), atol=1e-8)
    np.testing.assert_allclose(hmm.entropy(fb, start, trans, logb, lengths), [t["ent"] for t in truth], atol=1e-8)
    # One-step-ahead terms add up to each sequence's log-likelihood.
    bounds = hmm.sequence_bounds(lengths, lengths.sum())
    np.testing.assert_allclose(np.add.reduceat(fb.log_predictive, bounds[:-1]), fb.log_likelihood, atol=1e-8)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"K{c['K']}-L{c['lengths']}-{c['seed']}")
def test_viterbi_and_path_log_prob_match_enumeration(case):
    lengths = np.array(case["lengths"])
    start, trans, logb = random_hmm(case["K"], lengths.sum(), case["seed"], case.get("sparse", False),
                                    case.get("spread", 1.0))
    truth = brute_force(start, trans, logb, lengths)
    path, best = hmm.viterbi(start, trans, logb, lengths)
    np.testing.assert_array_equal(path, np.concatenate([t["best"] for t in truth]))
    np.testing.assert_allclose(best, [t["best_joint"] for t in truth], atol=1e-8)
    fb = hmm.forward_backward(start, trans, logb, lengths)
    if len(lengths) == 1:
        lp = hmm.path_log_prob(truth[0]["paths"], start, trans, logb, lengths, fb.log_likelihood)
        with np.errstate(divide="ignore"):
            expected = np.log(truth[0]["post"])
        finite = np.isfinite(expected)
        np.testing.assert_allclose(lp[finite, 0], expected[finite], atol=1e-8)
        assert np.all(lp[~finite, 0] == -np.inf)


def test_ffbs_draws_follow_the_joint_posterior():
    """Chi-square of whole-path frequencies against the exact posterior.

    The chain is sticky, so sampling each step from its marginal (ignoring the
    coupling) gives a very different path distribution; the same test rejects it.
    """
    K, T = 2, 6
    start = np.array([0.5, 0.5])
    trans = np.array([[0.95, 0.05], [0.05, 0.95]])
    logb = np.log(np.full((T, K), 0.5))
    logb[2] = np.log([0.6, 0.4])
    truth = brute_force(start, trans, logb, [T])[0]
    fb = hmm.forward_backward(start, trans, logb)
    n = 200_000
    weights = K ** np.arange(T)[::-1]
    truth_codes = (truth["paths"] * weights).sum(axis=1)
    expected = n * truth["post"]
    rare = expected < 5  # the 12 paths that switch state 4 or 5 times, pooled into one cell
    assert expected[rare].sum() >= 5

    def pvalue(paths):
        counts = np.bincount((paths.astype(np.int64) * weights).sum(axis=1), minlength=K**T)[truth_codes]
        obs = np.r_[counts[~rare], counts[rare].sum()]
        exp = np.r_[expected[~rare], expected[rare].sum()]
        return stats.chi2.sf(((obs - exp) ** 2 / exp).sum(), obs.size - 1)

    # One test, seeded; 1e-6 keeps it passing for any draw stream (the seed does not pin the draws on every CPU).
    draws = hmm.sample_paths(fb.filtered, trans, None, n, np.random.default_rng(0))
    assert pvalue(draws) > 1e-6
    # Independent per-step draws from the marginals fail the same test by a mile (chi-square near 2e7).
    rng = np.random.default_rng(1)
    indep = rng.random((n, T)) > fb.marginals[:, 0]
    assert pvalue(indep) < 1e-12


def test_ffbs_with_several_sequences_and_a_sparse_chain():
    lengths = np.array([3, 1, 4])
    start, trans, logb = random_hmm(3, 8, seed=7, sparse=True)
    fb = hmm.forward_backward(start, trans, logb, lengths)
    draws = hmm.sample_paths(fb.filtered, trans, lengths, 50_000, np.random.default_rng(2), block=2)
    # Monte Carlo marginals within MC error of the exact ones.
    freq = np.stack([(draws == k).mean(axis=0) for k in range(3)], axis=1)
    se = np.sqrt(fb.marginals * (1 - fb.marginals) / 50_000) + 1e-12
    assert np.all(np.abs(freq - fb.marginals) < 5 * se)
    # No forbidden transitions within a sequence.
    lp = hmm.path_log_prob(draws, start, trans, logb, lengths, fb.log_likelihood)
    assert np.all(np.isfinite(lp))


def test_long_sequence_is_stable():
    rng = np.random.default_rng(0)
    T, K = 1_000_000, 4
    start = np.full(K, 1 / K)
    trans = rng.dirichlet(np.ones(K) * 5, size=K)
    logb = rng.normal(scale=3.0, size=(T, K)) - 50.0  # tiny likelihoods: a plain product underflows
    fb = hmm.forward_backward(start, trans, logb)
    assert np.all(np.isfinite(fb.marginals)) and np.all(np.isfinite(fb.log_likelihood))
    np.testing.assert_allclose(fb.marginals.sum(axis=1), 1.0, atol=1e-10)
    assert fb.log_likelihood[0] < -4e7  # about -50 nats per frame
    draws = hmm.sample_paths(fb.filtered, trans, None, 2, rng)
    assert draws.shape == (2, T)
    path, best = hmm.viterbi(start, trans, logb)
    assert np.isfinite(best[0]) and best[0] <= fb.log_likelihood[0]


# -- threads: blocks of work fixed by the problem, so any thread count gives the same bits ----------
def _many_sequences(T=150_000, K=4, seed=3):
    start, trans, logb = random_hmm(K, T, seed, sparse=True)
    lengths = np.random.default_rng(seed).multinomial(T - 300, np.full(300, 1 / 300)) + 1  # 300 sequences
    return start, trans, logb, lengths


@pytest.mark.parametrize("n_threads", [2, 3])
def test_forward_backward_threads_give_the_single_threaded_result(n_threads):
    start, trans, logb, lengths = _many_sequences()
    assert len(hmm.sequence_groups(hmm.sequence_bounds(lengths, logb.shape[0]))) > 2
    one = hmm.forward_backward(start, trans, logb, lengths, n_threads=1)
    many = hmm.forward_backward(start, trans, logb, lengths, n_threads=n_threads)
    for a, b in zip(one, many, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("lengths", [None, "many"])
def test_joint_paths_do_not_depend_on_the_thread_count(lengths):
    start, trans, logb, many = _many_sequences(T=8_000)
    lengths = many if lengths == "many" else None
    fb = hmm.forward_backward(start, trans, logb, lengths)
    draws = [hmm.sample_paths(fb.filtered, trans, lengths, 60, np.random.default_rng(5), block=1000, n_threads=n)
             for n in (1, 2, 4)]
    assert 60 * 8_000 >= hmm._PARALLEL_MIN  # large enough to run on threads
    np.testing.assert_array_equal(draws[0], draws[1])
    np.testing.assert_array_equal(draws[0], draws[2])
    # a different seed gives different draws; every draw is a possible path
    other = hmm.sample_paths(fb.filtered, trans, lengths, 60, np.random.default_rng(6), block=1000, n_threads=2)
    assert np.mean(other != draws[0]) > 0.05
    assert np.all(np.isfinite(hmm.path_log_prob(draws[0], start, trans, logb, lengths, fb.log_likelihood)))


def test_threaded_joint_paths_match_the_exact_pairwise_marginals():
    # Consecutive pairs (z_t, z_t+1) of threaded draws against the exact pairwise marginals (chi-square over
    # all frames and pairs of the first sequences); per-frame marginals alone would not see a broken coupling.
    start, trans, logb = random_hmm(3, 40, seed=11, sparse=True)
    lengths = np.array([10, 1, 29])
    fb = hmm.forward_backward(start, trans, logb, lengths)
    n = 40_000
    draws = hmm.sample_paths(fb.filtered, trans, lengths, n, np.random.default_rng(8), block=8, n_threads=2)
    pair = hmm.pairwise_marginals(fb, trans, logb, lengths)
    bounds = hmm.sequence_bounds(lengths, 40)
    chi2, dof = 0.0, 0
    for t in range(39):
        if t + 1 in bounds[1:-1]:
            continue
        counts = np.zeros((3, 3))
        np.add.at(counts, (draws[:, t], draws[:, t + 1]), 1)
        expected = n * pair[t]
        keep = expected > 5
        chi2 += float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
        dof += int(keep.sum()) - 1
        assert counts[~keep & (pair[t] == 0)].sum() == 0  # forbidden pairs never drawn
    assert stats.chi2.sf(chi2, dof) > 1e-6


def test_streamed_viterbi_with_a_helper_thread_equals_the_whole_array_pass():
    start, trans, logb, lengths = _many_sequences(T=100_000)
    lengths = np.r_[lengths[:-1], 0, lengths[-1]]  # an empty sequence too
    calls = []

    def emit(lo, hi):
        calls.append((lo, hi))
        return logb[lo:hi]

    path, best = hmm.viterbi_streamed(start, trans, emit, logb.shape[0], lengths, n_threads=2)
    assert len(calls) > 2 and calls[0][0] == 0 and calls[-1][1] == logb.shape[0]  # several blocks, in order
    ref_path, ref_best = hmm.viterbi(start, trans, logb, lengths)
    np.testing.assert_array_equal(path, ref_path)
    np.testing.assert_array_equal(best, ref_best)
    assert best[-2] == -np.inf  # the empty sequence
    # against brute force on a few short sequences
    start, trans, logb = random_hmm(3, 9, seed=4, sparse=True)
    short = np.array([4, 1, 4])
    path, best = hmm.viterbi_streamed(start, trans, lambda lo, hi: logb[lo:hi], 9, short, n_threads=2)
    lo = 0
    with np.errstate(divide="ignore"):
        for s, L in enumerate(short):
            paths = np.array(list(itertools.product(range(3), repeat=L)))
            joint = np.log(start)[paths[:, 0]] + logb[lo + np.arange(L), paths].sum(axis=1)
            if L > 1:
                joint = joint + np.log(trans)[paths[:, :-1], paths[:, 1:]].sum(axis=1)
            np.testing.assert_array_equal(path[lo:lo + L], paths[np.argmax(joint)])
            assert best[s] == pytest.approx(joint.max(), rel=1e-12)
            lo += L


def _double_in_pool(blocks):
    from probspace.inference import _threads

    return _threads.map_blocks(lambda b: 2 * b, blocks, n_threads=2)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs fork")
def test_thread_pool_works_in_a_forked_child():
    """A child forked after the pool started gets a fresh pool (the parent's threads do not exist there)."""
    import multiprocessing

    assert _double_in_pool([1, 2, 3]) == [2, 4, 6]  # the pool exists in this process now
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_double_in_pool, ([4, 5],)).get(timeout=60) == [8, 10]
