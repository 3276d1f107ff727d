"""RDPG: Procrustes, the spectral embedding, the position posterior against exact answers and known truth."""

import warnings

import numpy as np
import pytest
from scipy import stats

import probspace
from probspace import RDPG
from probspace.inference._rdpg import (
    EPS,
    adjacency_spectral_embedding,
    edge_probabilities,
    orthogonal_procrustes,
    procrustes_align,
    sample_graphs,
)
from probspace.posteriors import Empirical
from probspace.testing import parametrize_with_model_checks


@parametrize_with_model_checks([RDPG(), RDPG(n_components=1)])
def test_model_conformance(model, check):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=UserWarning)  # ConvergenceWarning on the suite's short chains
        check()


def _positions(rng, n, d=2):
    """True positions spread over the positive quadrant (dot products in about (0, 0.8))."""
    if d == 1:
        return rng.uniform(0.3, 0.9, size=(n, 1))
    angle = rng.uniform(0.0, np.pi / 2, n)
    radius = rng.uniform(0.5, 0.9, n)
    return np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])


def _graph(rng, Z):
    return sample_graphs(edge_probabilities(Z), rng).astype(float)


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(5)
    Z = _positions(rng, 60)
    A = _graph(rng, Z)
    model = RDPG(2, n_chains=3, n_draws=1000, n_warmup=1000, random_state=0).fit(A)
    return model, A, Z


# -- Procrustes and the spectral embedding ------------------------------------------------
@pytest.mark.parametrize("reflect", [False, True])
def test_procrustes_recovers_a_known_rotation_exactly(reflect):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    R, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    if (np.linalg.det(R) < 0) != reflect:
        R[:, 0] *= -1
    Y = X @ R
    np.testing.assert_allclose(orthogonal_procrustes(Y, X), R.T, atol=1e-12)
    np.testing.assert_allclose(procrustes_align(Y, X), X, atol=1e-12)
    # batched: each configuration gets its own rotation
    stack = np.stack([X @ R, X @ R.T, X])
    np.testing.assert_allclose(procrustes_align(stack, X), np.broadcast_to(X, stack.shape), atol=1e-12)


def test_procrustes_is_the_least_squares_rotation():
    rng = np.random.default_rng(1)
    X, ref = rng.normal(size=(30, 2)), rng.normal(size=(30, 2))
    best = np.sum((procrustes_align(X, ref) - ref) ** 2)
    for theta in np.linspace(0, 2 * np.pi, 721):
        c, s = np.cos(theta), np.sin(theta)
        for R in (np.array([[c, -s], [s, c]]), np.array([[c, s], [s, -c]])):
            assert best <= np.sum((X @ R - ref) ** 2) + 1e-12


def test_spectral_embedding_estimates_the_positions():
    rng = np.random.default_rng(2)
    Z = _positions(rng, 800)
    ase = adjacency_spectral_embedding(_graph(rng, Z), 2)
    err = np.sqrt(np.mean(np.sum((procrustes_align(ase, Z) - Z) ** 2, axis=1)))
    assert err < 0.1, err
    dense = adjacency_spectral_embedding(_graph(rng, Z[:300]), 2)  # the dense eigensolver path (N <= 400)
    assert np.sqrt(np.mean(np.sum((procrustes_align(dense, Z[:300]) - Z[:300]) ** 2, axis=1))) < 0.15


