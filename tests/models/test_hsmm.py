"""SemiMarkovHMM: segment kernels against brute-force enumeration of every segmentation, the HMM limit, EM, API."""

import itertools
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

import probspace
from probspace import SemiMarkovHMM
from probspace.models._hsmm import duration_pmf
from probspace.posteriors import MarkovChain, SemiMarkovChain
from probspace.testing import parametrize_with_model_checks


def random_case(K, T, D, seed, zeros=False):
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(K))
    trans = rng.dirichlet(np.ones(K - 1), size=K)
    trans = np.stack([np.insert(trans[k], k, 0.0) for k in range(K)])
    pmf = rng.dirichlet(np.ones(D), size=K)
    if zeros:
        pmf[0, 1] = 0.0  # state 0 never lasts exactly 2 frames
        pmf /= pmf.sum(axis=1, keepdims=True)
    logb = rng.normal(size=(T, K))
    return start, trans, pmf, logb


def path_joint(path, start, trans, pmf, logb):
    """log p(x, path) of one sequence, from its runs (the segments), written independently of the kernels."""
    D = pmf.shape[1]
    runs = [(k, len(list(g))) for k, g in itertools.groupby(path)]
    with np.errstate(divide="ignore"):
        out = np.log(start[runs[0][0]]) + sum(logb[t, k] for t, k in enumerate(path))
        for r, (k, d) in enumerate(runs):
            if d > D:
                return -np.inf
            if r == len(runs) - 1:
                out += np.log(pmf[k, d - 1:].sum())  # censored: lasts at least d
            else:
                out += np.log(pmf[k, d - 1]) + np.log(trans[k, runs[r + 1][0]])
    return out


def enumerate_segmentations(start, trans, pmf, logb, lengths):
    K = start.shape[0]
    out, lo = [], 0
    for L in lengths:
        paths = np.array(list(itertools.product(range(K), repeat=L)))
        joint = np.array([path_joint(p, start, trans, pmf, logb[lo:lo + L]) for p in paths])
        ll = logsumexp(joint)
        post = np.exp(joint - ll)
        marg = np.stack([np.bincount(paths[:, u], weights=post, minlength=K) for u in range(L)])
        completed, censored = np.zeros_like(pmf), np.zeros_like(pmf)
        for p, w in zip(paths, post, strict=True):
            runs = [(k, len(list(g))) for k, g in itertools.groupby(p)]
            for r, (k, d) in enumerate(runs):
                if d <= pmf.shape[1] and w > 0:
                    (censored if r == len(runs) - 1 else completed)[k, d - 1] += w
        with np.errstate(invalid="ignore"):
            ent = -np.sum(np.where(post > 0, post * (joint - ll), 0.0))
        out.append(dict(paths=paths, joint=joint, loglik=ll, post=post, marg=marg, ent=ent,
                        best=paths[np.argmax(joint)], completed=completed, censored=censored))
        lo += L
    return out


CASES = [dict(K=3, lengths=[6], D=4, seed=0), dict(K=2, lengths=[7], D=7, seed=1),
         dict(K=3, lengths=[1, 4, 3], D=3, seed=2), dict(K=2, lengths=[6, 2], D=2, seed=3, zeros=True),
         dict(K=3, lengths=[5], D=9, seed=4, zeros=True)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"K{c['K']}-{c['lengths']}-D{c['D']}-s{c['seed']}")
