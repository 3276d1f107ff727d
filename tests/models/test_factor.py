"""FactorAnalysis and PPCA: exact posteriors against Gaussian conditioning, scikit-learn, EM with missing values."""

import os
import pickle
import warnings

import numpy as np
import pytest
from scipy import stats
from sklearn import decomposition
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from probspace import PPCA, FactorAnalysis, InvalidParameterError, MultivariateNormal, load
from probspace.inference._factor import condition, em_missing, n_parameters, orthogonal_rotation
from probspace.testing import parametrize_with_model_checks

FAMILIES = [FactorAnalysis, PPCA]


@parametrize_with_model_checks([FactorAnalysis(), FactorAnalysis(rotation="varimax", svd_method="lapack"), PPCA(),
                                PPCA(1, svd_solver="full")])
def test_model_conformance(model, check):
    check()


@parametrize_with_checks([FactorAnalysis(), PPCA(1)], legacy=True)  # the generic checks use 2 features
def test_sklearn_compatible(estimator, check):
    check(estimator)


def _data(seed=0, N=300, D=6, k=2, missing=0.0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(k, D))
    psi = rng.uniform(0.2, 1.0, D)
    X = rng.normal(size=(N, k)) @ W + rng.normal(size=(N, D)) * np.sqrt(psi) + rng.normal(size=D)
    if missing:
        X[rng.random(X.shape) < missing] = np.nan
    return X


