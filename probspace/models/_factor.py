"""Factor analysis and probabilistic PCA over scikit-learn, with the exact Gaussian posterior."""

from __future__ import annotations

import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
from sklearn import decomposition
from sklearn.exceptions import ConvergenceWarning

from .._base import LatentModel
from .._docstrings import fill
from .._random import sklearn_seed
from .._tags import ModelTags
from .._validation import _GAUSSIAN_MAX_ABS, Interval, Options, check_gaussian_scale, warn_unconverged
from ..inference._factor import condition, em_missing, n_parameters, orthogonal_rotation
from ..posteriors import MultivariateNormal

__all__ = ["PPCA", "FactorAnalysis", "ProbabilisticPCA"]

_ATTRIBUTES = """\
    mean_ : ndarray of shape (n_features,)
        Mean of ``x``.
    loadings_ : ndarray of shape (n_components, n_features)
        The loadings ``W`` of the model (read-only; derived from the attributes above).
    n_features_in_ : int
        Number of features seen during ``fit``.
    n_iter_ : int
        Iterations of the fit: the backend's, or probspace's EM when ``X`` had missing values.
    converged_ : bool
        Whether those iterations converged.
    history_ : ndarray of shape (n_iter,)
        Mean log-likelihood per row after each iteration; diagnose the fit with it.
    rng_ : numpy.random.Generator
        The model's random stream; calls without ``random_state`` draw from it.
    backend_ : object or None
        The fitted scikit-learn estimator; ``None`` when ``X`` had missing values (probspace's EM fitted
        the model, started from the scikit-learn fit to mean-imputed data)."""

_MISSING_NOTE = """\
    Missing values (NaN) are allowed everywhere. ``posterior`` conditions each
    row on its observed coordinates alone (exact, because the noise is
    independent across coordinates); the covariance is then one ``(k, k)``
    matrix per row. ``log_likelihood`` is :math:`\\log p(x_{\\mathrm{obs}})`
    (0 for a row with nothing observed). ``fit`` with missing values runs
    exact EM (``probspace.inference._factor.em_missing``), which treats
    the missing entries as hidden too; every iteration raises the
    observed-data likelihood."""


