"""InputDrivenHMM: time-varying kernels against brute-force enumeration, the HMM limit, EM, recovery, API."""

import itertools
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp, softmax
from sklearn.exceptions import ConvergenceWarning

import probspace
from probspace import GaussianHMM, InputDrivenHMM
from probspace.inference import _hmm, _iohmm
from probspace.posteriors import TimeVaryingMarkovChain
from probspace.testing import parametrize_with_model_checks


def random_case(K, T, seed, spread=1.0):
    rng = np.random.default_rng(seed)
    start = rng.dirichlet(np.ones(K))
    A = rng.dirichlet(np.ones(K) * 0.7, size=(T, K))
    logb = rng.normal(scale=spread, size=(T, K))
    return start, A, logb


def enumerate_paths(start, A, logb, lengths):
    """Per sequence: every path, its posterior probability and the exact derived quantities."""
    K = start.shape[0]
    out, lo = [], 0
    for L in lengths:
        paths = np.array(list(itertools.product(range(K), repeat=L)))
        t = lo + np.arange(L)
        joint = np.log(start)[paths[:, 0]] + logb[t, paths].sum(axis=1)
        for u in range(1, L):
            joint += np.log(A[lo + u, paths[:, u - 1], paths[:, u]])
        ll = logsumexp(joint)
        post = np.exp(joint - ll)
        marg = np.stack([np.bincount(paths[:, u], weights=post, minlength=K) for u in range(L)])
        pair = np.zeros((L, K, K))
        for u in range(1, L):
            np.add.at(pair[u], (paths[:, u - 1], paths[:, u]), post)
        out.append(dict(paths=paths, joint=joint, loglik=ll, post=post, marg=marg, pair=pair,
                        ent=-np.sum(post * (joint - ll)), best=paths[np.argmax(joint)]))
        lo += L
    return out


CASES = [dict(K=3, lengths=[5], seed=0), dict(K=2, lengths=[8], seed=1), dict(K=3, lengths=[1, 4, 2], seed=2),
         dict(K=3, lengths=[3, 3], seed=4, spread=300.0)]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"K{c['K']}-{c['lengths']}-s{c['seed']}")
def test_kernels_match_enumeration(case):
    start, A, logb = random_case(case["K"], sum(case["lengths"]), case["seed"], case.get("spread", 1.0))
    lengths = np.array(case["lengths"])
    post = TimeVaryingMarkovChain(start, A, logb, lengths)
    truth = enumerate_paths(start, A, logb, lengths)
    np.testing.assert_allclose(post.log_likelihood, [b["loglik"] for b in truth], rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.marginals, np.concatenate([b["marg"] for b in truth]), rtol=0, atol=1e-8)
    np.testing.assert_allclose(post._fb.pairwise, np.concatenate([b["pair"] for b in truth]), rtol=0, atol=1e-8)
    np.testing.assert_allclose(post.sequence_entropy(), [b["ent"] for b in truth], rtol=0, atol=1e-8)
    np.testing.assert_array_equal(post.map(), np.concatenate([b["best"] for b in truth]))
    np.testing.assert_allclose(post.log_predictive.sum(), sum(b["loglik"] for b in truth), atol=1e-8)
    # log_prob of whole paths, for one sequence at a time
    first = post.sequences[0]
    b = truth[0]
    np.testing.assert_allclose(first.log_prob(b["paths"]), b["joint"] - b["loglik"], rtol=0, atol=1e-8)


def test_path_draws_pass_chi_square_against_enumeration():
    start, A, logb = random_case(2, 5, seed=7)
    post = TimeVaryingMarkovChain(start, A, logb)
    truth = enumerate_paths(start, A, logb, [5])[0]
    n = 40_000
    draws = post.sample(n, random_state=1)
    index = (draws * (2 ** np.arange(4, -1, -1))).sum(axis=1)  # row of the path in itertools.product order
    observed = np.bincount(index, minlength=32)
    expected = n * truth["post"]
    keep = expected >= 5
    obs = np.r_[observed[keep], observed[~keep].sum()]
    exp = np.r_[expected[keep], expected[~keep].sum()]
    p = stats.chisquare(obs, exp).pvalue
    assert p > 1e-6, p