def test_segment_kernels_match_enumeration(case):
    lengths = np.array(case["lengths"])
    start, trans, pmf, logb = random_case(case["K"], lengths.sum(), case["D"], case["seed"], case.get("zeros", False))
    post = SemiMarkovChain(start, trans, pmf, logb, lengths)
    truth = enumerate_segmentations(start, trans, pmf, logb, lengths)
    np.testing.assert_allclose(post.log_likelihood, [b["loglik"] for b in truth], rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.marginals, np.concatenate([b["marg"] for b in truth]), rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.sequence_entropy(), [b["ent"] for b in truth], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(post.map(), np.concatenate([b["best"] for b in truth]))
    completed, censored = post.expected_durations()
    np.testing.assert_allclose(completed, sum(b["completed"] for b in truth), rtol=0, atol=1e-8)
    np.testing.assert_allclose(censored, sum(b["censored"] for b in truth), rtol=0, atol=1e-8)
    first, b = post.sequences[0], truth[0]
    lp = first.log_prob(b["paths"])
    finite = np.isfinite(b["joint"])
    np.testing.assert_allclose(lp[finite], b["joint"][finite] - b["loglik"], rtol=0, atol=1e-8)
    assert np.all(np.isneginf(lp[~finite]))  # runs beyond max_duration have probability zero


def _chi_square_p(draws, truth, n):
    K = 2
    index = (draws * (K ** np.arange(draws.shape[1] - 1, -1, -1))).sum(axis=1)
    observed = np.bincount(index, minlength=truth["post"].size)
    expected = n * truth["post"]
    if observed[expected == 0].any():
        return 0.0  # a draw the model forbids
    keep = expected >= 5
    return stats.chisquare(np.r_[observed[keep], observed[~keep].sum()],
                           np.r_[expected[keep], expected[~keep].sum()]).pvalue


def test_segmentation_draws_pass_chi_square_against_enumeration():
    start, trans, pmf, logb = random_case(2, 6, 3, seed=5)
    post = SemiMarkovChain(start, trans, pmf, logb)
    truth = enumerate_segmentations(start, trans, pmf, logb, [6])[0]
    n = 40_000
    p = _chi_square_p(post.sample(n, random_state=2), truth, n)
    assert p > 1e-6, p


def test_chi_square_rejects_wrong_segmentation_draws():
    """The test above can fail: draws from a chain with the right marginals but geometric durations are rejected."""
    start, trans, pmf, logb = random_case(2, 6, 3, seed=5)
    post = SemiMarkovChain(start, trans, pmf, logb)
    truth = enumerate_segmentations(start, trans, pmf, logb, [6])[0]
    n = 40_000
    wrong = MarkovChain(start, np.full((2, 2), 0.5), np.log(post.marginals)).sample(n, random_state=2)
    assert _chi_square_p(wrong, truth, n) < 1e-6


def test_geometric_durations_reproduce_the_hmm():
    rng = np.random.default_rng(6)
    K, lengths = 3, np.array([20, 12])
    start = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K), size=K)
    logb = rng.normal(size=(lengths.sum(), K))
    D = lengths.max()
    stay = np.diag(A)
    pmf = (1 - stay)[:, None] * stay[:, None] ** np.arange(D)[None]
    pmf[:, -1] = stay ** (D - 1)  # the tail: segments this long only occur censored, where P(d >= D) is what counts
    trans = A * (1 - np.eye(K)) / (1 - stay)[:, None]
    hsmm = SemiMarkovChain(start, trans, pmf, logb, lengths)
    hmm = MarkovChain(start, A, logb, lengths)
    np.testing.assert_allclose(hsmm.log_likelihood, hmm.log_likelihood, rtol=0, atol=1e-8)
    np.testing.assert_allclose(hsmm.marginals, hmm.marginals, rtol=0, atol=1e-8)
    np.testing.assert_allclose(hsmm.sequence_entropy(), hmm.sequence_entropy(), rtol=0, atol=1e-8)
    np.testing.assert_array_equal(hsmm.map(), hmm.map())
    paths = hmm.sample(5, random_state=0)
    np.testing.assert_allclose(hsmm.log_prob(paths), hmm.log_prob(paths), atol=1e-8)


def _simulate(rng, lengths, rates, means):
    X, Z = [], []
    for L in lengths:
        z, k = [], rng.integers(2)
        while len(z) < L:
            z += [k] * (1 + rng.poisson(rates[k]))
            k = 1 - k
        z = np.array(z[:L])
        X.append(rng.normal(means[z], 1.0)[:, None])
        Z.append(z)
    return np.concatenate(X), np.concatenate(Z)


@pytest.mark.parametrize("duration", ["nonparametric", "poisson", "negative_binomial"])
def test_em_is_monotone(duration):
    rng = np.random.default_rng(7)
    lengths = np.array([120, 80])
    X, _ = _simulate(rng, lengths, [3.0, 7.0], np.array([0.0, 1.5]))
    model = SemiMarkovHMM(2, duration=duration, emission_params={"min_covar": 0.0}, max_duration=25, max_iter=25,
                          tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, lengths=lengths)
    assert model.n_iter_ >= 8
    gains = np.diff(model.history_) * X.shape[0]
    assert gains.min() > -1e-7, gains.min()


@pytest.mark.slow
def test_parameter_recovery_poisson_durations():
    rng = np.random.default_rng(8)
    lengths = np.full(4, 1500)
    X, _ = _simulate(rng, lengths, [3.0, 9.0], np.array([0.0, 3.0]))
    model = SemiMarkovHMM(2, duration="poisson", max_duration=30, tol=1e-6, random_state=0).fit(X, lengths=lengths)
    order = np.argsort(model.means_[:, 0])
    # each state is visited about 6000 / (4 + 10) = 430 times; a Poisson rate's standard error is sqrt(rate / 430)
    se = np.sqrt(np.array([3.0, 9.0]) / 430)
    assert np.all(np.abs(model.duration_params_["rate"][order] - [3.0, 9.0]) < 5 * se)
    np.testing.assert_allclose(model.means_[order, 0], [0.0, 3.0], atol=0.1)


@parametrize_with_model_checks([SemiMarkovHMM()])
def test_conformance(model, check):
    check()


