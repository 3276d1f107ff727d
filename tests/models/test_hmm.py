"""HMM families against hmmlearn, against brute-force enumeration (missing data), and their extras."""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import logsumexp
from sklearn.exceptions import ConvergenceWarning

from probspace import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from probspace.inference._hmm import sample_chain

LENGTHS = np.array([120, 1, 80])


def _data(family, seed=0):
    X, _ = family._conformance_data(np.random.default_rng(seed))
    rng = np.random.default_rng(seed + 1)
    extra = family._conformance_data(rng)[0]
    return np.concatenate([X, extra])[: LENGTHS.sum()]


FITTED = [
    (GaussianHMM, dict(covariance_type="diag")),
    (GaussianHMM, dict(covariance_type="full")),
    (GaussianHMM, dict(covariance_type="tied")),
    (GaussianHMM, dict(covariance_type="spherical")),
    (GaussianHMM, dict(bayesian=True)),
    (CategoricalHMM, dict()),
    (CategoricalHMM, dict(bayesian=True)),
    (PoissonHMM, dict()),
    (GMMHMM, dict(n_mix=2)),
    (GMMHMM, dict(n_mix=2, covariance_type="full")),
]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose
@pytest.mark.parametrize("family, params", FITTED, ids=lambda v: getattr(v, "__name__", str(v)))
def test_matches_hmmlearn(family, params):
    X = _data(family)
    model = family(2, max_iter=20, random_state=0, **params).fit(X, lengths=LENGTHS)
    backend = model.backend_
    Xb = X.astype(np.int64) if family is CategoricalHMM else X
    post = model.posterior(X, lengths=LENGTHS)
    np.testing.assert_allclose(post.marginals, backend.predict_proba(Xb, LENGTHS), rtol=0, atol=1e-8)
    ll = model.log_likelihood(X, lengths=LENGTHS)
    assert ll.shape == (3,)
    assert ll.sum() == pytest.approx(backend.score(Xb, LENGTHS), abs=1e-8 * abs(ll.sum()))
    bounds = np.r_[0, np.cumsum(LENGTHS)]
    for i in range(3):
        assert ll[i] == pytest.approx(backend.score(Xb[bounds[i]:bounds[i + 1]]), abs=1e-8)
    if not params.get("bayesian"):
        # (hmmlearn's variational decode uses the expected log-parameters, not the posterior means.)
        log_best, best = backend.decode(Xb, LENGTHS, algorithm="viterbi")
        np.testing.assert_array_equal(post.map(), best)
    assert model.score(X, lengths=LENGTHS) == pytest.approx(ll.mean())


def test_spherical_covars_repair():
    X = _data(GaussianHMM)
    model = GaussianHMM(3, covariance_type="spherical", random_state=0).fit(X)
    assert model.covars_.shape == (3, 2, 2)
    # If hmmlearn ever fixes its getter, this stays true and the repair becomes a no-op.
    np.testing.assert_allclose(np.diagonal(model.covars_, axis1=1, axis2=2)[:, 0], model.backend_._covars_[:, 0])


def _brute_force_gaussian(model, X):
    """Posterior marginals and log p(x) by enumerating every path, emissions over observed dims only."""
    K, T = model.n_components, X.shape[0]
    logb = np.zeros((T, K))
    for t in range(T):
        obs = ~np.isnan(X[t])
        for k in range(K):
            if obs.any():
                logb[t, k] = stats.multivariate_normal(model.means_[k, obs],
                                                       model.covars_[k][np.ix_(obs, obs)]).logpdf(X[t, obs])
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    joint = (np.log(model.startprob_[paths[:, 0]]) + np.log(model.transmat_[paths[:, :-1], paths[:, 1:]]).sum(1)
             + logb[np.arange(T), paths].sum(1))
    loglik = logsumexp(joint)
    post = np.exp(joint - loglik)
    marg = np.stack([np.bincount(paths[:, t], weights=post, minlength=K) for t in range(T)])
    return marg, loglik, paths, joint - loglik