# -- the posterior against an exact answer ----------------------------------------------------
def test_tiny_posterior_matches_numerical_integration():
    """Three nodes on a path, one latent dimension: aligned posterior moments against a grid over R^3."""
    A = np.array([[0, 1, 0], [1, 0, 1], [0, 1, 0]], dtype=float)
    model = RDPG(1, n_chains=4, n_draws=6000, n_warmup=1000, random_state=0).fit(A)
    ref = model.ase_[:, 0]
    grid = np.linspace(-3.5, 3.5, 281)
    h = grid[1] - grid[0]
    x0, x1, x2 = np.meshgrid(grid, grid, grid, indexing="ij", sparse=True)

    def p(u, v):
        return np.clip(u * v, EPS, 1 - EPS)

    log_post = (np.log(p(x0, x1)) + np.log(p(x1, x2)) + np.log1p(-p(x0, x2))
                - 0.5 * (x0**2 + x1**2 + x2**2))
    inside = ((x0 * x1 >= 0) & (x0 * x1 <= 1) & (x1 * x2 >= 0) & (x1 * x2 <= 1)  # the support: products in [0, 1]
              & (x0 * x2 >= 0) & (x0 * x2 <= 1))
    log_post = np.where(inside, log_post, -np.inf)
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    sign = np.sign(x0 * ref[0] + x1 * ref[1] + x2 * ref[2])  # 1-D Procrustes onto the ASE: a sign flip
    exact_mean = np.array([np.sum(w * sign * x) for x in (x0, x1, x2)])
    exact_var = np.array([np.sum(w * x**2) for x in (x0, x1, x2)]) - exact_mean**2
    assert h < 0.03

    post = model.posterior(A)
    draws = post.draws[..., 0]  # (chains, draws, 3)
    import arviz as az

    ess = az.ess(az.convert_to_dataset({"x": draws})).x.values
    ess2 = az.ess(az.convert_to_dataset({"x": (draws - exact_mean) ** 2})).x.values
    se_mean = np.sqrt(exact_var / ess)
    z_mean = np.abs(post.mean[:, 0] - exact_mean) / se_mean
    sq = (draws - exact_mean) ** 2
    z_var = np.abs(sq.mean(axis=(0, 1)) - exact_var) / (sq.std(axis=(0, 1)) / np.sqrt(ess2))
    # 5 standard errors (p ~ 6e-7 each): a wrong sampler is far outside, chance almost never.
    assert np.all(z_mean < 5), (post.mean[:, 0], exact_mean, z_mean)
    assert np.all(z_var < 5), (post.variance[:, 0], exact_var, z_var)


# -- coverage of true positions ---------------------------------------------------------------
def _coverage(n_graphs, n_nodes, seed, level=0.9):
    rng = np.random.default_rng(seed)
    covered = total = ase_inside = 0
    for g in range(n_graphs):
        Z = _positions(rng, n_nodes)
        A = _graph(rng, Z)
        model = RDPG(2, n_chains=2, n_draws=500, n_warmup=500, random_state=g).fit(A)
        post = model.posterior(A)
        regions = post.credible_region(level)
        truth = procrustes_align(Z, post.mean)  # the truth in the posterior's (ASE-aligned) frame
        covered += int(regions.contains(truth).sum())
        ase_inside += int(regions.contains(model.ase_).sum())
        total += n_nodes
    return covered, ase_inside, total


def _assert_calibrated(covered, total, level=0.9):
    pvalue = stats.binomtest(covered, total, level).pvalue
    assert pvalue > 1e-6, f"{covered}/{total} = {covered / total:.3f} of true positions inside {level:.0%} regions"


def test_credible_regions_cover_true_positions():
    covered, ase_inside, total = _coverage(3, 100, seed=10)
    _assert_calibrated(covered, total)
    assert ase_inside / total > 0.7, ase_inside / total  # the ASE lies mostly inside the posterior's regions


@pytest.mark.slow
def test_credible_regions_cover_true_positions_on_many_graphs():
    covered, _, total = _coverage(20, 100, seed=11)
    _assert_calibrated(covered, total)
    covered, _, total = _coverage(4, 400, seed=12)
    _assert_calibrated(covered, total)


# -- posterior object, predictive quantities, generative samples --------------------------------------
def test_posterior_is_the_aligned_draws_with_chains(fitted):
    model, A, _ = fitted
    post = model.posterior(A)
    assert isinstance(post, Empirical) and post.method == "mcmc"
    assert post.draws.shape == (3, 1000, 60, 2) and post.batch_shape == (60,) and post.event_shape == (2,)
    assert post.sample((), random_state=0).shape == (60, 2)
    assert post.sample((2, 4), random_state=0).shape == (2, 4, 60, 2)
    np.testing.assert_array_equal(post.mean, model.positions_)
    np.testing.assert_array_equal(model.embed(A), model.positions_)
    # draws are aligned: each is its own best rotation onto the reference
    flat = post.draws.reshape(-1, 60, 2)
    np.testing.assert_allclose(orthogonal_procrustes(flat[:50], model.ase_), np.broadcast_to(np.eye(2), (50, 2, 2)),
                               atol=1e-8)
    lo, hi = post.interval(0.9)
    inside = ((flat >= lo) & (flat <= hi)).mean(axis=0)
    assert np.all(np.abs(inside - 0.9) < 0.01)
    regions = post.credible_region(0.9)
    assert np.all(np.abs(regions.contains(flat).mean(axis=0) - 0.9) < 0.01)
    assert regions.boundary(20).shape == (60, 20, 2)
    with pytest.raises(NotImplementedError, match="no log_prob"):
        post.log_prob(post.sample(2))
    with pytest.raises(NotImplementedError, match="no entropy"):
        post.entropy()
    with pytest.raises(ValueError, match="level"):
        post.credible_region(1.5)


