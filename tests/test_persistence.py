"""save / load for every family: round trips, damaged files, version handling, no pickle."""

import json
import pickle
from pathlib import Path

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


def _rewrite(path, out, change, key="__header__"):
    """Apply ``change(header, arrays)`` to a saved file (``key``: the header's name, "header" in VAE files)."""
    with np.load(path, allow_pickle=False) as f:
        header = json.loads(str(f[key]))
        arrays = {k: f[k] for k in f.files if k != key}
    change(header, arrays)
    with open(out, "wb") as fh:
        np.savez(fh, **{key: np.array(json.dumps(header))}, **arrays)


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
    _rewrite(saved, out, lambda h, a: h["state"]["__dict__"].pop("backend"))
    with pytest.raises(ValueError, match="damaged"):
        probspace.load(out)
    _rewrite(saved, out, lambda h, a: h["state"]["__dict__"]["backend"]["__dict__"].pop("means_"))
    with pytest.raises(ValueError, match="damaged"):
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


@pytest.mark.parametrize("model", FAMILIES, ids=repr)
def test_loaded_model_continues_the_unseeded_stream(model, tmp_path):
    """Two loads of one file draw alike, and exactly what the saved model draws next (issue #11, item 5)."""
    fitted, X, kw = _fit(model, 0)
    fitted.posterior(X, **kw).sample(2)  # save mid-stream
    path = tmp_path / "model.npz"
    fitted.save(path)
    first, second = probspace.load(path), probspace.load(path)

    def draws(m):  # the same calls, in the same order, on each model
        return (m.posterior(X, **kw).sample(4), *m.sample(5), m.posterior(X, **kw).sample(2))

    expected = draws(fitted)
    for loaded in (first, second):
        for got, want in zip(draws(loaded), expected, strict=True):
            np.testing.assert_array_equal(got, want)


def test_child_generator_lives_in_the_bit_generator_state():
    from probspace._persistence import _generator_from_state
    from probspace._random import child_generator

    for bit_generator in (np.random.PCG64, np.random.PCG64DXSM, np.random.Philox, np.random.SFC64, np.random.MT19937):
        rng = np.random.Generator(bit_generator(7))
        rng.random(3)
        restored = _generator_from_state(rng.bit_generator.state)
        a, b = child_generator(rng), child_generator(restored)
        assert type(a.bit_generator) is bit_generator
        np.testing.assert_array_equal(a.random(5), b.random(5))
        np.testing.assert_array_equal(rng.random(5), restored.random(5))  # both parents advanced alike
        assert not np.array_equal(child_generator(rng).random(5), child_generator(rng).random(5))
        assert not np.array_equal(child_generator(rng).random(5), rng.random(5))


def test_seeded_models_still_reproduce():
    X, _ = GaussianMixture._conformance_data(np.random.default_rng(0))
    a, b = (GaussianMixture(2, random_state=3).fit(X) for _ in range(2))
    np.testing.assert_array_equal(a.posterior(X).sample(3), b.posterior(X).sample(3))
    np.testing.assert_array_equal(a.sample(4)[0], b.sample(4)[0])
    np.testing.assert_array_equal(a.posterior(X).sample(3, random_state=1), a.posterior(X).sample(3, random_state=1))


def test_can_save_follows_the_allow_list(tmp_path):
    from probspace._persistence import can_save

    class Custom(GaussianMixture):
        pass

    assert can_save(GaussianMixture()) and not can_save(Custom())
    fitted = Custom(2, random_state=0).fit(GaussianMixture._conformance_data(np.random.default_rng(0))[0])
    with pytest.raises(TypeError, match="not a registered probspace family"):
        fitted.save(tmp_path / "custom.npz")


# -- VAE / CVAE files (the common format): damage gives the same ValueError as elsewhere (issue #11, item 4) ---
def _vae_state(h):
    return h["state"]["__dict__"]