def test_chi_square_rejects_a_wrong_sampler(monkeypatch):
    """The draw test above can fail: independent per-frame draws from the marginals are rejected."""
    start, A, logb = random_case(2, 5, seed=7)
    post = TimeVaryingMarkovChain(start, A, logb)
    truth = enumerate_paths(start, A, logb, [5])[0]
    rng = np.random.default_rng(1)
    n = 40_000
    draws = (rng.random((n, 5)) < post.marginals[:, 1]).astype(int)
    index = (draws * (2 ** np.arange(4, -1, -1))).sum(axis=1)
    observed = np.bincount(index, minlength=32)
    expected = n * truth["post"]
    keep = expected >= 5
    p = stats.chisquare(np.r_[observed[keep], observed[~keep].sum()],
                        np.r_[expected[keep], expected[~keep].sum()]).pvalue
    assert p < 1e-6


def test_constant_matrices_equal_the_ordinary_hmm_kernels():
    start, A, logb = random_case(3, 40, seed=3)
    A[:] = A[0]
    tv = _iohmm.forward_backward(start, A, logb, np.array([25, 15]))
    fixed = _hmm.forward_backward(start, A[0], logb, np.array([25, 15]))
    np.testing.assert_allclose(tv.log_likelihood, fixed.log_likelihood, rtol=1e-12)
    np.testing.assert_allclose(tv.marginals, fixed.marginals, atol=1e-12)
    np.testing.assert_array_equal(_iohmm.viterbi(start, A, logb)[0], _hmm.viterbi(start, A[0], logb)[0])


def _simulate(rng, T, coef, intercept, means):
    """Two-state Gaussian IOHMM with one covariate."""
    y = rng.normal(size=(T, 1))
    logits = intercept[None] + coef[None, :, :, 0] * y[:, None, None, 0]
    A = softmax(logits, axis=2)
    z = np.zeros(T, dtype=int)
    for t in range(1, T):
        z[t] = rng.choice(2, p=A[t, z[t - 1]])
    return rng.normal(means[z], 1.0)[:, None], y, z


def _iohmm_fit(X, y, lengths, **kw):
    return InputDrivenHMM(2, random_state=0, **kw).fit(X, y, lengths=lengths)


def test_constant_covariates_reduce_to_gaussian_hmm():
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (30, 2)), rng.normal(3, 1, (30, 2)), rng.normal(0, 1, (20, 2))])
    lengths = np.array([50, 30])
    hmm = GaussianHMM(2, random_state=0).fit(X, lengths=lengths)
    c = 1.7
    y = np.full((X.shape[0], 1), c)
    with pytest.warns(ConvergenceWarning):
        model = InputDrivenHMM(2, max_iter=1, random_state=0).fit(X, y, lengths=lengths)
    w = rng.normal(size=(2, 2, 1))
    model.startprob_ = hmm.startprob_
    model.transition_coef_ = w
    model.transition_intercept_ = np.log(hmm.transmat_) - w[:, :, 0] * c  # softmax(b + w c) = transmat
    model.emission_arrays_ = hmm._emission_point()
    np.testing.assert_allclose(model.log_likelihood(X, y, lengths=lengths), hmm.log_likelihood(X, lengths=lengths),
                               rtol=0, atol=1e-8)
    np.testing.assert_allclose(model.posterior(X, y, lengths=lengths).marginals,
                               hmm.posterior(X, lengths=lengths).marginals, atol=1e-8)


@pytest.mark.parametrize("emission, make", [
    ("gaussian", lambda rng, z: rng.normal(3.0 * z, 1.0)[:, None]),
    ("poisson", lambda rng, z: rng.poisson(2.0 + 6.0 * z)[:, None].astype(float)),
    ("categorical", lambda rng, z: np.where(rng.random(z.size) < 0.8, z, 1 - z)[:, None].astype(float)),
])
def test_em_is_monotone(emission, make):
    rng = np.random.default_rng(2)
    _, y, z = _simulate(rng, 300, np.array([[[0.0], [2.0]], [[-2.0], [0.0]]]), np.array([[1.0, -1.0], [-1, 1.0]]),
                        np.array([0.0, 3.0]))
    # min_covar=0: the Gaussian M-step adds min_covar to the variances, which is not an exact maximiser
    params = {"min_covar": 0.0} if emission == "gaussian" else None
    model = InputDrivenHMM(2, emission=emission, emission_params=params, max_iter=40, tol=0.0,
                           random_state=1)  # stops only on a decrease
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(make(rng, z), y)
    assert model.n_iter_ >= 10
    gains = np.diff(model.history_) * 300
    assert gains.min() > -1e-7, gains.min()


