"""SemiMarkovHMM(sampler="gibbs"): conditionals against closed forms and quadrature, the segmentation posterior
against exact enumeration (parameters integrated out), one-step-ahead terms, ArviZ, save/load, bad requests."""

import itertools

import numpy as np
import pytest
from scipy import stats
from scipy.special import gammaln, logsumexp

import probspace
from probspace import SemiMarkovHMM
from probspace.inference import _hsmm_gibbs

# A segmentation the data fix beyond doubt: states 0 and 1 emit N(0, 1) and N(1000, 1).
RUNS = [(0, 3), (1, 4), (0, 5), (1, 2), (0, 4), (1, 6), (0, 2), (1, 3)]  # the last run is right-censored
D = 6


def known_segmentation_data(seed=0):
    rng = np.random.default_rng(seed)
    z = np.concatenate([np.full(d, k) for k, d in RUNS])
    return rng.normal(1000.0 * z, 1.0)[:, None], z


def batch_se(x, n_batches=20):
    """Monte Carlo standard error of the mean of a chain by batch means (autocorrelation included)."""
    b = np.asarray(x)[: len(x) // n_batches * n_batches].reshape(n_batches, -1).mean(axis=1)
    return b.std(ddof=1) / np.sqrt(n_batches)


@pytest.fixture(scope="module")
def nonparametric_fit():
    X, _ = known_segmentation_data()
    prior = {"mean": 500.0, "mean_precision": 3.0}  # strong enough to move the means' posterior visibly
    return X, SemiMarkovHMM(2, max_duration=D, sampler="gibbs", n_chains=1, n_draws=4000, n_warmup=100,
                            max_iter=20, random_state=1, prior=prior).fit(X)


def test_nonparametric_durations_match_the_censored_dirichlet_posterior(nonparametric_fit):
    # Given the segmentation, p(pmf_k | data) ∝ Dir(pmf; 1 + c_k) * P(duration >= d_last) for the censored state:
    # a mixture over the unseen full length d' >= d_last of Dir(1 + c_k + e_d') with weights ∝ (1 + c_k)[d'].
    X, model = nonparametric_fit
    draws = model.draws_["duration_pmf"][0]  # (n, K, D)
    last_state, last_len = RUNS[-1]
    for k in range(2):
        a = np.ones(D)
        for s, d in RUNS[:-1]:
            if s == k:
                a[d - 1] += 1
        if k == last_state:
            w = np.where(np.arange(1, D + 1) >= last_len, a, 0.0)
            w /= w.sum()
            exact = sum(w[j] * (a + np.eye(D)[j]) / (a.sum() + 1) for j in range(D))
        else:
            exact = a / a.sum()
        est = draws[:, k].mean(axis=0)
        se = np.array([batch_se(draws[:, k, j]) for j in range(D)])
        assert np.all(np.abs(est - exact) < 5.5 * se + 1e-12), (k, est, exact, se)


def test_gaussian_means_match_the_conjugate_posterior(nonparametric_fit):
    X, model = nonparametric_fit
    _, z = known_segmentation_data()
    prior = model.prior_
    m0, kappa0 = prior["mean"], float(prior["mean_precision"])
    for k in range(2):
        x = X[z == k, 0]
        exact = (kappa0 * m0[0] + x.sum()) / (kappa0 + x.size)
        draws = model.draws_["means"][0, :, k, 0]
        assert abs(draws.mean() - exact) < 5.5 * batch_se(draws), (k, draws.mean(), exact)


def truncated_poisson_log_posterior(rate, a, b, k):
    """Exact log posterior density (unnormalised) of state k's rate given the known segmentation."""
    d = np.arange(D)[:, None]
    logp = d * np.log(rate)[None] - rate[None] - gammaln(d + 1.0)
    logF = logsumexp(logp, axis=0)
    out = (a - 1.0) * np.log(rate) - b * rate
    for s, length in RUNS[:-1]:
        if s == k:
            out = out + logp[length - 1] - logF
    last_state, last_len = RUNS[-1]
    if k == last_state:
        out = out + logsumexp(logp[last_len - 1:], axis=0) - logF
    return out


def test_poisson_rates_match_quadrature_through_the_truncation():
    # max_duration=6 truncates the Poisson heavily: only the Metropolis-Hastings correction makes this exact.
    X, _ = known_segmentation_data()
    model = SemiMarkovHMM(2, max_duration=D, duration="poisson", sampler="gibbs", n_chains=1, n_draws=4000,
                          n_warmup=100, max_iter=20, random_state=2).fit(X)
    a, b = model.prior_["rate_shape"], model.prior_["rate_rate"]
    grid = np.linspace(1e-4, 60.0, 200001)
    acc = model.sample_stats_["duration_acceptance"]
    assert 0.05 < acc.mean() < 1.0
    for k in range(2):
        logd = truncated_poisson_log_posterior(grid, a[k], b[k], k)
        dens = np.exp(logd - logd.max())
        dens /= np.trapezoid(dens, grid)
        exact_mean = np.trapezoid(grid * dens, grid)
        draws = model.draws_["rate"][0, :, k]
        assert abs(draws.mean() - exact_mean) < 5.5 * batch_se(draws), (k, draws.mean(), exact_mean)
        cdf = np.cumsum(dens) * (grid[1] - grid[0])
        thinned = draws[::20]  # near-independent draws for the KS test
        p = stats.kstest(thinned, lambda r, cdf=cdf: np.interp(r, grid, cdf)).pvalue
        assert p > 1e-6, (k, p)


# -- the segmentation posterior, every parameter integrated out -------------------------------------------------
def log_marginal(path, x, D, n_symbols):
    """log p(x, path) with Dirichlet(1) priors on startprob, durations and symbol probabilities (K=2)."""
    runs = [(k, len(list(g))) for k, g in itertools.groupby(path)]
    if any(d > D for _, d in runs):
        return -np.inf

    def log_b(a):
        return gammaln(a).sum() - gammaln(a.sum())

    out = np.log(0.5)  # startprob ~ Dir(1, 1); with K=2 every transition is certain
    for k in range(2):
        c = np.ones(D)
        for s, d in runs[:-1]:
            if s == k:
                c[d - 1] += 1
        if runs[-1][0] == k:  # censored: sum over the full length d' >= seen length
            out += logsumexp([log_b(c + np.eye(D)[j]) for j in range(runs[-1][1] - 1, D)]) - log_b(np.ones(D))
        else:
            out += log_b(c) - log_b(np.ones(D))
        n = np.bincount(x[np.asarray(path) == k], minlength=n_symbols) + 1.0
        out += log_b(n) - log_b(np.ones(n_symbols))
    return out


def boundaries(path):
    return tuple(int(t) for t in np.flatnonzero(np.diff(path)) + 1)


def test_segmentation_posterior_matches_enumeration():
    # T=6, K=2, D=3, two symbols: the posterior over where segments start (label-free, so the state sorting does
    # not enter) with every parameter integrated out, against the Gibbs chain's path draws (chi-square).
    x = np.array([0, 0, 1, 1, 1, 0])
    Dm = 3
    exact = {}
    for path in itertools.product([0, 1], repeat=x.size):
        lp = log_marginal(path, x, Dm, 2)
        if np.isfinite(lp):
            key = boundaries(np.array(path))
            exact[key] = np.logaddexp(exact.get(key, -np.inf), lp)
    keys = sorted(exact)
    probs = np.exp(np.array([exact[k] for k in keys]) - logsumexp([exact[k] for k in keys]))
    model = SemiMarkovHMM(2, emission="categorical", max_duration=Dm, sampler="gibbs", n_chains=2, n_draws=3000,
                          n_warmup=200, max_iter=10, random_state=3,
                          prior={"emissionprob": 1.0}).fit(x[:, None])
    post = model.posterior(x[:, None])
    n_total = 2 * 3000
    paths = post.sample_at(np.arange(0, n_total, 3), np.random.default_rng(0))
    counts = np.zeros(len(keys))
    index = {k: i for i, k in enumerate(keys)}
    for p in paths:
        counts[index[boundaries(p)]] += 1
    expected = probs * counts.sum()
    keep = expected >= 5
    obs, exp = counts[keep], expected[keep]
    if not keep.all():
        obs, exp = np.append(obs, counts[~keep].sum()), np.append(exp, expected[~keep].sum())
    chi2 = ((obs - exp) ** 2 / exp).sum()
    p = stats.chi2.sf(chi2, obs.size - 1)
    assert p > 1e-6, (p, dict(zip(keys, np.round(probs, 3), strict=True)), counts)


# -- answers, ArviZ, save/load, requests ----------------------------------------------------------------------------
def test_one_step_ahead_terms_sum_to_the_log_likelihood():
    rng = np.random.default_rng(4)
    K, T, Dm = 3, 30, 5
    start = rng.dirichlet(np.ones(K))
    trans = rng.dirichlet(np.ones(K - 1), size=K)
    trans = np.stack([np.insert(trans[k], k, 0.0) for k in range(K)])
    pmf = rng.dirichlet(np.ones(Dm), size=K)
    logb = rng.normal(size=(T, K))
    lengths = np.array([12, 1, 17])
    terms = _hsmm_gibbs.pointwise_log_likelihood(start, trans, pmf, logb, lengths)
    from probspace.inference import _hsmm

    ll = _hsmm.forward_backward(start, trans, pmf, logb, lengths).log_likelihood
    sums = np.add.reduceat(terms, [0, 12, 13])
    np.testing.assert_allclose(sums, ll, rtol=0, atol=1e-10)


@pytest.fixture(scope="module")
def small_fit():
    X, _ = known_segmentation_data()
    return X, SemiMarkovHMM(2, max_duration=D, duration="poisson", sampler="gibbs", n_chains=2, n_draws=60,
                            n_warmup=20, max_iter=10, random_state=5).fit(X)


def test_arviz_keeps_chains_and_loo_works(small_fit):
    az = pytest.importorskip("arviz")
    X, model = small_fit
    idata = model.to_arviz(X, n_samples=30, random_state=0)
    rhat = az.rhat(idata, var_names=["rate"])
    assert rhat["rate"].shape == (2,)
    assert np.all(np.isfinite(az.ess(idata, var_names=["means"])["means"].values))
    loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo)
    assert model.sample_stats_["lp"].shape == (2, 60)


