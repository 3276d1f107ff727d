"""AutoregressiveHMM(sampler="gibbs") (issue #17): the conjugate MNIW step against its closed form, agreement with EM,
save/load, ArviZ, bad priors."""

import warnings

import numpy as np
import pytest
from scipy import stats

from probspace import AutoregressiveHMM, load
from probspace.inference import _hmm
from probspace.models.hmm._autoregressive import _ar_conformance_data


def _ar_series(coef, icpt, cov, n, rng):
    """One VAR(p) series: ``coef`` (D, D * p), ``icpt`` (D,), ``cov`` (D, D)."""
    D = len(icpt)
    p = coef.shape[1] // D
    chol = np.linalg.cholesky(cov)
    X = np.zeros((n + 50, D))
    for t in range(p, n + 50):
        lags = np.concatenate([X[t - j] for j in range(1, p + 1)])
        X[t] = coef @ lags + icpt + chol @ rng.standard_normal(D)
    return X[50:]


def _centred(A, b, c, p):
    """``[A^T; (b + A [c; ...; c] - c)^T]``: the regression of ``x - c`` on centred lags (the prior's coordinates)."""
    A, b = np.asarray(A, dtype=float), np.asarray(b, dtype=float)
    return np.concatenate([np.swapaxes(A, -1, -2), (b + A @ np.tile(c, p) - c)[..., None, :]], axis=-2)


def _closed_form(X, p, prior):
    """The matrix-normal-inverse-Wishart posterior of the centred ``B`` and ``Sigma`` given every frame, by hand."""
    c = prior["centre"]
    np.testing.assert_allclose(c, X[p:].mean(axis=0))
    Y = X[p:] - c
    Z = np.column_stack([np.hstack([X[p - j:len(X) - j] - c for j in range(1, p + 1)]), np.ones(len(Y))])
    M0 = _centred(prior["coefs_mean"], prior["intercepts_mean"], c, p)
    P0 = prior["regression_precision"]
    Pn = P0 + Z.T @ Z
    Vn = np.linalg.inv(Pn)
    Mn = Vn @ (P0 @ M0 + Z.T @ Y)
    psi = prior["scale"] + Y.T @ Y + M0.T @ P0 @ M0 - Mn.T @ Pn @ Mn
    return Mn, Vn, prior["dof"] + len(Y), psi


INFORMATIVE = {"regression_precision": 20.0, "coefs_mean": 0.5, "intercepts_mean": -1.0, "dof": 6.0, "scale": 0.2}


@pytest.mark.parametrize("D, p, prior", [(1, 2, None), (2, 1, None), (1, 1, INFORMATIVE), (2, 2, INFORMATIVE)])
def test_one_state_draws_follow_the_closed_form_posterior(D, p, prior):
    """K=1: no path uncertainty, each sweep an exact MNIW draw. KS tests of every marginal: t for the regression
    entries (dof nun - D + 1, scale^2 = Vn_ee Psin_dd / dof), inverse-gamma for the noise variances. The default
    prior, and an informative one worth 20 frames centred away from the data (its terms then matter)."""
    rng = np.random.default_rng(1)
    coef = {(1, 2): [[0.5, -0.3]], (2, 1): [[0.6, 0.2], [-0.1, 0.4]], (1, 1): [[0.7]],
            (2, 2): [[0.4, 0.1, 0.2, 0.0], [-0.1, 0.3, 0.0, 0.2]]}[D, p]
    coef = np.array(coef)
    cov = np.array([[0.5]]) if D == 1 else np.array([[0.5, 0.2], [0.2, 0.3]])
    X = _ar_series(coef, np.full(D, 1.0), cov, 60, rng)
    m = AutoregressiveHMM(1, order=p, sampler="gibbs", n_chains=2, n_draws=1500, n_warmup=10, prior=prior,
                          random_state=0).fit(X)
    Mn, Vn, nun, psi = _closed_form(X, p, m.prior_)
    B = _centred(m.draws_["coefs"][:, :, 0], m.draws_["intercepts"][:, :, 0], m.prior_["centre"], p)
    B = B.reshape(-1, D * p + 1, D)
    S = m.draws_["covars"][:, :, 0].reshape(-1, D, D)
    dof = nun - D + 1
    pvals = []
    for e in range(D * p + 1):
        for d in range(D):
            scale = np.sqrt(Vn[e, e] * psi[d, d] / dof)
            pvals.append(stats.kstest(B[:, e, d], stats.t(dof, loc=Mn[e, d], scale=scale).cdf).pvalue)
            # z-test of the mean: posterior sd of the mean over 3000 independent draws
            sd = scale * np.sqrt(dof / (dof - 2))
            assert abs(B[:, e, d].mean() - Mn[e, d]) < 5 * sd / np.sqrt(len(B))
    for d in range(D):
        pvals.append(stats.kstest(S[:, d, d], stats.invgamma(0.5 * dof, scale=0.5 * psi[d, d]).cdf).pvalue)
        mean = psi[d, d] / (nun - D - 1)
        sd = np.sqrt(2 * mean**2 / (nun - D - 3))
        assert abs(S[:, d, d].mean() - mean) < 5 * sd / np.sqrt(len(S))
    assert min(pvals) > 1e-6, pvals