class _LinearGaussian(LatentModel):
    r"""The hooks shared by :class:`FactorAnalysis` and :class:`PPCA` (x = mean + W'z + noise)."""

    _latent_name = "z"
    _tags = ModelTags(allow_nan=True, allow_nan_in_fit=True, min_samples=2)
    #: One noise variance for every coordinate (probabilistic PCA) rather than one each.
    _isotropic: ClassVar[bool] = False
    _conformance_params = {"n_components": 2}

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        W = np.array([[2.0, 1.0, 0.0, -1.0, 0.5], [0.0, 1.0, 2.0, 1.0, -1.0]])
        X = rng.normal(size=(80, 2)) @ W + rng.normal(scale=0.5, size=(80, 5)) + np.arange(5.0)
        return X, None

    # -- what the two families define ---------------------------------------------
    @abstractmethod
    def _fit_complete(self, X: np.ndarray, rng: np.random.Generator) -> None:
        """Fit the scikit-learn backend to complete ``X``; set the fitted attributes."""

    @abstractmethod
    def _store_em(self, W: np.ndarray, psi: np.ndarray, mean: np.ndarray) -> None:
        """Set the fitted attributes from EM's loadings, noise variances and mean."""

    @abstractmethod
    def _psi(self) -> np.ndarray:
        """Noise variance of every feature, shape (n_features,)."""

    # -- fitting --------------------------------------------------------------------
    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        name = type(self).__name__
        N, D = X.shape
        k = self.n_components
        if k > D or (self._isotropic and k == D):
            most = "less than" if self._isotropic else "at most"
            raise ValueError(f"n_components={k} must be {most} n_features={D} for {name}.")
        incomplete = np.isnan(X.sum(axis=1))
        if incomplete.any():
            empty = np.flatnonzero(np.isnan(X).all(axis=0))
            if empty.size:
                raise ValueError(f"X passed to {name}.fit has no observed value in column(s) {empty.tolist()}.")
            check_gaussian_scale(X, name)
        elif max(X.max(), -X.min()) > _GAUSSIAN_MAX_ABS:
            check_gaussian_scale(X, name)
        if not incomplete.any():
            self._fit_complete(X, rng)
            return
        start = np.where(np.isnan(X), np.nanmean(X, axis=0), X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # only a starting point
            self._fit_complete(start, rng)
        W, psi, mean, history, converged = em_missing(X, self.loadings_, self._psi(), self.mean_,
                                                      isotropic=self._isotropic, max_iter=self.max_iter,
                                                      tol=self.tol)
        self._store_em(W, psi, mean)
        self.backend_ = None
        self.n_iter_, self.converged_, self.history_ = int(history.size), bool(converged), history
        if not converged:
            warn_unconverged(self, self.max_iter, "the log-likelihood was still rising")

    # -- the model ----------------------------------------------------------------------
    def _posterior(self, X: np.ndarray, lengths: None) -> MultivariateNormal:
        cond = condition(X, self.loadings_, self._psi(), self.mean_, log_likelihood=False)
        tril = np.linalg.cholesky(cond.covariance)
        if cond.pattern is None:
            return MultivariateNormal._trusted(cond.loc, cond.covariance[0], tril[0])
        return MultivariateNormal._trusted(cond.loc, cond.covariance[cond.pattern], tril[cond.pattern])

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        return condition(X, self.loadings_, self._psi(), self.mean_).log_likelihood

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        W = self.loadings_
        Z = rng.standard_normal((n_samples, W.shape[0]))
        noise = rng.standard_normal((n_samples, W.shape[1])) * np.sqrt(self._psi())
        return self.mean_ + Z @ W + noise, Z

    def _n_parameters(self) -> int:
        return n_parameters(self.n_features_in_, self.n_components, isotropic=self._isotropic)

    def bic(self, X: Any) -> float:
        """Bayesian information criterion on ``X`` (lower is better).

        ``-2 log L + p log N`` with ``p`` the free parameters: ``D k - k (k - 1) / 2``
        loadings (the latent space is identified only up to rotation), the
        noise variances and the ``D`` means.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data (NaN for missing values).

        Returns
        -------
        float
        """
        ll = self.log_likelihood(X)
        return float(-2.0 * ll.sum() + self._n_parameters() * np.log(ll.size))

    def aic(self, X: Any) -> float:
        """Akaike information criterion on ``X`` (lower is better): ``-2 log L + 2 p``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data (NaN for missing values).

        Returns
        -------
        float
        """
        return float(-2.0 * self.log_likelihood(X).sum() + 2 * self._n_parameters())

    # -- ArviZ hooks --------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"z": ("obs", "latent_dim"), "x": ("obs", "feature")}

    def _posterior_predictive(self, X, latents, params, rng):
        noise = rng.standard_normal(latents.shape[:2] + (self.n_features_in_,)) * np.sqrt(self._psi())
        return self.mean_ + latents @ self.loadings_ + noise


class FactorAnalysis(_LinearGaussian):
    r"""Factor analysis with the exact Gaussian posterior over each row's factor scores.

    The model: :math:`z_i \sim \mathcal{N}(0, I_k)` and
    :math:`x_i = \mu + W^\top z_i + \varepsilon_i` with
    :math:`\varepsilon_i \sim \mathcal{N}(0, \Psi)`, :math:`\Psi` diagonal.
    Fitted by :class:`sklearn.decomposition.FactorAnalysis` on complete data.
    :meth:`posterior` is exact: :math:`z_i \mid x_i \sim \mathcal{N}(\Sigma W
    \Psi^{-1} (x_i - \mu), \Sigma)` with :math:`\Sigma = (I + W \Psi^{-1}
    W^\top)^{-1}`, a :class:`~probspace.posteriors.MultivariateNormal` whose
    mean is scikit-learn's ``transform`` and whose covariance scikit-learn
    drops. ``log_likelihood`` is the exact marginal :math:`\mathcal{N}(x; \mu,
    W^\top W + \Psi)` (scikit-learn's ``score_samples``).

    Parameters
    ----------
    n_components : int, default=2
        Number of factors ``k`` (at most ``n_features``).
    tol : float, default=1e-2
        Stop when the total log-likelihood rises by less than this (scikit-learn's
        iterations, and the EM for missing values).
    max_iter : int, default=1000
        Most iterations (each, and the EM for missing values).
    noise_variance_init : array-like of shape (n_features,), optional
        Starting noise variances (scikit-learn's; ones by default).
    svd_method : {"randomized", "lapack"}, default="randomized"
        SVD used by scikit-learn's iterations.
    iterated_power : int, default=3
        Power iterations of the randomized SVD.
    rotation : {"varimax", "quartimax"}, optional
        Orthogonal rotation of the fitted loadings (the posterior follows:
        the factors are the rotated ones).
    {random_state}

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Loadings ``W``, as scikit-learn's ``components_``.
    noise_variance_ : ndarray of shape (n_features,)
        Diagonal of :math:`\Psi`.
    {attributes}

    See Also
    --------
    PPCA : One noise variance for all features.
    sklearn.decomposition.FactorAnalysis : The backend.

    Notes
    -----
    {missing}
    ``bic`` counts ``D k - k (k - 1) / 2 + 2 D`` free parameters. Example:
    ``examples/factor/plot_bfi_factor_scores.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import FactorAnalysis
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + rng.normal(scale=0.3, size=(200, 6))
    >>> post = FactorAnalysis(2, random_state=0).fit(X).posterior(X)
    >>> post.loc.shape, post.covariance_matrix.shape
    ((200, 2), (2, 2))
    >>> post.sample(5).shape
    (5, 200, 2)
    """

    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "tol": [Interval("real", 0, None)],
        "max_iter": [Interval("int", 1, None)],
        "noise_variance_init": [None, "array-like"],
        "svd_method": [Options("randomized", "lapack")],
        "iterated_power": [Interval("int", 0, None)],
        "rotation": [None, Options("varimax", "quartimax")],
        "random_state": ["random_state"],
    }
    _conformance_alt_params = {"rotation": "varimax", "svd_method": "lapack", "tol": 1e-4}

    def __init__(self, n_components: int = 2, *, tol: float = 1e-2, max_iter: int = 1000,
                 noise_variance_init: Any = None, svd_method: str = "randomized", iterated_power: int = 3,
                 rotation: str | None = None, random_state: Any = None) -> None:
        self.n_components = n_components
        self.tol = tol
        self.max_iter = max_iter
        self.noise_variance_init = noise_variance_init
        self.svd_method = svd_method
        self.iterated_power = iterated_power
        self.rotation = rotation
        self.random_state = random_state

    def _new_backend(self, params: dict[str, Any]) -> Any:
        return decomposition.FactorAnalysis(**params)

    def _fit_complete(self, X: np.ndarray, rng: np.random.Generator) -> None:
        backend = decomposition.FactorAnalysis(
            self.n_components, tol=self.tol, max_iter=self.max_iter, noise_variance_init=self.noise_variance_init,
            svd_method=self.svd_method, iterated_power=self.iterated_power, rotation=self.rotation,
            random_state=sklearn_seed(rng)).fit(X)
        self.components_, self.noise_variance_, self.mean_ = backend.components_, backend.noise_variance_, backend.mean_
        self.backend_ = backend
        self.history_ = np.asarray(backend.loglike_, dtype=np.float64) / X.shape[0]
        self.n_iter_ = int(backend.n_iter_)
        self.converged_ = self.n_iter_ < self.max_iter

    def _store_em(self, W: np.ndarray, psi: np.ndarray, mean: np.ndarray) -> None:
        self.components_ = W if self.rotation is None else orthogonal_rotation(W, self.rotation)
        self.noise_variance_, self.mean_ = psi, mean

    def _psi(self) -> np.ndarray:
        return self.noise_variance_

    loadings_ = property(lambda self: self.components_, doc="The loadings ``W`` (``components_``).")

    def _get_parameters(self) -> dict[str, Any]:
        return {"components_": self.components_, "noise_variance_": self.noise_variance_, "mean_": self.mean_}


