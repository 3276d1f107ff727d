"""Student-t and product emissions (issue #17 item 8): densities, EM, robustness, recovery, bad input."""

import numpy as np
import pytest
from scipy import stats

from probspace import HMM, load
from probspace.emissions import (
    CategoricalEmission,
    GaussianEmission,
    PoissonEmission,
    ProductEmission,
    StudentTEmission,
)
from probspace.inference import _hmm

RNG = np.random.default_rng(0)
K = 3
T_PARAMS = {"means": RNG.normal(size=(K, 2)), "covars": np.array([[[1.0, 0.3], [0.3, 0.5]], [[2.0, -0.4], [-0.4, 1.0]],
                                                                  [[0.3, 0.0], [0.0, 0.2]]]),
            "dofs": np.array([1.5, 4.0, 30.0])}


def test_student_t_density_matches_scipy_with_missing_values():
    X = RNG.normal(scale=2.0, size=(30, 2))
    X[3, 0] = np.nan
    X[5, 1] = np.nan
    X[7] = np.nan
    got = StudentTEmission().log_frames(X, T_PARAMS)
    ref = np.zeros_like(got)
    for i, x in enumerate(X):
        obs = ~np.isnan(x)
        for k in range(K):
            m, S, nu = T_PARAMS["means"][k], T_PARAMS["covars"][k], T_PARAMS["dofs"][k]
            if obs.all():
                ref[i, k] = stats.multivariate_t(m, S, df=nu).logpdf(x)
            elif obs.any():
                d = int(np.flatnonzero(obs)[0])
                ref[i, k] = stats.t(nu, loc=m[d], scale=np.sqrt(S[d, d])).logpdf(x[d])
    np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-12)


def test_student_t_sampling_follows_the_density():
    params = {"means": np.array([[1.0]]), "covars": np.array([[[4.0]]]), "dofs": np.array([3.0])}
    x = StudentTEmission().sample(params, np.zeros(4000, dtype=np.int64), np.random.default_rng(1))[:, 0]
    assert stats.kstest(x, stats.t(3.0, loc=1.0, scale=2.0).cdf).pvalue > 1e-6
    assert stats.kstest(x, stats.norm(1.0, 2.0).cdf).pvalue < 1e-6  # the test can tell the t from a Gaussian


def _two_state(rng, T, draw):
    states = _hmm.sample_chain(np.array([0.5, 0.5]), np.array([[0.95, 0.05], [0.05, 0.95]]), T, rng)
    return draw(states), states


def test_em_is_monotone_and_recovers_the_degrees_of_freedom():
    rng = np.random.default_rng(2)
    truth = {"means": np.array([[-3.0, 0.0], [3.0, 1.0]]), "covars": np.array([np.eye(2), 0.5 * np.eye(2)]),
             "dofs": np.array([3.0, 3.0])}
    X, states = _two_state(rng, 4000, lambda s: StudentTEmission().sample(truth, s, rng))
    model = HMM(2, emission="studentt", emission_params={"min_covar": 0.0}, tol=1e-6, max_iter=200,
                random_state=0).fit(X)
    assert np.all(np.diff(model.history_) > -1e-10)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], truth["means"], atol=0.08)
    np.testing.assert_allclose(model.covars_[order], truth["covars"], atol=0.12)
    assert np.all((model.dofs_ > 2.3) & (model.dofs_ < 4.0))


def test_student_t_is_robust_to_outliers_where_the_gaussian_is_not():
    rng = np.random.default_rng(3)
    means = np.array([[0.0], [4.0]])
    X, states = _two_state(rng, 1500, lambda s: means[s] + 0.5 * rng.normal(size=(len(s), 1)))
    outliers = rng.choice(len(X), size=60, replace=False)
    X[outliers] += rng.choice([-1.0, 1.0], size=(60, 1)) * rng.uniform(15, 30, size=(60, 1))
    t = HMM(2, emission="studentt", random_state=0).fit(X)
    g = HMM(2, emission="gaussian", random_state=0).fit(X)
    err_t = np.abs(np.sort(t.means_[:, 0]) - means[:, 0]).max()
    err_g = np.abs(np.sort(g.means_[:, 0]) - means[:, 0]).max()
    clean = np.setdiff1d(np.arange(len(X)), outliers)
    acc_t = (t.predict(X)[clean] == (states[clean] if t.means_[0, 0] < t.means_[1, 0] else 1 - states[clean])).mean()
    assert err_t < 0.1 and acc_t > 0.98
    assert err_g > 5 * err_t