def test_save_load_keeps_draws(small_fit, tmp_path):
    X, model = small_fit
    model.save(tmp_path / "m.npz")
    back = probspace.load(tmp_path / "m.npz")
    for k, v in model.draws_.items():
        np.testing.assert_array_equal(back.draws_[k], v)
    np.testing.assert_array_equal(back.log_likelihood(X), model.log_likelihood(X))
    assert back.sample_parameters(3, random_state=0)["rate"].shape == (3, 2)


def test_same_seed_same_draws():
    X, _ = known_segmentation_data()
    fits = [SemiMarkovHMM(2, max_duration=D, sampler="gibbs", n_chains=1, n_draws=15, n_warmup=5, max_iter=30,
                          random_state=9).fit(X) for _ in range(2)]
    for k in fits[0].draws_:
        np.testing.assert_array_equal(fits[0].draws_[k], fits[1].draws_[k])


def test_states_sorted_in_every_draw(small_fit):
    _, model = small_fit
    assert np.all(np.diff(model.draws_["means"][..., 0], axis=-1) >= 0)


@pytest.mark.parametrize("kwargs, match", [
    ({"duration": "negative_binomial"}, "negative binomial shape has no conjugate prior"),
    ({"prior": {"rate_shape": 2.0}}, "unknown entries"),
    ({"prior": {"duration_pmf": -1.0}}, "finite and positive"),
])
def test_bad_gibbs_requests(kwargs, match):
    X, _ = known_segmentation_data()
    with pytest.raises(ValueError, match=match):
        SemiMarkovHMM(2, max_duration=D, sampler="gibbs", n_draws=5, n_warmup=0, **kwargs).fit(X)


