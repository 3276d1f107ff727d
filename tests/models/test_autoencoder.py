"""Autoencoder: the VAE's network trained deterministically, with a point-mass posterior."""

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("pyro")

from probspace import VAE, Autoencoder, load  # noqa: E402
from probspace.posteriors import PointMass  # noqa: E402
from probspace.testing import parametrize_with_model_checks  # noqa: E402

FAST = {"hidden_dims": (16,), "max_epochs": 5, "batch_size": 32, "random_state": 0}


@parametrize_with_model_checks([Autoencoder(), Autoencoder(likelihood="gaussian", scale=0.5)])
def test_autoencoder_conformance(model, check):
    check()


@pytest.fixture(scope="module")
def data():
    X, _ = VAE._conformance_data(np.random.default_rng(0))
    return X


def test_one_line_from_vae(data):
    ae = Autoencoder(2, **FAST).fit(data)
    vae = VAE(2, **FAST).fit(data)
    post = ae.posterior(data)
    assert isinstance(post, PointMass) and post.variance.max() == 0.0
    assert vae.posterior(data).variance.min() > 0.0
    # same network: identical weight names and shapes
    ae_shapes = {k: v.shape for k, v in ae.module_.state_dict().items()}
    assert ae_shapes == {k: v.shape for k, v in vae.module_.state_dict().items()}
    np.testing.assert_array_equal(ae.embed(data), post.mean)


def test_training_improves_reconstruction(data):
    ae = Autoencoder(2, **{**FAST, "max_epochs": 30}).fit(data)
    assert ae.history_[-1] > ae.history_[0]
    np.testing.assert_allclose(ae.reconstruction_log_likelihood(data).mean(), ae.history_[-1], atol=0.5)


def test_no_density_and_no_prior(data):
    ae = Autoencoder(2, **FAST).fit(data)
    with pytest.raises(NotImplementedError, match="no density"):
        ae.log_likelihood(data)
    with pytest.raises(NotImplementedError, match="no density"):
        ae.score(data)
    with pytest.raises(NotImplementedError, match="no prior over codes"):
        ae.sample(3)
    with pytest.raises(NotImplementedError, match="no ELBO"):
        ae.elbo_per_observation(data)


def test_decode_reconstruct_interpolate(data):
    ae = Autoencoder(2, **FAST).fit(data)
    rec = ae.reconstruct(data[:4], n_samples=3)
    assert rec.shape == (3, 4, data.shape[1])
    np.testing.assert_allclose(rec[0], rec[2], atol=1e-6)  # a point mass: every draw decodes the same (float32)
    np.testing.assert_allclose(rec[0], ae.decode(ae.embed(data[:4])), atol=1e-6)
    line = ae.interpolate(data[0], data[1], steps=5)
    assert line.shape == (5, data.shape[1])
    np.testing.assert_allclose(line[0], ae.decode(ae.embed(data[:1]))[0], atol=1e-6)


def test_save_load_roundtrip(data, tmp_path):
    ae = Autoencoder(2, likelihood="gaussian", **FAST).fit(data)
    path = tmp_path / "ae.npz"
    ae.save(path)
    back = load(path)
    assert type(back) is Autoencoder and back.get_params() == ae.get_params()
    np.testing.assert_array_equal(back.embed(data), ae.embed(data))
    np.testing.assert_array_equal(back.decode(np.zeros((2, 2))), ae.decode(np.zeros((2, 2))))


def test_bad_input(data):
    ae = Autoencoder(2, **FAST).fit(data)
    with pytest.raises(ValueError, match="10"):
        ae.embed(data[:, :5])
    bad = data.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError):
        ae.embed(bad)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        Autoencoder(2, **FAST).fit(data * 3)
    with pytest.raises(TypeError):
        Autoencoder(2, elbo="pyro")  # a VAE setting that does not apply