def test_student_t_settings_and_sampler_are_checked():
    X, lengths = HMM(emission="studentt")._conformance_data(np.random.default_rng(0))
    with pytest.raises(ValueError, match="supports sampler \\['gibbs'\\]"):
        HMM(2, emission="studentt", sampler="nuts").fit(X, lengths=lengths)
    with pytest.raises(ValueError, match="dof_bounds"):
        HMM(2, emission="studentt", emission_params={"dof_bounds": (5.0, 1.0)}).fit(X, lengths=lengths)
    with pytest.raises(ValueError, match="do not fit StudentTEmission"):
        HMM(2, emission="studentt", emission_params={"nu": 3}).fit(X, lengths=lengths)


def test_student_t_save_load(tmp_path):
    X, lengths = HMM(emission="studentt")._conformance_data(np.random.default_rng(0))
    model = HMM(2, emission="studentt", emission_params={"fit_dof": False, "dof_init": 4.0}, random_state=0)
    model.fit(X, lengths=lengths)
    np.testing.assert_array_equal(model.dofs_, [4.0, 4.0])
    model.save(tmp_path / "t.npz")
    back = load(tmp_path / "t.npz")
    np.testing.assert_array_equal(back.log_likelihood(X, lengths=lengths), model.log_likelihood(X, lengths=lengths))


# -- product -------------------------------------------------------------------------------------------------------
PARTS = [("gaussian", [0, 2], {"covariance_type": "full"}), ("categorical", [1]), ("poisson", [3])]


def test_product_density_is_the_sum_of_the_parts():
    rng = np.random.default_rng(4)
    X = np.column_stack([rng.normal(size=40), rng.integers(0, 3, 40), rng.normal(size=40), rng.poisson(2.0, 40)])
    X = X.astype(float)
    X[2, 1] = np.nan
    X[5, [0, 2]] = np.nan
    gauss = {"means": rng.normal(size=(K, 2)), "covars": T_PARAMS["covars"]}
    cat = {"emissionprob": rng.dirichlet(np.ones(3), size=K)}
    pois = {"lambdas": rng.uniform(0.5, 4.0, size=(K, 1))}
    params = {"gaussian0_means": gauss["means"], "gaussian0_covars": gauss["covars"],
              "categorical1_emissionprob": cat["emissionprob"], "poisson2_lambdas": pois["lambdas"]}
    emission = ProductEmission(PARTS).for_data(X)
    assert emission.names == tuple(params)
    ref = (GaussianEmission("full").log_frames(np.ascontiguousarray(X[:, [0, 2]]), gauss)
           + CategoricalEmission(3).log_frames(np.ascontiguousarray(X[:, [1]]), cat)
           + PoissonEmission().log_frames(np.ascontiguousarray(X[:, [3]]), pois))
    np.testing.assert_allclose(emission.log_frames(X, params), ref, rtol=1e-13)
    # and the parts against scipy on one complete row
    x, k = X[0], 1
    one = (stats.multivariate_normal(gauss["means"][k], gauss["covars"][k]).logpdf(x[[0, 2]])
           + np.log(cat["emissionprob"][k, int(x[1])]) + stats.poisson(pois["lambdas"][k, 0]).logpmf(x[3]))
    np.testing.assert_allclose(emission.log_frames(X, params)[0, k], one, rtol=1e-12)


def _product_truth():
    return {"gaussian0_means": np.array([[-2.0, 0.0], [2.0, 1.0]]),
            "gaussian0_covars": np.array([[[1.0, 0.4], [0.4, 1.0]], [[0.5, 0.0], [0.0, 0.5]]]),
            "categorical1_emissionprob": np.array([[0.7, 0.2, 0.1], [0.1, 0.2, 0.7]]),
            "poisson2_lambdas": np.array([[1.0], [6.0]])}


def test_product_parameters_are_recovered():
    rng = np.random.default_rng(5)
    truth = _product_truth()
    emission = ProductEmission([list(p) for p in PARTS[:1]] + [["categorical", [1], {"n_symbols": 3}],
                                                               ["poisson", [3]]])
    X, states = _two_state(rng, 3000, lambda s: emission.sample(truth, s, rng))
    assert set(np.unique(X[:, 1])) == {0.0, 1.0, 2.0} and np.all(X[:, 3] == np.round(X[:, 3]))
    model = HMM(2, emission="product", emission_params={"parts": PARTS}, random_state=0).fit(X)
    order = np.argsort(model.gaussian0_means_[:, 0])
    for name, value in truth.items():
        np.testing.assert_allclose(getattr(model, name + "_")[order], value, atol=0.12, err_msg=name)
    assert np.all(np.diff(model.history_) > -1e-8)