def test_edge_probabilities_are_the_posterior_predictive(fitted):
    model, A, _ = fitted
    P = model.edge_probabilities_
    np.testing.assert_array_equal(P, P.T)
    assert np.all(np.diag(P) == 0)
    from_draws = edge_probabilities(model.draws_["position"].reshape(-1, 60, 2)).mean(axis=0)
    assert np.max(np.abs(P - from_draws)) < 0.03  # two ergodic averages of the same quantity
    ll = model.log_likelihood(A)
    with np.errstate(divide="ignore"):  # the zero diagonal, dropped below
        expected = np.where(A == 1, np.log(P), np.log1p(-P))
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(ll, expected.sum(axis=1))


def test_held_out_edges_are_predicted_better_than_the_plug_in_embedding():
    """A second graph on the same nodes: posterior predictive beats the ASE plug-in and a density-only model."""
    rng = np.random.default_rng(3)
    Z = _positions(rng, 80)
    A_fit, A_new = _graph(rng, Z), _graph(rng, Z)
    model = RDPG(2, n_chains=2, n_draws=400, n_warmup=400, random_state=0).fit(A_fit)
    held_out = model.log_likelihood(A_new).sum() / 2
    iu = np.triu_indices(80, 1)
    P_ase = np.clip(model.ase_ @ model.ase_.T, EPS, 1 - EPS)[iu]
    plug_in = np.sum(np.where(A_new[iu] == 1, np.log(P_ase), np.log1p(-P_ase)))
    density = A_fit[iu].mean()
    null = np.sum(np.where(A_new[iu] == 1, np.log(density), np.log1p(-density)))
    assert held_out > plug_in and held_out > null, (held_out, plug_in, null)


def test_sample_generates_graphs_from_the_fitted_positions(fitted):
    model, _, _ = fitted
    A, Z = model.sample(300, random_state=0)
    assert A.shape == (300, 300) and Z.shape == (300, 2)
    np.testing.assert_array_equal(A, A.T)
    assert set(np.unique(A)) <= {0.0, 1.0} and np.all(np.diag(A) == 0)
    P = edge_probabilities(Z)[np.triu_indices(300, 1)]
    edges = A[np.triu_indices(300, 1)].sum()
    assert abs(edges - P.sum()) < 5 * np.sqrt(np.sum(P * (1 - P)))
    np.testing.assert_array_equal(model.sample(10, random_state=1)[0], model.sample(10, random_state=1)[0])


# -- bad input, self-loops --------------------------------------------------------------------
def test_bad_adjacency_matrices_raise_named_value_errors(fitted):
    model, A, _ = fitted
    fresh = RDPG(n_chains=1, n_draws=5, n_warmup=5, random_state=0)
    asym = A.copy()
    asym[0, 1], asym[1, 0] = 1, 0
    weighted = A * 2
    half = A.copy()
    half[0, 1] = half[1, 0] = 0.5
    nan = A.copy()
    nan[0, 1] = nan[1, 0] = np.nan
    inf = A.copy()
    inf[0, 1] = np.inf
    cases = {"must be square": A[:, :-1], "must be symmetric": asym, "only 0 and 1": weighted,
             "X\\[0, 1\\] = 0.5": half, "NaN": nan, "infinity": inf, "2D array": A[0], "minimum of 2": A[:1, :1]}
    for match, bad in cases.items():
        with pytest.raises(ValueError, match=match):
            fresh.fit(bad)
    with pytest.raises(ValueError, match="n_components=2 must be below the number of nodes"):
        fresh.fit(np.array([[0.0, 1.0], [1.0, 0.0]]))
    for method in ("posterior", "log_likelihood", "embed"):
        with pytest.raises(ValueError, match="60 features"):  # both node counts named
            getattr(model, method)(np.zeros((61, 61)))
        with pytest.raises(ValueError, match="symmetric"):
            getattr(model, method)(asym)
        with pytest.raises(ValueError, match="only 0 and 1"):
            getattr(model, method)(weighted)
        with pytest.raises(ValueError, match="must be square"):
            getattr(model, method)(A[:-1])
    other = A.copy()
    other[0, 1] = other[1, 0] = 1 - A[0, 1]
    with pytest.raises(ValueError, match="X must be the fitted graph.*differs from it in 1 dyads"):
        model.posterior(other)
    assert np.all(np.isfinite(model.log_likelihood(other)))  # another graph on the same nodes is scored
    with pytest.raises(probspace.InvalidParameterError, match="prior_scale"):
        RDPG(prior_scale=0).fit(A)
    with pytest.raises(probspace.InvalidParameterError, match="sampler"):
        RDPG(sampler="nuts").fit(A)