def _vae_damages():
    def module(h):
        return _vae_state(h)["module"]["__dict__"]

    def drop_weight(h, a):
        module(h).pop(next(iter(module(h))))

    def reshape_weight(h, a):
        key = next(iter(module(h).values()))["__array__"]
        a[key] = a[key].reshape(-1)[:-1]

    def extra_weight(h, a):
        a["extra"] = np.zeros(3, dtype=np.float32)
        module(h)["extra.weight"] = {"__array__": "extra"}

    def fitted(h):
        return _vae_state(h)["fitted"]["__dict__"]

    def history_2d(h, a):
        key = fitted(h)["history_"]["__array__"]
        a[key] = a[key][:, None]

    return {
        "missing weight": drop_weight,
        "reshaped weight": reshape_weight,
        "extra weight": extra_weight,
        "missing history": lambda h, a: fitted(h).pop("history_"),
        "2-D history": history_2d,
        "missing rng": lambda h, a: h.pop("rng"),
        "unknown bit generator": lambda h, a: h["rng"]["__dict__"].update(bit_generator="os.system"),
        "missing state field": lambda h, a: _vae_state(h).pop("score_seed"),
        "wrong feature count": lambda h, a: fitted(h).update(n_features_in_=fitted(h)["n_features_in_"] + 1),
        "wrong condition width": lambda h, a: _vae_state(h).update(n_cond=_vae_state(h)["n_cond"] + 1),
        "missing condition": lambda h, a: _vae_state(h)["extra"]["__dict__"].clear(),
        "invalid parameter": lambda h, a: h["params"]["__dict__"].update(likelihood="poisson"),
        "unknown parameter": lambda h, a: h["params"]["__dict__"].update(colour="red"),
    }


def _fit_vae(family_name, seed=0):
    pytest.importorskip("torch")
    family = getattr(probspace, family_name)
    X, _ = family._conformance_data(np.random.default_rng(seed))
    return family(2, hidden_dims=(8,), max_epochs=1, batch_size=32, random_state=seed).fit(X), X


@pytest.mark.parametrize(("family", "damage"), [(f, d) for f in ("VAE", "CVAE") for d in sorted(_vae_damages())
                                                 if f == "CVAE" or d != "missing condition"])
def test_damaged_vae_file_raises_value_error(family, damage, tmp_path):
    # A missing weight used to raise torch's RuntimeError ("Missing key(s) in state_dict").
    model, _ = _fit_vae(family)
    path, out = tmp_path / "model.npz", tmp_path / "damaged.npz"
    model.save(path)
    _rewrite(path, out, _vae_damages()[damage])
    for load in (type(model).load, probspace.load):
        with pytest.raises(ValueError, match="is damaged or inconsistent"):
            load(out)


def test_truncated_and_corrupted_vae_files_raise_value_error(tmp_path):
    model, _ = _fit_vae("VAE")
    path = tmp_path / "vae.npz"
    model.save(path)
    raw = path.read_bytes()
    cut = tmp_path / "cut.npz"
    cut.write_bytes(raw[: len(raw) // 2])
    flipped = tmp_path / "flipped.npz"  # one byte of an array changed: the zip checksum no longer matches
    at = len(raw) // 3
    flipped.write_bytes(raw[:at] + bytes([raw[at] ^ 0xFF]) + raw[at + 1:])
    for bad in (cut, flipped):
        for load in (type(model).load, probspace.load):
            with pytest.raises(ValueError, match="not a readable probspace"):
                load(bad)


# -- files written by earlier versions keep loading ---------------------------------------------------
_LEGACY = Path(__file__).parent / "data" / "saved_v1"


def _legacy_data(name: str) -> np.ndarray:
    if name == "poisson_hmm":
        return np.load(_LEGACY / "data_counts.npy")[:, :2]
    if name == "lda":
        return np.load(_LEGACY / "data_counts.npy")
    if name == "categorical_hmm":
        return np.load(_LEGACY / "data_symbols.npy")
    return np.load(_LEGACY / "data_X.npy")


@pytest.mark.parametrize("name", sorted(json.loads((_LEGACY / "expected.json").read_text())))
def test_files_written_by_format_1_still_load(name):
    """Files written by probspace at commit 3df1a6d (file format 1, VAE format 1), with their outputs then."""
    expected = json.loads((_LEGACY / "expected.json").read_text())[name]
    X = _legacy_data(name)
    model = probspace.load(_LEGACY / f"{name}.npz")
    np.testing.assert_allclose(model.embed(X), expected["embed"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(model.log_likelihood(X), expected["loglik"], rtol=1e-10, atol=1e-9)
    model.sample(3, random_state=0)


def test_a_lazily_imported_family_loads_in_a_fresh_process(tmp_path):
    """VAE-family modules are imported on first use; load must find them from a file alone."""
    import subprocess
    import sys

    pytest.importorskip("torch")
    X = np.random.default_rng(0).random((40, 5))
    path = tmp_path / "vae.npz"
    probspace.VAE(2, hidden_dims=(8,), max_epochs=1, random_state=0).fit(X).save(path)
    code = f"import probspace; m = probspace.load({str(path)!r}); print(type(m).__name__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "VAE"
