"""ArviZ's default calls on every family's default ``to_arviz`` output, on whichever ArviZ line is installed.

Each call must succeed with a bounded output (a summary of at most a few dozen
rows, plots of at most 40 panels), or raise the documented error (``loo`` on a
fit without parameter draws). Runs under ArviZ 0.23 (Python 3.11) and ArviZ
1.x (Python 3.12, no torch: the VAE and NUTS rows are skipped there).
"""

from __future__ import annotations

import importlib.util
import warnings

import matplotlib
import numpy as np
import pytest
from sklearn.decomposition import PCA

import probspace
from probspace.datasets import load_discoveries, load_nile, load_old_faithful
from probspace.diagnostics import arviz_major_version
from probspace.diagnostics._arviz import _import_arviz

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

az = _import_arviz()
MAJOR = arviz_major_version()
HAS_TORCH = bool(importlib.util.find_spec("torch") and importlib.util.find_spec("pyro"))
MAX_ROWS = 40


def _faithful():
    return load_old_faithful().data[::2]


def _graph():
    rng = np.random.default_rng(0)
    positions = np.abs(rng.normal(0.5, 0.15, size=(30, 2))) / 1.2
    P = np.clip(positions @ positions.T, 0, 1)
    A = np.triu((rng.random(P.shape) < P).astype(float), 1)
    return A + A.T


def _counts():
    rng = np.random.default_rng(0)
    return rng.poisson(2.0, size=(40, 12)).astype(float)


# name -> (model factory, data factory, kind); kind: "point" (EM/VI), "draws" (parameter draws, one chain),
# "chains" (MCMC)
CASES = {
    "GaussianMixture": (lambda: probspace.GaussianMixture(2, random_state=0), _faithful, "point"),
    "GaussianMixture-vb": (lambda: probspace.GaussianMixture(2, bayesian=True, random_state=0), _faithful, "draws"),
    "GaussianMixture-gibbs": (lambda: probspace.GaussianMixture(2, sampler="gibbs", n_chains=2, n_draws=60,
                                                                n_warmup=60, random_state=0), _faithful, "chains"),
    "GaussianHMM": (lambda: probspace.GaussianHMM(2, random_state=0), lambda: load_nile().data, "point"),
    "GaussianHMM-vb": (lambda: probspace.GaussianHMM(2, bayesian=True, random_state=0), lambda: load_nile().data,
                       "draws"),
    "GaussianHMM-gibbs": (lambda: probspace.GaussianHMM(2, sampler="gibbs", n_chains=2, n_draws=60, n_warmup=60,
                                                        random_state=0), lambda: load_nile().data, "chains"),
    "PoissonHMM-gibbs": (lambda: probspace.PoissonHMM(2, sampler="gibbs", n_chains=2, n_draws=60, n_warmup=60,
                                                      random_state=0), lambda: load_discoveries().data, "chains"),
    "CategoricalHMM": (lambda: probspace.CategoricalHMM(2, random_state=0),
                       lambda: np.minimum(load_discoveries().data, 5), "point"),
    "GMMHMM": (lambda: probspace.GMMHMM(2, n_mix=2, random_state=0), lambda: load_nile().data, "point"),
    "LDA": (lambda: probspace.LDA(3, random_state=0), _counts, "point"),
    "LDA-gibbs": (lambda: probspace.LDA(3, algorithm="gibbs", n_chains=2, n_draws=60, n_warmup=60, random_state=0),
                  _counts, "chains"),
    "BernoulliHMM": (lambda: probspace.BernoulliHMM(2, random_state=0), lambda: (_counts()[:, :4] > 2).astype(float),
                     "point"),
    "FactorAnalysis": (lambda: probspace.FactorAnalysis(2, random_state=0), _counts, "point"),
    "PPCA": (lambda: probspace.PPCA(2, random_state=0), _counts, "point"),
    "Embedding": (lambda: probspace.Embedding(PCA(2)), _faithful, "point-nodensity"),
    # local linear trend (level and slope): two state coordinates, so the pair plot has two variables
    "LinearGaussianSSM": (lambda: probspace.LinearGaussianSSM(
        2, transition_matrix=[[1.0, 1.0], [0.0, 1.0]], observation_matrix=[[1.0, 0.0]],
        fixed=["transition_matrix", "observation_matrix"], max_iter=50, random_state=0), lambda: load_nile().data,
        "point"),
    "RDPG": (lambda: probspace.RDPG(2, n_chains=2, n_draws=60, n_warmup=60, random_state=0), _graph, "chains-latent"),
    "SemiMarkovHMM": (lambda: probspace.SemiMarkovHMM(2, max_duration=30, random_state=0), lambda: load_nile().data,
                      "point"),
    "InputDrivenHMM": (lambda: probspace.InputDrivenHMM(2, emission="poisson", random_state=0),
                       lambda: load_discoveries().data, "point"),
    "RBM": (lambda: probspace.RBM(3, n_iter=3, random_state=0), lambda: (_counts()[:, :6] > 2).astype(float), "point"),
    "DBN": (lambda: probspace.DBN(2, hidden_layers=(3,), n_iter=3, random_state=0),
            lambda: (_counts()[:, :6] > 2).astype(float), "point"),
}
# issue #17: the local level model's two variances by Gibbs (chains, per-draw one-step-ahead log-likelihood)
CASES["LinearGaussianSSM-gibbs"] = (lambda: probspace.LinearGaussianSSM(
    1, transition_matrix=[[1.0]], observation_matrix=[[1.0]], initial_mean=[1000.0], initial_covariance=[[1e5]],
    fixed=["transition_matrix", "observation_matrix", "initial_mean", "initial_covariance"], sampler="gibbs",
    n_chains=2, n_draws=60, n_warmup=60, random_state=0), lambda: load_nile().data, "chains")
