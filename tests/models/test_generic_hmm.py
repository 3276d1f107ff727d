"""The generic HMM: any registered emission, fitted by probspace's own EM (issue #13: a new emission is one file)."""

import numpy as np
import pytest

import probspace
from probspace import HMM, BernoulliHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from probspace.emissions import Emission, emission_names, registered_emission
from probspace.inference import _hmm
from probspace.testing import parametrize_with_model_checks


# -- a new emission, defined here and nowhere else: the proof that an emission is one file ------------------------
class ExponentialEmission(Emission):
    """Independent exponential features, ``x_d | z = k ~ Exponential(rate_kd)`` (NaN summed out)."""

    name = "test-exponential"
    non_negative = True
    names = ("rates",)
    key = "rates"
    positive = ("rates",)

    def shapes(self, K, D):
        return {"rates": (K, D)}

    def log_frames(self, X, params):
        lam = np.asarray(params["rates"], dtype=np.float64)
        obs = ~np.isnan(X)
        return obs @ np.log(lam).T - np.where(obs, X, 0.0) @ lam.T

    def sample(self, params, states, rng):
        return rng.exponential(1.0 / params["rates"][states])

    def check_data(self, X, owner):
        if np.any(X[~np.isnan(X)] < 0):
            raise ValueError(f"X passed to {owner} must be non-negative.")

    @staticmethod
    def conformance_data(states, rng):
        return rng.exponential(1.0 / np.array([[0.5, 3.0], [4.0, 0.3]])[states])

    def init(self, X, K, rng):
        mean = np.nanmean(X, axis=0)
        rows = X[rng.choice(X.shape[0], size=K, replace=False)]
        return {"rates": 1.0 / (0.5 * np.where(np.isnan(rows), mean, rows) + 0.5 * mean)}

    def missing_supported(self, missing):
        return True

    def m_step(self, X, gamma, params):
        obs = ~np.isnan(X)
        den = gamma.T @ np.where(obs, X, 0.0)
        return {"rates": np.where(den > 0, (gamma.T @ obs) / np.where(den > 0, den, 1.0), params["rates"])}


@parametrize_with_model_checks([HMM(emission=name) for name in emission_names()])
def test_every_registered_emission_passes_the_conformance_suite(model, check):
    check()


def test_the_emission_supplies_the_conformance_data_of_an_instance():
    rng = np.random.default_rng(0)
    X, lengths = HMM(emission="poisson")._conformance_data(rng)
    assert X.shape == (120, 2) and np.all(X == np.round(X)) and list(lengths) == [70, 50]


def test_every_emission_in_the_package_is_registered():
    assert {"gaussian", "categorical", "poisson", "gmm", "bernoulli"} <= set(emission_names())
    assert registered_emission("test-exponential") is ExponentialEmission
    with pytest.raises(ValueError, match="no emission is registered under 'nope'"):
        HMM(emission="nope").fit(np.zeros((5, 1)))


def test_a_second_class_cannot_take_a_registered_name():
    with pytest.raises(ValueError, match="'poisson' is taken"):
        type("OtherPoisson", (Emission,), {"name": "poisson"})


def test_bad_emission_params_are_a_value_error():
    X, lengths = HMM(emission="gaussian")._conformance_data(np.random.default_rng(0))
    with pytest.raises(ValueError, match="emission_params"):
        HMM(2, emission="gaussian", emission_params={"n_symbols": 3}).fit(X, lengths=lengths)


