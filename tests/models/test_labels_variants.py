"""Known states (``labels=``) for SemiMarkovHMM and InputDrivenHMM.

Exact answers come from brute-force enumeration of every state path on tiny
cases (for the semi-Markov model every path is one segmentation: its runs),
written here independently of the compiled kernels; joint draws are checked
against the enumerated distribution with a chi-square test.
"""

import itertools
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp

from probspace import InputDrivenHMM, SemiMarkovHMM

LENGTHS = np.array([3, 4])
LABELS = np.array([-1, 2, -1, 0, -1, -1, 1])  # two sequences: 3 and 4 frames


def _quiet(model, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kw)


def _bounds(lengths):
    ends = np.cumsum(lengths)
    return zip(ends - lengths, ends, strict=True)


def _consistent(paths, labels):
    return np.all((labels < 0) | (paths == labels), axis=1)


def _enumerate_hsmm(pi, A, pmf, logf, lengths, labels):
    """Per sequence: every path (its runs are the segments) and log p(x, z), -inf where the labels disagree."""
    K, D = pmf.shape
    surv = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]
    out = []
    for lo, hi in _bounds(lengths):
        paths = np.array(list(itertools.product(range(K), repeat=hi - lo)))
        lj = np.empty(len(paths))
        with np.errstate(divide="ignore"):
            for n, z in enumerate(paths):
                lp = np.log(pi[z[0]]) + logf[lo + np.arange(hi - lo), z].sum()
                cuts = [0] + [t for t in range(1, z.size) if z[t] != z[t - 1]] + [z.size]
                for a, b in zip(cuts[:-1], cuts[1:], strict=True):
                    d, k = b - a, z[a]
                    if d > D:
                        lp = -np.inf
                    elif b == z.size:  # the last segment is right-censored
                        lp += np.log(surv[k, d - 1])
                    else:
                        lp += np.log(pmf[k, d - 1]) + np.log(A[k, z[b]])
                lj[n] = lp
        out.append((paths, np.where(_consistent(paths, labels[lo:hi]), lj, -np.inf)))
    return out


def _enumerate_iohmm(pi, A_t, logf, lengths, labels):
    """Per sequence: every path and log p(x, z | y), -inf where the labels disagree."""
    K = pi.shape[0]
    out = []
    for lo, hi in _bounds(lengths):
        paths = np.array(list(itertools.product(range(K), repeat=hi - lo)))
        t = lo + np.arange(hi - lo)
        lj = np.log(pi)[paths[:, 0]] + logf[t, paths].sum(axis=1)
        lj += np.log(A_t[t[1:], paths[:, :-1], paths[:, 1:]]).sum(axis=1)
        out.append((paths, np.where(_consistent(paths, labels[lo:hi]), lj, -np.inf)))
    return out


def _answers(seqs, K):
    """Log-likelihoods, marginals, MAP path, log p(MAP | x) and entropy from the enumeration."""
    ll = np.array([logsumexp(lj) for _, lj in seqs])
    marg = []
    for paths, lj in seqs:
        w = np.exp(lj - logsumexp(lj))
        marg.append(np.stack([(w[:, None] * (paths == k)).sum(axis=0) for k in range(K)], axis=1))
    best = np.concatenate([paths[np.argmax(lj)] for paths, lj in seqs])
    best_lp = sum(lj.max() - logsumexp(lj) for _, lj in seqs)
    ent = 0.0
    for _, lj in seqs:
        lp = lj[np.isfinite(lj)] - logsumexp(lj)
        ent -= float((np.exp(lp) * lp).sum())
    return ll, np.concatenate(marg), best, best_lp, ent