def test_self_loops_are_ignored(fitted):
    _, A, _ = fitted
    loops = A.copy()
    np.fill_diagonal(loops, 1.0)
    a = RDPG(n_chains=1, n_draws=20, n_warmup=20, random_state=0).fit(A)
    b = RDPG(n_chains=1, n_draws=20, n_warmup=20, random_state=0).fit(loops)
    np.testing.assert_array_equal(a.draws_["position"], b.draws_["position"])
    np.testing.assert_array_equal(b.posterior(A).mean, b.posterior(loops).mean)
    np.testing.assert_array_equal(a.log_likelihood(A), b.log_likelihood(loops))


# -- persistence, ArviZ, progress ------------------------------------------------------------------
def test_save_load_round_trip(fitted, tmp_path):
    model, A, _ = fitted
    path = tmp_path / "rdpg.npz"
    model.save(path)
    loaded = probspace.load(path)
    assert isinstance(loaded, RDPG) and loaded.get_params() == model.get_params()
    for name in ("ase_", "positions_", "edge_probabilities_", "adjacency_", "step_size_", "history_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    np.testing.assert_array_equal(loaded.draws_["position"], model.draws_["position"])
    np.testing.assert_array_equal(loaded.posterior(A).sample(4, random_state=1),
                                  model.posterior(A).sample(4, random_state=1))
    np.testing.assert_array_equal(loaded.log_likelihood(A), model.log_likelihood(A))


def test_to_arviz_has_chains_for_arviz_defaults(fitted):
    import arviz as az

    model, A, _ = fitted
    idata = model.to_arviz(A, n_samples=100, random_state=0)
    position = idata["latent_posterior"]["position"]
    assert idata["posterior"]["position_mean"].dims == ("chain", "draw", "latent_dim")
    assert position.dims == ("chain", "draw", "node", "latent_dim") and position.shape == (3, 100, 60, 2)
    assert idata["posterior"].attrs["inference_method"] == "mcmc"
    assert idata["posterior_predictive"]["x"].shape == (3, 100, 60, 60)
    assert idata["log_likelihood"]["x"].shape == (3, 100, 60)
    assert set(idata["sample_stats"].data_vars) >= {"acceptance_rate", "total_log_likelihood"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(idata, group="latent_posterior", var_names=["position"])
        ess = az.ess(idata["latent_posterior"], var_names=["position"])["position"]
        rhat = az.rhat(idata["latent_posterior"], var_names=["position"])["position"]
        loo = az.loo(idata)
    assert len(summary) == 120 and np.all(np.isfinite(summary["r_hat"]))
    assert ess.shape == (60, 2) and float(ess.min()) > 5
    assert float(rhat.max()) < 1.2
    assert np.isfinite(float(loo["elpd_loo"]))
    # the pointwise log-likelihood of each draw is the node's dyad log-likelihood at that draw
    first = model.draws_["position"][0, 0]
    P = edge_probabilities(first)
    expected = np.where(A == 1, np.log(np.where(P > 0, P, 1)), np.log1p(-P))
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(idata["log_likelihood"]["x"].values[0, 0], expected.sum(axis=1))


def test_large_graphs_leave_out_replicated_adjacency_matrices(monkeypatch, fitted):
    import probspace.models._rdpg as module

    model, A, _ = fitted
    monkeypatch.setattr(module, "_PREDICTIVE_MAX", 1000)
    idata = model.to_arviz(A, n_samples=5, random_state=0)
    assert "posterior_predictive" not in idata.groups()


def test_progress_bar_and_refit_replay(capsys):
    rng = np.random.default_rng(4)
    A = _graph(rng, _positions(rng, 25))
    a = RDPG(n_chains=2, n_draws=60, n_warmup=60, random_state=3, progress=True).fit(A)
    b = RDPG(n_chains=2, n_draws=60, n_warmup=60, random_state=3).fit(A)
    assert "RDPG" in capsys.readouterr().err
    np.testing.assert_array_equal(a.draws_["position"], b.draws_["position"])
