"""probspace.dask on a real LocalCluster(n_workers=2, threads_per_worker=1): workers, retries, joblib's Dask backend."""

import copy
import os
import signal
import sys
import threading
import time
import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

from probspace import GaussianHMM, GaussianMixture  # noqa: E402
from probspace.dask import fit, fit_chains, sweep  # noqa: E402

pytestmark = pytest.mark.slow
cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the workers cannot import this test module


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                           dashboard_address=None, silence_logs=50)
    with cluster, distributed.Client(cluster) as c:
        yield c


def _data(n=4000):
    rng = np.random.default_rng(0)
    centres = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    return centres[rng.integers(0, 3, n)] + rng.normal(size=(n, 2))


def _slow(block):
    time.sleep(0.15)
    return block


def test_draws_identical_with_one_or_two_workers(client):
    X = _data()
    gm = GaussianMixture(3, random_state=0).fit(X)
    lazy = gm.posterior(da.from_array(X, chunks=(500, 2)))
    two = lazy.sample(5, random_state=3).compute()
    mean_two = lazy.mean.compute()
    one = gm.posterior(da.from_array(X, chunks=(300, 2))).sample(5, random_state=3).compute(scheduler="synchronous")
    np.testing.assert_array_equal(two, one)
    np.testing.assert_allclose(mean_two, gm.posterior(X).mean, rtol=0, atol=1e-12)
    assert len(client.scheduler_info()["workers"]) == 2


def test_em_on_cluster_equals_synchronous(client):
    X = _data()
    a = GaussianMixture(3, max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.fit(X[:500])
    b = copy.deepcopy(a)
    fit(a, da.from_array(X, chunks=(400, 2)), max_iter=4, tol=0.0)
    fit(b, da.from_array(X, chunks=(400, 2)), max_iter=4, tol=0.0, scheduler="synchronous")
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-12)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-12)


def test_worker_killed_mid_fit_is_retried(client):
    X = _data(6000)
    Xd = da.from_array(X, chunks=(500, 2)).map_blocks(_slow, dtype=float)
    start = GaussianHMM(3, random_state=0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start.fit(X[:600])
    ref = fit(copy.deepcopy(start), Xd, max_iter=3, tol=-np.inf, scheduler="synchronous")
    pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killer = threading.Timer(1.0, os.kill, (victim, signal.SIGKILL))
    killer.start()
    got = fit(copy.deepcopy(start), Xd, max_iter=3, tol=-np.inf)
    killer.join()
    client.wait_for_workers(2, timeout=60)
    assert victim not in client.run(os.getpid).values()  # the worker really died and was replaced
    np.testing.assert_allclose(got.means_, ref.means_, rtol=1e-10)
    np.testing.assert_allclose(got.transmat_, ref.transmat_, rtol=1e-10)
    np.testing.assert_allclose(got.history_, ref.history_, rtol=1e-12)


def test_joblib_dask_backend(client):
    X = _data(600)
    res = sweep(GaussianMixture(random_state=0, max_iter=50), X, {"n_components": [2, 3]})
    local = sweep(GaussianMixture(random_state=0, max_iter=50), X, {"n_components": [3]}, backend="sequential")
    np.testing.assert_array_equal(res.models["n_components=3"].means_, local.models["n_components=3"].means_)
    model = GaussianMixture(3, sampler="gibbs", n_chains=2, n_draws=20, n_warmup=10, random_state=1)
    on_cluster = fit_chains(model, X)
    local_chains = fit_chains(model, X, backend="sequential")
    np.testing.assert_array_equal(on_cluster.draws_["means"], local_chains.draws_["means"])