def test_product_bad_input():
    X, lengths = HMM(emission="product")._conformance_data(np.random.default_rng(0))  # gauss, gauss, count, symbol

    def fit(parts, data=X):
        return HMM(2, emission="product", emission_params={"parts": parts}).fit(data, lengths=lengths)

    with pytest.raises(ValueError, match=r"overlap \(column\(s\) \[1\]"):
        fit([("gaussian", [0, 1]), ("poisson", [1, 2]), ("categorical", [3])])
    with pytest.raises(ValueError, match=r"cover the 4 columns of X exactly once; missing \[2\]"):
        fit([("gaussian", [0, 1]), ("categorical", [3])])
    with pytest.raises(ValueError, match=r"out of range \[7\]"):
        fit([("gaussian", [0, 1]), ("poisson", [2]), ("categorical", [7])])
    with pytest.raises(ValueError, match="integer column indices"):
        fit([("gaussian", [0.5, 1]), ("poisson", [2]), ("categorical", [3])])
    with pytest.raises(ValueError, match="no emission is registered under 'nope'"):
        fit([("nope", [0, 1]), ("poisson", [2]), ("categorical", [3])])
    with pytest.raises(ValueError, match="non-negative integer symbols"):
        fit([("gaussian", [0, 1]), ("poisson", [2]), ("categorical", [3])], np.c_[X[:, :3], X[:, 3] + 0.5])
    with pytest.raises(ValueError, match="part 'categorical1'.*symbols"):
        fit([("gaussian", [0, 3]), ("categorical", [1]), ("poisson", [2])])
    with pytest.raises(ValueError, match="do not fit PoissonEmission"):
        fit([("gaussian", [0, 1]), ("poisson", [2], {"rate": 1}), ("categorical", [3])])
    with pytest.raises(ValueError, match="non-empty list"):
        fit([])
    with pytest.raises(ValueError, match=r"supports sampler \['gibbs'\]; got 'nuts'"):
        HMM(2, emission="product", sampler="nuts").fit(X, lengths=lengths)


def test_product_save_load_and_sampling(tmp_path):
    X, lengths = HMM(emission="product")._conformance_data(np.random.default_rng(0))
    parts = [("gaussian", [0, 1]), ("poisson", [2]), ("categorical", [3])]
    model = HMM(2, emission="product", emission_params={"parts": parts}, random_state=0).fit(X, lengths=lengths)
    assert model.emission_settings_["parts"][2] == ["categorical", [3], {"n_symbols": 3, "concentration": 1.0}]
    model.save(tmp_path / "p.npz")
    back = load(tmp_path / "p.npz")
    np.testing.assert_array_equal(back.log_likelihood(X, lengths=lengths), model.log_likelihood(X, lengths=lengths))
    Xs, _ = back.sample(50, random_state=0)
    assert Xs.shape == (50, 4) and np.all(np.isin(Xs[:, 3], [0, 1, 2])) and np.all(Xs[:, 2] >= 0)


def test_product_fits_with_missing_values_each_part_allows():
    X, lengths = HMM(emission="product")._conformance_data(np.random.default_rng(1))
    X[::7, 2] = np.nan  # Poisson column: any pattern
    X[3::11, 3] = np.nan  # categorical column: its whole part missing
    parts = [("gaussian", [0, 1]), ("poisson", [2]), ("categorical", [3])]
    model = HMM(2, emission="product", emission_params={"parts": parts}, random_state=0).fit(X, lengths=lengths)
    assert np.all(np.diff(model.history_) > -1e-8)
    assert np.all(np.isfinite(model.log_likelihood(X, lengths=lengths)))
    X[5, 0] = np.nan  # a partly missing full-covariance Gaussian part is not fitted
    full = [("gaussian", [0, 1], {"covariance_type": "full"}), ("poisson", [2]), ("categorical", [3])]
    with pytest.raises(ValueError, match="whole missing frames"):
        HMM(2, emission="product", emission_params={"parts": full}).fit(X, lengths=lengths)
