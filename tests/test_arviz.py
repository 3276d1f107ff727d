"""The ArviZ bridge, on whichever ArviZ line is installed (0.x on 3.11, 1.x on 3.12+).

This file needs numpy, scikit-learn, xarray and arviz only (no torch), so the
1.x line is tested in a Python 3.12 environment without torch.
"""

import numpy as np
import pytest

from probspace import GaussianMixture, to_inference_data
from probspace.datasets import load_old_faithful
from probspace.diagnostics import arviz_major_version
from probspace.diagnostics._arviz import _import_arviz

az = _import_arviz()
MAJOR = arviz_major_version()


def _groups(data):
    return set(data.groups()) if MAJOR == 0 else set(data.children)


@pytest.fixture(scope="module")
def X():
    return load_old_faithful().data


@pytest.fixture(scope="module")
def em(X):
    return GaussianMixture(2, random_state=0).fit(X)


@pytest.fixture(scope="module")
def vb(X):
    return GaussianMixture(2, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                           random_state=0).fit(X)


def test_return_type_follows_arviz_line(em, X):
    data = em.to_arviz(X, n_samples=10, random_state=0)
    if MAJOR == 0:
        assert type(data).__name__ == "InferenceData"
    else:
        import xarray as xr

        assert isinstance(data, xr.DataTree)


def test_groups_dims_coords_attrs(vb, X):
    data = vb.to_arviz(X, n_samples=30, random_state=0)
    assert {"posterior", "latent_posterior", "log_likelihood", "posterior_predictive", "observed_data"} <= _groups(data)
    assert "sample_stats" not in _groups(data)  # per-draw sampler statistics exist for MCMC fits only
    post, latent = data["posterior"], data["latent_posterior"]
    assert latent["label"].dims == ("chain", "draw", "obs")
    assert latent["label"].shape == (1, 30, 272)
    assert np.issubdtype(latent["label"].dtype, np.integer)
    assert "label" not in post.data_vars
    share = post["label_share"].values
    assert post["label_share"].dims == ("chain", "draw", "component")
    np.testing.assert_allclose(share, np.stack([(latent["label"].values == k).mean(-1) for k in (0, 1)], -1))
    np.testing.assert_array_equal(latent["obs"].values, np.arange(272))
    assert post["weights"].dims == ("chain", "draw", "component")
    assert post["means"].dims == ("chain", "draw", "component", "feature")
    assert post["precisions"].dims == ("chain", "draw", "component", "feature", "feature_bis")
    np.testing.assert_array_equal(post["component"].values, [0, 1])
    assert post.attrs["inference_method"] == "variational"
    assert post.attrs["model"] == "GaussianMixture"
    assert data["log_likelihood"]["x"].dims == ("chain", "draw", "obs")
    assert data["posterior_predictive"]["x"].dims == ("chain", "draw", "obs", "feature")
    np.testing.assert_array_equal(data["observed_data"]["x"].values, X)
    np.testing.assert_array_equal(post.attrs["objective"], vb.history_)


def test_em_fit_writes_no_plug_in_log_likelihood(em, X):
    """One plug-in value per observation would make PSIS-LOO meaningless (p_loo = 0): it is not written."""
    data = em.to_arviz(X, n_samples=5, random_state=0)
    assert "log_likelihood" not in _groups(data)
    assert "probspace.compare" in data["posterior"].attrs["log_likelihood"]
    assert data["posterior"].attrs["inference_method"] == "exact"
    np.testing.assert_array_equal(data["posterior"].attrs["objective"], em.history_)


def test_seeded_and_equal_to_posterior_draws(em, X):
    a = to_inference_data(em, X, n_draws=8, random_state=11)
    b = to_inference_data(em, X, n_draws=8, random_state=11)
    np.testing.assert_array_equal(a["latent_posterior"]["label"].values, b["latent_posterior"]["label"].values)
    expected = em.posterior(X).sample(8, random_state=np.random.default_rng(11))
    np.testing.assert_array_equal(a["latent_posterior"]["label"].values[0], expected)


def test_hmm_sequences_are_recorded():
    from probspace import GaussianHMM
    from probspace.datasets import load_nile

    X = load_nile().data
    data = GaussianHMM(2, random_state=0).fit(X).to_arviz(X, n_samples=5, random_state=0, lengths=[60, 40])
    np.testing.assert_array_equal(data["constant_data"]["lengths"].values, [60, 40])
    np.testing.assert_array_equal(data["constant_data"]["sequence_index"].values, np.repeat([0, 1], [60, 40]))
    assert data["latent_posterior"]["path"].dims == ("chain", "draw", "time")
    assert data["posterior"]["path_share"].dims == ("chain", "draw", "state")


def test_feature_names_become_coords(X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=["eruptions", "waiting"])
    gm = GaussianMixture(2, random_state=0).fit(frame)
    data = gm.to_arviz(frame, n_samples=4, random_state=0)
    assert list(data["observed_data"]["feature"].values) == ["eruptions", "waiting"]


def test_summary_ess_rhat_loo(vb, X):
    data = vb.to_arviz(X, n_samples=200, random_state=0)
    summary = az.summary(data, var_names=["weights", "means"])
    assert len(summary) == 2 + 4
    assert np.all(np.isfinite(np.asarray(az.ess(data, var_names=["weights"])["weights"])))
    az.rhat(data, var_names=["weights"])  # runs (single chain: not a convergence test)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            loo = az.loo(data)
    elpd = loo["elpd_loo"] if MAJOR == 0 else loo.elpd
    assert np.isfinite(elpd)
    # LOO sits below the in-sample log-likelihood at the posterior mean (optimism).
    assert elpd < vb.log_likelihood(X).sum() + 1e-6


def test_plots_accept_the_output(vb, X):
    import matplotlib.pyplot as plt

    data = vb.to_arviz(X, n_samples=50, random_state=0)
    if MAJOR == 0:
        az.plot_posterior(data, var_names=["means"])
        az.plot_trace(data, var_names=["weights"])
    else:
        az.plot_dist(data, var_names=["means"])
        az.plot_trace(data, var_names=["weights"])
    plt.close("all")


def test_bad_n_draws(em, X):
    with pytest.raises(ValueError, match="n_draws"):
        to_inference_data(em, X, n_draws=0)
