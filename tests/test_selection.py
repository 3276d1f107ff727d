"""probspace.compare: one table across families, and scikit-learn's GridSearchCV through score."""

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV

import probspace
from probspace import LDA, GaussianHMM, GaussianMixture
from probspace.datasets import load_nile, load_old_faithful


@pytest.fixture(scope="module")
def faithful():
    return load_old_faithful().data


def test_bic_ranks_mixtures(faithful):
    models = {f"K={k}": GaussianMixture(k, random_state=0).fit(faithful) for k in (1, 2, 3)}
    table = probspace.compare(models, faithful)
    assert table.attrs["criterion"] == "bic"
    assert list(table.index) == list(table.sort_values("bic").index)
    assert table.index[0] == "K=2"
    np.testing.assert_allclose(table.loc["K=2", "bic"], models["K=2"].bic(faithful))
    np.testing.assert_array_equal(table["rank"], [1, 2, 3])
    assert table["exact"].all()
    se = models["K=1"].log_likelihood(faithful).std(ddof=1) / np.sqrt(272)
    assert table.loc["K=1", "se"] == pytest.approx(se)


def test_heldout_across_families(faithful):
    rng = np.random.default_rng(0)
    idx = rng.permutation(272)
    train, test = faithful[idx[:200]], faithful[idx[200:]]
    models = {"gmm": GaussianMixture(2, random_state=0).fit(train),
              "hmm": GaussianHMM(2, random_state=0).fit(train)}
    table = probspace.compare(models, train, X_test=test)
    assert table.attrs["criterion"] == "heldout"
    assert table.loc["gmm", "log_likelihood"] == pytest.approx(models["gmm"].score(test))


def test_loo_for_bayesian_fits(faithful):
    models = {k: GaussianMixture(k, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                                 random_state=0).fit(faithful) for k in (1, 2)}
    table = probspace.compare(models, faithful, n_draws=200, random_state=0)
    assert table.attrs["criterion"] == "loo"
    assert table.index[0] == 2
    assert {"elpd_loo", "se_loo", "elpd_waic", "se_waic", "max_pareto_k"} <= set(table.columns)
    assert not table["exact"].any()


def test_hmm_information_criteria():
    X = load_nile().data
    models = [GaussianHMM(k, random_state=0, max_iter=50).fit(X) for k in (1, 2)]
    table = probspace.compare(models, X)
    np.testing.assert_allclose(table["bic"].min(), models[1].backend_.bic(X))


def test_errors(faithful):
    model = GaussianMixture(2, random_state=0).fit(faithful)
    with pytest.raises(ValueError, match="needs X_test"):
        probspace.compare({"a": model}, faithful, criterion="heldout")
    lda = LDA(2, random_state=0).fit(np.random.default_rng(0).poisson(1.0, (30, 6)))
    with pytest.raises(ValueError, match="not defined for"):
        probspace.compare({"lda": lda}, np.random.default_rng(0).poisson(1.0, (30, 6)), criterion="bic")
    with pytest.raises(ValueError, match="at least one"):
        probspace.compare({}, faithful)


def test_grid_search_through_score():
    X = load_nile().data
    search = GridSearchCV(GaussianHMM(random_state=0, max_iter=30), {"n_components": [1, 2]}, cv=2).fit(X)
    assert search.best_params_["n_components"] in (1, 2) and np.isfinite(search.best_score_)
    counts = np.random.default_rng(0).poisson(2.0, (40, 8))
    lda_search = GridSearchCV(LDA(random_state=0), {"n_components": [1, 2]}, cv=2).fit(counts)
    assert np.isfinite(lda_search.best_score_)