def _hsmm(seed=0, K=3, D=3, n_features=1):
    """A SemiMarkovHMM fitted briefly, then given random positive chain parameters (sharper than a fit)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, n_features)) + np.repeat(np.arange(6) % K, 10)[:, None]
    model = _quiet(SemiMarkovHMM(K, max_duration=D, max_iter=3, random_state=0), X)
    model.startprob_ = rng.dirichlet(np.ones(K))
    A = rng.uniform(0.2, 1.0, (K, K)) * (1 - np.eye(K))
    model.transmat_ = A / A.sum(axis=1, keepdims=True)
    model.duration_pmf_ = rng.dirichlet(np.ones(D), size=K)
    return model


def _iohmm(seed=0, K=3, emission="gaussian"):
    """An InputDrivenHMM fitted briefly, then given random transition weights."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(60, 2))
    z = (np.arange(60) // 7) % K
    X = (rng.normal(size=(60, 1)) + z[:, None]) if emission == "gaussian" else \
        np.where(rng.random(60) < 0.8, z % 2, 1 - z % 2)[:, None].astype(float)
    model = _quiet(InputDrivenHMM(K, emission=emission, max_iter=3, random_state=0), X, y)
    model.startprob_ = rng.dirichlet(np.ones(K))
    model.transition_intercept_ = rng.normal(size=(K, K))
    model.transition_coef_ = rng.normal(size=(K, K, 2))
    return model


# -- 1. brute-force enumeration -------------------------------------------------------------------------
def _check_against_enumeration(model, post, seqs, X, call, labels):
    ll, marg, best, best_lp, ent = _answers(seqs, 3)
    assert np.allclose(model.log_likelihood(*call, lengths=LENGTHS, labels=labels), ll, atol=1e-8, rtol=0)
    assert model.score(*call, lengths=LENGTHS, labels=labels) == pytest.approx(ll.mean(), abs=1e-8)
    assert np.allclose(post.marginals, marg, atol=1e-8, rtol=0)
    known = labels >= 0
    others = np.ones(post.marginals.shape, dtype=bool)
    others[np.flatnonzero(known), labels[known]] = False
    assert np.all(post.marginals[np.flatnonzero(known)][others[known]] == 0.0)  # exactly: impossible states
    assert np.allclose(post.marginals[known, labels[known]], 1.0, atol=1e-14, rtol=0)
    assert np.array_equal(post.map(), best)
    assert np.array_equal(model.predict(*call, lengths=LENGTHS, labels=labels), best)
    assert post.log_prob(best) == pytest.approx(best_lp, abs=1e-8)
    assert float(post.entropy()) == pytest.approx(ent, abs=1e-8)


def test_semi_markov_labelled_answers_match_enumeration_of_segmentations():
    model = _hsmm()
    X = np.random.default_rng(1).normal(size=(7, 1)) + np.array([0, 1, 2, 0, 1, 1, 2])[:, None]
    post = model.posterior(X, lengths=LENGTHS, labels=LABELS)
    seqs = _enumerate_hsmm(model.startprob_, model.transmat_, model.duration_pmf_, model._log_frameprob(X),
                           LENGTHS, LABELS)
    _check_against_enumeration(model, post, seqs, X, (X,), LABELS)
    # a label that makes a run longer than max_duration rules that segmentation out (3 frames of state 0 at most)
    long_run = np.array([0, 0, 0, 0, 0, 0, -1])
    assert model.log_likelihood(X, labels=long_run)[0] == -np.inf
    with pytest.raises(ValueError, match="zero probability"):
        model.posterior(X, labels=long_run)


@pytest.mark.parametrize("emission", ["gaussian", "glm"])
def test_input_driven_labelled_answers_match_enumeration_of_paths(emission):
    model = _iohmm(emission=emission)
    rng = np.random.default_rng(2)
    y = rng.normal(size=(7, 2))
    X = (rng.normal(size=(7, 1)) + 1.0) if emission == "gaussian" else rng.integers(0, 2, (7, 1)).astype(float)
    post = model.posterior(X, y, lengths=LENGTHS, labels=LABELS)
    seqs = _enumerate_iohmm(model.startprob_, model.transition_matrices(y), model._frames(X, y), LENGTHS, LABELS)
    _check_against_enumeration(model, post, seqs, X, (X, y), LABELS)


def test_semi_markov_gibbs_posterior_with_labels_is_the_mixture_over_draws():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(4.0 * (i % 2), 1.0, (6, 1)) for i in range(8)])
    labels = -np.ones(48, dtype=int)
    labels[[0, 12, 24]] = 1  # the low regime is state 1
    model = _quiet(SemiMarkovHMM(2, max_duration=8, sampler="gibbs", n_chains=2, n_draws=6, n_warmup=10,
                                 random_state=0), X, labels=labels)
    assert model.means_[1, 0] < model.means_[0, 0]  # named by the labels: no relabelling of the draws
    assert np.all(model.draws_["means"][:, :, 1, 0] < model.draws_["means"][:, :, 0, 0])
    Xs, lab = X[:5], np.array([-1, 1, -1, -1, -1])
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in model.draws_.items()}
    per = []
    for s in range(12):
        logf = model._emission().log_frames(Xs, {k: flat[k][s] for k in ("means", "covars")})
        (_, lj), = _enumerate_hsmm(flat["startprob"][s], flat["transmat"][s], flat["duration_pmf"][s], logf,
                                   np.array([5]), lab)
        per.append(logsumexp(lj))
    expect = logsumexp(per) - np.log(12)
    assert model.log_likelihood(Xs, labels=lab)[0] == pytest.approx(expect, abs=1e-8)
    draws = model.posterior(Xs, labels=lab).sample(50, random_state=0)
    assert np.all(draws[:, 1] == 1)
    data = model.to_arviz(Xs, n_samples=6, labels=lab, random_state=0)  # all 6 kept draws of both chains
    assert np.all(data["latent_posterior"]["path"].values[..., 1] == 1)
    pointwise = data.log_likelihood["x"].values  # per draw, terms of log p(x, known states | draw)
    assert np.allclose(pointwise.sum(axis=-1).ravel(), per, atol=1e-8, rtol=0)


