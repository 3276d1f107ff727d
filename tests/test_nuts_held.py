"""NUTS with held entries and structural zeros (``fixed=`` with NaN entries, ``topology``) on Pyro's engine."""

import warnings

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp
from scipy.stats import dirichlet

import probspace as ps
from probspace.inference._nuts import Site, hmm_log_likelihood


def _ess(draws):
    import arviz as az

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(az.ess(az.convert_to_dataset({"x": np.asarray(draws)}), method="bulk")["x"])


def _z_mean_sd(draws, mean, sd):
    """z-scores of the draws' mean and sd against exact values, MCSE from the bulk ESS (sd: delta method)."""
    m, s = draws.mean(), draws.std()
    q = (draws - m) ** 2
    return (m - mean) / (s / np.sqrt(_ess(draws))), (s - sd) / (q.std() / np.sqrt(_ess(q)) / (2 * s))


# -- the parametrisation of a site with held entries ---------------------------------------------------------------
def _simplex_site(prior=None):
    import pyro.distributions as pdist
    import torch

    held = np.array([[0.2, np.nan, np.nan, 0.0], [np.nan] * 4, [0.0, 0.5, np.nan, np.nan], [0.3, 0.7, 0.0, 0.0],
                     [0.4, np.nan, 0.0, 0.0]])
    alpha = torch.tensor([[1.0, 2.0, 4.0, 3.0], [1.5, 1.0, 2.0, 1.0], [2.0, 1.0, 3.0, 5.0], [1.0] * 4, [1.0] * 4],
                         dtype=torch.float64)
    return Site("transmat", held.shape, "simplex", prior or pdist.Dirichlet(alpha), held=held), held, alpha