def test_prior_without_sampler_and_missing_values_are_rejected():
    X, _ = known_segmentation_data()
    with pytest.raises(ValueError, match="applies only to MCMC"):
        SemiMarkovHMM(2, max_duration=D, prior={"startprob": 2.0}).fit(X)
    X = X.copy()
    X[3] = np.nan
    with pytest.raises(ValueError, match="missing values"):
        SemiMarkovHMM(2, max_duration=D, sampler="gibbs", n_draws=5, n_warmup=0).fit(X)


def test_start_and_transition_rows_match_their_dirichlet_posteriors():
    # K=3, three sequences with a segmentation the data fix: startprob ~ Dir(1 + first states), row j off the
    # diagonal ~ Dir(1 + transitions out of j), never counting across a sequence boundary.
    seqs = [[(0, 2), (1, 3), (2, 2), (1, 2), (0, 3)], [(2, 3), (0, 2), (2, 2)], [(1, 2), (2, 3), (0, 1), (1, 2)]]
    rng = np.random.default_rng(6)
    z = np.concatenate([np.full(d, k) for seq in seqs for k, d in seq])
    X = rng.normal(1000.0 * z, 1.0)[:, None]
    lengths = [sum(d for _, d in seq) for seq in seqs]
    model = SemiMarkovHMM(3, max_duration=4, sampler="gibbs", n_chains=1, n_draws=3000, n_warmup=100, max_iter=20,
                          random_state=7).fit(X, lengths=lengths)
    first = np.ones(3)
    trans = np.ones((3, 3))
    for seq in seqs:
        first[seq[0][0]] += 1
        for (a, _), (b, _) in itertools.pairwise(seq):
            trans[a, b] += 1
    checks = [(first / first.sum(), model.draws_["startprob"][0])]
    for j in range(3):
        row = np.where(np.arange(3) == j, 0.0, trans[j])
        checks.append((row / row.sum(), model.draws_["transmat"][0, :, j]))
    for exact, draws in checks:
        se = np.array([batch_se(draws[:, i]) for i in range(3)])
        assert np.all(np.abs(draws.mean(axis=0) - exact) < 5.5 * se + 1e-12), (draws.mean(axis=0), exact, se)


