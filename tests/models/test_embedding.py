"""Embedding: scikit-learn transformers as point-mass posteriors, with clear errors where there is no density."""

import os
import pickle
import warnings

import numpy as np
import pytest
from sklearn.decomposition import PCA
from sklearn.exceptions import NotFittedError
from sklearn.manifold import TSNE, Isomap, SpectralEmbedding

from probspace import Embedding, InvalidParameterError, PointMass
from probspace.testing import parametrize_with_model_checks


@parametrize_with_model_checks([Embedding(PCA(2)), Embedding(Isomap(n_neighbors=8, n_components=2)),
                                Embedding(SpectralEmbedding(2, n_neighbors=8)), Embedding(TSNE(2, perplexity=10))])
def test_model_conformance(model, check):
    check()


@pytest.fixture(scope="module")
def X():
    return Embedding._conformance_data(np.random.default_rng(0))[0]


def test_embed_is_the_estimator_output_and_a_point_mass(X):
    emb = Embedding(PCA(2)).fit(X)
    np.testing.assert_allclose(emb.embed(X), PCA(2).fit(X).transform(X), rtol=1e-10, atol=1e-12)
    post = emb.posterior(X)
    assert isinstance(post, PointMass) and post.method == "exact"
    np.testing.assert_array_equal(post.loc, emb.embed(X))
    draws = post.sample(10)
    assert np.all(draws == post.loc)
    np.testing.assert_array_equal(post.variance, 0.0)
    assert np.all(post.entropy() == -np.inf)
    np.testing.assert_array_equal(post.log_prob(draws), 0.0)
    new = X[:5] + 1.0  # an estimator with transform embeds new rows
    np.testing.assert_allclose(emb.embed(new), emb.backend_.transform(new))


def test_transductive_estimators_embed_their_training_rows_only(X):
    tsne = Embedding(TSNE(2, perplexity=10, random_state=3)).fit(X)
    np.testing.assert_array_equal(tsne.embed(X), tsne.embedding_)
    np.testing.assert_allclose(tsne.embedding_, TSNE(2, perplexity=10, random_state=3).fit_transform(X))
    with pytest.raises(ValueError, match=r"TSNE has no transform: Embedding\(TSNE\) embeds only the 60 rows"):
        tsne.posterior(X[::-1])
    with pytest.raises(ValueError, match="no transform"):
        tsne.embed(X[:10])
    iso = Embedding(Isomap(n_neighbors=8)).fit(X)
    assert iso.embed(X[:10] + 0.1).shape == (10, 2)


def test_seeding(X):
    # The estimator's own seed is kept; without one, the clone is seeded from the model's random_state.
    a = Embedding(TSNE(2, perplexity=10, init="random"), random_state=1).fit(X)
    b = Embedding(TSNE(2, perplexity=10, init="random"), random_state=1).fit(X)
    np.testing.assert_array_equal(a.embedding_, b.embedding_)
    assert a.estimator.random_state is None and isinstance(a.backend_.random_state, int)
    c = Embedding(TSNE(2, perplexity=10, random_state=5), random_state=1).fit(X)
    assert c.backend_.random_state == 5
    # Other seeds give other embeddings: not draws from a posterior, just other answers.
    d = Embedding(TSNE(2, perplexity=10, init="random"), random_state=2).fit(X)
    assert not np.allclose(a.embedding_, d.embedding_)


def test_no_density_and_no_generative_model(X):
    emb = Embedding(PCA(2)).fit(X)
    for call in (lambda: emb.log_likelihood(X), lambda: emb.score(X)):
        with pytest.raises(NotImplementedError, match=r"Embedding\(PCA\) is a deterministic embedding: it defines no "
                                                      "density"):
            call()
    with pytest.raises(NotImplementedError, match="not a generative model"):
        emb.sample(3)
    with pytest.raises(ValueError, match="positive int"):
        emb.sample(0)


@pytest.mark.parametrize("estimator", [PCA(2), TSNE(2, perplexity=10.0, random_state=0)], ids=["PCA", "TSNE"])
def test_save_and_load_an_allow_listed_estimator(X, tmp_path, estimator):
    import probspace

    emb = Embedding(estimator, random_state=0).fit(X)
    path = os.path.join(tmp_path, "e.npz")
    emb.save(path)
    loaded = probspace.load(path)
    assert type(loaded.estimator) is type(estimator) and loaded.estimator.get_params() == estimator.get_params()
    np.testing.assert_array_equal(loaded.embed(X), emb.embed(X))
    if hasattr(estimator, "transform"):
        np.testing.assert_array_equal(loaded.embed(X[:3] + 1), emb.embed(X[:3] + 1))


def test_save_refuses_and_pickle_works(X, tmp_path):
    emb = Embedding(Isomap(n_neighbors=8)).fit(X)
    with pytest.raises(TypeError, match="pickle it instead"):
        emb.save(os.path.join(tmp_path, "e.npz"))
    with pytest.raises(NotFittedError):
        Embedding(PCA(2)).save(os.path.join(tmp_path, "e.npz"))
    restored = pickle.loads(pickle.dumps(emb))
    np.testing.assert_array_equal(restored.embed(X), emb.embed(X))
    np.testing.assert_array_equal(restored.embed(X[:3] + 1), emb.embed(X[:3] + 1))


def test_to_arviz_has_no_log_likelihood_group(X):
    az = pytest.importorskip("arviz")
    emb = Embedding(PCA(2)).fit(X)
    data = emb.to_arviz(X, n_samples=20, random_state=0)
    groups = data.groups() if callable(getattr(data, "groups", None)) else list(data.children)
    assert "posterior" in groups and "observed_data" in groups and "log_likelihood" not in groups
    z = data["latent_posterior"]["z"]
    assert z.dims == ("chain", "draw", "obs", "latent_dim") and z.shape == (1, 20, 60, 2)
    assert np.all(np.asarray(z) == emb.embed(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = az.summary(data, group="latent_posterior", var_names=["z"], kind="stats")
    np.testing.assert_allclose(summary["mean"].to_numpy(dtype=float), emb.embed(X).ravel(), atol=1e-3)  # 0.x rounds
    np.testing.assert_allclose(summary["sd"].to_numpy(dtype=float), 0.0, atol=1e-12)  # ArviZ 1.x: float rounding


def test_bad_input(X):
    with pytest.raises(NotFittedError):
        Embedding(PCA(2)).embed(X)
    with pytest.raises(InvalidParameterError, match="scikit-learn transformer"):
        Embedding("pca").fit(X)
    with pytest.raises(InvalidParameterError, match="scikit-learn transformer"):
        Embedding(np.zeros(3)).fit(X)
    emb = Embedding(PCA(2)).fit(X)
    bad_nan = X.copy()
    bad_nan[0, 0] = np.nan
    for bad in (bad_nan, np.where(X > 2, np.inf, X), X[:, 0], X[:0]):
        for call in (lambda b: Embedding(PCA(2)).fit(b), emb.posterior, emb.embed):
            with pytest.raises(ValueError):
                call(bad)
    with pytest.raises(ValueError, match="4 features") as err:
        emb.embed(np.hstack([X, X[:, :1]]))
    assert "5" in str(err.value)
    with pytest.raises(ValueError, match="60 identical rows"):
        Embedding(TSNE(perplexity=10)).fit(np.ones((60, 4)))  # (TSNE itself would crash the interpreter)
    with pytest.raises(ValueError):
        Embedding(PCA(10)).fit(X)  # the estimator's own check: n_components > n_features