@pytest.mark.slow
@parametrize_with_model_checks([SemiMarkovHMM(duration="negative_binomial"), SemiMarkovHMM(emission="poisson")])
def test_conformance_other_settings(model, check):
    check()


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(9)
    lengths = np.array([150, 100])
    X, _ = _simulate(rng, lengths, [3.0, 7.0], np.array([0.0, 3.0]))
    return SemiMarkovHMM(2, duration="poisson", max_duration=20, random_state=0).fit(X, lengths=lengths), X, lengths


def test_save_load_roundtrip(fitted, tmp_path):
    model, X, lengths = fitted
    model.save(tmp_path / "m.npz")
    loaded = probspace.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.log_likelihood(X, lengths=lengths), model.log_likelihood(X, lengths=lengths))
    np.testing.assert_array_equal(loaded.posterior(X, lengths=lengths).marginals,
                                  model.posterior(X, lengths=lengths).marginals)
    np.testing.assert_array_equal(loaded.duration_params_["rate"], model.duration_params_["rate"])
    np.testing.assert_array_equal(loaded.posterior(X, lengths=lengths).sample(3, random_state=0),
                                  model.posterior(X, lengths=lengths).sample(3, random_state=0))


def test_to_arviz(fitted):
    import arviz as az

    model, X, lengths = fitted
    data = model.to_arviz(X, n_samples=40, lengths=lengths, random_state=0)
    assert data["latent_posterior"]["path"].shape == (1, 40, 250)
    assert az.summary(data, var_names=["path_share"], kind="stats").shape[0] == 2
    assert np.all(np.isfinite(np.asarray(az.ess(data, var_names=["path_share"])["path_share"])))


def test_generative_sample_respects_durations(fitted):
    model, *_ = fitted
    _, Z = model.sample(3000, random_state=0)
    runs = [len(list(g)) for _, g in itertools.groupby(Z)][:-1]
    assert max(runs) <= model.max_duration
    assert np.all(np.diff(Z)[np.diff(Z) != 0] != 0)


def test_parametric_pmf_is_truncated_and_normalised():
    pmf = duration_pmf("poisson", {"rate": np.array([2.0, 40.0])}, 10)
    np.testing.assert_allclose(pmf.sum(axis=1), 1.0)
    np.testing.assert_allclose(pmf[0], stats.poisson.pmf(np.arange(10), 2.0) / stats.poisson.cdf(9, 2.0))


def test_bad_input(fitted):
    model, X, lengths = fitted
    with pytest.raises(ValueError, match=r"duration_init must have shape .*max_duration"):
        SemiMarkovHMM(2, max_duration=5, duration_init=np.ones(8)).fit(X)  # durations beyond max_duration
    with pytest.raises(ValueError, match="non-negative"):
        SemiMarkovHMM(2, max_duration=3, duration_init=[0.5, -0.2, 0.7]).fit(X)
    with pytest.raises(probspace.InvalidParameterError, match="max_duration"):
        SemiMarkovHMM(2, max_duration=0).fit(X)
    with pytest.raises(probspace.InvalidParameterError, match="n_components"):
        SemiMarkovHMM(1).fit(X)
    with pytest.raises(probspace.InvalidParameterError, match="duration"):
        SemiMarkovHMM(2, duration="gamma").fit(X)
    with pytest.raises(ValueError, match="lengths"):
        model.posterior(X, lengths=[10, 10])
    with pytest.raises(ValueError, match="takes no condition"):
        model.posterior(X, np.zeros(X.shape[0]), lengths=lengths)
    with pytest.raises(ValueError, match="zero diagonal"):
        SemiMarkovChain([0.5, 0.5], [[0.5, 0.5], [1.0, 0.0]], [[1.0], [1.0]], np.zeros((3, 2)))
    post = model.posterior(X[:30])
    too_long = np.zeros((1, 30), dtype=int)  # one run of 30 frames > max_duration=20
    assert np.isneginf(post.log_prob(too_long))[0]


def test_duration_init_is_used():
    rng = np.random.default_rng(10)
    X, _ = _simulate(rng, [200], [3.0, 7.0], np.array([0.0, 3.0]))
    init = np.r_[np.zeros(4), np.ones(6)]
    model = SemiMarkovHMM(2, max_duration=10, duration_init=init, max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X)
    np.testing.assert_array_equal(model.duration_pmf_[:, :4], 0.0)  # EM keeps structural zeros of the pmf


def test_segments_of_draws(fitted):
    model, X, lengths = fitted
    post = model.posterior(X, lengths=lengths)
    for path in post.sample(5, random_state=0):
        seg = post.segments(path)
        assert seg[:, 2].sum() == X.shape[0] and seg[:, 2].max() <= model.max_duration
        np.testing.assert_array_equal(np.repeat(seg[:, 3], seg[:, 2]), path)
        np.testing.assert_array_equal(np.bincount(seg[:, 0], weights=seg[:, 2]), lengths)
    with pytest.raises(ValueError, match="integer array of shape"):
        post.segments(np.zeros(3, dtype=int))