class PPCA(_LinearGaussian):
    r"""Probabilistic PCA with the exact Gaussian posterior over each row's latent position.

    The model (Tipping and Bishop, 1999): :math:`z_i \sim \mathcal{N}(0, I_k)`
    and :math:`x_i = \mu + W^\top z_i + \varepsilon_i` with
    :math:`\varepsilon_i \sim \mathcal{N}(0, \sigma^2 I)`. Fitted on complete
    data by :class:`sklearn.decomposition.PCA`, whose principal axes,
    variances and ``noise_variance_`` give the maximum-likelihood solution
    :math:`W^\top = U (\Lambda - \sigma^2 I)^{1/2}`. :meth:`posterior` is
    exact: :math:`z_i \mid x_i \sim \mathcal{N}(M^{-1} W (x_i - \mu),
    \sigma^2 M^{-1})` with :math:`M = W W^\top + \sigma^2 I`, a
    :class:`~probspace.posteriors.MultivariateNormal`. ``log_likelihood`` is
    the exact marginal :math:`\mathcal{N}(x; \mu, W^\top W + \sigma^2 I)`
    (scikit-learn's ``score_samples``).

    Parameters
    ----------
    n_components : int, default=2
        Latent dimension ``k`` (less than ``n_features``, so that noise remains).
    svd_solver : {"auto", "full", "covariance_eigh", "arpack", "randomized"}, default="auto"
        scikit-learn's PCA solver.
    iterated_power : int or "auto", default="auto"
        Power iterations of the randomized solver.
    max_iter : int, default=1000
        Most EM iterations when ``X`` has missing values.
    tol : float, default=1e-2
        EM stops when the total log-likelihood rises by less than this.
    {random_state}

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Orthonormal principal axes ``U'`` (scikit-learn's ``components_``).
    explained_variance_ : ndarray of shape (n_components,)
        Variance along each axis, :math:`\Lambda`.
    noise_variance_ : float
        :math:`\sigma^2`, the mean of the remaining variances.
    {attributes}

    See Also
    --------
    FactorAnalysis : One noise variance per feature.
    sklearn.decomposition.PCA : The backend.

    Notes
    -----
    {missing}
    scikit-learn divides the covariance by ``N - 1``, so its variances (and
    these parameters) are ``N / (N - 1)`` times the textbook maximum-likelihood
    values; ``log_likelihood`` equals scikit-learn's ``score_samples``. The
    posterior mean is the whitened projection (``transform(X)`` divided by
    :math:`\sqrt{\lambda_j}`) shrunk towards 0 by
    :math:`\sqrt{1 - \sigma^2 / \lambda_j}` per axis. ``bic`` counts ``D k - k (k - 1) / 2 + 1 + D``
    free parameters. Example: ``examples/factor/plot_embedding_vs_posterior.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import PPCA
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(200, 2)) @ rng.normal(size=(2, 6)) + rng.normal(scale=0.3, size=(200, 6))
    >>> X[0, 1] = np.nan  # rows with missing values get their own covariance
    >>> post = PPCA(2, random_state=0).fit(X).posterior(X)
    >>> post.covariance_matrix.shape
    (200, 2, 2)
    """

    _isotropic = True
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "svd_solver": [Options("auto", "full", "covariance_eigh", "arpack", "randomized")],
        "iterated_power": [Options("auto"), Interval("int", 0, None)],
        "max_iter": [Interval("int", 1, None)],
        "tol": [Interval("real", 0, None)],
        "random_state": ["random_state"],
    }
    _conformance_alt_params = {"svd_solver": "full", "tol": 1e-4}

    def __init__(self, n_components: int = 2, *, svd_solver: str = "auto", iterated_power: int | str = "auto",
                 max_iter: int = 1000, tol: float = 1e-2, random_state: Any = None) -> None:
        self.n_components = n_components
        self.svd_solver = svd_solver
        self.iterated_power = iterated_power
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    def _new_backend(self, params: dict[str, Any]) -> Any:
        return decomposition.PCA(**params)

    def _fit_complete(self, X: np.ndarray, rng: np.random.Generator) -> None:
        backend = decomposition.PCA(self.n_components, svd_solver=self.svd_solver,
                                    iterated_power=self.iterated_power, random_state=sklearn_seed(rng)).fit(X)
        noise = float(backend.noise_variance_)
        if not noise > 1e-12 * max(float(backend.explained_variance_[0]), np.finfo(float).tiny):  # rounding only
            raise ValueError(f"PPCA: the data have no variance outside the first {self.n_components} principal "
                             f"axes (noise_variance_={noise:g}), so the model is degenerate; use fewer components.")
        self.components_, self.explained_variance_ = backend.components_, backend.explained_variance_
        self.noise_variance_, self.mean_ = noise, backend.mean_
        self.backend_ = backend
        self.history_ = np.array([np.mean(self._log_likelihood(X, None))])
        self.n_iter_, self.converged_ = 1, True

    def _store_em(self, W: np.ndarray, psi: np.ndarray, mean: np.ndarray) -> None:
        # Principal axes of the fitted W (an arbitrary rotation of them): W = U S V' -> axes V', variances S^2 + s2.
        _, s, vt = np.linalg.svd(W, full_matrices=False)
        self.components_, self.explained_variance_ = vt, s**2 + psi[0]
        self.noise_variance_, self.mean_ = float(psi[0]), mean

    def _psi(self) -> np.ndarray:
        return np.full(self.components_.shape[1], self.noise_variance_)

    @property
    def loadings_(self) -> np.ndarray:
        """The loadings ``W`` (scaled principal axes), shape (n_components, n_features)."""
        scale = np.sqrt(np.maximum(self.explained_variance_ - self.noise_variance_, 0.0))
        return scale[:, None] * self.components_

    def _get_parameters(self) -> dict[str, Any]:
        return {"components_": self.components_, "explained_variance_": self.explained_variance_,
                "noise_variance_": self.noise_variance_, "mean_": self.mean_}


#: Long alias of :class:`PPCA`.
ProbabilisticPCA = PPCA

FactorAnalysis.__doc__ = fill(FactorAnalysis.__doc__, attributes=_ATTRIBUTES, missing=_MISSING_NOTE)
PPCA.__doc__ = fill(PPCA.__doc__, attributes=_ATTRIBUTES, missing=_MISSING_NOTE)