# -- 2. joint draws --------------------------------------------------------------------------------------
def _chi_square(draws, paths, lj, K):
    """Chi-square p-value of whole-path draws against the enumerated path probabilities (bins with >= 5 expected)."""
    probs = np.exp(lj - logsumexp(lj))
    code_of = {tuple(p): i for i, p in enumerate(paths)}
    counts = np.bincount([code_of[tuple(d)] for d in draws], minlength=len(paths))
    expected = probs * len(draws)
    keep = expected >= 5
    if counts[probs == 0].any():  # a draw of an impossible path (against the labels, or too long a run)
        return 0.0
    rest = np.array([counts[~keep].sum()])
    obs = np.concatenate([counts[keep], rest])
    exp = np.concatenate([expected[keep], [expected[~keep].sum()]])
    if exp[-1] < 5:  # too little mass left for its own bin
        obs, exp = obs[:-1], exp[:-1] * obs[:-1].sum() / exp[:-1].sum()
    return stats.chisquare(obs, exp).pvalue


def _independent_draws(marginals, n, rng):
    """A wrong sampler: every frame from its own marginal, independently (right marginals, wrong joint)."""
    cum = np.cumsum(marginals, axis=1)
    u = rng.random((n, marginals.shape[0], 1))
    return (u > cum[None]).sum(axis=2).clip(0, marginals.shape[1] - 1)


@pytest.mark.parametrize("family", ["semi_markov", "input_driven"])
def test_labelled_joint_draws_pass_chi_square_and_independent_draws_fail(family):
    rng = np.random.default_rng(4)
    T, labels, lengths = 6, np.array([-1, -1, 1, -1, -1, -1]), np.array([6])
    if family == "semi_markov":
        model = _hsmm(seed=5, K=2, D=3)
        X = 0.3 * rng.normal(size=(T, 1)) + 0.5  # overlapping states: many paths with mass
        post = model.posterior(X, labels=labels)
        (paths, lj), = _enumerate_hsmm(model.startprob_, model.transmat_, model.duration_pmf_,
                                       model._log_frameprob(X), lengths, labels)
    else:
        model = _iohmm(seed=5, K=2)
        X, y = 0.3 * rng.normal(size=(T, 1)) + 0.5, rng.normal(size=(T, 2))
        post = model.posterior(X, y, labels=labels)
        (paths, lj), = _enumerate_iohmm(model.startprob_, model.transition_matrices(y), model._frames(X, y),
                                        lengths, labels)
    n = 40000
    draws = post.sample(n, random_state=0).astype(np.int64)
    assert np.all(draws[:, 2] == 1)
    assert _chi_square(draws, paths, lj, 2) > 1e-3
    wrong = _independent_draws(post.marginals, n, np.random.default_rng(0))
    assert np.all(wrong[:, 2] == 1)
    assert _chi_square(wrong, paths, lj, 2) < 1e-6


# -- 3. labels all unknown, semi-supervised EM ----------------------------------------------------------
def test_all_unknown_labels_equal_the_unlabelled_answers_bit_for_bit():
    rng = np.random.default_rng(6)
    X = np.concatenate([rng.normal(4.0 * (i % 2), 1.0, (6, 1)) for i in range(8)])
    y = rng.normal(size=(48, 1))
    none = -np.ones(48, dtype=int)
    for cls, args, kw in ((SemiMarkovHMM, (X,), {"max_duration": 8}), (InputDrivenHMM, (X, y), {})):
        a = _quiet(cls(2, max_iter=10, random_state=0, **kw), *args)
        b = _quiet(cls(2, max_iter=10, random_state=0, **kw), *args, labels=none)
        assert np.array_equal(a.history_, b.history_)
        for name, value in a._get_parameters().items():
            assert np.array_equal(value, b._get_parameters()[name]), name
        assert np.array_equal(a.posterior(*args).marginals, a.posterior(*args, labels=none).marginals)
        assert np.array_equal(a.log_likelihood(*args), a.log_likelihood(*args, labels=none))
        assert np.array_equal(a.predict(*args), a.predict(*args, labels=none))
        assert a.score(*args) == a.score(*args, labels=none)
    g = [_quiet(SemiMarkovHMM(2, max_duration=8, sampler="gibbs", n_chains=1, n_draws=5, n_warmup=5,
                              random_state=0), X, labels=lab) for lab in (None, none)]
    for name in g[0].draws_:
        assert np.array_equal(g[0].draws_[name], g[1].draws_[name]), name