def test_two_states_agree_with_em_on_long_data():
    """K=2 on 1500 frames: the posterior is concentrated near the MLE, so the Gibbs posterior mean of every
    regression parameter lies within 4 posterior sd (plus the EM/posterior-mean gap of order 1/n) of EM's."""
    rng = np.random.default_rng(3)
    lengths = np.array([800, 700])
    X = []
    coef, icpt = np.array([0.8, -0.6]), np.array([0.5, 3.0])
    for n in lengths:
        z = _hmm.sample_chain(np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.1, 0.9]]), n, rng)
        x, prev = np.empty((n, 1)), 0.0
        for t in range(n):
            prev = coef[z[t]] * prev + icpt[z[t]] + 0.4 * rng.standard_normal()
            x[t, 0] = prev
        X.append(x)
    X = np.vstack(X)
    em = AutoregressiveHMM(2, random_state=0).fit(X, lengths=lengths)
    g = AutoregressiveHMM(2, sampler="gibbs", n_chains=2, n_draws=400, n_warmup=100, random_state=0).fit(
        X, lengths=lengths)
    order = np.argsort(em.coefs_[:, 0, 0] * X.mean() + em.intercepts_[:, 0])  # EM's states in the Gibbs order
    for name in ("coefs", "intercepts", "covars", "transmat"):
        draws = g.draws_[name].reshape((-1,) + g.draws_[name].shape[2:])
        ref = getattr(em, name + "_")[order]
        if name == "transmat":
            ref = ref[:, order]
        sd = draws.std(axis=0)
        assert np.all(np.abs(draws.mean(axis=0) - ref) < 4 * sd + 1e-3), (name, draws.mean(axis=0), ref, sd)
    assert np.all(np.abs(g.coefs_[:, 0, 0] - [-0.6, 0.8]) < 0.05)
    assert float(np.max(np.abs(g.sample_stats_["lp"][:, 0] - g.sample_stats_["lp"][:, -1]))) < 50


def _small_fit(**kw):
    X, L = _ar_conformance_data(np.random.default_rng(0))
    m = AutoregressiveHMM(2, sampler="gibbs", n_chains=2, n_draws=60, n_warmup=40, random_state=0, **kw)
    return m.fit(X, lengths=L), X, L