# issue #17 items 7-8: autoregressive HMM, Student-t emissions, a product of Gaussian and Poisson columns
CASES["AutoregressiveHMM"] = (lambda: probspace.AutoregressiveHMM(2, order=2, random_state=0),
                              lambda: load_nile().data, "point")
CASES["AutoregressiveHMM-gibbs"] = (lambda: probspace.AutoregressiveHMM(2, order=2, sampler="gibbs", n_chains=2,
                                                                       n_draws=60, n_warmup=60, random_state=0),
                                    lambda: load_nile().data, "chains")
CASES["HMM-studentt"] = (lambda: probspace.HMM(2, emission="studentt", random_state=0), lambda: load_nile().data,
                         "point")
CASES["HMM-product"] = (lambda: probspace.HMM(2, emission="product", emission_params={
    "parts": [["gaussian", [0]], ["poisson", [1]]]}, random_state=0), _faithful, "point")
if HAS_TORCH:
    CASES["VAE"] = (lambda: probspace.VAE(2, hidden_dims=(16,), likelihood="gaussian", max_epochs=5,
                                          random_state=0), _faithful, "point")
    CASES["GaussianMixture-nuts"] = (lambda: probspace.GaussianMixture(2, covariance_type="diag", sampler="nuts",
                                                                       n_chains=2, n_draws=40,
                                                                       n_warmup=40, random_state=0),
                                     _faithful, "chains-nuts")
    CASES["Autoencoder"] = (lambda: probspace.Autoencoder(2, hidden_dims=(16,), likelihood="gaussian", max_epochs=5,
                                                          random_state=0), _faithful, "point-nodensity")

    def _linear_generator():
        import torch

        torch.manual_seed(0)
        return torch.nn.Linear(2, 2).double()

    # MCMC over codes without a density over X: chains and NUTS statistics, no log_likelihood group
    CASES["GeneratorPosterior"] = (lambda: probspace.GeneratorPosterior(_linear_generator(), n_components=2,
                                                                        n_chains=2, n_draws=40, n_warmup=40,
                                                                        random_state=0),
                                   lambda: (_faithful()[:6] - [3.5, 70.0]) / [1.1, 13.6], "chains-nodensity")


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    factory, data, kind = CASES[request.param]
    X = data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = factory().fit(X)
        idata = model.to_arviz(X, n_samples=40, random_state=0)
    return request.param, model, idata, kind


def _scalars(idata) -> int:
    post = idata["posterior"]
    return int(sum(np.prod(post[v].shape[2:], dtype=int) for v in post.data_vars))


def _quiet(call):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = call()
    plt.close("all")
    return out


def test_default_posterior_is_bounded(case):
    name, model, idata, kind = case
    assert 0 < _scalars(idata) <= MAX_ROWS, (name, list(idata["posterior"].data_vars))
    latent = idata["latent_posterior"][model._latent_name]
    assert latent.dims[:2] == ("chain", "draw")


@pytest.mark.parametrize("call", ["summary", "ess", "rhat", "mcse"])
def test_diagnostics(case, call):
    name, model, idata, kind = case
    out = _quiet(lambda: getattr(az, call)(idata))
    if call == "summary":
        assert 0 < len(out) <= MAX_ROWS, (name, len(out))


def test_loo_and_compare(case):
    name, model, idata, kind = case
    if kind.startswith("point") or kind.endswith("nodensity"):  # plug-in values or no density: no log_likelihood
        assert "log_likelihood" not in (idata.groups() if MAJOR == 0 else idata.children)
        assert "not written" in idata["posterior"].attrs["log_likelihood"]
        with pytest.raises((TypeError, ValueError, KeyError, AttributeError)):
            _quiet(lambda: az.loo(idata))
        return
    loo = _quiet(lambda: az.loo(idata))
    assert np.isfinite(float(loo["elpd_loo"] if MAJOR == 0 else loo.elpd))
    table = _quiet(lambda: az.compare({"a": idata, "b": idata}))
    assert len(table) == 2


@pytest.mark.parametrize("plot", ["trace", "posterior", "forest", "ppc", "rank", "energy", "pair"])
def test_plots(case, plot):
    name, model, idata, kind = case
    if plot == "rank" and not kind.startswith("chains"):
        pytest.skip("rank plots compare chains: MCMC fits only")
    if plot == "energy" and kind != "chains-nuts":
        pytest.skip("the energy plot needs NUTS's energy statistic")
    if plot == "ppc" and kind == "point-nodensity":
        pytest.skip("an embedding generates no data: no posterior predictive")
    names = {"posterior": "plot_posterior" if MAJOR == 0 else "plot_dist",
             "ppc": "plot_ppc" if MAJOR == 0 else "plot_ppc_dist"}
    func = getattr(az, names.get(plot, f"plot_{plot}"))
    kwargs = {}
    if plot == "pair":
        kwargs["var_names"] = [v for v in idata["posterior"].data_vars if not v.endswith(("_share", "_mean"))][:2] \
            or list(idata["posterior"].data_vars)[:1]
    _quiet(lambda: func(idata, **kwargs))