@pytest.mark.parametrize("family", ["semi_markov", "input_driven"])
def test_semi_supervised_em_is_monotone_and_names_the_states_by_their_labels(family):
    rng = np.random.default_rng(7)
    z = np.repeat(np.arange(9) % 3, 12)  # regimes 0, 5, 10 in turn
    X = rng.normal(size=(108, 1)) + 5.0 * z[:, None]
    labels = -np.ones(108, dtype=int)
    labels[[0, 36, 72]] = 2  # the low regime is state 2
    labels[[12, 48, 84]] = 0  # the middle one state 0
    labels[[24, 60, 96]] = 1  # the high one state 1
    if family == "semi_markov":
        args, model = (X,), SemiMarkovHMM(3, max_duration=20, max_iter=200, tol=1e-8, random_state=0)
    else:
        args, model = (X, rng.normal(size=(108, 1))), InputDrivenHMM(3, max_iter=200, tol=1e-8, random_state=0)
    model = _quiet(model, *args, labels=labels)
    # total gains (history_ is per frame); the IOHMM's L-BFGS M-step is monotone to its own tolerance
    assert (np.diff(model.history_) * 108).min() > -1e-6, "semi-supervised EM must not decrease its objective"
    assert model.n_iter_ > 3
    assert np.allclose(model.means_[:, 0], [5.0, 10.0, 0.0], atol=0.6)
    path = model.predict(*args, labels=labels)
    assert np.array_equal(path[labels >= 0], labels[labels >= 0])
    assert np.mean(path == np.array([2, 0, 1])[z]) > 0.95
    unlabelled = model.log_likelihood(*args)[0]
    assert model.log_likelihood(*args, labels=labels)[0] <= unlabelled + 1e-9  # p(x, known z) <= p(x)


# -- 4. ArviZ, bad input ----------------------------------------------------------------------------------
def test_to_arviz_with_labels_keeps_them():
    model = _hsmm()
    X = np.random.default_rng(8).normal(size=(7, 1)) + 1.0
    data = model.to_arviz(X, n_samples=20, lengths=LENGTHS, labels=LABELS, random_state=0)
    path = data["latent_posterior"]["path"].values
    known = LABELS >= 0
    assert np.all(path[..., known] == LABELS[known])
    assert np.array_equal(data.constant_data["labels"].values, LABELS)
    assert np.allclose(data.constant_data["state_marginals"].values,
                       model.posterior(X, lengths=LENGTHS, labels=LABELS).marginals)
    io = _iohmm()
    y = np.random.default_rng(9).normal(size=(7, 2))
    data = io.to_arviz(X, y=y, n_samples=20, lengths=LENGTHS, labels=LABELS, random_state=0)
    assert np.all(data["latent_posterior"]["path"].values[..., known] == LABELS[known])
    assert np.array_equal(data.constant_data["labels"].values, LABELS)


@pytest.mark.parametrize("labels, match", [
    (np.full(48, 2), "must lie in \\[-1, 1\\]"),
    (np.full(48, -2), "must lie in \\[-1, 1\\]"),
    (np.zeros(10, dtype=int), "one entry per frame"),
    (np.zeros((48, 1), dtype=int), "one entry per frame"),
    (np.full(48, 0.5), "must be integers"),
    (np.array(["a"] * 48), "must be integers"),
])
@pytest.mark.parametrize("cls", [SemiMarkovHMM, InputDrivenHMM])
def test_bad_labels_are_value_errors_naming_labels(cls, labels, match):
    rng = np.random.default_rng(10)
    X = np.concatenate([rng.normal(4.0 * (i % 2), 1.0, (6, 1)) for i in range(8)])
    args = (X,) if cls is SemiMarkovHMM else (X, rng.normal(size=(48, 1)))
    kw = {"max_duration": 8} if cls is SemiMarkovHMM else {}
    match = f"labels passed to {cls.__name__} .*{match}"
    with pytest.raises(ValueError, match=match):
        cls(2, max_iter=2, random_state=0, **kw).fit(*args, labels=labels)
    model = _quiet(cls(2, max_iter=2, random_state=0, **kw), *args)
    for call in (model.posterior, model.log_likelihood, model.predict, model.score):
        with pytest.raises(ValueError, match=match):
            call(*args, labels=labels)
    with pytest.raises(ValueError, match=match):
        model.to_arviz(X, y=args[1] if len(args) > 1 else None, n_samples=2, labels=labels)
