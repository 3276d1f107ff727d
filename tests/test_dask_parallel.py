"""Sweeps and parallel MCMC chains through joblib (sequential here; the Dask backend in the slow cluster tests)."""

import numpy as np
import pytest

pytest.importorskip("dask")

from probspace import GaussianHMM, GaussianMixture  # noqa: E402
from probspace.dask import fit_chains, sweep  # noqa: E402


def _X():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(-3, 1, (80, 1)), rng.normal(3, 1, (80, 1))]


def test_sweep_ranks_and_reproduces():
    X = _X()
    res = sweep(GaussianMixture(random_state=0), X, {"n_components": [1, 2, 3]}, backend="sequential")
    assert res.table.index[0] == "n_components=2"
    assert set(res.models) == {"n_components=1", "n_components=2", "n_components=3"}
    again = sweep(GaussianMixture(random_state=0), X, {"n_components": [2]}, backend="threading", n_jobs=2)
    np.testing.assert_array_equal(again.models["n_components=2"].means_, res.models["n_components=2"].means_)
    with pytest.raises(ValueError, match="param_grid"):
        sweep(GaussianMixture(), X, [])


def test_sweep_hmm_with_lengths():
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(-2, 1, (60, 1)), rng.normal(2, 1, (60, 1))]
    res = sweep(GaussianHMM(random_state=0, max_iter=20), X, {"n_components": [1, 2]}, lengths=[70, 50],
                backend="sequential")
    assert res.table.index[0] == "n_components=2"


def test_fit_chains_stacks_independent_chains():
    X = _X()
    model = GaussianMixture(2, sampler="gibbs", n_chains=3, n_draws=60, n_warmup=30, random_state=4)
    fitted = fit_chains(model, X, backend="sequential")
    assert fitted.draws_["means"].shape[:2] == (3, 60)
    assert fitted.n_chains == 3 and not hasattr(model, "mcmc_")
    np.testing.assert_allclose(fitted.means_, fitted.draws_["means"].mean(axis=(0, 1)))
    # chains differ, and the same seed gives the same chains under another backend
    assert not np.allclose(fitted.draws_["means"][0], fitted.draws_["means"][1])
    again = fit_chains(model, X, backend="threading", n_jobs=2)
    np.testing.assert_array_equal(again.draws_["means"], fitted.draws_["means"])
    assert np.sort(fitted.means_.ravel())[0] < -2 and np.sort(fitted.means_.ravel())[1] > 2
    with pytest.raises(ValueError, match="sampler"):
        fit_chains(GaussianMixture(2), X)