@pytest.mark.slow
def test_parameter_recovery():
    rng = np.random.default_rng(5)
    coef = np.array([[[0.0], [2.5]], [[-2.5], [0.0]]])  # high y pushes 0 -> 1; low y pushes 1 -> 0
    intercept = np.array([[1.5, -1.5], [-1.5, 1.5]])
    X, y, _ = _simulate(rng, 12000, coef, intercept, np.array([0.0, 3.0]))
    model = _iohmm_fit(X, y, np.full(6, 2000), tol=1e-6)
    order = np.argsort(model.means_[:, 0])
    w = model.transition_coef_[np.ix_(order, order)][..., 0]
    b = model.transition_intercept_[np.ix_(order, order)]
    # identifiable contrasts (logit of leaving vs staying); over simulation seeds their spread at this size is
    # about 0.07, so 0.4 is more than 5 standard deviations
    np.testing.assert_allclose([w[0, 1] - w[0, 0], w[1, 0] - w[1, 1]], [2.5, -2.5], atol=0.4)
    np.testing.assert_allclose([b[0, 1] - b[0, 0], b[1, 0] - b[1, 1]], [-3.0, -3.0], atol=0.4)
    np.testing.assert_allclose(np.sort(model.means_[:, 0]), [0.0, 3.0], atol=0.05)


@parametrize_with_model_checks([InputDrivenHMM()])
def test_conformance(model, check):
    check()


@pytest.mark.slow
@parametrize_with_model_checks([InputDrivenHMM(emission="poisson"), InputDrivenHMM(emission="bernoulli")])
def test_conformance_other_emissions(model, check):
    check()


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(3)
    X, y, _ = _simulate(rng, 300, np.array([[[0.0], [2.0]], [[-2.0], [0.0]]]), np.array([[1.0, -1.0], [-1, 1.0]]),
                        np.array([0.0, 3.0]))
    y = np.hstack([y, rng.normal(size=(300, 1))])
    lengths = np.array([200, 100])
    return _iohmm_fit(X, y, lengths), X, y, lengths


def test_save_load_roundtrip(fitted, tmp_path):
    model, X, y, lengths = fitted
    model.save(tmp_path / "m.npz")
    loaded = probspace.load(tmp_path / "m.npz")
    np.testing.assert_array_equal(loaded.log_likelihood(X, y, lengths=lengths), model.log_likelihood(X, y,
                                                                                                     lengths=lengths))
    np.testing.assert_array_equal(loaded.posterior(X, y, lengths=lengths).marginals,
                                  model.posterior(X, y, lengths=lengths).marginals)
    np.testing.assert_array_equal(loaded.transition_coef_, model.transition_coef_)
    assert loaded.n_covariates_ == 2


def test_to_arviz_with_covariates(fitted):
    import arviz as az

    model, X, y, lengths = fitted
    data = model.to_arviz(X, n_samples=40, y=y, lengths=lengths, random_state=0)
    assert data["latent_posterior"]["path"].shape == (1, 40, 300)
    summary = az.summary(data, var_names=["path_share"], kind="stats")
    assert summary.shape[0] == 2
    assert np.all(np.isfinite(np.asarray(az.ess(data, var_names=["path_share"])["path_share"])))
    assert data["posterior_predictive"]["x"].shape == (1, 40, 300, 1)


def test_sampling_follows_covariates(fitted):
    model, *_ = fitted
    y = np.zeros((50, 2))
    X, Z = model.sample(50, y=y, random_state=0)
    assert X.shape == (50, 1) and Z.shape == (50,)
    X2, Z2 = model.sample(50, y=y, random_state=0)
    np.testing.assert_array_equal(Z, Z2)
    assert model.transition_matrices(y[:4]).shape == (4, 2, 2)
    np.testing.assert_allclose(model.transition_matrices(y[:4]).sum(axis=2), 1.0)


def test_bad_covariates(fitted):
    model, X, y, lengths = fitted
    with pytest.raises(ValueError, match="y .*has 299 rows but X has 300"):
        model.posterior(X, y[:-1], lengths=lengths)
    bad = y.copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        model.log_likelihood(X, bad, lengths=lengths)
    with pytest.raises(ValueError, match="NaN"):
        InputDrivenHMM(2).fit(X, bad, lengths=lengths)
    with pytest.raises(ValueError, match="fitted with 2 covariates"):
        model.posterior(X, lengths=lengths)
    with pytest.raises(ValueError, match="y has 1 covariates but InputDrivenHMM was fitted with 2"):
        model.posterior(X, y[:, 0], lengths=lengths)
    with pytest.raises(ValueError, match="numeric"):
        model.posterior(X, np.array(["a"] * 300), lengths=lengths)
    with pytest.raises(ValueError, match="n_samples"):
        model.sample(10, y=y[:5])
    with pytest.raises(ValueError, match="lengths"):
        model.posterior(X, y, lengths=[100, 100])
    with pytest.raises(ValueError, match="3-D|1-D or 2-D"):
        model.posterior(X, y[:, :, None, None], lengths=lengths)


