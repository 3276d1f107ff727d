"""A model family written outside probspace, in one file: a mixture of Poisson distributions.

This module is the worked example of the user guide's "Writing your own
family". It imports only probspace's public API (``probspace.extend`` and
``probspace.Categorical``), yet the family it defines passes
``probspace.testing.check_model``, saves and loads with ``model.save`` /
``probspace.load`` and writes ArviZ output, with no edit inside probspace.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from scipy.special import gammaln, logsumexp
from sklearn.exceptions import ConvergenceWarning

from probspace import Categorical
from probspace.extend import Interval, LatentModel, ModelTags

__all__ = ["PoissonMixture"]


class PoissonMixture(LatentModel):
    r"""Mixture of independent Poisson counts, with an exact posterior over each row's component.

    The model: :math:`z_i \sim \mathrm{Categorical}(w)` and
    :math:`x_{id} \mid z_i = k \sim \mathrm{Poisson}(\lambda_{kd})`, fitted by
    EM (maximum likelihood). :meth:`posterior` returns the exact
    :class:`~probspace.Categorical` posterior :math:`p(z_i = k \mid x_i)`.

    Parameters
    ----------
    n_components : int, default=2
        Number of mixture components.
    max_iter : int, default=500
        Most EM iterations.
    tol : float, default=1e-8
        Stop when the mean log-likelihood per row gains less than this.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the starting rates and of every draw.

    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
        Mixing weights.
    lambdas_ : ndarray of shape (n_components, n_features)
        Poisson rates.
    n_features_in_ : int
        Number of count columns seen during ``fit``.
    n_iter_ : int
        EM iterations run.
    converged_ : bool
        Whether the gain fell below ``tol``.
    history_ : ndarray of shape (n_iter_,)
        Mean log-likelihood per row after each E-step.
    rng_ : numpy.random.Generator
        The model's random stream.
    backend_ : None
        No backend library: the EM loop is here.

    Examples
    --------
    >>> import numpy as np
    >>> X = np.r_[np.random.default_rng(0).poisson(1, (50, 1)), np.random.default_rng(1).poisson(9, (50, 1))]
    >>> model = PoissonMixture(2, random_state=0).fit(X)
    >>> model.posterior(X).sample(3).shape
    (3, 100)
    """

    _latent_name = "label"
    _tags = ModelTags(discrete_latent=True, non_negative=True)
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "max_iter": [Interval("int", 1, None)],
        "tol": [Interval("real", 0, None)],
        "random_state": ["random_state"],
    }
    _conformance_params = {"max_iter": 200}
    _conformance_alt_params = {"n_components": 3, "tol": 1e-4}

    def __init__(self, n_components: int = 2, *, max_iter: int = 500, tol: float = 1e-8,
                 random_state: Any = None) -> None:
        self.n_components = n_components
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        rates = np.array([[1.0, 6.0], [8.0, 0.5]])
        return rng.poisson(rates[rng.integers(0, 2, 80)]).astype(float), None

    # -- fitted parameters ------------------------------------------------------------
    def _get_parameters(self) -> dict[str, np.ndarray]:
        return {"weights_": self.weights_, "lambdas_": self.lambdas_}

    def _log_joint(self, X: np.ndarray) -> np.ndarray:
        """``log w_k + log p(x_i | z_i = k)`` for every row and component, shape (N, K)."""
        with np.errstate(divide="ignore"):
            log_rates = np.log(self.lambdas_)
        terms = X @ np.where(np.isfinite(log_rates), log_rates, -1e300).T  # 0 * log 0 = 0 when x = 0
        return np.log(self.weights_) + terms - self.lambdas_.sum(axis=1) - gammaln(X + 1).sum(axis=1, keepdims=True)

    # -- the four hooks -----------------------------------------------------------------
    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        if np.any(X != np.round(X)):
            raise ValueError("X passed to PoissonMixture must hold non-negative integer counts.")
        if self.n_components > X.shape[0]:
            raise ValueError(f"n_components={self.n_components} exceeds the number of rows ({X.shape[0]}).")
        self.weights_ = np.full(self.n_components, 1.0 / self.n_components)
        self.lambdas_ = X[rng.choice(X.shape[0], self.n_components, replace=False)] + rng.uniform(0.1, 1.0)
        history = []
        for _ in range(self.max_iter):
            log_joint = self._log_joint(X)
            log_norm = logsumexp(log_joint, axis=1, keepdims=True)
            history.append(float(log_norm.mean()))
            if len(history) > 1 and history[-1] - history[-2] < self.tol:
                break
            resp = np.exp(log_joint - log_norm)
            mass = resp.sum(axis=0)
            used = mass > 0  # an empty component keeps its rates
            self.weights_ = mass / mass.sum()
            self.lambdas_[used] = (resp.T @ X)[used] / mass[used, None]
        self.n_iter_ = len(history)
        self.history_ = np.asarray(history)
        self.converged_ = len(history) > 1 and history[-1] - history[-2] < self.tol
        self.backend_ = None
        if not self.converged_:
            warnings.warn(f"PoissonMixture stopped after max_iter={self.max_iter} iterations before converging.",
                          ConvergenceWarning, stacklevel=3)

    def _posterior(self, X: np.ndarray, lengths: None) -> Categorical:
        log_joint = self._log_joint(X)
        return Categorical(np.exp(log_joint - logsumexp(log_joint, axis=1, keepdims=True)))

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        return logsumexp(self._log_joint(X), axis=1)

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.choice(self.n_components, size=n_samples, p=self.weights_)
        return rng.poisson(self.lambdas_[labels]).astype(float), labels

    # -- ArviZ: dims of the latent and replicated data given each label draw --------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"label": ("obs",), "x": ("obs", "feature")}

    def _posterior_predictive(self, X, latents, params, rng):
        return rng.poisson(self.lambdas_[latents]).astype(float)