def _conditioned_by_brute_force(x, W, psi, mean):
    """Condition the joint Gaussian of (x, z) on the observed coordinates of x."""
    k, D = W.shape
    obs = ~np.isnan(x)
    joint = np.block([[W.T @ W + np.diag(psi), W.T], [W, np.eye(k)]])  # Cov of (x, z)
    idx_x = np.flatnonzero(obs)
    idx_z = D + np.arange(k)
    Sxx = joint[np.ix_(idx_x, idx_x)]
    Szx = joint[np.ix_(idx_z, idx_x)]
    gain = Szx @ np.linalg.inv(Sxx)
    loc = gain @ (x[obs] - mean[obs])
    cov = np.eye(k) - gain @ Szx.T
    ll = stats.multivariate_normal(mean[obs], Sxx).logpdf(x[obs]) if obs.any() else 0.0
    return loc, cov, ll


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("missing", [0.0, 0.3])
def test_posterior_and_likelihood_equal_gaussian_conditioning(family, missing):
    X = _data(1, N=120, missing=missing)
    X[0] = np.nan  # a row with nothing observed: the prior, log-likelihood 0
    model = family(2, random_state=0).fit(X)
    post = model.posterior(X)
    assert isinstance(post, MultivariateNormal) and post.method == "exact"
    assert post.covariance_matrix.shape == (120, 2, 2)  # rows with NaN: one covariance per row
    ll = model.log_likelihood(X)
    for i in range(X.shape[0]):
        loc, cov, lli = _conditioned_by_brute_force(X[i], model.loadings_, model._psi(), model.mean_)
        np.testing.assert_allclose(post.loc[i], loc, rtol=1e-9, atol=1e-10)
        np.testing.assert_allclose(post.covariance_matrix[i], cov, rtol=1e-9, atol=1e-11)
        np.testing.assert_allclose(ll[i], lli, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(post.loc[0], 0.0)
    np.testing.assert_allclose(post.covariance_matrix[0], np.eye(2))
    assert ll[0] == 0.0


@pytest.mark.parametrize("family", FAMILIES)
def test_complete_data_covariance_is_shared_and_matches_the_formula(family):
    X = _data(2)
    model = family(2, random_state=0).fit(X)
    post = model.posterior(X)
    W, psi = model.loadings_, model._psi()
    assert post.covariance_matrix.shape == (2, 2) and post.scale_tril.shape == (2, 2)
    if family is PPCA:  # the issue's form: sigma^2 M^-1 and M^-1 W (x - mean) with M = W W' + sigma^2 I
        s2 = model.noise_variance_
        M = W @ W.T + s2 * np.eye(2)
        np.testing.assert_allclose(post.covariance_matrix, s2 * np.linalg.inv(M), rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(post.loc, (X - model.mean_) @ W.T @ np.linalg.inv(M).T, rtol=1e-9, atol=1e-12)
    else:  # (I + W Psi^-1 W')^-1 and cov W Psi^-1 (x - mean)
        cov = np.linalg.inv(np.eye(2) + (W / psi) @ W.T)
        np.testing.assert_allclose(post.covariance_matrix, cov, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(post.loc, (X - model.mean_) @ (W / psi).T @ cov, rtol=1e-9, atol=1e-12)


def test_factor_analysis_equals_scikit_learn():
    X = _data(3, D=8, k=3)
    for rotation in (None, "varimax"):
        fa = FactorAnalysis(3, rotation=rotation, random_state=0).fit(X)
        assert isinstance(fa.backend_, decomposition.FactorAnalysis)
        np.testing.assert_allclose(fa.embed(X), fa.backend_.transform(X), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(fa.log_likelihood(X), fa.backend_.score_samples(X), rtol=0, atol=1e-8)
        assert fa.score(X) == pytest.approx(fa.backend_.score(X), abs=1e-8)
        np.testing.assert_allclose(fa.loadings_ @ fa.loadings_.T + 0, fa.components_ @ fa.components_.T)
        np.testing.assert_allclose(fa.history_ * X.shape[0], fa.backend_.loglike_)


def test_ppca_equals_scikit_learn():
    X = _data(4, D=8, k=3)
    pp = PPCA(3, random_state=0).fit(X)
    pca = pp.backend_
    assert isinstance(pca, decomposition.PCA)
    np.testing.assert_allclose(pp.log_likelihood(X), pca.score_samples(X), rtol=0, atol=1e-8)
    np.testing.assert_allclose(pp.loadings_.T @ pp.loadings_ + pp.noise_variance_ * np.eye(8), pca.get_covariance(),
                               rtol=1e-10, atol=1e-12)
    # The posterior mean is PCA's projection shrunk per axis by sqrt(lambda - s2) / lambda.
    shrink = np.sqrt(pca.explained_variance_ - pca.noise_variance_) / pca.explained_variance_
    np.testing.assert_allclose(pp.embed(X), pca.transform(X) * shrink, rtol=1e-9, atol=1e-12)


def test_own_rotation_equals_scikit_learn():
    X = _data(5, D=8, k=3)
    for method in ("varimax", "quartimax"):
        raw = FactorAnalysis(3, random_state=0).fit(X)
        rotated = FactorAnalysis(3, rotation=method, random_state=0).fit(X)
        np.testing.assert_allclose(orthogonal_rotation(raw.components_, method), rotated.components_, atol=1e-10)


@pytest.mark.parametrize("family", FAMILIES)
def test_em_with_missing_values_is_monotone_and_a_maximum(family):
    X = _data(6, N=400, missing=0.25)
    model = family(2, tol=1e-6, random_state=0).fit(X)
    h = model.history_
    assert model.backend_ is None and model.converged_ and model.n_iter_ == h.size > 2
    assert np.all(np.diff(h) >= -1e-12 * np.abs(h[:-1])), np.diff(h).min()
    np.testing.assert_allclose(h[-1], model.score(X), rtol=1e-10)
    # The EM estimate beats the fit to mean-imputed data (its starting point) on the observed data,
    # and no small perturbation of it does better (a maximum).
    start = family(2, random_state=0).fit(np.where(np.isnan(X), np.nanmean(X, axis=0), X))
    ll_start = condition(X, start.loadings_, start._psi(), start.mean_).log_likelihood.mean()
    assert h[-1] > ll_start
    W, psi, mean = model.loadings_, model._psi(), model.mean_
    rng = np.random.default_rng(0)
    for _ in range(10):
        dW, dm = 1e-3 * rng.normal(size=W.shape), 1e-3 * rng.normal(size=mean.shape)
        dpsi = 1e-3 * (rng.normal() if family is PPCA else rng.normal(size=psi.shape)) * psi
        assert condition(X, W + dW, psi + dpsi, mean + dm).log_likelihood.mean() <= h[-1] + 1e-9


@pytest.mark.parametrize("isotropic", [False, True])
def test_em_on_complete_data_reaches_the_backend_maximum(isotropic):
    X = _data(7, N=500)
    ref = (PPCA if isotropic else FactorAnalysis)(2, random_state=0).fit(X)
    rng = np.random.default_rng(1)
    W, psi, mean, history, converged = em_missing(X, rng.normal(size=(2, 6)), np.ones(6), X.mean(axis=0) + 0.1,
                                                  isotropic=isotropic, max_iter=5000, tol=1e-9)
    assert converged
    assert np.all(np.diff(history) >= -1e-12 * np.abs(history[:-1]))
    if isotropic:  # PCA's variances divide by N - 1, the MLE by N: compare with the MLE itself
        assert history[-1] >= ref.score(X) - 1e-9
        n = X.shape[0]
        evals = np.linalg.eigvalsh(np.cov(X.T, bias=True))[::-1]
        np.testing.assert_allclose(psi[0], evals[2:].mean(), rtol=1e-5)
        np.testing.assert_allclose(ref.noise_variance_, evals[2:].mean() * n / (n - 1), rtol=1e-10)
    else:  # scikit-learn run to a tight tolerance reaches the same maximum
        tight = FactorAnalysis(2, tol=1e-8, max_iter=20000, random_state=0).fit(X)
        assert history[-1] >= ref.score(X) - 1e-9
        assert history[-1] == pytest.approx(tight.score(X), abs=1e-5)
    np.testing.assert_allclose(mean, X.mean(axis=0), atol=1e-4)  # the maximum is at the sample mean


@pytest.mark.parametrize("family", FAMILIES)
def test_monte_carlo_moments_of_a_missing_data_posterior(family):
    X = _data(8, N=40, missing=0.4)
    post = family(2, random_state=0).fit(X).posterior(X)
    n = 20000
    draws = post.sample(n, random_state=1)
    for i in range(5):
        cov = post.covariance_matrix[i]
        var = np.diag(cov)
        assert np.all(np.abs(draws[:, i].mean(axis=0) - post.loc[i]) < 6 * np.sqrt(var / n))
        se = np.sqrt((np.outer(var, var) + cov**2) / n)
        assert np.all(np.abs(np.cov(draws[:, i].T) - cov) < 6 * se)
    lp = post.log_prob(draws[:3])
    assert lp.shape == (3, 40) and np.all(np.isfinite(lp))


@pytest.mark.parametrize("family", FAMILIES)
def test_generative_sample_has_the_model_covariance(family):
    model = family(2, random_state=0).fit(_data(9))
    n = 50000
    X, Z = model.sample(n, random_state=2)
    assert X.shape == (n, 6) and Z.shape == (n, 2)
    cov = model.loadings_.T @ model.loadings_ + np.diag(model._psi())
    var = np.diag(cov)
    assert np.all(np.abs(X.mean(axis=0) - model.mean_) < 6 * np.sqrt(var / n))
    assert np.all(np.abs(np.cov(X.T) - cov) < 6 * np.sqrt((np.outer(var, var) + cov**2) / n))
    np.testing.assert_allclose(Z.std(axis=0), 1.0, atol=6 / np.sqrt(2 * n))


@pytest.mark.parametrize("family", FAMILIES)
def test_bic_and_aic_count_parameters_without_rotations(family):
    X = _data(10, D=7, k=3)
    model = family(3, random_state=0).fit(X)
    D, k = 7, 3
    p = D * k - k * (k - 1) // 2 + (1 if family is PPCA else D) + D
    assert n_parameters(D, k, isotropic=family is PPCA) == p
    total = model.log_likelihood(X).sum()
    assert model.bic(X) == pytest.approx(-2 * total + p * np.log(X.shape[0]), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * total + 2 * p, rel=1e-12)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("missing", [0.0, 0.2])
def test_save_load_round_trip(family, missing, tmp_path):
    X = _data(11, missing=missing)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same library versions: no warning on load
        model = family(2, random_state=0).fit(X)
        path = os.path.join(tmp_path, "m.npz")
        model.save(path)
        loaded = load(path)
    assert type(loaded) is family
    np.testing.assert_array_equal(loaded.posterior(X).loc, model.posterior(X).loc)
    np.testing.assert_array_equal(loaded.posterior(X).covariance_matrix, model.posterior(X).covariance_matrix)
    np.testing.assert_array_equal(loaded.log_likelihood(X), model.log_likelihood(X))
    np.testing.assert_array_equal(loaded.sample(3)[0], model.sample(3)[0])
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.embed(X), model.embed(X))


@pytest.mark.parametrize("family", FAMILIES)
def test_to_arviz_feeds_arviz(family):
    az = pytest.importorskip("arviz")
    X = _data(12, N=30, missing=0.1)
    model = family(2, random_state=0).fit(X)
    data = model.to_arviz(X, n_samples=200, random_state=0)
    z = data["latent_posterior"]["z"]
    assert z.dims == ("chain", "draw", "obs", "latent_dim") and z.shape == (1, 200, 30, 2)
    assert data["posterior"].attrs["inference_method"] == "exact"
    assert data["posterior"]["z_mean"].dims == ("chain", "draw", "latent_dim")
    assert data["posterior_predictive"]["x"].shape == (1, 200, 30, 6)
    groups = data.groups() if hasattr(data, "groups") and callable(data.groups) else list(data.children)
    assert "log_likelihood" not in groups  # a point fit: one plug-in value per row, no PSIS-LOO
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one chain: ArviZ warns that R-hat needs several
        summary = az.summary(data, group="latent_posterior", var_names=["z"])
        ess = az.ess(data["latent_posterior"], var_names=["z"])
    assert summary.shape[0] == 60 and np.all(np.isfinite(summary["mean"]))
    assert np.all(np.asarray(ess["z"]) > 40)  # independent draws: about 200


@pytest.mark.parametrize("family", FAMILIES)
def test_bad_input(family):
    X = _data(13)
    with pytest.raises(NotFittedError):
        family(2).posterior(X)
    with pytest.raises(ValueError, match="n_features=6"):
        family(7).fit(X)
    with pytest.raises(InvalidParameterError, match="n_components"):
        family(0).fit(X)
    model = family(2, random_state=0).fit(X)
    for bad in (np.where(np.arange(6) == 0, np.inf, X), X[:, 0], X[:0], np.hstack([X, X[:, :1]])):
        for method in ("fit", "posterior", "log_likelihood", "embed"):
            if method == "fit" and bad.ndim == 2 and bad.shape[1] == 7:
                continue  # seven features are fine to fit on
            target = family(2) if method == "fit" else model
            with pytest.raises(ValueError):
                getattr(target, method)(bad)
    empty_column = X.copy()
    empty_column[:, 3] = np.nan
    with pytest.raises(ValueError, match=r"no observed value in column\(s\) \[3\]"):
        family(2).fit(empty_column)
    with pytest.raises(ValueError, match="takes no condition"):
        model.posterior(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Rescale"):
        family(2).fit(X * 1e200)


def test_ppca_needs_noise():
    X = _data(14, D=4)
    with pytest.raises(ValueError, match="less than n_features=4"):
        PPCA(4).fit(X)
    flat = np.column_stack([X[:, 0], 2 * X[:, 0], -X[:, 0], X[:, 0]])  # rank one
    model = PPCA(1)
    with pytest.raises(ValueError, match="no variance outside"):
        model.fit(flat)
    assert not hasattr(model, "backend_")
    with pytest.raises(InvalidParameterError, match="rotation"):
        FactorAnalysis(rotation="oblimin").fit(X)
