"""VAE and CVAE: bounds, reproducibility, independence, persistence, conditions."""

import pickle

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pyro = pytest.importorskip("pyro")

import probspace  # noqa: E402
from probspace import CVAE, VAE, GaussianMixture  # noqa: E402

FAST = dict(n_components=2, hidden_dims=(32,), max_epochs=15, batch_size=32)


@pytest.fixture(scope="module")
def data():
    X, _ = VAE._conformance_data(np.random.default_rng(0))
    return X


@pytest.fixture(scope="module")
def vae(data):
    return VAE(random_state=0, **FAST).fit(data)


def test_pyro_loss_equals_fused_loss(vae, data):
    from pyro.infer import TraceMeanField_ELBO

    from probspace.models._vae import _local_params

    x = torch.as_tensor(data[:20], dtype=torch.float32)
    with _local_params(), torch.no_grad():
        torch.manual_seed(0)
        pyro_loss = TraceMeanField_ELBO().differentiable_loss(vae.module_.model, vae.module_.guide, x, None)
        torch.manual_seed(0)
        fused = -vae.module_.elbo(x).sum()
    assert float(pyro_loss) == pytest.approx(float(fused), rel=1e-6)
    assert len(pyro.get_param_store().keys()) == 0


def test_iwae_bounds(vae, data):
    # elbo_per_observation is seeded per model, so vary the seed to average over its noise.
    runs = []
    for seed in range(20):
        vae._score_seed = seed
        runs.append(vae.elbo_per_observation(data).mean())
    elbo, se = np.mean(runs), np.std(runs) / np.sqrt(len(runs))
    values = {}
    for k in (1, 8, 512):
        vae.set_params(n_importance=k)
        values[k] = np.mean([(setattr(vae, "_score_seed", s), vae.log_likelihood(data).mean())[1] for s in range(4)])
    vae.set_params(n_importance=64)
    assert values[512] >= values[8] - 4 * se >= values[1] - 8 * se
    assert values[512] >= elbo - 4 * se  # the IWAE bound is at least the ELBO
    assert values[1] == pytest.approx(elbo, abs=6 * se + 0.02)  # with k=1 it is the ELBO itself


def test_log_likelihood_is_reproducible(vae, data):
    np.testing.assert_array_equal(vae.log_likelihood(data), vae.log_likelihood(data))


def test_seeded_fit_reproduces_and_leaves_global_state(data):
    np_state = np.random.get_state()[1].copy()
    torch_state = torch.random.get_rng_state().clone()
    a = VAE(random_state=3, **FAST).fit(data)
    b = VAE(random_state=3, **FAST).fit(data)
    np.testing.assert_array_equal(a.embed(data), b.embed(data))
    np.testing.assert_array_equal(a.history_, b.history_)
    assert torch.equal(torch_state, torch.random.get_rng_state())
    np.testing.assert_array_equal(np_state, np.random.get_state()[1])


def test_two_models_do_not_interfere(data):
    alone = VAE(random_state=1, **FAST).fit(data)
    first = VAE(random_state=1, **FAST).fit(data)
    other = VAE(random_state=2, likelihood="continuous_bernoulli", **FAST).fit(data)
    np.testing.assert_array_equal(first.embed(data), alone.embed(data))
    assert not np.allclose(first.embed(data), other.embed(data))
    for p in first.module_.parameters():
        assert all(p is not q for q in other.module_.parameters())


def test_posterior_and_helpers(vae, data):
    post = vae.posterior(data)
    assert post.method == "amortized_variational"
    assert post.loc.shape == post.scale.shape == (80, 2)
    draws = post.sample(2000, random_state=0)
    assert np.all(np.abs(draws.mean(0) - post.loc) < 5 * post.scale / np.sqrt(2000))
    assert vae.decode(post.loc).shape == (80, 10)
    assert np.all((vae.decode(post.loc) >= 0) & (vae.decode(post.loc) <= 1))
    assert vae.reconstruct(data[:5], n_samples=3).shape == (3, 5, 10)
    line = vae.interpolate(data[0], data[1], steps=7)
    assert line.shape == (7, 10)
    np.testing.assert_allclose(line[0], vae.decode(vae.embed(data[:1]))[0], atol=1e-6)
    X, Z = vae.sample(6, random_state=0)
    assert X.shape == (6, 10) and Z.shape == (6, 2) and set(np.unique(X)) <= {0.0, 1.0}


def test_save_load_round_trip(vae, data, tmp_path):
    path = tmp_path / "vae.npz"
    vae.save(path)
    loaded = VAE.load(path)
    np.testing.assert_array_equal(loaded.posterior(data).mean, vae.posterior(data).mean)
    np.testing.assert_array_equal(loaded.log_likelihood(data), vae.log_likelihood(data))
    np.testing.assert_array_equal(loaded.sample(4, random_state=5)[0], vae.sample(4, random_state=5)[0])
    np.testing.assert_array_equal(loaded.history_, vae.history_)
    with np.load(path, allow_pickle=False) as f:  # nothing pickled inside: the common probspace format
        assert "__header__" in f.files
    restored = pickle.loads(pickle.dumps(vae))
    np.testing.assert_array_equal(restored.embed(data), vae.embed(data))


def test_load_rejects_bad_files(tmp_path, vae):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a readable probspace"):
        VAE.load(bad)
    gmm = tmp_path / "gmm.npz"
    GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(20, 2))).save(gmm)
    with pytest.raises(ValueError, match="holds a GaussianMixture, not a VAE"):
        VAE.load(gmm)
    other = tmp_path / "other.npz"
    np.savez(other, header=np.array('{"format": "probspace-vae/99", "family": "VAE"}'))
    with pytest.raises(ValueError, match="probspace-vae/99"):
        VAE.load(other)