# -- the same exact answers as the named families, given the same parameters ----------------------------------------
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # the generic fit is overwritten
@pytest.mark.parametrize(("family", "emission", "params"), [
    (GaussianHMM, "gaussian", {"covariance_type": "diag"}),
    (GaussianHMM, "gaussian", {"covariance_type": "full"}),
    (PoissonHMM, "poisson", {}),
    (CategoricalHMM, "categorical", {}),
])
def test_same_posterior_and_log_likelihood_as_the_named_family(family, emission, params):
    named = family(2, random_state=0, **params)
    X, lengths = type(named)._conformance_data(np.random.default_rng(1))
    named.fit(X, lengths=lengths)
    generic = HMM(2, emission=emission, emission_params=params, max_iter=1, random_state=0)
    generic.fit(X, lengths=lengths)
    generic._set_point(named._point())
    np.testing.assert_allclose(generic.log_likelihood(X, lengths=lengths), named.log_likelihood(X, lengths=lengths),
                               rtol=1e-9)
    np.testing.assert_allclose(generic.posterior(X, lengths=lengths).marginals,
                               named.posterior(X, lengths=lengths).marginals, atol=1e-9)
    fb = _hmm.forward_backward(named.startprob_, named.transmat_, named._log_frameprob(X), lengths)
    np.testing.assert_allclose(generic.log_likelihood(X, lengths=lengths), fb.log_likelihood, rtol=1e-9)
    np.testing.assert_array_equal(generic.predict(X, lengths=lengths), named.predict(X, lengths=lengths))


def test_bernoulli_fit_equals_bernoulli_hmm():
    X, lengths = BernoulliHMM._conformance_data(np.random.default_rng(2))
    named = BernoulliHMM(2, random_state=3).fit(X, lengths=lengths)
    generic = HMM(2, emission="bernoulli", random_state=3).fit(X, lengths=lengths)
    np.testing.assert_allclose(generic.probs_, named.probs_)
    np.testing.assert_allclose(generic.transmat_, named.transmat_)
    np.testing.assert_allclose(generic.history_, named.history_)


# -- saving, missing values, MCMC, forecasts -------------------------------------------------------------------------
@pytest.mark.parametrize("emission", ["gaussian", "categorical", "gmm", "test-exponential"])
def test_save_load_round_trip(tmp_path, emission):
    model = HMM(2, emission=emission, random_state=0)
    X, lengths = model._conformance_data(np.random.default_rng(0))
    model.fit(X, lengths=lengths)
    model.save(tmp_path / "model")
    loaded = probspace.load(tmp_path / "model")
    assert type(loaded) is HMM and loaded.emission == emission
    assert loaded.emission_settings_ == model.emission_settings_
    for name, value in model._get_parameters().items():
        np.testing.assert_array_equal(loaded._get_parameters()[name], value)
    np.testing.assert_array_equal(loaded.log_likelihood(X, lengths=lengths), model.log_likelihood(X, lengths=lengths))


def test_missing_values_fit_with_a_new_emission():
    model = HMM(2, emission="test-exponential", random_state=0)
    X, lengths = model._conformance_data(np.random.default_rng(0))
    X[::7, 1] = np.nan
    model.fit(X, lengths=lengths)
    assert np.all(np.diff(model.history_) > -1e-8)
    assert np.all(np.isfinite(model.log_likelihood(X, lengths=lengths)))


def test_new_emission_samples_and_forecasts():
    model = HMM(2, emission="test-exponential", random_state=0)
    X, lengths = model._conformance_data(np.random.default_rng(0))
    model.fit(X, lengths=lengths)
    Xs, Zs = model.sample(50)
    assert Xs.shape == (50, 2) and np.all(Xs >= 0) and set(np.unique(Zs)) <= {0, 1}
    Xf, Zf = model.forecast(X, 4, 3, lengths=lengths)
    assert Xf.shape == (3, 4, 2) and Zf.shape == (3, 4)
    assert np.sort(model.rates_[:, 0]).tolist() == pytest.approx([0.5, 4.0], rel=0.5)


def test_gibbs_runs_through_the_generic_engine():
    model = HMM(2, emission="poisson", sampler="gibbs", n_chains=1, n_draws=30, n_warmup=30, random_state=0)
    X, lengths = model._conformance_data(np.random.default_rng(0))
    model.fit(X, lengths=lengths)
    assert model.draws_["lambdas"].shape == (1, 30, 2, 2)
    with pytest.raises(ValueError, match="sampler"):
        HMM(2, emission="test-exponential", sampler="gibbs").fit(X, lengths=lengths)