@pytest.mark.parametrize("covariance_type", ["diag", "full", "spherical", "tied"])
def test_missing_observations_match_brute_force(covariance_type):
    X = _data(GaussianHMM)
    model = GaussianHMM(2, covariance_type=covariance_type, random_state=0, max_iter=20).fit(X)
    Xm = X[:7].copy()
    Xm[1] = np.nan          # a fully missing frame follows the dynamics alone
    Xm[3, 0] = np.nan       # partly missing: marginal Gaussian of the observed coordinate
    Xm[5, 1] = np.nan
    marg, loglik, paths, logpost = _brute_force_gaussian(model, Xm)
    post = model.posterior(Xm)
    np.testing.assert_allclose(post.marginals, marg, atol=1e-10)
    assert model.log_likelihood(Xm)[0] == pytest.approx(loglik, abs=1e-10)
    np.testing.assert_allclose(post.log_prob(paths), logpost, atol=1e-10)
    assert post.entropy() == pytest.approx(-(np.exp(logpost) * logpost).sum(), abs=1e-10)


def test_all_missing_sequence_follows_the_dynamics():
    X = _data(GaussianHMM)
    model = GaussianHMM(2, random_state=0).fit(X)
    gap = np.full((4, 2), np.nan)
    post = model.posterior(gap)
    expected = [model.startprob_]
    for _ in range(3):
        expected.append(expected[-1] @ model.transmat_)
    np.testing.assert_allclose(post.marginals, expected, atol=1e-12)
    assert model.log_likelihood(gap)[0] == pytest.approx(0.0, abs=1e-12)


def test_categorical_and_poisson_missing_frames():
    Xc = _data(CategoricalHMM)
    cat = CategoricalHMM(2, random_state=0).fit(Xc)
    Xm = Xc[:6].copy()
    Xm[2] = np.nan
    full = cat.posterior(Xc[:6]).marginals
    miss = cat.posterior(Xm).marginals
    assert np.all(np.isfinite(miss)) and not np.allclose(full, miss)
    # Brute force: drop frame 2's emission.
    logb = np.log(cat.emissionprob_[:, np.nan_to_num(Xm[:, 0]).astype(int)]).T
    logb[2] = 0
    paths = np.array(list(itertools.product(range(2), repeat=6)))
    joint = (np.log(cat.startprob_[paths[:, 0]]) + np.log(cat.transmat_[paths[:, :-1], paths[:, 1:]]).sum(1)
             + logb[np.arange(6), paths].sum(1))
    assert cat.log_likelihood(Xm)[0] == pytest.approx(logsumexp(joint), abs=1e-10)
    Xp = _data(PoissonHMM)
    poi = PoissonHMM(2, random_state=0).fit(Xp)
    Xq = Xp[:5].copy()
    Xq[1, 0] = np.nan
    lam = poi.lambdas_
    logb = np.zeros((5, 2))
    for t in range(5):
        for k in range(2):
            logb[t, k] = sum(stats.poisson(lam[k, d]).logpmf(Xq[t, d]) for d in range(2) if not np.isnan(Xq[t, d]))
    paths = np.array(list(itertools.product(range(2), repeat=5)))
    joint = (np.log(poi.startprob_[paths[:, 0]]) + np.log(poi.transmat_[paths[:, :-1], paths[:, 1:]]).sum(1)
             + logb[np.arange(5), paths].sum(1))
    assert poi.log_likelihood(Xq)[0] == pytest.approx(logsumexp(joint), abs=1e-10)


def test_sequences_view_and_per_sequence_values():
    X = _data(GaussianHMM)
    model = GaussianHMM(2, random_state=0).fit(X, lengths=LENGTHS)
    post = model.posterior(X, lengths=LENGTHS)
    parts = post.sequences
    assert [p.event_shape for p in parts] == [(120,), (1,), (80,)]
    np.testing.assert_allclose(np.concatenate([p.marginals for p in parts]), post.marginals)
    np.testing.assert_allclose([p.entropy() for p in parts], post.sequence_entropy())
    draws = post.sample(4, random_state=0)
    np.testing.assert_allclose(post.sequence_log_prob(draws).sum(-1), post.log_prob(draws))


@pytest.mark.parametrize("lengths, match", [([100, 0, 101], "positive"), ([100, 50], "add up"),
                                            ([150.5, 50.5], "integers")])
def test_bad_lengths(lengths, match):
    X = _data(GaussianHMM)[:201]
    with pytest.raises(ValueError, match=match):
        GaussianHMM(2).fit(X, lengths=lengths)
    model = GaussianHMM(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match=match):
        model.posterior(X, lengths=lengths)


