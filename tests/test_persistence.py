"""save / load for every family: round trips, damaged files, version handling, no pickle."""

import json
import pickle

import numpy as np
import pytest

import probspace
from probspace import GMMHMM, LDA, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM
from probspace._persistence import FORMAT_VERSION

FAMILIES = [
    GaussianMixture(2, covariance_type="full"),
    GaussianMixture(3, covariance_type="tied"),
    GaussianMixture(2, bayesian=True, covariance_type="diag"),
    GaussianMixture(2, bayesian=True, weight_concentration_prior_type="dirichlet_distribution"),
    GaussianHMM(2, covariance_type="spherical"),
    GaussianHMM(2, covariance_type="full"),
    GaussianHMM(2, bayesian=True),
    CategoricalHMM(2),
    PoissonHMM(2),
    GMMHMM(2, n_mix=2),
    LDA(2),
    LDA(2, learning_method="online"),
]


def _fit(model, seed):
    X, lengths = type(model)._conformance_data(np.random.default_rng(seed))
    kw = {} if lengths is None else {"lengths": lengths}
    return model.set_params(random_state=seed).fit(X, **kw), X, kw


@pytest.mark.parametrize("model", FAMILIES, ids=repr)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_round_trip_is_exact(model, seed, tmp_path):
    """Property over random small models: the loaded model answers exactly as the saved one."""
    fitted, X, kw = _fit(model, seed)
    path = tmp_path / "model.npz"
    fitted.save(path)
    loaded = probspace.load(path)
    assert type(loaded) is type(fitted)
    assert loaded.get_params() == fitted.get_params()
    np.testing.assert_array_equal(loaded.posterior(X, **kw).mean, fitted.posterior(X, **kw).mean)
    np.testing.assert_array_equal(loaded.log_likelihood(X, **kw), fitted.log_likelihood(X, **kw))
    # The random stream continues from where it was saved.
    np.testing.assert_array_equal(loaded.sample(5)[0], fitted.sample(5)[0])
    np.testing.assert_array_equal(loaded.posterior(X, **kw).sample(3, random_state=1),
                                  fitted.posterior(X, **kw).sample(3, random_state=1))
    with np.load(path, allow_pickle=False) as f:  # readable without pickle
        json.loads(str(f["__header__"]))
    assert pickle.loads(pickle.dumps(fitted)).score(X, **kw) == fitted.score(X, **kw)


def _rewrite(path, out, change):
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(str(f["__header__"]))
        arrays = {k: f[k] for k in f.files if k != "__header__"}
    change(header, arrays)
    with open(out, "wb") as fh:
        np.savez(fh, __header__=np.array(json.dumps(header)), **arrays)


@pytest.fixture
def saved(tmp_path):
    fitted, X, _ = _fit(GaussianMixture(2), 0)
    path = tmp_path / "gmm.npz"
    fitted.save(path)
    return path


def test_truncated_and_garbage_files(saved, tmp_path):
    data = saved.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable probspace model file"):
        probspace.load(cut)
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="not a readable probspace model file"):
        probspace.load(junk)
    other = tmp_path / "other.npz"
    np.savez(other, x=np.arange(3))
    with pytest.raises(ValueError, match="not a readable|not a probspace model file"):
        probspace.load(other)


def test_altered_files(saved, tmp_path):
    out = tmp_path / "altered.npz"
    _rewrite(saved, out, lambda h, a: h.update(family="os.system"))
    with pytest.raises(ValueError, match="unknown model family 'os.system'"):
        probspace.load(out)
    _rewrite(saved, out, lambda h, a: h["backend"].update({"class": "subprocess.Popen"}))
    with pytest.raises(ValueError, match="unknown backend"):
        probspace.load(out)
    _rewrite(saved, out, lambda h, a: a.pop(next(iter(a))))
    with pytest.raises(ValueError, match="damaged"):
        probspace.load(out)
    _rewrite(saved, out, lambda h, a: h["rng"]["__dict__"].update(bit_generator="seed"))
    with pytest.raises(ValueError, match="damaged"):
        probspace.load(out)


def test_bumped_format_version_names_both_versions(saved, tmp_path):
    out = tmp_path / "future.npz"

    def bump(h, a):
        h["format_version"] = FORMAT_VERSION + 1
        h["versions"]["probspace"] = "9.9.9"

    _rewrite(saved, out, bump)
    with pytest.raises(ValueError, match=rf"probspace 9\.9\.9 .* this is probspace {probspace.__version__}"):
        probspace.load(out)


def test_save_needs_a_fitted_model(tmp_path):
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        GaussianMixture().save(tmp_path / "x.npz")


def test_load_dispatches_vae_files(tmp_path):
    pytest.importorskip("torch")
    from probspace import VAE

    X, _ = VAE._conformance_data(np.random.default_rng(0))
    vae = VAE(2, hidden_dims=(8,), max_epochs=2, random_state=0).fit(X)
    vae.save(tmp_path / "vae.npz")
    loaded = probspace.load(tmp_path / "vae.npz")
    assert type(loaded) is VAE
    np.testing.assert_array_equal(loaded.embed(X), vae.embed(X))
