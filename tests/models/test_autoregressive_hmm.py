"""AutoregressiveHMM (issue #17 item 7): exact likelihood by enumeration, the M-step, recovery, the Gaussian limit."""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from probspace import AutoregressiveHMM, GaussianHMM, load
from probspace.emissions import AutoregressiveEmission, lagged_rows


def _model(K=2, D=1, p=1, seed=0):
    rng = np.random.default_rng(seed)
    m = AutoregressiveHMM(K, order=p, random_state=0)
    X = rng.normal(size=(40, D))
    m.fit(X)  # fitted, then the parameters are set by hand
    b = m.backend_
    b.startprob_ = rng.dirichlet(np.ones(K))
    b.transmat_ = rng.dirichlet(np.ones(K), size=K)
    b.coefs_ = rng.normal(scale=0.4, size=(K, D, D * p))
    b.intercepts_ = rng.normal(size=(K, D))
    a = rng.normal(size=(K, D, D))
    b.covars_ = a @ np.swapaxes(a, 1, 2) + 0.5 * np.eye(D)
    return m


def _brute_force(m, X, lengths):
    """log p(x_{p+1:T} | x_{1:p}) per sequence, every state path enumerated, densities from scipy."""
    p, K = m.order, m.n_components
    out, start = [], 0
    for n in lengths:
        x = X[start:start + n]
        terms = []
        for path in itertools.product(range(K), repeat=n):
            lp = np.log(m.startprob_[path[0]]) + sum(np.log(m.transmat_[path[t - 1], path[t]]) for t in range(1, n))
            for t in range(p, n):
                k = path[t]
                lags = np.concatenate([x[t - j] for j in range(1, p + 1)])
                lp += stats.multivariate_normal(m.coefs_[k] @ lags + m.intercepts_[k], m.covars_[k]).logpdf(x[t])
            terms.append(lp)
        out.append(logsumexp(terms))
        start += n
    return np.array(out)


@pytest.mark.parametrize(("K", "D", "p"), [(2, 1, 1), (3, 2, 2)])
def test_log_likelihood_and_marginals_match_enumeration(K, D, p):
    m = _model(K, D, p)
    rng = np.random.default_rng(1)
    lengths = np.array([5, 4])
    X = rng.normal(size=(lengths.sum(), D))
    np.testing.assert_allclose(m.log_likelihood(X, lengths=lengths), _brute_force(m, X, lengths), rtol=0,
                               atol=1e-8)
    # marginal of one frame by enumeration of the first sequence
    x = X[:5]
    joint = {}
    for path in itertools.product(range(K), repeat=5):
        lp = np.log(m.startprob_[path[0]]) + sum(np.log(m.transmat_[path[t - 1], path[t]]) for t in range(1, 5))
        for t in range(p, 5):
            lags = np.concatenate([x[t - j] for j in range(1, p + 1)])
            lp += stats.multivariate_normal(m.coefs_[path[t]] @ lags + m.intercepts_[path[t]],
                                            m.covars_[path[t]]).logpdf(x[t])
        joint[path] = lp
    total = logsumexp(list(joint.values()))
    marg = np.zeros((5, K))
    for path, lp in joint.items():
        marg[np.arange(5), path] += np.exp(lp - total)
    np.testing.assert_allclose(m.posterior(X, lengths=lengths).marginals[:5], marg, atol=1e-10)
    best = max(joint, key=joint.get)
    np.testing.assert_array_equal(m.predict(X, lengths=lengths)[:5], best)


def test_zero_coefficients_give_the_gaussian_hmm_with_the_first_frames_conditioned_on():
    m = _model(2, 2, 2)
    m.backend_.coefs_ = np.zeros_like(m.coefs_)
    g = GaussianHMM(2, covariance_type="full", random_state=0)
    rng = np.random.default_rng(3)
    lengths = np.array([30, 20])
    X = rng.normal(size=(50, 2))
    g.fit(X[:10])
    g.backend_.startprob_, g.backend_.transmat_ = m.startprob_, m.transmat_
    g.backend_.means_, g.backend_.covars_ = m.intercepts_, m.covars_
    Xg = X.copy()
    Xg[[0, 1, 30, 31]] = np.nan  # the conditioned-on frames carry no emission term
    np.testing.assert_allclose(m.log_likelihood(X, lengths=lengths), g.log_likelihood(Xg, lengths=lengths),
                               rtol=1e-12)
    np.testing.assert_allclose(m.posterior(X, lengths=lengths).marginals,
                               g.posterior(Xg, lengths=lengths).marginals, atol=1e-12)


def test_the_m_step_maximises_the_expected_log_likelihood():
    rng = np.random.default_rng(4)
    D, p, K = 2, 2, 3
    em = AutoregressiveEmission(order=p, n_features=D, min_covar=0.0)
    rows = lagged_rows(rng.normal(size=(80, D)), np.array([50, 30]), p)
    gamma = rng.dirichlet(np.ones(K), size=80)
    start = {"coefs": np.zeros((K, D, D * p)), "intercepts": np.zeros((K, D)), "covars": np.tile(np.eye(D), (K, 1, 1))}
    best = em.m_step(rows, gamma, start)

    def Q(params):
        return float((gamma * em.log_frames(rows, params)).sum())

    q0 = Q(best)
    for _ in range(30):
        moved = {k: v + 1e-3 * rng.normal(size=v.shape) for k, v in best.items()}
        moved["covars"] = best["covars"] + 1e-3 * np.einsum("kd,ke->kde", *(rng.normal(size=(2, K, D))))
        moved["covars"] = 0.5 * (moved["covars"] + np.swapaxes(moved["covars"], 1, 2))
        assert Q(moved) < q0
    # a wrong M-step (unweighted regression) does not maximise Q
    wrong = em.m_step(rows, np.ones_like(gamma), start)
    assert Q(wrong) < q0 - 1.0