def test_bad_values():
    Xc = _data(CategoricalHMM)
    cat = CategoricalHMM(2, random_state=0).fit(Xc)
    with pytest.raises(ValueError, match="knows 4 symbols"):
        cat.posterior(np.array([[0], [7]]))
    with pytest.raises(ValueError, match="integer symbols"):
        cat.posterior(np.array([[0.5], [1]]))
    with pytest.raises(ValueError, match="one column"):
        cat.fit(np.zeros((10, 2)))
    with pytest.raises(ValueError, match="Negative values in data passed to PoissonHMM"):
        PoissonHMM(2).fit(np.array([[1.0], [-2.0], [3.0]]))
    with pytest.raises(ValueError, match="integer counts"):
        PoissonHMM(2).fit(np.array([[1.0], [2.5], [3.0]]))
    with pytest.raises(ValueError, match="no Bayesian variant"):
        PoissonHMM(2, bayesian=True).fit(_data(PoissonHMM))
    with pytest.raises(ValueError, match="whole missing frames only"):
        GaussianHMM(2, covariance_type="full").fit(np.array([[1.0, np.nan], [2.0, 1.0], [0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="bayesian=True"):
        GaussianHMM(2, bayesian=True).fit(np.array([[np.nan, np.nan], [2.0, 1.0], [0.0, 1.0], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="n_components=5 must be at most"):
        GaussianHMM(5).fit(np.zeros((3, 1)))


def test_sample_follows_the_chain():
    X = _data(GaussianHMM)
    model = GaussianHMM(2, random_state=0, max_iter=20).fit(X)
    Xs, Z = model.sample(20000, random_state=0)
    assert Xs.shape == (20000, 2) and Z.shape == (20000,)
    # Transition frequencies match transmat_.
    counts = np.zeros((2, 2))
    np.add.at(counts, (Z[:-1], Z[1:]), 1)
    freq = counts / counts.sum(axis=1, keepdims=True)
    se = np.sqrt(model.transmat_ * (1 - model.transmat_) / counts.sum(axis=1, keepdims=True))
    assert np.all(np.abs(freq - model.transmat_) < 5 * se + 1e-12)


@pytest.mark.parametrize("n_paths", [1, 3, 50000])
def test_sample_chain_kernel(n_paths):
    A = np.array([[0.2, 0.5, 0.3], [0.6, 0.4, 0.0], [0.0, 0.0, 1.0]])
    p0 = np.array([0.1, 0.6, 0.3])
    n_steps = max(2, 150000 // n_paths)
    paths = sample_chain(np.broadcast_to(p0, (n_paths, 3)), A, n_steps, np.random.default_rng(0))
    assert paths.shape == (n_paths, n_steps)
    counts = np.zeros((3, 3))
    np.add.at(counts, (paths[:, :-1].ravel(), paths[:, 1:].ravel()), 1)
    rows = counts.sum(axis=1, keepdims=True)
    freq = counts / np.maximum(rows, 1)
    se = np.sqrt(A * (1 - A) / np.maximum(rows, 1))
    assert np.all(np.abs(freq - A) <= 5 * se + 1e-12), freq
    assert counts[1, 2] == 0 and counts[2, :2].sum() == 0  # forbidden transitions never happen
    first = np.bincount(paths[:, 0], minlength=3) / n_paths
    if n_paths > 1000:
        assert np.all(np.abs(first - p0) <= 5 * np.sqrt(p0 * (1 - p0) / n_paths))


def test_forecast():
    X = _data(GaussianHMM)
    model = GaussianHMM(2, random_state=0, max_iter=20).fit(X)
    Xf, Zf = model.forecast(X, 5, n_samples=20000, random_state=1)
    assert Xf.shape == (20000, 5, 2) and Zf.shape == (20000, 5)
    expected = model.posterior(X).filtered[-1] @ model.transmat_
    freq = np.bincount(Zf[:, 0], minlength=2) / 20000
    assert np.all(np.abs(freq - expected) < 5 * np.sqrt(expected * (1 - expected) / 20000) + 1e-12)
    again, _ = model.forecast(X, 5, n_samples=20000, random_state=1)
    np.testing.assert_array_equal(Xf, again)
    with pytest.raises(ValueError, match="n_steps"):
        model.forecast(X, 0)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose
def test_progress_bar_and_history(capsys):
    X = _data(GaussianHMM)
    model = GaussianHMM(2, random_state=0, max_iter=5, tol=0.0, progress=True).fit(X)
    assert 1 <= model.n_iter_ <= 5 and model.history_.shape == (model.n_iter_,)
    assert np.all(np.diff(model.history_) > -1e-8)  # EM never decreases the likelihood
    assert "EM" in capsys.readouterr().err


def test_to_arviz_for_paths():
    from probspace.diagnostics._arviz import _import_arviz

    X = _data(GaussianHMM)
    model = GaussianHMM(2, random_state=0).fit(X, lengths=LENGTHS)
    data = model.to_arviz(X, n_samples=30, random_state=0, lengths=LENGTHS)
    path = data["latent_posterior"]["path"]
    assert path.dims == ("chain", "draw", "time") and path.shape == (1, 30, 201)
    assert np.issubdtype(path.dtype, np.integer)
    np.testing.assert_allclose(data["constant_data"]["state_marginals"].values,
                               model.posterior(X, lengths=LENGTHS).marginals)
    assert data["constant_data"]["state_marginals"].dims == ("time", "state")
    assert "log_likelihood" not in data.groups()  # an EM fit: plug-in values, no PSIS-LOO
    np.testing.assert_array_equal(data["constant_data"]["lengths"].values, LENGTHS)
    assert data["posterior_predictive"]["x"].shape == (1, 30, 201, 2)
    _import_arviz().summary(data, group="latent_posterior", var_names=["path"], kind="stats")


def _with_missing(family, covariance_type=None, seed=0):
    X = _data(family).copy()
    rng = np.random.default_rng(seed)
    X[rng.random(len(X)) < 0.1] = np.nan
    if family is not CategoricalHMM and covariance_type not in ("full", "tied"):
        X[rng.integers(0, len(X), 20), 0] = np.nan
    return X


MISSING_FITS = [(GaussianHMM, dict(covariance_type=c)) for c in ("diag", "spherical", "full", "tied")] + [
    (PoissonHMM, {}), (CategoricalHMM, {})]


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose
@pytest.mark.parametrize("family, params", MISSING_FITS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_fit_with_missing_values_is_monotone_em(family, params):
    X = _with_missing(family, params.get("covariance_type"))
    model = family(2, random_state=0, max_iter=30, tol=1e-9, **params).fit(X, lengths=LENGTHS)
    assert np.all(np.diff(model.history_) > -1e-10), "EM decreased the observed-data likelihood"
    assert model.history_[-1] * len(X) == pytest.approx(model.log_likelihood(X, lengths=LENGTHS).sum(), rel=1e-3)
    assert np.all(np.isfinite(model.posterior(X, lengths=LENGTHS).marginals))


def _emission_parameters(model):
    names = {"GaussianHMM": ("means_", "covars_"), "PoissonHMM": ("lambdas_",),
             "CategoricalHMM": ("emissionprob_",)}[type(model).__name__]
    return names


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose
@pytest.mark.parametrize("family, params", MISSING_FITS, ids=lambda v: getattr(v, "__name__", str(v)))
def test_m_step_maximises_expected_log_likelihood(family, params):
    """Q(theta) = sum_t sum_k gamma_tk log p(x_t observed | k, theta) is maximal at the M-step's output."""
    import copy

    X = _with_missing(family, params.get("covariance_type"))
    model = family(2, random_state=0, max_iter=3, **params).fit(X, lengths=LENGTHS)
    gamma = model.posterior(X, lengths=LENGTHS).marginals
    model._m_step(X, gamma)
    q_best = np.sum(gamma * model._log_frameprob(X))
    rng = np.random.default_rng(0)
    b = model.backend_
    for _ in range(20):
        other = copy.deepcopy(model)
        ob = other.backend_
        if family is GaussianHMM:
            ob.means_ = b.means_ + rng.normal(scale=1e-3, size=b.means_.shape)
            compact = {"diag": np.diagonal(model.covars_, axis1=1, axis2=2), "spherical": model.covars_[:, 0, 0],
                       "full": model.covars_, "tied": model.covars_[0]}[model.covariance_type]
            if model.covariance_type in ("full", "tied"):
                ob.covars_ = compact * (1 + rng.uniform(-1e-3, 1e-3))
            else:
                ob.covars_ = compact * np.exp(rng.normal(scale=1e-3, size=compact.shape))
        elif family is PoissonHMM:
            ob.lambdas_ = b.lambdas_ * np.exp(rng.normal(scale=1e-3, size=b.lambdas_.shape))
        else:
            e = b.emissionprob_ * np.exp(rng.normal(scale=1e-3, size=b.emissionprob_.shape))
            ob.emissionprob_ = e / e.sum(axis=1, keepdims=True)
        q = np.sum(gamma * other._log_frameprob(X))
        # min_covar shifts the Gaussian optimum by a hair; allow for it.
        assert q <= q_best + 1e-6 * abs(q_best)


def test_converged_means_the_gain_fell_below_tol():
    X = _data(GaussianHMM)
    with pytest.warns(ConvergenceWarning, match="max_iter=2") as record:
        stopped = GaussianHMM(2, max_iter=2, tol=1e-12, random_state=0).fit(X)
    assert len([w for w in record if issubclass(w.category, ConvergenceWarning)]) == 1  # once per fit
    assert stopped.n_iter_ == 2 and not stopped.converged_
    done = GaussianHMM(2, max_iter=500, tol=1e-2, random_state=0).fit(X)
    assert done.converged_ and done.n_iter_ < 500


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # short fits on purpose
@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied"])
def test_kernel_e_step_reproduces_hmmlearn(covariance_type):
    """The EM fit with probspace's E-step equals stock hmmlearn's fit from the same seed.

    Guards the two private hmmlearn hooks the E-step overrides: an hmmlearn
    release that changes them makes this fail.
    """
    from hmmlearn import hmm as hmmlearn_hmm

    from probspace._random import as_generator, sklearn_seed

    X = _data(GaussianHMM)
    ours = GaussianHMM(3, covariance_type=covariance_type, max_iter=15, tol=0.0, random_state=0).fit(X, lengths=LENGTHS)
    stock = hmmlearn_hmm.GaussianHMM(3, covariance_type=covariance_type, n_iter=15, tol=0.0,
                                     random_state=sklearn_seed(as_generator(0))).fit(X, LENGTHS)
    assert type(ours.backend_).__mro__[1] is hmmlearn_hmm.GaussianHMM
    np.testing.assert_allclose(ours.means_, stock.means_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.transmat_, stock.transmat_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.startprob_, stock.startprob_, rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(ours.backend_.covars_, stock.covars_, rtol=1e-7, atol=1e-9)
    assert ours.n_iter_ == stock.monitor_.iter
    assert ours.history_[-1] * len(X) == pytest.approx(stock.monitor_.history[-1], rel=1e-9)


def test_hmmlearn_private_hooks_are_where_the_adapter_expects_them():
    """Every hmmlearn private that probspace/models/hmm/_adapter.py uses: an upgrade that moves one fails here."""
    import inspect

    from hmmlearn import base as hmm_base
    from hmmlearn import hmm as hmmlearn_hmm

    from probspace.models.hmm import _adapter

    def model_with_features(m):
        m.n_features = 2
        return m

    for cls in (hmmlearn_hmm.GaussianHMM, hmmlearn_hmm.CategoricalHMM, hmmlearn_hmm.PoissonHMM, hmmlearn_hmm.GMMHMM):
        assert list(inspect.signature(cls._do_mstep).parameters) == ["self", "stats"], cls
    assert list(inspect.signature(hmmlearn_hmm.GaussianHMM._do_estep).parameters) == ["self", "X", "lengths"]
    assert list(inspect.signature(hmmlearn_hmm.GaussianHMM._compute_log_likelihood).parameters) == ["self", "X"]
    assert {"nobs", "start", "trans", "post", "obs"} <= set(
        model_with_features(hmmlearn_hmm.GaussianHMM(2, covariance_type="diag"))._initialize_sufficient_statistics())
    X = np.random.default_rng(0).normal(size=(50, 2))
    model = GaussianHMM(2, covariance_type="diag", random_state=0, max_iter=5, tol=0.0)
    with pytest.warns(Warning):  # not converged in 5 iterations
        model.fit(X)
    b = model.backend_
    assert isinstance(b, _adapter.KernelEStepGaussianHMM) and b._covars_.shape == (2, 2)
    # the recording monitor replaced hmmlearn's: it saw every iteration the backend ran
    assert isinstance(b.monitor_, hmm_base.ConvergenceMonitor) and len(b.monitor_.trace) == model.n_iter_ == 5
    np.testing.assert_allclose(model.history_ * len(X), b.monitor_.trace)
    covars = _adapter.stored_covars(b, lambda: model.covars_)
    np.testing.assert_allclose(covars, b._covars_)


# -- variational fits: parameter draws from hmmlearn's variational posterior ------------------------------------------
def _mc_close(draws, expected, z=6.0):
    """Monte Carlo mean of ``draws`` (leading draw axis) equals ``expected`` within ``z`` standard errors."""
    se = draws.std(axis=0) / np.sqrt(draws.shape[0])
    assert np.all(np.abs(draws.mean(axis=0) - expected) <= z * se + 1e-12)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_variational_gaussian_parameter_draws_match_the_posterior(covariance_type):
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1, (60, 2)), rng.normal(4, 1, (60, 2))]
    m = GaussianHMM(2, bayesian=True, covariance_type=covariance_type, random_state=0).fit(X)
    assert m._model_tags().parameter_posterior
    gibbs_like = {"full": (2, 2, 2), "diag": (2, 2), "tied": (2, 2), "spherical": (2,)}[covariance_type]
    d = m.sample_parameters(4000, random_state=1)
    assert {k: v.shape[1:] for k, v in d.items()} == {"startprob": (2,), "transmat": (2, 2), "means": (2, 2),
                                                      "covars": gibbs_like}
    b = m.backend_
    _mc_close(d["startprob"], b.startprob_posterior_ / b.startprob_posterior_.sum())
    _mc_close(d["transmat"], b.transmat_posterior_ / b.transmat_posterior_.sum(axis=1, keepdims=True))
    _mc_close(d["means"], b.means_posterior_)
    # E[precision] = dof * inv(scale) = inv(covars_), hmmlearn's covars_ = scale / dof
    full = m.covars_
    if covariance_type in ("full", "tied"):
        _mc_close(np.linalg.inv(d["covars"]), np.linalg.inv(full if covariance_type == "full" else full[0]))
    else:
        diag = np.diagonal(full, axis1=1, axis2=2)
        _mc_close(1.0 / d["covars"], 1.0 / (diag if covariance_type == "diag" else diag[:, 0]))


def test_variational_categorical_parameter_draws_and_arviz():
    rng = np.random.default_rng(1)
    X = np.r_[rng.integers(0, 2, 60), rng.integers(2, 4, 60)][:, None]
    m = CategoricalHMM(2, bayesian=True, random_state=0).fit(X)
    d = m.sample_parameters(4000, random_state=2)
    assert d["emissionprob"].shape == (4000, 2, 4)
    conc = m.backend_.emissionprob_posterior_
    _mc_close(d["emissionprob"], conc / conc.sum(axis=1, keepdims=True))
    data = m.to_arviz(X, n_samples=20, random_state=0)
    ll = data.log_likelihood["x"].values
    assert ll.shape[-1] == X.shape[0] and ll.reshape(-1, X.shape[0]).shape[0] == 20
    rows = ll.reshape(20, -1)
    assert not np.allclose(rows[0], rows[1])  # one row per parameter draw, not a broadcast plug-in
    assert "emissionprob" in data.posterior
    # each row is the one-step-ahead decomposition under its draw: it sums to that draw's log-likelihood
    draws = {k: data.posterior[k].values.reshape((20,) + data.posterior[k].shape[2:])
             for k in ("startprob", "transmat", "emissionprob")}
    from probspace import _bayes

    per = _bayes.PlugIn(m._structure(), {k: v[0] for k, v in draws.items()}, "exact")
    np.testing.assert_allclose(rows[0].sum(), per.log_likelihood(X.astype(float), np.array([X.shape[0]])).sum())


def test_variational_gaussian_to_arviz_has_per_draw_log_likelihood():
    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(0, 1, (50, 1)), rng.normal(4, 1, (50, 1))]
    m = GaussianHMM(2, bayesian=True, random_state=0).fit(X)
    data = m.to_arviz(X, n_samples=15, random_state=0)
    rows = data.log_likelihood["x"].values.reshape(15, -1)
    assert rows.shape == (15, 100) and not np.allclose(rows[0], rows[1])
    assert data.posterior["covars"].values.reshape(15, -1).shape == (15, 2)