def test_reproducible_save_load_and_arviz(tmp_path):
    import arviz as az

    m, X, L = _small_fit()
    again, _, _ = _small_fit()
    for k, v in m.draws_.items():
        np.testing.assert_array_equal(v, again.draws_[k])
    m.save(tmp_path / "m")
    back = load(tmp_path / "m")
    for k, v in m.draws_.items():
        np.testing.assert_array_equal(v, back.draws_[k])
    np.testing.assert_allclose(back.log_likelihood(X, lengths=L), m.log_likelihood(X, lengths=L))
    np.testing.assert_allclose(back.coefs_, m.draws_["coefs"].mean(axis=(0, 1)))
    idata = m.to_arviz(X, lengths=L)
    assert idata.posterior["coefs"].shape[:2] == (2, 60)
    assert np.all(np.isfinite(az.rhat(idata, var_names=["coefs", "intercepts"]).to_array()))
    assert np.all(az.ess(idata, var_names=["coefs"]).to_array() > 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # Pareto-k warning on 120 frames and 120 draws
        loo = az.loo(idata)
    assert np.isfinite(loo.elpd_loo if hasattr(loo, "elpd_loo") else loo["elpd_loo"])
    Xf, Zf = m.forecast(X, 5, n_samples=7, lengths=L, random_state=0)
    assert Xf.shape == (7, 5, 1) and Zf.shape == (7, 5)
    assert m.sample(30, random_state=0)[0].shape == (30, 1)


def test_held_covariances_and_regression():
    pdist = pytest.importorskip("pyro.distributions")
    import torch

    cov = torch.tensor([[[0.09]], [[0.09]]], dtype=torch.float64)
    m, _, _ = _small_fit(prior={"covars": pdist.Delta(cov, event_dim=3)})
    np.testing.assert_array_equal(m.draws_["covars"], 0.09)
    held = {"coefs": pdist.Delta(torch.tensor([[[-0.6]], [[0.8]]], dtype=torch.float64), event_dim=3),
            "intercepts": pdist.Delta(torch.tensor([[3.0], [0.5]], dtype=torch.float64), event_dim=2)}
    m, _, _ = _small_fit(prior=held)
    np.testing.assert_array_equal(m.draws_["coefs"][:, :, :, 0, 0], np.broadcast_to([-0.6, 0.8], (2, 60, 2)))
    assert abs(np.sqrt(m.covars_.ravel()) - 0.3).max() < 0.1
    with pytest.raises(ValueError, match="'coefs' and 'intercepts' together"):
        _small_fit(prior={"coefs": held["coefs"]})


@pytest.mark.parametrize("prior, match", [
    ({"typo": 1.0}, "unknown entries"),
    ({"dof": -1.0}, "dof"),
    ({"dof": np.inf}, "finite"),
    ({"regression_precision": -2.0}, "regression_precision"),
    ({"regression_precision": np.eye(3)}, r"\(2, 2\)"),
    ({"scale": [[1.0, 2.0], [0.0, 1.0]]}, "scale"),
    ({"coefs_mean": [1.0, 2.0, 3.0]}, "coefs_mean"),
    ({"intercepts_mean": np.nan}, "intercepts_mean"),
    ({"coefs": 1.0}, "distribution over the coefs"),
])
def test_bad_prior(prior, match):
    with pytest.raises(ValueError, match=match):
        _small_fit(prior=prior)


def test_bad_sampler_and_prior_without_sampler():
    X, L = _ar_conformance_data(np.random.default_rng(0))
    with pytest.raises(ValueError, match="supports sampler"):
        AutoregressiveHMM(2, sampler="nuts").fit(X, lengths=L)
    with pytest.raises(ValueError, match="applies only to MCMC"):
        AutoregressiveHMM(2, prior={"dof": 3.0}).fit(X, lengths=L)


def _log_evidence(Y, Z, prior):
    """log p(Y | Z) of Bayesian multivariate regression under the MNIW prior (closed form)."""
    from scipy.special import multigammaln

    n, D = Y.shape
    M0 = _centred(prior["coefs_mean"], prior["intercepts_mean"], prior["centre"], 1)
    P0, nu0, psi0 = prior["regression_precision"], prior["dof"], prior["scale"]
    Pn = P0 + Z.T @ Z
    Mn = np.linalg.solve(Pn, P0 @ M0 + Z.T @ Y)
    R = Y - Z @ Mn
    psin = psi0 + R.T @ R + (Mn - M0).T @ P0 @ (Mn - M0)
    logdet = lambda a: np.linalg.slogdet(a)[1]  # noqa: E731
    return (-0.5 * n * D * np.log(np.pi) + 0.5 * D * (logdet(P0) - logdet(Pn)) + multigammaln(0.5 * (nu0 + n), D)
            - multigammaln(0.5 * nu0, D) + 0.5 * nu0 * logdet(psi0) - 0.5 * (nu0 + n) * logdet(psin)), Mn


def test_two_states_tiny_series_match_enumeration_over_paths():
    """K=2, T=9, AR(1): the exact posterior by enumerating all 512 paths, each weighted by its Dirichlet-multinomial
    path prior times the MNIW evidence of every state's frames, then E[B | path] = Mn. Label-invariant sums over the
    states (sum_k a_k, sum_k b_k, sum_k Sigma_k) are compared with the Gibbs means: |gap| < 5 MC se (batch means)."""
    import itertools

    from scipy.special import gammaln

    rng = np.random.default_rng(5)
    x = np.empty(9)
    prev = 0.0
    for t, k in enumerate([0, 0, 0, 0, 1, 1, 1, 1, 1]):
        prev = (0.8 * prev + 0.3) if k == 0 else (-0.5 * prev + 3.0)
        prev += 0.3 * rng.standard_normal()
        x[t] = prev
    X = x[:, None]
    m = AutoregressiveHMM(2, sampler="gibbs", n_chains=4, n_draws=3000, n_warmup=300, random_state=0).fit(X)
    prior = m.prior_
    c = prior["centre"]
    Y, Z = X[1:] - c, np.column_stack([X[:-1] - c, np.ones(8)])
    alpha_pi, alpha_A = prior["startprob"], prior["transmat"]
    logw, sums = [], []
    for path in itertools.product(range(2), repeat=9):
        z = np.array(path)
        lp = np.log(alpha_pi[z[0]] / alpha_pi.sum())
        counts = np.zeros((2, 2))
        np.add.at(counts, (z[:-1], z[1:]), 1.0)
        for j in range(2):
            lp += gammaln(alpha_A[j].sum()) - gammaln(alpha_A[j].sum() + counts[j].sum()) + \
                (gammaln(alpha_A[j] + counts[j]) - gammaln(alpha_A[j])).sum()
        total = np.zeros(3)
        for k in range(2):
            sel = z[1:] == k
            ev, Mn = _log_evidence(Y[sel], Z[sel], prior)
            lp += ev
            # E[Sigma | path] = Psin / (nun - D - 1)
            R = Y[sel] - Z[sel] @ Mn
            M0 = _centred(prior["coefs_mean"], prior["intercepts_mean"], c, 1)
            psin = prior["scale"] + R.T @ R + (Mn - M0).T @ prior["regression_precision"] @ (Mn - M0)
            # E[a], E[b] = E[centred intercept] + c - E[a] c, E[Sigma] = Psin / (nun - D - 1)
            total += [Mn[0, 0], Mn[1, 0] + c[0] - Mn[0, 0] * c[0], psin[0, 0] / (prior["dof"] + sel.sum() - 2)]
        logw.append(lp)
        sums.append(total)
    w = np.exp(np.array(logw) - np.max(logw))
    exact = (w[:, None] * np.array(sums)).sum(0) / w.sum()
    d = m.draws_
    gibbs = np.stack([d["coefs"][..., 0, 0].sum(-1), d["intercepts"][..., 0].sum(-1),
                      d["covars"][..., 0, 0].sum(-1)], axis=-1)  # (chains, draws, 3)
    batches = gibbs.reshape(4 * 20, -1, 3).mean(axis=1)  # 80 batches of 150 draws
    se = batches.std(axis=0, ddof=1) / np.sqrt(len(batches))
    gap = np.abs(gibbs.mean(axis=(0, 1)) - exact)
    assert np.all(gap < 5 * se), (gibbs.mean(axis=(0, 1)), exact, se)


def test_a_large_offset_changes_only_the_intercepts():
    """The prior and the update work on centred regressors: X + 1e6 gives the same coefficients and noise draws
    (to rounding) and intercepts that reproduce the same predictions."""
    X, L = _ar_conformance_data(np.random.default_rng(0))
    kw = {"sampler": "gibbs", "n_chains": 1, "n_draws": 50, "n_warmup": 20, "random_state": 0}
    a = AutoregressiveHMM(2, **kw).fit(X, lengths=L)
    b = AutoregressiveHMM(2, **kw).fit(X + 1e6, lengths=L)
    np.testing.assert_allclose(b.draws_["coefs"], a.draws_["coefs"], atol=1e-6)
    np.testing.assert_allclose(b.draws_["covars"], a.draws_["covars"], rtol=1e-6)
    shift = 1e6 * (1 - a.draws_["coefs"][..., 0, 0])
    np.testing.assert_allclose(b.draws_["intercepts"][..., 0], a.draws_["intercepts"][..., 0] + shift, atol=1e-4)