def test_simplex_site_scatters_free_entries_and_keeps_held_ones_exactly():
    import torch

    site, held, _ = _simplex_site()
    assert site.size == 1 + 3 + 1  # rows with 2, 4, 2 free entries; a determined row and a one-free row add none
    u = torch.as_tensor(np.random.default_rng(0).normal(size=(7, site.size)))
    value, _ = site.constrain(u)
    value = value.numpy()
    given = ~np.isnan(held)
    assert np.all(value[:, given] == held[given])  # bit for bit, zeros exactly 0
    np.testing.assert_allclose(value.sum(axis=-1), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(value[:, 4, 1], 0.6)  # one free entry: the mass left
    np.testing.assert_allclose(site.unconstrain(torch.as_tensor(value[3])).numpy(), u[3].numpy(), atol=1e-10)


def test_simplex_site_log_jacobian_and_sub_dirichlet_prior():
    import torch

    site, held, alpha = _simplex_site()
    u = torch.as_tensor(np.random.default_rng(1).normal(size=site.size))
    value, logdet = site.constrain(u)
    # log|J| of u -> the free coordinates of each row (all free entries but the last): numerical Jacobian
    rows = [(0, [1, 2], 0.8), (1, [0, 1, 2, 3], 1.0), (2, [2, 3], 0.5)]

    def coords(x):
        v, _ = site.constrain(x)
        return torch.cat([v[r, cols[:-1]] / left for r, cols, left in rows])

    J = torch.autograd.functional.jacobian(coords, u)
    assert float(logdet) == pytest.approx(float(torch.linalg.slogdet(J)[1]), abs=1e-9)
    # prior: Dirichlet(alpha_free) of each row's free entries rescaled by the mass left; held entries dropped
    v, a = value.numpy(), alpha.numpy()
    ref = sum(dirichlet.logpdf(v[r, cols] / left, a[r, cols]) for r, cols, left in rows)
    assert float(site.log_prior(value, {})) == pytest.approx(ref, rel=1e-12)


def test_factorised_prior_sums_over_free_entries_only():
    import pyro.distributions as pdist
    import torch

    held = np.array([[2.0, np.nan], [np.nan, 0.5]])
    prior = pdist.Gamma(torch.tensor([2.0, 3.0], dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))
    site = Site("lambdas", (2, 2), "positive", prior, held=held)
    u = torch.tensor([0.3, -0.2], dtype=torch.float64)
    value, logdet = site.constrain(u)
    np.testing.assert_array_equal(value.numpy(), [[2.0, np.exp(0.3)], [np.exp(-0.2), 0.5]])
    assert float(logdet) == pytest.approx(0.1)
    lp = prior.log_prob(value).numpy()
    assert float(site.log_prior(value, {})) == pytest.approx(lp[0, 1] + lp[1, 0], rel=1e-12)


def test_structural_zeros_give_finite_gradients():
    import torch

    # transmat and emissionprob with structural zeros, an observed symbol that one state cannot emit
    A_site = Site("transmat", (3, 3), "simplex", _dirichlet(np.ones((3, 3))),
                  held=np.array([[np.nan, np.nan, 0.0], [np.nan, np.nan, np.nan], [0.0, np.nan, np.nan]]))
    B_site = Site("emissionprob", (3, 2), "simplex", _dirichlet(np.full((3, 2), 2.0)),
                  held=np.array([[np.nan, np.nan], [0.0, np.nan], [np.nan, np.nan]]))
    x = torch.as_tensor(np.array([0, 1, 0, 0, 1, 1, 0]))
    u = {s.name: torch.zeros(s.size, dtype=torch.float64, requires_grad=True) for s in (A_site, B_site)}
    values = {s.name: s.constrain(u[s.name])[0] for s in (A_site, B_site)}
    frames = torch.log(values["emissionprob"]).T[x]
    start = torch.log(torch.full((3,), 1.0 / 3, dtype=torch.float64))
    lp = hmm_log_likelihood(start, torch.log(values["transmat"]), frames, np.array([0, 7]))
    lp = lp + sum(s.log_prior(values[s.name], values) + s.constrain(u[s.name])[1] for s in (A_site, B_site))
    lp.backward()
    assert np.isfinite(float(lp.detach()))
    for s in (A_site, B_site):
        assert np.all(np.isfinite(u[s.name].grad.numpy())) and np.any(u[s.name].grad.numpy() != 0)


def _dirichlet(alpha):
    import pyro.distributions as pdist
    import torch

    return pdist.Dirichlet(torch.as_tensor(np.asarray(alpha, dtype=np.float64)))


# -- fits -----------------------------------------------------------------------------------------------------------
def _counts(seed=0, T=40):
    rng = np.random.default_rng(seed)
    z = np.repeat([0, 1], T // 2)
    return rng.poisson(np.array([2.0, 7.0])[z]).reshape(-1, 1).astype(float)


def test_nuts_holds_entries_and_structural_zeros_in_every_draw():
    X = _counts()
    lam = np.array([[2.0], [np.nan]])
    m = ps.PoissonHMM(2, sampler="nuts", topology="left-to-right", fixed={"lambdas": lam}, n_chains=2, n_draws=30,
                      n_warmup=30, random_state=0).fit(X)
    d = m.draws_
    assert np.all(d["startprob"] == [1.0, 0.0]) and np.all(d["transmat"][..., 1, :] == [0.0, 1.0])
    assert np.all(d["lambdas"][..., 0, 0] == 2.0) and np.all(d["lambdas"][..., 1, 0] > 0)
    assert np.all((d["transmat"][..., 0, 0] > 0) & (d["transmat"][..., 0, 0] < 1))
    assert "tree_depth" not in m.sample_stats_  # Pyro's engine
    assert np.all(np.isfinite(m.sample_stats_["lp"])) and not m.sample_stats_["diverging"].any()


def test_nuts_holds_entries_of_gaussian_means_and_categorical_emissionprob():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal([0, 0], 1, (30, 2)), rng.normal([4, 3], 1, (30, 2))])
    means = np.array([[0.0, np.nan], [np.nan, 3.0]])
    m = ps.GaussianHMM(2, sampler="nuts", fixed={"means": means}, n_chains=1, n_draws=20, n_warmup=20,
                       random_state=0).fit(X)
    assert np.all(m.draws_["means"][..., 0, 0] == 0.0) and np.all(m.draws_["means"][..., 1, 1] == 3.0)
    assert np.all(np.isfinite(m.draws_["means"])) and np.all(m.draws_["covars"] > 0)
    X = np.array([0, 1, 0, 0, 2, 2, 1, 2, 2, 0, 0, 1] * 3).reshape(-1, 1)
    B = np.array([[np.nan, np.nan, 0.0], [0.1, np.nan, np.nan]])
    m = ps.CategoricalHMM(2, sampler="nuts-pyro", fixed={"emissionprob": B}, n_chains=1,
                          n_draws=20, n_warmup=20, random_state=0).fit(X)
    assert np.all(m.draws_["emissionprob"][..., 0, 2] == 0.0) and np.all(m.draws_["emissionprob"][..., 1, 0] == 0.1)
    np.testing.assert_allclose(m.draws_["emissionprob"].sum(axis=-1), 1.0, atol=1e-12)