def _simulate(rng, T):
    A = np.array([[[0.9, 0.0], [0.2, 0.5]], [[-0.5, 0.3], [0.0, -0.4]]])
    b = np.array([[0.5, -0.5], [2.0, 1.0]])
    cov = np.array([[[0.2, 0.05], [0.05, 0.1]], [[0.3, 0.0], [0.0, 0.3]]])
    trans = np.array([[0.95, 0.05], [0.08, 0.92]])
    z = np.zeros(T, dtype=int)
    X = np.zeros((T, 2))
    for t in range(1, T):
        z[t] = rng.choice(2, p=trans[z[t - 1]])
        X[t] = A[z[t]] @ X[t - 1] + b[z[t]] + rng.multivariate_normal(np.zeros(2), cov[z[t]])
    return X, z, A, b, cov, trans


def test_parameters_are_recovered_from_simulated_data():
    rng = np.random.default_rng(5)
    X, z, A, b, cov, trans = _simulate(rng, 3000)
    m = AutoregressiveHMM(2, order=1, random_state=0).fit(X, lengths=[1500, 1500])
    order = np.argsort(m.intercepts_[:, 0])  # state 0 has the smaller first intercept
    np.testing.assert_allclose(m.coefs_[order], A, atol=0.08)
    np.testing.assert_allclose(m.intercepts_[order], b, atol=0.15)
    np.testing.assert_allclose(m.covars_[order], cov, atol=0.05)
    np.testing.assert_allclose(m.transmat_[np.ix_(order, order)], trans, atol=0.03)
    acc = (order[m.predict(X, lengths=[1500, 1500])] == z).mean()
    assert acc > 0.95
    assert np.all(np.diff(m.history_) > -1e-8)  # EM never lowers the likelihood


def test_sampling_forecast_and_save_load(tmp_path):
    rng = np.random.default_rng(6)
    X, *_ = _simulate(rng, 400)
    m = AutoregressiveHMM(2, order=2, random_state=0).fit(X)
    Xs, Zs = m.sample(50, random_state=1)
    assert Xs.shape == (50, 2) and Zs.shape == (50,)
    np.testing.assert_array_equal(Xs, m.sample(50, random_state=1)[0])
    Xf, Zf = m.forecast(X, 4, 3, random_state=2)
    assert Xf.shape == (3, 4, 2) and Zf.shape == (3, 4)
    m.save(tmp_path / "ar.npz")
    back = load(tmp_path / "ar.npz")
    np.testing.assert_array_equal(back.log_likelihood(X), m.log_likelihood(X))
    np.testing.assert_array_equal(back.presample_covar_, m.presample_covar_)
    np.testing.assert_array_equal(back.sample(20, random_state=3)[0], m.sample(20, random_state=3)[0])


def test_bad_input():
    X = np.random.default_rng(0).normal(size=(30, 1))
    with pytest.raises(ValueError, match="NaN|nan|missing"):
        AutoregressiveHMM(2).fit(np.r_[X, [[np.nan]]])
    with pytest.raises(ValueError, match="lags"):
        AutoregressiveHMM(2, order=4).fit(X[:8], lengths=[4, 4])
    with pytest.raises(ValueError, match="order"):
        AutoregressiveHMM(2, order=0).fit(X)
    with pytest.raises(ValueError, match="lengths"):
        AutoregressiveHMM(2).fit(X, lengths=[10, 10])
    m = AutoregressiveHMM(2, order=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        m.log_likelihood(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="order=2"):
        m.forecast(X[:3], 2, lengths=[2, 1])


def test_joint_path_draws_match_enumeration():
    m = _model(2, 1, 1, seed=7)
    X = np.random.default_rng(8).normal(size=(5, 1))
    T, K = 5, 2
    logp = {}
    for path in itertools.product(range(K), repeat=T):
        lp = np.log(m.startprob_[path[0]]) + sum(np.log(m.transmat_[path[t - 1], path[t]]) for t in range(1, T))
        for t in range(1, T):
            k = path[t]
            lp += stats.norm(m.coefs_[k, 0, 0] * X[t - 1, 0] + m.intercepts_[k, 0],
                             np.sqrt(m.covars_[k, 0, 0])).logpdf(X[t, 0])
        logp[path] = lp
    paths = list(logp)
    prob = np.exp(np.array([logp[p] for p in paths]) - logsumexp(list(logp.values())))
    draws = m.posterior(X).sample(20000, random_state=0)
    index = {p: i for i, p in enumerate(paths)}
    counts = np.bincount([index[tuple(d)] for d in draws.astype(int)], minlength=len(paths))
    keep = prob * 20000 >= 5
    observed = np.r_[counts[keep], counts[~keep].sum()]
    expected = np.r_[prob[keep], prob[~keep].sum()] * 20000
    assert stats.chisquare(observed[expected > 0], expected[expected > 0]).pvalue > 1e-6
