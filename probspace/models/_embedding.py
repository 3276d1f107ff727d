"""Deterministic embeddings (any scikit-learn transformer) as point-mass 'posteriors', for contrast."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from sklearn.base import clone

from .._base import LatentModel
from .._docstrings import fill
from .._random import sklearn_seed
from .._tags import ModelTags
from ..posteriors import PointMass

__all__ = ["Embedding"]


class _Transformer:
    """Constraint: an unfitted scikit-learn style transformer (``get_params`` and ``fit_transform``)."""

    def accepts(self, value: Any) -> bool:
        return hasattr(value, "get_params") and hasattr(value, "fit_transform")

    def __str__(self) -> str:
        return "a scikit-learn transformer (an estimator with get_params and fit_transform)"


def _digest(X: np.ndarray) -> str:
    data = np.ascontiguousarray(X, dtype=np.float64)
    return hashlib.sha256(repr(data.shape).encode() + data.tobytes()).hexdigest()


class Embedding(LatentModel):
    r"""A deterministic embedding by any scikit-learn transformer, read as a point-mass posterior.

    The contrast to every other family: an embedding maps each row to one
    vector, :math:`z_i = f(x_i)`, with no model of how :math:`x` arises from
    :math:`z`. Read as a posterior it is :math:`\delta_{f(x_i)}`, a
    :class:`~probspace.posteriors.PointMass`: exact under that degenerate
    model, with zero variance, entropy :math:`-\infty` and every draw equal
    to the embedding. ``embed`` is the transformer's output. There is no
    density: ``log_likelihood``, ``score`` and ``sample`` raise
    ``NotImplementedError``, and ``to_arviz`` has no ``log_likelihood``
    group. Rerunning a stochastic embedding (t-SNE) with other seeds gives
    other embeddings, not draws from a posterior: nothing makes their spread
    a measure of what the data leave uncertain.

    Parameters
    ----------
    estimator : estimator
        An unfitted scikit-learn transformer (``PCA``, ``Isomap``,
        ``SpectralEmbedding``, ``TSNE``, ...); ``fit`` fits a clone. Where its
        ``random_state`` is ``None`` the clone is seeded from ``rng_``.
    {random_state}

    Attributes
    ----------
    embedding_ : ndarray of shape (n_samples, n_components)
        ``fit_transform`` of the training data.
    training_digest_ : str
        SHA-256 of the training data: an estimator without ``transform`` embeds these rows only.
    n_features_in_ : int
        Number of features seen during ``fit``.
    n_iter_ : int
        The estimator's ``n_iter_`` where it has one, else 0.
    converged_ : bool
        Always ``True`` (an embedding reports no convergence of its own).
    history_ : ndarray of shape (0,)
        Empty: there is no likelihood whose trace could be kept.
    rng_ : numpy.random.Generator
        The model's random stream.
    backend_ : estimator
        The fitted clone of ``estimator``.

    See Also
    --------
    PPCA, FactorAnalysis : Linear embeddings with a real posterior.
    probspace.posteriors.PointMass : The posterior returned.

    Notes
    -----
    An estimator with ``transform`` (PCA, Isomap, ...) embeds new rows with
    it (for Isomap, ``transform`` of the training rows can differ slightly
    from ``embedding_``). One without (TSNE, SpectralEmbedding, MDS) embeds
    the training rows only: ``posterior``/``embed`` on other data raise
    ``ValueError``. ``save`` writes the estimator's parameters and public
    fitted attributes for the scikit-learn transformers whose fitted state
    is public (PCA, IncrementalPCA, TruncatedSVD, FastICA, NMF,
    FactorAnalysis, SparsePCA, TSNE, SpectralEmbedding, MDS,
    GaussianRandomProjection); for others (Isomap keeps fitted neighbour
    searches) it raises ``TypeError``: pickle those. Example:
    ``examples/factor/plot_embedding_vs_posterior.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.decomposition import PCA
    >>> from probspace import Embedding
    >>> X = np.random.default_rng(0).normal(size=(50, 4))
    >>> emb = Embedding(PCA(2)).fit(X)
    >>> post = emb.posterior(X)
    >>> bool(np.all(post.sample(3) == emb.embed(X))), post.variance.max(), post.entropy()[0]
    (True, np.float64(0.0), np.float64(-inf))
    """

    _parameter_constraints = {"estimator": [_Transformer()], "random_state": ["random_state"]}
    _tags = ModelTags(exact_log_likelihood=False, density=False, generative=False, random_posterior=False)
    _latent_name = "z"
    _expected_failures = {
        "check_init_stores_params": "clone copies the wrapped estimator (as scikit-learn's clone does for any "
                                    "meta-estimator), and the check compares parameters by identity or ==",
        "check_bad_input": "an Embedding has no n_components of its own (the estimator's is estimator__n_components)",
    }

    def __init__(self, estimator: Any, *, random_state: Any = None) -> None:
        self.estimator = estimator
        self.random_state = random_state

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        centres = np.array([[-3.0, 0.0, 1.0, 0.0], [3.0, 1.0, 0.0, 0.0], [0.0, -3.0, 0.0, 2.0]])
        return centres[rng.integers(0, 3, 60)] + rng.normal(size=(60, 4)), None

    def _name(self) -> str:
        return f"Embedding({type(self.estimator).__name__})"

    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        if X.shape[0] > 1 and np.all(X == X[0]):
            # Nothing to embed; and scikit-learn's TSNE crashes the interpreter on such data.
            raise ValueError(f"X passed to {self._name()}.fit has {X.shape[0]} identical rows: there is nothing to "
                             "embed.")
        est = clone(self.estimator)
        if est.get_params(deep=False).get("random_state", 0) is None:
            est.set_params(random_state=sklearn_seed(rng))
        Z = est.fit_transform(X)
        Z = np.asarray(Z.toarray() if hasattr(Z, "toarray") else Z, dtype=np.float64)
        if Z.ndim != 2 or Z.shape[0] != X.shape[0] or not np.all(np.isfinite(Z)):
            raise ValueError(f"{self._name()}.fit_transform returned {'non-finite values' if Z.ndim == 2 else Z.shape}"
                             f"; expected a finite array of shape ({X.shape[0]}, n_components).")
        self.backend_ = est
        self.embedding_ = Z
        self.training_digest_ = _digest(X)
        self.n_iter_ = int(getattr(est, "n_iter_", 0))
        self.converged_ = True
        self.history_ = np.empty(0)

    def _posterior(self, X: np.ndarray, lengths: None) -> PointMass:
        if hasattr(self.backend_, "transform"):
            return PointMass(self.backend_.transform(X))
        if _digest(X) != self.training_digest_:
            raise ValueError(
                f"{type(self.backend_).__name__} has no transform: {self._name()} embeds only the "
                f"{self.embedding_.shape[0]} rows it was fitted on, and X differs from them. Fit a new Embedding on "
                "the new data (its axes are not comparable with this one's), or use an estimator with transform.")
        return PointMass(self.embedding_)

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        raise NotImplementedError(
            f"{self._name()} is a deterministic embedding: it defines no density over X, so it has no "
            "log-likelihood (nor score, BIC or LOO). Use a probabilistic model, e.g. PPCA or FactorAnalysis.")

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError(
            f"{self._name()} is a deterministic embedding, not a generative model: there is no p(x | z) to "
            "draw new data from. Use a probabilistic model, e.g. PPCA or FactorAnalysis.")

    def _new_backend(self, params: dict[str, Any]) -> Any:
        return clone(self.estimator).set_params(**params)

    # -- ArviZ hooks ------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"z": ("obs", "latent_dim"), "x": ("obs", "feature")}

    def _pointwise_log_likelihood(self, X, lengths, params, **cond):
        return None  # no density: the ArviZ object has no log_likelihood group


Embedding.__doc__ = fill(Embedding.__doc__)
