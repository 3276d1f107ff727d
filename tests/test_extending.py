"""A family written outside probspace, in one file, works like a built-in one (issue #13)."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

import numpy as np
import pytest

import probspace
from probspace.extend import LatentModel, family_name, registered_family
from probspace.testing import parametrize_with_model_checks

_PATH = pathlib.Path(__file__).parents[1] / "examples" / "extending" / "poisson_mixture.py"
_spec = importlib.util.spec_from_file_location("poisson_mixture", _PATH)
poisson_mixture = importlib.util.module_from_spec(_spec)
sys.modules["poisson_mixture"] = poisson_mixture  # importable by name, as a user's own module would be (pickle)
_spec.loader.exec_module(poisson_mixture)
PoissonMixture = poisson_mixture.PoissonMixture


@parametrize_with_model_checks([PoissonMixture()])
def test_one_file_family_passes_the_conformance_suite(model, check):
    check()


def test_one_file_family_saves_loads_and_feeds_arviz(tmp_path):
    X, _ = PoissonMixture._conformance_data(np.random.default_rng(0))
    model = PoissonMixture(2, random_state=0).fit(X)
    model.save(tmp_path / "pm.npz")
    loaded = probspace.load(tmp_path / "pm.npz")
    assert type(loaded) is PoissonMixture
    np.testing.assert_array_equal(loaded.posterior(X).probs, model.posterior(X).probs)
    np.testing.assert_array_equal(loaded.sample(5)[0], model.sample(5)[0])  # the stream continues
    idata = model.to_arviz(X, n_samples=20, random_state=0)
    assert idata["latent_posterior"]["label"].dims == ("chain", "draw", "obs")
    assert idata.posterior["label_share"].dims == ("chain", "draw", "component")
    assert idata.posterior_predictive["x"].shape == (1, 20) + X.shape


def test_registry_names_and_lookup():
    assert family_name(probspace.GaussianMixture) == "GaussianMixture"
    assert family_name(PoissonMixture) == "poisson_mixture.PoissonMixture"
    assert registered_family("poisson_mixture.PoissonMixture") is PoissonMixture
    assert registered_family("GaussianMixture") is probspace.GaussianMixture
    assert registered_family("LatentModel") is None and registered_family("no.such.Family") is None


def test_an_unregistered_family_is_named_when_loading(tmp_path):
    X, _ = PoissonMixture._conformance_data(np.random.default_rng(0))
    PoissonMixture(2, random_state=0).fit(X).save(tmp_path / "pm.npz")
    import json

    with np.load(tmp_path / "pm.npz") as f:
        header, arrays = json.loads(str(f["__header__"])), {k: f[k] for k in f.files if k != "__header__"}
    header["family"] = "elsewhere.Unknown"
    with open(tmp_path / "other.npz", "wb") as fh:
        np.savez(fh, __header__=np.array(json.dumps(header)), **arrays)
    with pytest.raises(ValueError, match="unknown model family 'elsewhere.Unknown' .* must be imported"):
        probspace.load(tmp_path / "other.npz")


def test_a_family_defined_in_a_function_cannot_be_saved(tmp_path):
    import pickle

    class Local(PoissonMixture):
        pass

    X, _ = PoissonMixture._conformance_data(np.random.default_rng(0))
    model = Local(2, random_state=0).fit(X)
    with pytest.raises(TypeError, match="not a registered probspace family"):
        model.save(tmp_path / "local.npz")
    assert isinstance(model, LatentModel)
    with pytest.raises((AttributeError, pickle.PicklingError)):
        pickle.dumps(model)  # a local class cannot be pickled either: define families at module level