@pytest.mark.slow
def test_simulation_based_calibration():
    # SBC (Talts et al. 2018): parameters from the prior (states sorted by the same key as the sampler's draws,
    # exact under the exchangeable prior), data from them, the rank of the truth among thinned Gibbs draws is
    # uniform. Three sequences of 6 frames, K=2, D=3, two symbols, Dirichlet(1) priors everywhere.
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    rng = np.random.default_rng(11)
    Dm, L, thin, reps = 3, 49, 3, 400
    lengths = [6, 6, 6]
    ranks = np.zeros((reps, 3), dtype=int)
    for r in range(reps):
        while True:
            B = rng.dirichlet(np.ones(2), size=2)
            order = np.argsort(B[:, 1], kind="stable")  # the categorical key: the mean symbol
            B, pmf = B[order], rng.dirichlet(np.ones(Dm), size=2)
            start = rng.dirichlet(np.ones(2))
            x = []
            for n in lengths:
                z, k = [], rng.choice(2, p=start)
                while len(z) < n:
                    z += [k] * (1 + rng.choice(Dm, p=pmf[k]))
                    k = 1 - k
                x += [rng.choice(2, p=B[s]) for s in z[:n]]
            x = np.array(x)
            if np.unique(x).size == 2:  # both symbols seen (the emission infers n_symbols from the data)
                break
        truth = [pmf[0] @ np.arange(1, Dm + 1), B[0, 1], pmf[1, 0]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model = SemiMarkovHMM(2, emission="categorical", max_duration=Dm, sampler="gibbs", n_chains=1,
                                  n_draws=L * thin, n_warmup=50, max_iter=5,
                                  random_state=int(rng.integers(2**31))).fit(x[:, None], lengths=lengths)
        d = {k: v[0, ::thin] for k, v in model.draws_.items()}
        draws = [d["duration_pmf"][:, 0] @ np.arange(1, Dm + 1), d["emissionprob"][:, 0, 1],
                 d["duration_pmf"][:, 1, 0]]
        ranks[r] = [(np.asarray(dr) < t).sum() for dr, t in zip(draws, truth, strict=True)]
    for j in range(3):
        counts = np.bincount(ranks[:, j] * 10 // (L + 1), minlength=10)
        p = stats.chisquare(counts).pvalue
        assert p > 1e-6, (j, counts, p)