@pytest.mark.parametrize("lam", [[[0.0], [np.nan]], [[0.0], [5.0]]])
def test_nuts_holds_a_structural_zero_rate(lam):
    # a zero rate emits only zeros: 0 log 0 = 0 in the frames, and its prior term is dropped (Pyro's engine)
    rng = np.random.default_rng(0)
    X = np.concatenate([np.zeros(20), rng.poisson(5, 20)]).reshape(-1, 1)
    m = ps.PoissonHMM(2, sampler="nuts", fixed={"lambdas": lam}, n_chains=1, n_draws=20, n_warmup=20,
                      random_state=0).fit(X)
    assert np.all(m.draws_["lambdas"][..., 0, 0] == 0.0) and np.all(m.draws_["lambdas"][..., 1, 0] > 0)
    assert "tree_depth" not in m.sample_stats_
    assert np.all(np.isfinite(m.sample_stats_["lp"])) and not m.sample_stats_["diverging"].any()


def test_nuts_array_determined_by_its_held_entries_is_a_constant():
    # row 0 has one free entry (0.7) and row 1 is [0, 1] by the topology: nothing of transmat is left to sample
    m = ps.PoissonHMM(2, sampler="nuts", topology="left-to-right", fixed={"transmat": [[0.3, np.nan], [np.nan] * 2]},
                      n_chains=1, n_draws=10, n_warmup=10, random_state=0).fit(_counts())
    assert np.all(m.draws_["transmat"] == [[0.3, 0.7], [0.0, 1.0]])
    assert np.all(m.draws_["lambdas"] > 0) and m.draws_["lambdas"].std(axis=1).min() > 0


def test_nuts_one_feature_full_covariance_held_per_state():
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(0, 1, 30), rng.normal(5, 2, 30)]).reshape(-1, 1)
    m = ps.GaussianHMM(2, covariance_type="full", sampler="nuts", fixed={"covars": [[[1.0]], [[np.nan]]]},
                       n_chains=1, n_draws=20, n_warmup=20, random_state=0).fit(X)
    assert m.draws_["covars"].shape == (1, 20, 2, 1, 1)
    assert np.all(m.draws_["covars"][..., 0, 0, 0] == 1.0) and np.all(m.draws_["covars"][..., 1, 0, 0] > 0)


def test_nuts_without_holds_keeps_the_compiled_engine():
    m = ps.PoissonHMM(2, sampler="nuts", fixed={"transmat": [[0.9, 0.1], [0.2, 0.8]]}, n_chains=1, n_draws=10,
                      n_warmup=10, random_state=0).fit(_counts())
    assert "tree_depth" in m.sample_stats_