def test_bad_input(data):
    with pytest.raises(ValueError, match=r"needs data in \[0, 1\]"):
        VAE(**FAST).fit(data * 3)
    with pytest.raises(ValueError, match="validation_fraction"):
        VAE(patience=2, **FAST).fit(data)
    vae = VAE(random_state=0, **FAST).fit(data)
    with pytest.raises(ValueError, match="n_components=2"):
        vae.decode(np.zeros((3, 5)))


def test_gaussian_and_early_stopping(data):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5)) @ rng.normal(size=(5, 5))
    model = VAE(likelihood="gaussian", validation_fraction=0.25, patience=3, random_state=0,
                **{**FAST, "max_epochs": 300}).fit(X)
    assert model.n_iter_ < 300 and model.converged_
    assert model.validation_history_.shape == model.history_.shape
    assert np.all(np.isfinite(model.log_likelihood(X)))


def test_cvae_conditions(data):
    y = (data[:, 0] > 0.5).astype(int) + 3
    cvae = CVAE(random_state=0, **FAST).fit(data, y)
    np.testing.assert_array_equal(cvae.classes_, [3, 4])
    post = cvae.posterior(data, y)
    assert post.loc.shape == (80, 2)
    assert not np.allclose(cvae.posterior(data, np.full(80, 3)).loc, cvae.posterior(data, np.full(80, 4)).loc)
    X, Z = cvae.sample(5, y=[4] * 5, random_state=0)
    assert X.shape == (5, 10)
    assert cvae.decode(Z, y=[3] * 5).shape == (5, 10)
    assert np.all(np.isfinite(cvae.log_likelihood(data, y)))
    with pytest.raises(ValueError, match="classes the CVAE was not fitted on"):
        cvae.posterior(data, np.full(80, 9))
    with pytest.raises(ValueError, match="needs the condition y"):
        cvae.posterior(data)
    data_arviz = cvae.to_arviz(data[:10], n_samples=5, y=y[:10], random_state=0)
    assert data_arviz["latent_posterior"]["z"].shape == (1, 5, 10, 2)
    covariate = CVAE(random_state=0, **FAST).fit(data, np.linspace(0, 1, 80))
    assert covariate.classes_ is None
    assert covariate.sample(3, y=[0.5, 0.5, 0.5])[0].shape == (3, 10)


def test_to_arviz(vae, data):
    idata = vae.to_arviz(data[:12], n_samples=7, random_state=0)
    z = idata["latent_posterior"]["z"]
    assert z.dims == ("chain", "draw", "obs", "latent_dim") and z.shape == (1, 7, 12, 2)
    assert idata["posterior"].attrs["inference_method"] == "amortized_variational"
    assert idata["posterior"]["z_mean"].dims == ("chain", "draw", "latent_dim")
    assert idata["posterior_predictive"]["x"].shape == (1, 7, 12, 10)
    np.testing.assert_allclose(idata["posterior"].attrs["objective"], vae.history_)


def test_thread_count_is_scoped(data):
    before = torch.get_num_threads()
    VAE(n_threads=1, random_state=0, **{**FAST, "max_epochs": 1}).fit(data).embed(data)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("family", [VAE, CVAE])
def test_loaded_model_continues_the_unseeded_stream(family, data, tmp_path):
    # issue #11 item 5: the stream was restarted from random_state (or fresh entropy) on load.
    model = family(random_state=0, **{**FAST, "max_epochs": 2}).fit(data)
    model.sample(3)  # save mid-stream
    path = tmp_path / "model.npz"
    model.save(path)
    first, second = VAE.load(path), probspace.load(path)
    assert first.rng_.bit_generator.state == model.rng_.bit_generator.state

    def draws(m):
        return (m.posterior(data).sample(3), *m.sample(4), m.posterior(data).sample(2))

    expected = draws(model)
    for loaded in (first, second):
        for got, want in zip(draws(loaded), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_subclass_is_not_saved(data, tmp_path):
    class Custom(VAE):
        pass

    model = Custom(random_state=0, **{**FAST, "max_epochs": 1}).fit(data)
    with pytest.raises(TypeError, match="not a registered probspace family"):  # defined inside a function
        model.save(tmp_path / "custom.npz")


def test_bernoulli_kinds_declare_non_negative_input(data):
    # issue #11 item 8: the Bernoulli kinds reject negative data, so their tags must say so.
    from sklearn.utils import get_tags
    from sklearn.utils.estimator_checks import check_fit_non_negative, check_positive_only_tag_during_fit

    for likelihood, positive in (("bernoulli", True), ("continuous_bernoulli", True), ("gaussian", False)):
        for family in (VAE, CVAE):
            model = family(likelihood=likelihood, random_state=0, **{**FAST, "max_epochs": 2})
            assert get_tags(model).input_tags.positive_only is positive
            assert model._model_tags().non_negative is positive
            check_positive_only_tag_during_fit(family.__name__, model)
            if positive:
                check_fit_non_negative(family.__name__, model)
    with pytest.raises(ValueError, match=r"^Negative values in data passed to VAE: .*needs data in \[0, 1\]"):
        VAE(**FAST).fit(data - 0.5)
    with pytest.raises(ValueError, match=r"^likelihood='bernoulli' needs data in \[0, 1\]; X ranges from 0 to 3"):
        VAE(**FAST).fit(data * 3)
    vae = VAE(random_state=0, **{**FAST, "max_epochs": 1}).fit(data)
    with pytest.raises(ValueError, match="Negative values in data passed to VAE"):
        vae.posterior(-data)