# -- GLM emissions (GLM-HMM) ---------------------------------------------------------------------------------
def _simulate_glm_hmm(rng, T):
    """Two states: "engaged" (choice follows the stimulus strongly) and "biased" (mostly choice 1, weak stimulus)."""
    y = rng.normal(size=(T, 1))
    A = np.array([[0.95, 0.05], [0.1, 0.9]])
    z = np.zeros(T, dtype=int)
    for t in range(1, T):
        z[t] = rng.choice(2, p=A[z[t - 1]])
    logit = np.where(z == 0, 4.0 * y[:, 0], 1.5 + 0.5 * y[:, 0])
    x = (rng.random(T) < 1 / (1 + np.exp(-logit))).astype(float)[:, None]
    return x, y, z


@pytest.mark.slow
def test_glm_emissions_match_their_definition_and_recover():
    rng = np.random.default_rng(11)
    X, y, z = _simulate_glm_hmm(rng, 4000)
    model = InputDrivenHMM(2, emission="glm", tol=1e-3, random_state=0).fit(X, y)
    # the frame log-likelihoods are the softmax of the per-state linear predictors
    a, v = model.glm_intercept_, model.glm_coef_
    logits = a[None] + np.einsum("kcm,tm->tkc", v, y)
    expected = np.log(softmax(logits, axis=2))[np.arange(4000), :, X[:, 0].astype(int)]
    np.testing.assert_allclose(model._frames(X, y), expected, atol=1e-12)
    # recovery of the choice slopes (log-odds of choice 1: contrast of the two symbols)
    slope = v[:, 1, 0] - v[:, 0, 0]
    bias = a[:, 1] - a[:, 0]
    engaged = int(np.argmax(slope))
    # over simulation seeds the estimates spread by about 0.15 (slopes), 0.07 (biases), 0.01 (agreement)
    np.testing.assert_allclose([slope[engaged], slope[1 - engaged]], [4.0, 0.5], atol=0.75)
    np.testing.assert_allclose([bias[engaged], bias[1 - engaged]], [0.0, 1.5], atol=0.4)
    agree = np.mean(model.posterior(X, y).map() == np.where(z == 0, engaged, 1 - engaged))
    assert agree > 0.8, agree


def test_glm_em_is_monotone_and_saves(tmp_path):
    rng = np.random.default_rng(12)
    X, y, _ = _simulate_glm_hmm(rng, 300)
    model = InputDrivenHMM(2, emission="glm", max_iter=12, tol=0.0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    assert model.n_iter_ >= 10
    assert np.diff(model.history_).min() * 300 > -1e-7
    model.save(tmp_path / "glm.npz")
    loaded = probspace.load(tmp_path / "glm.npz")
    np.testing.assert_array_equal(loaded.log_likelihood(X, y), model.log_likelihood(X, y))
    Xs, Zs = loaded.sample(50, y=y[:50], random_state=0)
    assert set(np.unique(Xs)) <= {0.0, 1.0} and Zs.shape == (50,)
    data = model.to_arviz(X, y=y, n_samples=10, random_state=0)
    assert data["posterior_predictive"]["x"].shape == (1, 10, 300, 1)
    assert set(np.unique(data["posterior_predictive"]["x"].values)) <= {0.0, 1.0}


def test_glm_bad_input():
    rng = np.random.default_rng(13)
    X, y, _ = _simulate_glm_hmm(rng, 100)
    with pytest.raises(ValueError, match="one column"):
        InputDrivenHMM(2, emission="glm").fit(np.hstack([X, X]), y)
    with pytest.raises(ValueError, match="integer"):
        InputDrivenHMM(2, emission="glm").fit(X + 0.5, y)
    model = InputDrivenHMM(2, emission="glm", random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="symbol"):
        model.posterior(X + 2, y)
    with pytest.raises(ValueError, match="emission_params"):
        InputDrivenHMM(2, emission="glm", emission_params={"bogus": 1}).fit(X, y)
