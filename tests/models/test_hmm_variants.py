"""HMM variants: held parameters and structural zeros, known-state labels, weights, streaming filtering.

Exact answers come from brute-force enumeration of every state path on tiny
cases, from duplicated data (integer weights) and from the batch
forward-backward (streaming).
"""

import copy
import functools
import itertools
import warnings

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.exceptions import NotFittedError

import probspace
from probspace import GMMHMM, HMM, BernoulliHMM, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM
from probspace.emissions import GaussianEmission
from probspace.inference import _hmm
from probspace.models._gmm import weighted_mixture_em


def _three_regimes(seed=0, n=(40, 30, 40), D=1):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(mu, 1.0, (k, D)) for mu, k in zip((0.0, 5.0, 10.0), n, strict=True)])


def _quiet(model, *args, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(*args, **kw)


# -- 1. held parameters, structural zeros, topologies -------------------------------------------------
def test_held_entries_are_unchanged_to_the_bit_and_em_stays_monotone():
    X = _three_regimes()
    A = np.full((3, 3), np.nan)
    A[0] = [0.9, 0.1 / 3, np.nan]  # a partly held row: the free entry takes the rest
    A[2, 0] = 0.0  # a structural zero
    means = np.array([[0.1], [np.nan], [9.7]])
    model = _quiet(GaussianHMM(3, fixed={"transmat": A, "means": means}, max_iter=200, tol=1e-6, random_state=0), X)
    held = ~np.isnan(A)
    assert np.array_equal(model.transmat_[held], A[held])  # bit for bit
    assert model.transmat_[2, 0] == 0.0
    assert model.means_[0, 0] == 0.1 and model.means_[2, 0] == 9.7
    assert model.transmat_[0, 2] == pytest.approx(1 - 0.9 - 0.1 / 3, abs=1e-15)
    assert np.allclose(model.transmat_.sum(axis=1), 1.0)
    assert np.all(np.diff(model.history_) >= -1e-10), "EM with held entries must not decrease the likelihood"


@pytest.mark.parametrize("model, name, value", [
    (CategoricalHMM(2, random_state=0), "emissionprob", [[0.0, np.nan, np.nan, np.nan], [np.nan] * 4]),
    (PoissonHMM(2, random_state=0), "lambdas", [[np.nan, 3.0], [np.nan, np.nan]]),
    (BernoulliHMM(2, random_state=0), "probs", [[np.nan, 0.25, np.nan], [np.nan] * 3]),
    (HMM(2, emission="gmm", emission_params={"n_mix": 2}, random_state=0), "weights", [[0.5, 0.5], [np.nan] * 2]),
    (GaussianHMM(2, covariance_type="full", min_covar=1e-12, random_state=0), "covars", [[[1.0, 0.2], [0.2, 2.0]],
                                                                       [[np.nan] * 2] * 2]),
])
def test_every_family_holds_emission_entries(model, name, value):
    X, lengths = type(model)._conformance_data(np.random.default_rng(1)) if not isinstance(model, HMM) else \
        model._conformance_data(np.random.default_rng(1))
    if isinstance(model, BernoulliHMM):
        X = np.c_[X, X[:, :1]][:, :3]
    model.set_params(fixed={name: np.array(value)}, max_iter=30, tol=1e-8)
    _quiet(model, X, lengths=lengths)
    value = np.array(value)
    got = model._emission_point()[name]
    held = ~np.isnan(value)
    assert np.array_equal(got[held], value[held])
    assert np.all(np.diff(model.history_) >= -1e-10)
    if name in ("emissionprob", "weights"):
        assert np.allclose(got.sum(axis=-1), 1.0)


def test_left_to_right_and_banded_topologies_keep_exact_zeros_where_hmmlearn_leaks():
    from hmmlearn import hmm

    X = _three_regimes()
    model = _quiet(GaussianHMM(3, topology="left-to-right", transmat_prior=2.0, random_state=0), X)
    assert np.array_equal(model.startprob_, [1.0, 0.0, 0.0])
    assert np.all(np.tril(model.transmat_, -1) == 0.0)
    banded = _quiet(CategoricalHMM(4, topology="banded", bandwidth=1, transmat_prior=2.0, random_state=0),
                    np.random.default_rng(0).integers(0, 3, (200, 1)))
    i, j = np.indices((4, 4))
    assert np.all(banded.transmat_[np.abs(i - j) > 1] == 0.0)
    bakis = _quiet(GaussianHMM(3, topology="left-to-right", bandwidth=1, random_state=0), X)
    assert bakis.transmat_[0, 2] == 0.0
    # hmmlearn keeps zeros of startprob_/transmat_ (np.where(old == 0, 0, new)) but not of emissionprob_: with
    # emissionprob_prior > 1 a zero symbol probability leaks back; a held zero here stays exactly 0.
    Xs = np.random.default_rng(0).integers(0, 3, (200, 1))
    B = np.array([[0.0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    ref = hmm.CategoricalHMM(2, emissionprob_prior=2.0, init_params="st", n_iter=5, random_state=0)
    ref.emissionprob_ = B
    ref.fit(Xs)
    assert ref.emissionprob_[0, 0] > 0
    ours = _quiet(CategoricalHMM(2, emissionprob_prior=2.0, fixed={"emissionprob": [[0.0] + [np.nan] * 2,
                                                                                 [np.nan] * 3]}, random_state=0), Xs)
    assert ours.emissionprob_[0, 0] == 0.0


def test_gibbs_keeps_structural_zeros_and_held_arrays_in_every_draw():
    X = _three_regimes(n=(20, 15, 20))
    means = np.array([[0.0], [5.0], [10.0]])
    model = _quiet(GaussianHMM(3, topology="left-to-right", fixed={"means": means}, sampler="gibbs", n_chains=2,
                               n_draws=40, n_warmup=20, random_state=0), X)
    A = model.draws_["transmat"]
    assert np.all(A[..., 1, 0] == 0) and np.all(A[..., 2, :2] == 0)
    assert np.all(model.draws_["startprob"][..., 1:] == 0)
    assert np.all(model.draws_["means"] == means)
    assert np.allclose(A.sum(axis=-1), 1.0)


def test_constraints_survive_save_and_load(tmp_path):
    X = _three_regimes()
    A = np.full((3, 3), np.nan)
    A[1, 1] = 0.8
    model = _quiet(GaussianHMM(3, topology="banded", bandwidth=1, fixed={"transmat": A}, random_state=0), X)
    model.save(tmp_path / "m.psp")
    back = probspace.load(tmp_path / "m.psp")
    assert back.topology == "banded" and back.bandwidth == 1
    assert np.array_equal(back.fixed["transmat"], A, equal_nan=True)
    assert np.array_equal(back.transmat_, model.transmat_)
    refit = _quiet(back, X)
    assert refit.transmat_[1, 1] == 0.8 and refit.transmat_[0, 2] == 0.0


@pytest.mark.parametrize("params, match", [
    (dict(fixed={"transmat": np.ones((2, 2))}), "must have shape \\(3, 3\\)"),
    (dict(fixed={"nope": np.ones(3)}), "names 'nope'"),
    (dict(fixed={"startprob": [0.5, 0.7, np.nan]}), "sum to 1.2 > 1"),
    (dict(fixed={"startprob": [0.5, 0.2, 0.2]}), "fully held probability row must sum to 1"),
    (dict(fixed={"startprob": [1.5, np.nan, np.nan]}), "must lie in \\[0, 1\\]"),
    (dict(fixed={"covars": [[-1.0], [np.nan], [np.nan]]}), "must be positive"),
    (dict(fixed={"means": [[np.inf], [0.0], [1.0]]}), "must be finite"),
    (dict(fixed=[1, 2]), "must be None or an instance of dict"),
    (dict(topology="circular"), "topology of GaussianHMM must be one of"),
    (dict(topology="banded", bandwidth=-1), "bandwidth"),
    (dict(bandwidth=1), "applies to topology"),
    (dict(topology="left-to-right", fixed={"transmat": [[np.nan] * 3, [0.5, np.nan, np.nan], [np.nan] * 3]}),
     "forbids"),
    (dict(topology="left-to-right", fixed={"startprob": [0.5, 0.5, 0.0]}), "starts in state 0"),
    (dict(covariance_type="full", fixed={"means": [[0.0, np.nan], [np.nan] * 2, [np.nan] * 2]}),
     "all entries of a state or none"),
    (dict(bayesian=True, topology="left-to-right"), "bayesian=True"),
    (dict(sampler="gibbs", covariance_type="full", fixed={"means": [[0.0, np.nan], [np.nan] * 2, [np.nan] * 2]}),
     "all entries of a state or none"),
])
def test_bad_constraints_are_value_errors(params, match):
    X = _three_regimes(D=2 if params.get("covariance_type") == "full" else 1)
    with pytest.raises(ValueError, match=match):
        _quiet(GaussianHMM(3, random_state=0, **params), X)


# -- 2. known-state labels: brute force on tiny cases ----------------------------------------------------
def _enumerate(startprob, transmat, logf, lengths, labels):
    """Every path of every sequence: log p(x, z) with paths inconsistent with the labels at -inf."""
    out = []
    for lo, hi in zip(np.r_[0, np.cumsum(lengths)][:-1], np.cumsum(lengths), strict=True):
        K = startprob.shape[0]
        paths = np.array(list(itertools.product(range(K), repeat=hi - lo)))
        with np.errstate(divide="ignore"):
            lj = np.log(startprob)[paths[:, 0]] + logf[lo + np.arange(hi - lo), paths].sum(axis=1)
            lj += np.log(transmat)[paths[:, :-1], paths[:, 1:]].sum(axis=1)
        lab = labels[lo:hi]
        ok = np.all((lab < 0) | (paths == lab), axis=1)
        out.append((paths, np.where(ok, lj, -np.inf)))
    return out


@pytest.mark.parametrize("family", [GaussianHMM, PoissonHMM, CategoricalHMM])
def test_labelled_posterior_matches_enumeration(family):
    X, lengths = family._conformance_data(np.random.default_rng(3))
    model = _quiet(family(3, random_state=0, max_iter=20), X, lengths=lengths)
    X, lengths = X[:9], np.array([5, 4])
    labels = np.array([-1, 2, -1, -1, 0, -1, -1, 1, -1])
    post = model.posterior(X, lengths=lengths, labels=labels)
    seqs = _enumerate(model.startprob_, model.transmat_, model._log_frameprob(X), lengths, labels)
    ll = np.array([logsumexp(lj) for _, lj in seqs])
    assert np.allclose(model.log_likelihood(X, lengths=lengths, labels=labels), ll, atol=1e-8, rtol=0)
    marginals = []
    for paths, lj in seqs:
        w = np.exp(lj - logsumexp(lj))
        marginals.append(np.stack([(w[:, None] * (paths == k)).sum(axis=0) for k in range(3)], axis=1))
    assert np.allclose(post.marginals, np.concatenate(marginals), atol=1e-8, rtol=0)
    viterbi = np.concatenate([paths[np.argmax(lj)] for paths, lj in seqs])
    assert np.array_equal(post.map(), viterbi)
    assert np.array_equal(model.predict(X, lengths=lengths, labels=labels), viterbi)
    some = np.concatenate([paths[np.argsort(lj)[-1]] for paths, lj in seqs])
    expect = sum(lj.max() - logsumexp(lj) for _, lj in seqs)
    assert post.log_prob(some) == pytest.approx(expect, abs=1e-8)
    assert np.allclose(post.marginals[labels >= 0, labels[labels >= 0]], 1.0, atol=1e-14, rtol=0)


def test_labelled_joint_draws_pass_chi_square_against_enumeration():
    X, lengths = GaussianHMM._conformance_data(np.random.default_rng(5))
    model = _quiet(GaussianHMM(2, random_state=0, max_iter=20), X, lengths=lengths)
    X = X[:6] * 0.3  # overlapping states: many paths with mass
    labels = np.array([-1, -1, 1, -1, -1, -1])
    (paths, lj), = _enumerate(model.startprob_, model.transmat_, model._log_frameprob(X), [6], labels)
    probs = np.exp(lj - logsumexp(lj))
    n = 40000
    draws = model.posterior(X, labels=labels).sample(n, random_state=0).astype(np.int64)
    assert np.all(draws[:, 2] == 1)
    code = draws @ (2 ** np.arange(5, -1, -1))
    counts = np.bincount(code, minlength=64)
    expected = probs * n
    keep = expected > 5
    assert counts[~keep].sum() <= max(5 * expected[~keep].sum(), 30)
    stat = stats.chisquare(counts[keep], expected[keep] * counts[keep].sum() / expected[keep].sum())
    assert stat.pvalue > 1e-6


def test_fully_labelled_em_is_the_supervised_estimate():
    X = _three_regimes()
    labels = np.repeat([0, 1, 2], [40, 30, 40])
    model = _quiet(GaussianHMM(3, random_state=0, min_covar=1e-12, covars_prior=0.0, covars_weight=0.0),
                   X, labels=labels)
    for k in range(3):
        assert model.means_[k, 0] == pytest.approx(X[labels == k, 0].mean(), abs=1e-8)
    counts = np.zeros((3, 3))
    np.add.at(counts, (labels[:-1], labels[1:]), 1)
    expect = counts / counts.sum(axis=1, keepdims=True)
    assert np.allclose(model.transmat_, np.where(np.isnan(expect), model.transmat_, expect), atol=1e-8)
    assert np.array_equal(model.startprob_, [1.0, 0.0, 0.0])


def test_semi_supervised_em_and_gibbs_name_the_states_by_their_labels():
    X = _three_regimes() * 1.6  # regimes 0, 8 and 16
    labels = -np.ones(110, dtype=int)
    labels[[0, 10, 20, 45, 50, 55, 90, 100, 105]] = [2, 2, 2, 0, 0, 0, 1, 1, 1]  # 2: low regime, 0: middle, 1: high
    em = _quiet(GaussianHMM(3, random_state=1), X, labels=labels)  # (seed 0 stops in a poor local optimum)
    assert np.allclose(em.means_[:, 0], [8, 16, 0], atol=0.8)
    assert np.all(np.diff(em.history_) >= -1e-10)
    gibbs = _quiet(GaussianHMM(3, sampler="gibbs", n_chains=2, n_draws=40, n_warmup=30, random_state=0), X,
                   labels=labels)
    assert np.allclose(gibbs.means_[:, 0], [8, 16, 0], atol=0.8)
    post = gibbs.posterior(X, labels=labels)
    assert np.all(post.sample(20, random_state=1)[:, labels >= 0] == labels[labels >= 0])


@pytest.mark.parametrize("labels, match", [
    (np.full(110, 3), "must lie in \\[-1, 2\\]"),
    (np.full(110, -2), "must lie in \\[-1, 2\\]"),
    (np.zeros(10, dtype=int), "one entry per frame"),
    (np.full(110, 0.5), "must be integers"),
])
def test_bad_labels_are_value_errors(labels, match):
    X = _three_regimes()
    with pytest.raises(ValueError, match=match):
        _quiet(GaussianHMM(3, random_state=0), X, labels=labels)
    model = _quiet(GaussianHMM(3, random_state=0), X)
    for call in (model.posterior, model.log_likelihood, model.predict):
        with pytest.raises(ValueError, match=match):
            call(X, labels=labels)


def test_labels_and_weights_are_rejected_where_the_fit_cannot_use_them():
    X = _three_regimes()
    with pytest.raises(ValueError, match="HMM\\(emission='gmm'\\)"):
        GMMHMM(2).fit(X, labels=np.zeros(110, dtype=int))
    with pytest.raises(ValueError, match="applies to EM fits"):
        GaussianHMM(2, sampler="gibbs").fit(X, sequence_weight=[1.0])
    with pytest.raises(ValueError, match="sampler='gibbs'"):
        GaussianHMM(2, sampler="nuts").fit(X, labels=np.zeros(110, dtype=int))


# -- 3. weights -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("family", [GaussianHMM, CategoricalHMM, PoissonHMM, BernoulliHMM])
def test_integer_sequence_weights_equal_duplicated_sequences(family):
    X, lengths = family._conformance_data(np.random.default_rng(2))
    if family is BernoulliHMM:
        X = X[:, :2]
    start = _quiet(family(2, random_state=0, max_iter=3), X, lengths=lengths)
    w = np.array([3, 1])
    seqs = np.split(X, np.cumsum(lengths)[:-1])
    Xd = np.concatenate([s for s, k in zip(seqs, w, strict=True) for _ in range(k)])
    Ld = np.repeat(lengths, w)
    fits = []
    for data, lens, weight in ((X, lengths, w.astype(float)), (Xd, Ld, None)):
        model = copy.deepcopy(start)
        model._fit_weight = weight
        model.set_params(tol=-1.0)
        model._em_loop(data, lens, 6, "test")
        fits.append(model)
    for name, value in fits[0]._point().items():
        assert np.allclose(value, fits[1]._point()[name], atol=1e-8, rtol=0), name
    assert np.allclose(fits[0].history_, fits[1].history_, atol=1e-10)
    assert start.score(X, lengths=lengths, sequence_weight=w) == pytest.approx(
        start.log_likelihood(Xd, lengths=Ld).mean(), abs=1e-9)


def test_weighted_hmm_fit_is_monotone_and_zero_weight_drops_a_sequence():
    X = _three_regimes()
    lengths = np.array([60, 50])
    model = _quiet(GaussianHMM(3, random_state=0, tol=1e-8), X, lengths=lengths, sequence_weight=[2.0, 0.5])
    assert np.all(np.diff(model.history_) >= -1e-10)
    model = _quiet(HMM(2, random_state=0), X, lengths=lengths, sequence_weight=[1.0, 0.0])
    assert np.all(model.means_[:, 0] < 7)  # the second sequence (mostly the high regime) is ignored


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_weighted_mixture_em_equals_duplicated_observations(covariance_type):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (30, 2)), rng.normal(4, 1, (20, 2))]
    w = rng.integers(0, 4, 50)
    start = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    params = {"weights": start.weights_, "means": start.means_, "covariances": start.covariances_}
    em = GaussianEmission(covariance_type, "covariances", min_covar=1e-6)
    p1, t1, _ = weighted_mixture_em(em, X, w.astype(float), params, 8, -1.0)
    p2, t2, _ = weighted_mixture_em(em, np.repeat(X, w, axis=0), np.ones(w.sum()), params, 8, -1.0)
    for k in p1:
        assert np.allclose(p1[k], p2[k], atol=1e-8, rtol=0)
    assert np.allclose(t1, t2, atol=1e-10) and np.all(np.diff(t1) >= -1e-12)
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X, sample_weight=w)
    assert model.score(X, sample_weight=w) == pytest.approx(model.log_likelihood(np.repeat(X, w, axis=0)).mean())
    assert np.allclose(model.predict_proba(X).sum(axis=1), 1.0)


@pytest.mark.parametrize("weight, match", [
    ([1.0, -1.0], "non-negative"), ([1.0, np.nan], "finite"), ([1.0], "one entry per"), ([0.0, 0.0], "all zero"),
    (["a", "b"], "must be numbers"),
])
def test_bad_weights_are_value_errors(weight, match):
    X = _three_regimes()
    with pytest.raises(ValueError, match=match):
        GaussianHMM(2).fit(X, lengths=[60, 50], sequence_weight=weight)
    Xm = X[:2]
    with pytest.raises(ValueError, match=match):
        GaussianMixture(1).fit(Xm, sample_weight=weight)
    with pytest.raises(ValueError, match="EM fits"):
        GaussianMixture(1, bayesian=True).fit(X, sample_weight=np.ones(110))


# -- 4. streaming filter ----------------------------------------------------------------------------------
STREAM = [GaussianHMM(3, covariance_type="full"), CategoricalHMM(3), PoissonHMM(3), BernoulliHMM(3),
          HMM(3, emission="gmm", emission_params={"n_mix": 2}), GMMHMM(2, n_mix=2)]


@pytest.mark.parametrize("model", STREAM, ids=lambda m: f"{type(m).__name__}-{getattr(m, 'emission', '')}")
def test_streaming_filter_equals_the_batch_filter_and_smoother(model):
    X, lengths = model._conformance_data(np.random.default_rng(0))
    model = _quiet(model.set_params(random_state=0, max_iter=10), X, lengths=lengths)
    X = X[:40].astype(float)
    X[7] = np.nan  # a missing frame follows the dynamics alone
    fb = _hmm.forward_backward(model.startprob_, model.transmat_, model._log_frameprob(X))
    lag = 3
    f = model.filter(lag=lag)
    for t, x in enumerate(X):
        step = f.update(x)
        assert np.allclose(step.filtered, fb.filtered[t], atol=1e-10, rtol=0)
        assert np.allclose(step.predictive, fb.filtered[t] @ model.transmat_, atol=1e-10, rtol=0)
        assert step.log_predictive == pytest.approx(fb.log_predictive[t], abs=1e-10)
        if t >= lag:
            prefix = _hmm.forward_backward(model.startprob_, model.transmat_, model._log_frameprob(X[:t + 1]))
            assert np.allclose(step.smoothed, prefix.marginals[t - lag], atol=1e-10, rtol=0)
        else:
            assert step.smoothed is None
    assert f.log_likelihood == pytest.approx(model.log_likelihood(X)[0], abs=1e-9)
    assert f.n_frames == 40


def test_streaming_filter_labels_reset_and_bad_input():
    X = _three_regimes()
    model = _quiet(GaussianHMM(3, random_state=0), X)
    labels = -np.ones(110, dtype=int)
    labels[50] = 2
    batch = model.posterior(X, labels=labels).filtered
    f = model.filter(lag=0)
    steps = [f.update(x, label=lab) for x, lab in zip(X, labels, strict=True)]
    assert np.allclose(np.array([s.filtered for s in steps]), batch, atol=1e-10)
    assert np.allclose(steps[-1].smoothed, steps[-1].filtered)
    f.reset()
    assert f.n_frames == 0 and f.log_likelihood == 0.0
    assert np.allclose(f.update(X[0]).filtered, model.posterior(X[:1]).filtered[0])
    with pytest.raises(ValueError, match="one frame of shape \\(1,\\)"):
        f.update(X[:2])
    with pytest.raises(ValueError, match="label"):
        f.update(X[0], label=5)
    with pytest.raises(ValueError, match="lag"):
        model.filter(lag=-1)
    with pytest.raises(NotFittedError):
        GaussianHMM(2).filter()
    with pytest.raises(ValueError):
        f.update([np.inf])


def test_arviz_output_of_a_constrained_labelled_fit():
    az = pytest.importorskip("arviz")
    X = _three_regimes(n=(15, 10, 15))
    labels = -np.ones(40, dtype=int)
    labels[0] = 0
    model = _quiet(GaussianHMM(3, topology="left-to-right", sampler="gibbs", n_chains=2, n_draws=30, n_warmup=20,
                               random_state=0), X, labels=labels)
    idata = model.to_arviz(X, n_samples=20, random_state=0)
    summary = az.summary(idata, var_names=["means"])
    assert summary.shape[0] == 3
    assert np.all(idata.posterior["transmat"].values[..., 1, 0] == 0)


def test_constraints_and_labels_with_missing_values():
    X = _three_regimes(D=2)
    X[5, 0] = np.nan  # a partly missing row (diagonal covariances fit it)
    X[60] = np.nan  # a whole missing frame
    labels = -np.ones(110, dtype=int)
    labels[[1, 100]] = [0, 2]
    model = _quiet(GaussianHMM(3, topology="left-to-right", random_state=0), X, labels=labels)
    assert np.all(np.tril(model.transmat_, -1) == 0.0) and model.startprob_[0] == 1.0
    assert np.all(np.diff(model.history_) >= -1e-10)
    post = model.posterior(X, labels=labels)
    assert post.marginals[100, 2] == pytest.approx(1.0) and np.all(np.isfinite(post.marginals))


def test_gibbs_draws_free_transition_entries_given_held_ones():
    X = _three_regimes(n=(20, 15, 20))
    A = np.full((3, 3), np.nan)
    A[0, 0], A[1, 2] = 0.9, 0.0
    model = _quiet(GaussianHMM(3, fixed={"transmat": A}, sampler="gibbs", n_chains=2, n_draws=40, n_warmup=20,
                               random_state=0), X)
    draws = model.draws_["transmat"]
    assert np.all(draws[..., 0, 0] == 0.9) and np.all(draws[..., 1, 2] == 0.0)
    assert np.allclose(draws.sum(axis=-1), 1.0)
    assert np.std(draws[..., 0, 1]) > 0  # the free entries of a partly held row are drawn


def test_gibbs_free_entries_of_held_rows_follow_their_exact_dirichlet_conditional():
    # Every frame labelled and the emissions held: the paths are known, so each transition-row draw comes
    # from its exact conditional, the free entries sharing the mass left as Dirichlet(alpha + counts).
    rng = np.random.default_rng(0)
    z = np.repeat([0, 2, 1, 2, 0, 1, 1, 2, 0, 0, 2], rng.integers(2, 6, 11))  # never 1 -> 0
    X = np.array([[0.0], [5.0], [10.0]])[z] + rng.normal(size=(z.size, 1))
    A = np.full((3, 3), np.nan)
    A[0, 0], A[1, 0] = 0.5, 0.0
    model = _quiet(GaussianHMM(3, fixed={"transmat": A, "means": [[0.0], [5.0], [10.0]], "covars": [[1.0]] * 3},
                               sampler="gibbs", n_chains=2, n_draws=1000, n_warmup=10, random_state=0), X, labels=z)
    alpha = np.broadcast_to(model.prior_["transmat"], (3, 3))
    counts = np.zeros((3, 3))
    np.add.at(counts, (z[:-1], z[1:]), 1)
    draws = model.draws_["transmat"].reshape(-1, 3, 3)
    for row, free, mass in ((0, [1, 2], 0.5), (1, [1, 2], 1.0), (2, [0, 1, 2], 1.0)):
        a = alpha[row, free] + counts[row, free]
        mean = mass * a / a.sum()
        sd = mass * np.sqrt(a * (a.sum() - a) / (a.sum() ** 2 * (a.sum() + 1)))
        z_score = (draws[:, row, free].mean(axis=0) - mean) / (sd / np.sqrt(draws.shape[0]))
        assert np.all(np.abs(z_score) < 5), (row, z_score)
    assert np.all(draws[:, 0, 0] == 0.5) and np.all(draws[:, 1, 0] == 0.0)


def test_gibbs_holds_entries_of_diagonal_means_exactly():
    """K=1: the free mean is Student-t (normal-inverse-gamma), the held one's variance inverse-gamma given it."""
    rng = np.random.default_rng(3)
    X = np.column_stack([rng.normal(0.3, 1.0, 30), rng.normal(2.0, 0.5, 30)])
    model = GaussianHMM(1, sampler="gibbs", fixed={"means": [[0.0, np.nan]]}, n_chains=2, n_draws=4000,
                        n_warmup=20, random_state=0).fit(X)
    means, var = model.draws_["means"].reshape(-1, 2), model.draws_["covars"].reshape(-1, 2, 2)
    assert np.all(means[:, 0] == 0.0)  # held entry bit-identical in every draw
    m0, k0, nu0, psi0 = (np.asarray(model.prior_[k]) for k in ("mean", "mean_precision", "dof", "scale"))
    n, x = X.shape[0], X[:, 1]
    kn, nun = k0 + n, nu0 + n
    mn = (k0 * m0[1] + x.sum()) / kn
    psin = psi0[1, 1] + ((x - x.mean()) ** 2).sum() + k0 * n / kn * (x.mean() - m0[1]) ** 2
    free = stats.t(nun, loc=mn, scale=np.sqrt(psin / (nun * kn)))  # free entry, variance integrated out
    assert stats.kstest(means[:, 1], free.cdf).pvalue > 1e-6
    held = stats.invgamma(nun / 2, scale=(psi0[0, 0] + (X[:, 0] ** 2).sum()) / 2)  # variance given mean 0
    assert stats.kstest(var[:, 0, 0], held.cdf).pvalue > 1e-6


def test_gibbs_refuses_entries_the_emission_cannot_hold(monkeypatch):
    """An emission whose Gibbs update holds no entries (``gibbs_entry_holds`` empty) is refused before fitting."""
    init = GaussianEmission.__init__

    @functools.wraps(init)
    def no_entry_holds(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.gibbs_entry_holds = ()

    monkeypatch.setattr(GaussianEmission, "__init__", no_entry_holds)
    with pytest.raises(ValueError, match=r"single entries of \[\]"):
        GaussianHMM(2, sampler="gibbs", fixed={"means": [[0.0], [np.nan]]}, n_draws=5,
                    n_warmup=5).fit(np.arange(20.0).reshape(-1, 1))


def test_held_values_follow_each_array_support():
    """A held 0 is a structural zero of Poisson rates and Bernoulli probabilities; covariances are matrices."""
    rng = np.random.default_rng(0)
    z = np.cumsum(rng.random(300) < 0.05) % 2
    C = rng.poisson(np.where(z[:, None] == 1, [0.0, 4.0], [3.0, 1.0]))
    m = PoissonHMM(2, fixed={"lambdas": [[np.nan, np.nan], [np.nan, 0.0]]}, random_state=0).fit(C)
    assert m.lambdas_[1, 1] == 0.0 and np.isfinite(m.score(C))
    g = PoissonHMM(2, fixed={"lambdas": [[np.nan, np.nan], [0.0, np.nan]]}, sampler="gibbs", n_chains=1, n_draws=20,
                   n_warmup=20, random_state=0).fit(C)
    assert np.all(g.draws_["lambdas"][..., 1, 0] == 0.0)
    B = (rng.random((300, 2)) < np.where(z[:, None] == 1, [0.0, 0.8], [0.3, 0.2])).astype(int)
    b = BernoulliHMM(2, fixed={"probs": [[np.nan, np.nan], [0.0, np.nan]]}, random_state=0).fit(B)
    assert b.probs_[1, 0] == 0.0 and np.isfinite(b.score(B))
    X = np.c_[rng.normal(size=300) + 3 * z, rng.normal(size=300)]
    eye = [[1.0, 0.0], [0.0, 1.0]]
    h = GaussianHMM(2, covariance_type="full", fixed={"covars": [eye, np.full((2, 2), np.nan)]}, random_state=0).fit(X)
    assert np.array_equal(h.covars_[0], eye)
    for bad, match in (([[1.0, 0.5], [0.4, 1.0]], "symmetric positive definite"),
                       ([[1.0, 2.0], [2.0, 1.0]], "symmetric positive definite"),
                       ([[-1.0, 0.0], [0.0, 1.0]], "diagonal entries must be positive")):
        with pytest.raises(ValueError, match=match):
            GaussianHMM(2, covariance_type="full", fixed={"covars": [bad, np.full((2, 2), np.nan)]}).fit(X)
    with pytest.raises(ValueError, match=r"fixed\['probs'\].*\[0, 1\]"):
        BernoulliHMM(2, fixed={"probs": [[1.5, np.nan], [np.nan, np.nan]]}).fit(B)
    with pytest.raises(ValueError, match=r"fixed\['lambdas'\].*non-negative"):
        PoissonHMM(2, fixed={"lambdas": [[-1.0, np.nan], [np.nan, np.nan]]}).fit(C)
