"""GeneratorPosterior: NUTS over the codes of any torch generator, against the exact PPCA posterior."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("pyro")
az = pytest.importorskip("arviz")

import probspace  # noqa: E402
from probspace import VAE, GeneratorPosterior  # noqa: E402
from probspace.posteriors import Empirical  # noqa: E402
from probspace.testing import parametrize_with_model_checks  # noqa: E402


# The recipe fits the class's own linear generator (probspace.models._generator._conformance_generator) on 8
# binary rows; the alternative settings add likelihood="bernoulli" with HMC (num_steps=4).
@parametrize_with_model_checks([GeneratorPosterior(),
                                GeneratorPosterior(likelihood="bernoulli", sampler="hmc", num_steps=5)])
def test_conformance(model, check):
    check()


def _linear(rng, d=2, D=5):
    W, mu = rng.normal(size=(D, d)), rng.normal(size=D)
    g = torch.nn.Linear(d, D).double()
    with torch.no_grad():
        g.weight.copy_(torch.as_tensor(W))
        g.bias.copy_(torch.as_tensor(mu))
    return g, W, mu


def _ppca_posterior(W, mu, sigma, x):
    """Exact posterior mean and covariance of z given the observed (non-NaN) entries of x."""
    seen = ~np.isnan(x)
    Wo = W[seen]
    M = Wo.T @ Wo + sigma**2 * np.eye(W.shape[1])
    return np.linalg.solve(M, Wo.T @ (x[seen] - mu[seen])), sigma**2 * np.linalg.inv(M)


def test_linear_gaussian_matches_exact_ppca_posterior():
    # row 0 complete, row 1 with two entries missing, row 2 with one entry seen: NaNs are summed out
    rng = np.random.default_rng(0)
    d, sigma = 2, 0.7
    g, W, mu = _linear(rng, d)
    X = rng.normal(size=(3, 5))
    X[1, [0, 3]] = np.nan
    X[2, 1:] = np.nan
    gp = GeneratorPosterior(g, n_components=d, noise_scale=sigma, n_chains=2, n_warmup=300, n_draws=1000,
                            random_state=0).fit(X)
    post = gp.posterior(X)
    assert isinstance(post, Empirical) and post.draws.shape == (2, 1000, 3, d)
    for i in range(X.shape[0]):
        exact_mean, exact_cov = _ppca_posterior(W, mu, sigma, X[i])
        draws = post.draws[:, :, i].reshape(-1, d)
        n_eff = max(float(np.min([az.ess(post.draws[:, :, i, j]) for j in range(d)])), 100.0)
        se_mean = np.sqrt(np.diag(exact_cov) / n_eff)
        assert np.all(np.abs(draws.mean(0) - exact_mean) < 5 * se_mean), (i, draws.mean(0), exact_mean)
        cov = np.cov(draws.T)
        var = np.diag(exact_cov)
        se_cov = np.sqrt((np.outer(var, var) + exact_cov**2) / n_eff)
        assert np.all(np.abs(cov - exact_cov) < 6 * se_cov), (i, cov, exact_cov)
    assert not gp.sample_stats_["diverging"].any()


def test_no_density_and_clear_errors():
    rng = np.random.default_rng(1)
    g, _, _ = _linear(rng)
    X = rng.normal(size=(2, 5))
    gp = GeneratorPosterior(g, n_warmup=30, n_draws=30, random_state=0).fit(X)
    post = gp.posterior(X)
    with pytest.raises(NotImplementedError, match="no density"):
        post.log_prob(post.mean)
    with pytest.raises(NotImplementedError, match="marginal"):
        gp.log_likelihood(X)
    lo, hi = post.interval(0.9)
    assert np.all(lo < post.mean) and np.all(post.mean < hi)
    Xs, Z = gp.sample(4, random_state=0)
    assert Xs.shape == (4, 5) and Z.shape == (4, 2)
    Z3 = GeneratorPosterior(g, prior_scale=3.0).fit(X).sample(4000, random_state=0)[1]
    assert abs(Z3.std() - 3.0) < 6 * 3.0 / np.sqrt(2 * Z3.size)  # the prior the posterior uses
    with pytest.raises(ValueError, match="prior_scale"):
        GeneratorPosterior(g, prior_scale=0.0).fit(X)
    with pytest.raises(ValueError, match="5 features, but X has 4"):
        GeneratorPosterior(g).fit(X[:, :4])
    with pytest.raises(ValueError, match="needs a generator"):
        GeneratorPosterior().fit(X)


def test_arviz_output_has_chains():
    rng = np.random.default_rng(2)
    g, _, _ = _linear(rng)
    X = rng.normal(size=(2, 5))
    gp = GeneratorPosterior(g, n_chains=2, n_warmup=50, n_draws=60, random_state=0).fit(X)
    data = gp.to_arviz(X, n_samples=60, random_state=0)
    latent = data["latent_posterior"]["z"]
    assert latent.shape == (2, 60, 2, 2)
    assert "sample_stats" in (data.groups() if callable(getattr(data, "groups", None)) else data.children)
    assert np.all(np.isfinite(np.asarray(az.rhat(data["latent_posterior"])["z"])))


def test_on_a_vae_decoder():
    rng = np.random.default_rng(3)
    X, _ = VAE._conformance_data(rng)
    vae = VAE(2, hidden_dims=(16,), max_epochs=5, batch_size=32, random_state=0).fit(X)
    gp = GeneratorPosterior(vae.module_.decode_raw, likelihood="bernoulli", n_warmup=50, n_draws=50,
                            random_state=0).fit(X)
    post = gp.posterior(X[:3])
    assert post.mean.shape == (3, 2) and np.all(np.isfinite(post.mean))
    assert np.all(post.variance > 0)


def test_save_load_round_trip_gives_the_same_draws(tmp_path):
    rng = np.random.default_rng(4)
    g, _, _ = _linear(rng)
    X = rng.normal(size=(2, 5))
    gp = GeneratorPosterior(g, n_warmup=30, n_draws=40, random_state=0).fit(X)
    path = tmp_path / "gp.npz"
    gp.save(path)
    with pytest.raises(ValueError, match=r"GeneratorPosterior.load\(path, generator=...\)"):
        probspace.load(path)
    fresh = torch.nn.Linear(2, 5).double()  # same architecture, other weights: load overwrites them
    loaded = GeneratorPosterior.load(path, generator=fresh)
    assert loaded.generator is fresh and torch.equal(fresh.weight, g.weight) and torch.equal(fresh.bias, g.bias)
    np.testing.assert_array_equal(loaded.posterior(X).draws, gp.posterior(X).draws)
    with pytest.raises(ValueError, match="shapes"):
        GeneratorPosterior.load(path, generator=torch.nn.Linear(3, 5).double())
    with pytest.raises(ValueError, match="architecture"):
        GeneratorPosterior.load(path, generator=torch.nn.Sequential(torch.nn.Linear(2, 5)).double())


def test_save_load_a_vae_decoder_method(tmp_path):
    rng = np.random.default_rng(5)
    X, _ = VAE._conformance_data(rng)
    vae = VAE(2, hidden_dims=(8,), max_epochs=2, batch_size=32, random_state=0).fit(X)
    gp = GeneratorPosterior(vae.module_.decode_raw, likelihood="bernoulli", n_warmup=20, n_draws=20,
                            random_state=1).fit(X)
    path = tmp_path / "gp_vae.npz"
    gp.save(path)
    other = VAE(2, hidden_dims=(8,), max_epochs=1, batch_size=32, random_state=7).fit(X)
    loaded = GeneratorPosterior.load(path, generator=other.module_.decode_raw)
    np.testing.assert_array_equal(loaded.posterior(X[:2]).draws, gp.posterior(X[:2]).draws)


def test_hmc_sampler_matches_exact_ppca_posterior_mean():
    # with a non-default prior N(0, s^2 I): the exact posterior is PPCA's with sigma^2 / s^2 in place of sigma^2
    rng = np.random.default_rng(6)
    d, sigma, s = 2, 0.7, 1.6
    g, W, mu = _linear(rng, d)
    X = rng.normal(size=(2, 5))
    gp = GeneratorPosterior(g, n_components=d, noise_scale=sigma, prior_scale=s, sampler="hmc", n_warmup=200,
                            n_draws=400, random_state=0).fit(X)
    post = gp.posterior(X)
    M = W.T @ W + sigma**2 / s**2 * np.eye(d)
    exact_mean = np.linalg.solve(M, W.T @ (X - mu).T).T
    sd = np.sqrt(np.diag(sigma**2 * np.linalg.inv(M)))
    for i in range(X.shape[0]):
        n_eff = max(float(np.min([az.ess(post.draws[:, :, i, j]) for j in range(d)])), 50.0)
        assert np.all(np.abs(post.mean[i] - exact_mean[i]) < 5 * sd / np.sqrt(n_eff)), (i, post.mean[i])
    assert np.allclose(post.variance, sd**2, rtol=0.35)
    with pytest.raises(ValueError, match="sampler"):
        GeneratorPosterior(g, sampler="gibbs").fit(X)


class _CountingLinear(torch.nn.Linear):
    """A linear generator that counts its calls (each leapfrog step evaluates it once)."""

    calls = 0

    def forward(self, z):
        type(self).calls += 1
        return super().forward(z)


@pytest.mark.parametrize("num_steps", [3, 7])
def test_hmc_num_steps_is_the_leapfrog_count_per_draw(num_steps):
    torch.manual_seed(0)
    g = _CountingLinear(2, 5).double()
    X = np.random.default_rng(7).normal(size=(2, 5))
    calls = []
    for n_draws in (30, 60):
        gp = GeneratorPosterior(g, sampler="hmc", num_steps=num_steps, n_chains=1, n_warmup=20, n_draws=n_draws,
                                random_state=0).fit(X)
        _CountingLinear.calls = 0
        gp.posterior(X)
        calls.append(_CountingLinear.calls)
    # the same warm-up, then 30 more draws: num_steps gradient evaluations each, plus one for the recorded lp
    assert calls[1] - calls[0] == 30 * (num_steps + 1), calls


def test_num_steps_is_validated():
    g = torch.nn.Linear(2, 5).double()
    X = np.random.default_rng(8).normal(size=(2, 5))
    for bad in (0, -2, 1.5, "4"):
        with pytest.raises(ValueError, match="num_steps"):
            GeneratorPosterior(g, sampler="hmc", num_steps=bad).fit(X)
    with pytest.raises(ValueError, match="num_steps=4 .* needs sampler='hmc'"):
        GeneratorPosterior(g, num_steps=4).fit(X)


def test_same_random_state_same_draws_and_draws_attribute_is_the_latest_call():
    rng = np.random.default_rng(9)
    g, _, _ = _linear(rng)
    X = rng.normal(size=(3, 5))
    kw = dict(n_warmup=20, n_draws=20)
    gp = GeneratorPosterior(g, random_state=0, **kw).fit(X)
    assert gp.draws_ is None and gp.sample_stats_ is None  # no posterior call yet
    first = gp.posterior(X)
    assert gp.draws_["z"] is first.draws and gp.sample_stats_["lp"].shape == (2, 20)
    np.testing.assert_array_equal(gp.posterior(X).draws, first.draws)  # a function of (model, X)
    np.testing.assert_array_equal(GeneratorPosterior(g, random_state=0, **kw).fit(X).posterior(X).draws,
                                  first.draws)
    other = GeneratorPosterior(g, random_state=1, **kw).fit(X).posterior(X).draws
    assert not np.array_equal(other, first.draws)
    part = gp.posterior(X[:2])  # another batch: its own chains, now in draws_
    assert gp.draws_["z"] is part.draws and part.draws.shape == (2, 20, 2, 2)
    assert not np.array_equal(part.draws, first.draws[:, :, :2])
    # unseeded draws from the posterior continue the model's stream; seeded ones repeat
    np.testing.assert_array_equal(first.sample(4, random_state=5), first.sample(4, random_state=5))
    assert not np.array_equal(first.sample(4), first.sample(4))



def test_hpd_interval_against_arviz_and_a_closed_form():
    rng = np.random.default_rng(11)
    draws = np.stack([rng.exponential(size=(2, 20000)), rng.normal(size=(2, 20000))], axis=-1)[:, :, None, :]
    post = Empirical(draws)
    lo, hi = post.hpd_interval(0.9)
    assert lo.shape == (1, 2)
    for j in range(2):
        ref = np.asarray(az.hdi(draws[:, :, 0, j].ravel(), 0.9))
        np.testing.assert_allclose([lo[0, j], hi[0, j]], ref, rtol=1e-12)
    # Exponential(1): the 90% HPD interval is [0, -log 0.1], shorter than the equal-tailed one
    assert lo[0, 0] < 1e-3 and abs(hi[0, 0] + np.log(0.1)) < 0.08  # ~5 Monte Carlo standard errors
    et_lo, et_hi = post.interval(0.9)
    assert hi[0, 0] - lo[0, 0] < et_hi[0, 0] - et_lo[0, 0]
    with pytest.raises(ValueError, match="level"):
        post.hpd_interval(1.0)