def test_nuts_takes_per_entry_or_dirichlet_priors_on_partly_held_arrays():
    import pyro.distributions as pdist
    import torch

    X = _counts()
    lam = np.array([[2.0], [np.nan]])
    per_entry = pdist.Gamma(torch.full((2, 1), 2.0, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    m = ps.PoissonHMM(2, sampler="nuts", fixed={"lambdas": lam}, topology="left-to-right",
                      prior={"lambdas": per_entry, "transmat": _dirichlet([[2.0, 3.0], [1.0, 1.0]])}, n_chains=1,
                      n_draws=10, n_warmup=10, random_state=0).fit(X)
    assert np.all(m.draws_["lambdas"][..., 0, 0] == 2.0)
    with pytest.raises(ValueError, match=r"prior\['lambdas'\].*per-entry distribution.*event shape \(2, 1\)"):
        ps.PoissonHMM(2, sampler="nuts", fixed={"lambdas": lam}, prior={"lambdas": per_entry.to_event(2)},
                      n_draws=5, n_warmup=5).fit(X)
    joint = pdist.MultivariateNormal(torch.zeros(2, dtype=torch.float64), torch.eye(2, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"prior\['transmat'\].*or a Dirichlet over its rows"):
        ps.PoissonHMM(2, sampler="nuts", topology="left-to-right", prior={"transmat": joint}, n_draws=5,
                      n_warmup=5).fit(X)


def test_nuts_refuses_labels_with_held_entries():
    with pytest.raises(ValueError, match="takes no labels"):
        ps.PoissonHMM(2, sampler="nuts", topology="left-to-right", n_draws=5, n_warmup=5).fit(
            _counts(), labels=np.zeros(40, dtype=int))


# -- exact posterior on a grid --------------------------------------------------------------------------------------
_PI = np.array([1.0, 0.0, 0.0])
_A = np.array([[0.2, np.nan, np.nan], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])  # row 0: b, c free with b + c = 0.8
_ALPHA = np.array([[1.0, 2.0, 4.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]])  # b / 0.8 ~ Beta(2, 4) a priori
_LAM = np.array([[1.0], [np.nan], [8.0]])
_SHAPE, _RATE = 2.0, 0.5


def _three_state_counts(seed=3, T=60):
    rng = np.random.default_rng(seed)
    A = np.array([[0.2, 0.4, 0.4], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]])
    z = np.zeros(T, dtype=np.int64)
    for t in range(1, T):
        z[t] = rng.choice(3, p=A[z[t - 1]])
    return rng.poisson(np.array([1.0, 4.0, 8.0])[z]).reshape(-1, 1).astype(float)


def _grid_posterior(X, n=240):
    """Exact posterior mean and sd of b = A[0, 1] and of the free rate, by quadrature on a (b, rate) grid."""
    x = X[:, 0]
    s = (np.arange(n) + 0.5) / n  # b / 0.8
    rate = np.linspace(0.02, 14.0, 2 * n)
    S, L = np.meshgrid(s, rate, indexing="ij")
    G = S.size
    A = np.broadcast_to(np.nan_to_num(_A), (G, 3, 3)).copy()
    A[:, 0, 1], A[:, 0, 2] = 0.8 * S.ravel(), 0.8 * (1.0 - S.ravel())
    lam = np.stack([np.full(G, 1.0), L.ravel(), np.full(G, 8.0)], axis=1)
    logf = x[:, None, None] * np.log(lam)[None] - lam[None] - gammaln(x + 1.0)[:, None, None]
    with np.errstate(divide="ignore"):
        la, logA = np.log(_PI)[None] + logf[0], np.log(A)
    for t in range(1, x.size):
        la = logsumexp(la[:, :, None] + logA, axis=1) + logf[t]
    lp = (logsumexp(la, axis=1).reshape(S.shape) + (_ALPHA[0, 1] - 1) * np.log(S)
          + (_ALPHA[0, 2] - 1) * np.log1p(-S) + (_SHAPE - 1) * np.log(L) - _RATE * L)
    w = np.exp(lp - lp.max())
    w /= w.sum()
    assert w[:, -1].sum() < 1e-8 and w[:, 0].sum() < 1e-8  # the rate grid holds the posterior
    out = {}
    for name, v in (("b", 0.8 * S), ("rate", L)):
        mean = (w * v).sum()
        out[name] = (mean, np.sqrt((w * (v - mean) ** 2).sum()))
    return out


@pytest.mark.slow
def test_nuts_with_held_entries_matches_the_exact_posterior():
    # Free: b = A[0, 1] (with A[0, 2] = 0.8 - b; A[0, 0] = 0.2 held) and the middle rate; everything else held.
    # Exact posterior by quadrature on a 240 x 480 grid under the priors the sampler uses: Beta(2, 4) on b / 0.8
    # (the Dirichlet(1, 2, 4) row given A[0, 0]) and Gamma(2, 0.5) on the rate.
    # Measured (seeded): z = -1.36 / 0.90 (mean / sd of b), -1.46 / 0.34 (rate), bulk ESS 1130-1370 of 2000.
    # Dropping the stick-breaking log-Jacobian of the partly held row gives z = -7.1 / 8.0 on b; dropping the exp
    # Jacobian of the free rate gives z = -5.9 on its mean.
    X = _three_state_counts()
    exact = _grid_posterior(X)
    m = ps.PoissonHMM(3, sampler="nuts", fixed={"startprob": _PI, "transmat": _A, "lambdas": _LAM},
                      prior={"transmat": _ALPHA, "rate_shape": _SHAPE, "rate_rate": _RATE},
                      n_chains=4, n_draws=500, n_warmup=300, random_state=0).fit(X)
    assert np.all(m.draws_["transmat"][..., 1:, :] == _A[1:]) and np.all(m.draws_["transmat"][..., 0, 0] == 0.2)
    assert not m.sample_stats_["diverging"].any()
    for name, draws in (("b", m.draws_["transmat"][..., 0, 1]), ("rate", m.draws_["lambdas"][..., 1, 0])):
        z = _z_mean_sd(draws, *exact[name])
        assert max(abs(z[0]), abs(z[1])) < 4.0, (name, z)


# -- agreement with the Gibbs sampler -------------------------------------------------------------------------------
def _assert_engines_agree(a, b, names, z_max=4.0):
    """Posterior means of every free scalar within ``z_max`` standard errors (each fit's ESS); returns the worst."""
    worst = 0.0
    for name in names:
        x, y = (m.draws_[name].reshape(m.draws_[name].shape[:2] + (-1,)) for m in (a, b))
        for j in range(x.shape[-1]):
            if np.ptp(x[..., j]) == 0 and np.ptp(y[..., j]) == 0:
                assert np.all(x[..., j] == y[0, 0, j])  # held in both
                continue
            se = np.sqrt(x[..., j].var() / _ess(x[..., j]) + y[..., j].var() / _ess(y[..., j]))
            z = (x[..., j].mean() - y[..., j].mean()) / se
            assert abs(z) < z_max, (name, j, z)
            worst = max(worst, abs(z))
    return worst


@pytest.mark.slow
def test_nuts_agrees_with_gibbs_on_a_left_to_right_poisson_hmm_with_held_entries():
    # Structural zeros below the diagonal (topology), startprob held at [1, 0, 0], A[0, 2] held at 0.05 and a
    # non-uniform transmat prior: both engines draw each row's free entries from Dirichlet(alpha_free) scaled to
    # the mass left. Measured (seeded): largest |z| 0.87 over the 7 free scalars. Scoring each row's free entries
    # with the row's leading concentrations (alpha[:f] instead of alpha[free]) gives |z| = 12.5 on A[1, 1].
    rng = np.random.default_rng(4)
    A = np.array([[0.8, 0.15, 0.05], [0.0, 0.85, 0.15], [0.0, 0.0, 1.0]])
    seqs = []
    for _ in range(6):
        z = [0]
        for _ in range(24):
            z.append(rng.choice(3, p=A[z[-1]]))
        seqs.append(rng.poisson(np.array([1.0, 5.0, 12.0])[z]))
    X = np.concatenate(seqs).reshape(-1, 1).astype(float)
    kw = {"topology": "left-to-right", "fixed": {"transmat": [[np.nan, np.nan, 0.05], [np.nan] * 3, [np.nan] * 3]},
          "prior": {"transmat": [[2.0, 1.5, 3.0], [1.0, 1.5, 2.5], [1.0, 1.0, 1.0]]}, "n_chains": 4,
          "random_state": 0}
    gibbs = ps.PoissonHMM(3, sampler="gibbs", n_draws=2000, n_warmup=300, **kw).fit(X, lengths=[25] * 6)
    nuts = ps.PoissonHMM(3, sampler="nuts", n_draws=400, n_warmup=200, **kw).fit(X, lengths=[25] * 6)
    A_draws = nuts.draws_["transmat"]
    assert np.all(A_draws[..., 0, 2] == 0.05) and np.all(A_draws[..., 1, 0] == 0)
    assert np.all(A_draws[..., 2, :] == [0.0, 0.0, 1.0])
    assert _assert_engines_agree(gibbs, nuts, ("startprob", "transmat", "lambdas")) < 4.0


@pytest.mark.slow
def test_nuts_agrees_with_gibbs_on_categorical_emission_rows_with_structural_zeros():
    # emissionprob rows with structural zeros and a held 0.1, left-to-right with bandwidth 1, non-uniform symbol
    # concentrations. Measured (seeded): largest |z| 2.5 over the 11 free scalars. Scoring the free entries with
    # the row's leading concentrations (alpha[:f]) gives |z| = 12.5 on emissionprob[1, 1].
    rng = np.random.default_rng(6)
    A = np.array([[0.85, 0.15, 0.0], [0.0, 0.85, 0.15], [0.0, 0.0, 1.0]])
    B = np.array([[0.7, 0.3, 0.0, 0.0], [0.1, 0.5, 0.4, 0.0], [0.0, 0.1, 0.3, 0.6]])
    seqs = []
    for _ in range(6):
        z = [0]
        for _ in range(24):
            z.append(rng.choice(3, p=A[z[-1]]))
        seqs.append([rng.choice(4, p=B[k]) for k in z])
    X = np.concatenate(seqs).reshape(-1, 1)
    held = np.array([[np.nan, np.nan, 0.0, 0.0], [0.1, np.nan, np.nan, 0.0], [0.0, np.nan, np.nan, np.nan]])
    kw = {"topology": "left-to-right", "bandwidth": 1, "fixed": {"emissionprob": held},
          "prior": {"emissionprob": [1.0, 2.0, 1.5, 3.0], "transmat": 2.0}, "n_chains": 4, "random_state": 0}
    gibbs = ps.CategoricalHMM(3, sampler="gibbs", n_draws=2000, n_warmup=300, **kw).fit(X, lengths=[25] * 6)
    nuts = ps.CategoricalHMM(3, sampler="nuts", n_draws=400, n_warmup=200, **kw).fit(X, lengths=[25] * 6)
    given = ~np.isnan(held)
    assert np.all(nuts.draws_["emissionprob"][..., given] == held[given])
    assert _assert_engines_agree(gibbs, nuts, ("startprob", "transmat", "emissionprob")) < 4.0


@pytest.mark.slow
def test_nuts_agrees_with_gibbs_on_held_gaussian_mean_entries():
    # A held mean drops its prior term, so its variance has the inverse-gamma prior alone (the Gibbs conditional).
    # A strong mean prior (mean_precision=2) far from the held values makes keeping that term visible.
    # Measured (seeded): largest |z| 1.8; keeping the held means' prior terms in NUTS gives |z| = 61 on covars[0, 0].
    rng = np.random.default_rng(5)
    X = np.concatenate([rng.normal([0, 0], [1.0, 0.5], (40, 2)), rng.normal([4, 3], [0.7, 1.5], (40, 2))])
    kw = {"fixed": {"means": [[0.0, np.nan], [np.nan, 3.0]], "startprob": [1.0, 0.0]},
          "prior": {"mean_precision": 2.0, "mean": [-3.0, 6.0]}, "n_chains": 4, "random_state": 0}
    gibbs = ps.GaussianHMM(2, sampler="gibbs", n_draws=2000, n_warmup=300, **kw).fit(X)
    nuts = ps.GaussianHMM(2, sampler="nuts", n_draws=400, n_warmup=200, **kw).fit(X)
    assert np.all(nuts.draws_["means"][..., 0, 0] == 0.0) and np.all(nuts.draws_["means"][..., 1, 1] == 3.0)
    assert _assert_engines_agree(gibbs, nuts, ("means", "covars", "transmat")) < 4.0
