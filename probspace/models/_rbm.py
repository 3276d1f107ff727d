"""Restricted Boltzmann machines and deep belief networks, with exact hidden-unit posteriors."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit
from sklearn import neural_network

from .._base import LatentModel
from .._random import sklearn_seed
from .._tags import ModelTags
from .._validation import Interval
from ..inference._rbm import free_energy, gibbs_chains, log_partition
from ..posteriors._bernoulli import Bernoulli

__all__ = ["DBN", "RBM"]

_COMMON = """\
    n_features_in_ : int
        Number of features seen during ``fit``.
    n_iter_ : int
        Training epochs run (``n_iter``; persistent contrastive divergence has no convergence test).
    converged_ : bool
        Always ``True``: the fit runs its fixed number of epochs.
    rng_ : numpy.random.Generator
        The model's random stream; calls without ``random_state`` draw from it.
    log_partition_ : float
        :math:`\\log Z` of the (top) RBM: exact when ``min(H, D) <= max_exact_units``, else the AIS estimate.
    log_partition_se_ : float
        Standard error of ``log_partition_`` (0 when exact)."""


def _check_binary(X: np.ndarray, owner: str) -> None:
    if not np.all((X == 0.0) | (X == 1.0)):
        bad = X[(X != 0.0) & (X != 1.0)].ravel()[:3]
        raise ValueError(f"{owner} needs binary data (0 or 1 in every entry); found values such as {bad.tolist()}. "
                         "Binarise it first, for example X > threshold.")


class _BinaryData:
    """Conformance recipe shared by RBM and DBN: two binary prototypes with flipped bits."""

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        protos = np.array([[1, 1, 1, 0, 0, 0, 1, 0], [0, 0, 0, 1, 1, 1, 0, 1]], dtype=np.float64)
        X = protos[rng.integers(0, 2, size=60)]
        flip = rng.random(X.shape) < 0.1
        return np.where(flip, 1.0 - X, X), None


class RBM(_BinaryData, LatentModel):
    r"""Restricted Boltzmann machine with the exact posterior over its binary hidden units.

    The model: :math:`p(v, h) = e^{-E(v, h)} / Z` over binary visible units
    :math:`v \in \{0, 1\}^D` and hidden units :math:`h \in \{0, 1\}^H`, with
    :math:`E(v, h) = -c^\top v - b^\top h - h^\top W v`. Trained by
    :class:`sklearn.neural_network.BernoulliRBM` (persistent contrastive
    divergence). Given ``v`` the hidden units are independent, so
    :meth:`posterior` is exact: a :class:`~probspace.posteriors.Bernoulli`
    with :math:`p(h_j = 1 \mid v) = \sigma(b_j + W_j v)`, whose mean is
    scikit-learn's ``transform``. ``log_likelihood`` is :math:`-F(v) - \log Z`
    with the free energy :math:`F(v) = -c^\top v - \sum_j \mathrm{softplus}(b_j
    + W_j v)`; :math:`\log Z` is computed once per fit, **exactly** when
    ``min(H, D) <= max_exact_units`` (the smaller layer enumerated in a
    vectorised log-space sum, the other summed out in closed form), otherwise
    **estimated** by annealed importance sampling (``log_partition_se_`` its
    standard error; the tags then say the likelihood is not exact).
    :meth:`sample` runs ``n_samples`` independent block Gibbs chains for
    ``burn_in`` sweeps; :meth:`gibbs` keeps several chains for R-hat and ESS.

    Parameters
    ----------
    n_components : int, default=16
        Number of hidden units ``H``.
    learning_rate : float, default=0.1
        Learning rate of scikit-learn's updates.
    batch_size : int, default=10
        Examples per minibatch.
    n_iter : int, default=10
        Training epochs.
    burn_in : int, default=1000
        Gibbs sweeps before :meth:`sample` keeps a draw.
    max_exact_units : int, default=20
        Largest smaller-layer size for the exact partition function (:math:`2^{20}` terms take about a second).
    n_ais_chains : int, default=100
        AIS runs when the partition function is estimated.
    n_ais_betas : int, default=1000
        Temperatures per AIS run.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the fit and every later call made without its own ``random_state``.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        Weights ``W`` (the backend's).
    intercept_hidden_ : ndarray of shape (n_components,)
        Hidden biases ``b``.
    intercept_visible_ : ndarray of shape (n_features,)
        Visible biases ``c``.
    history_ : ndarray of shape (1,)
        Mean log-likelihood per observation of the training data after the fit.
    backend_ : sklearn.neural_network.BernoulliRBM
        The fitted backend.
    {common}

    See Also
    --------
    DBN : Stacked RBMs.
    sklearn.neural_network.BernoulliRBM : The backend.

    Notes
    -----
    Example: ``examples/boltzmann/plot_digits_rbm.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import RBM
    >>> X = (np.random.default_rng(0).random((100, 6)) < 0.3).astype(float)
    >>> rbm = RBM(4, n_iter=5, random_state=0).fit(X)
    >>> post = rbm.posterior(X)
    >>> post.probs.shape, post.sample(3).shape
    ((100, 4), (3, 100, 4))
    >>> bool(rbm.log_partition_se_ == 0.0)  # exact: 2**4 hidden configurations
    True
    """

    _latent_name = "h"
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "learning_rate": [Interval("real", 0, None, closed="neither")],
        "batch_size": [Interval("int", 1, None)],
        "n_iter": [Interval("int", 1, None)],
        "burn_in": [Interval("int", 0, None)],
        "max_exact_units": [Interval("int", 0, 30)],
        "n_ais_chains": [Interval("int", 2, None)],
        "n_ais_betas": [Interval("int", 2, None)],
        "random_state": ["random_state"],
    }
    _conformance_params = {"n_components": 3, "n_iter": 20, "burn_in": 50, "learning_rate": 0.05}
    _conformance_alt_params = {"n_components": 25, "batch_size": 7, "max_exact_units": 4, "n_ais_betas": 50}

    def __init__(self, n_components: int = 16, *, learning_rate: float = 0.1, batch_size: int = 10,
                 n_iter: int = 10, burn_in: int = 1000, max_exact_units: int = 20, n_ais_chains: int = 100,
                 n_ais_betas: int = 1000, random_state: Any = None) -> None:
        self.n_components = n_components
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.max_exact_units = max_exact_units
        self.n_ais_chains = n_ais_chains
        self.n_ais_betas = n_ais_betas
        self.random_state = random_state

    def _model_tags(self) -> ModelTags:
        D = getattr(self, "n_features_in_", np.inf)
        return ModelTags(exact_log_likelihood=min(self.n_components, D) <= self.max_exact_units)

    def _new_backend(self, params: dict[str, Any]) -> Any:
        return neural_network.BernoulliRBM(**params)

    components_ = property(lambda self: self.backend_.components_, doc="Weights ``W`` (H, D).")
    intercept_hidden_ = property(lambda self: self.backend_.intercept_hidden_, doc="Hidden biases (H,).")
    intercept_visible_ = property(lambda self: self.backend_.intercept_visible_, doc="Visible biases (D,).")

    def _params(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.components_, self.intercept_hidden_, self.intercept_visible_

    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        _check_binary(X, type(self).__name__)
        backend = neural_network.BernoulliRBM(self.n_components, learning_rate=self.learning_rate,
                                              batch_size=self.batch_size, n_iter=self.n_iter,
                                              random_state=sklearn_seed(rng)).fit(X)
        W, b, c = backend.components_, backend.intercept_hidden_, backend.intercept_visible_
        if not (np.all(np.isfinite(W)) and np.all(np.isfinite(b)) and np.all(np.isfinite(c))):
            raise ValueError("RBM training diverged (non-finite weights); lower learning_rate.")
        lz = log_partition(W, b, c, rng, max_exact=self.max_exact_units, n_chains=self.n_ais_chains,
                           n_betas=self.n_ais_betas)
        self.backend_ = backend
        self.log_partition_, self.log_partition_se_ = lz.log_z, lz.se
        self.n_iter_, self.converged_ = self.n_iter, True
        self.history_ = np.array([float(np.mean(-free_energy(X, W, b, c) - lz.log_z))])

    def _get_parameters(self) -> dict[str, Any]:
        return {"components_": self.components_, "intercept_hidden_": self.intercept_hidden_,
                "intercept_visible_": self.intercept_visible_, "log_partition_": self.log_partition_}

    def _posterior(self, X: np.ndarray, lengths: None) -> Bernoulli:
        _check_binary(X, type(self).__name__)
        W, b, _ = self._params()
        return Bernoulli(logits=X @ W.T + b)

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        """Exact ``log p(v)`` (with an AIS estimate of ``log Z`` when the model is too large; see the class)."""
        _check_binary(X, type(self).__name__)
        return -free_energy(X, *self._params()) - self.log_partition_

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        V, Hs = gibbs_chains(*self._params(), rng, n_chains=n_samples, burn_in=self.burn_in)
        return V[:, 0], Hs[:, 0]

    def gibbs(self, n_draws: int = 500, *, n_chains: int = 4, burn_in: int | None = None, thin: int = 1,
              random_state: Any = None) -> dict[str, np.ndarray]:
        """Draws from the model by block Gibbs, chains kept, for convergence diagnostics.

        Parameters
        ----------
        n_draws : int, default=500
            Draws kept per chain.
        n_chains : int, default=4
            Independent chains.
        burn_in : int, optional
            Sweeps discarded first (``self.burn_in`` by default).
        thin : int, default=1
            Sweeps between kept draws.
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call; without it the draws continue ``rng_``.

        Returns
        -------
        dict
            ``v`` (n_chains, n_draws, D) and ``h`` (n_chains, n_draws, H), the
            joint draws; ``free_energy`` and ``active_visible`` (the number of
            units on) (n_chains, n_draws), scalar traces for R-hat and ESS. Pass
            ``{k: d[k] for k in ("free_energy", "active_visible")}`` to
            ``arviz.convert_to_dataset`` or ``arviz.from_dict``.
        """
        self._check_fitted()
        burn_in = self.burn_in if burn_in is None else burn_in
        V, Hs = gibbs_chains(*self._params(), self._generator(random_state), n_chains=n_chains, burn_in=burn_in,
                             n_draws=n_draws, thin=thin)
        fe = free_energy(V.reshape(-1, V.shape[-1]), *self._params()).reshape(V.shape[:2])
        return {"v": V, "h": Hs, "free_energy": fe, "active_visible": V.sum(axis=-1)}

    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"h": ("obs", "hidden_unit"), "x": ("obs", "feature")}

    def _posterior_predictive(self, X, latents, params, rng):
        probs = expit(latents @ self.components_ + self.intercept_visible_)
        return (rng.random(probs.shape) < probs).astype(np.float64)


class DBN(_BinaryData, LatentModel):
    r"""Deep belief network: stacked RBMs, with the usual approximate (upward) posterior over the top layer.

    Trained greedily (Hinton, Osindero and Teh, 2006): an :class:`RBM` on the
    data, the next on the previous layer's hidden probabilities, and so on,
    each by :class:`sklearn.neural_network.BernoulliRBM`. As a generative
    model the top RBM is the prior over the last two layers and the lower
    layers are directed sigmoid belief layers. :meth:`posterior` over the
    ``n_components`` top units is the factorised upward pass
    :math:`q(h^{(l)} \mid h^{(l-1)}) = \prod_j \sigma(b^{(l)}_j +
    W^{(l)}_j h^{(l-1)})` with probabilities propagated layer to layer: an
    approximation (``method="variational"``: it is the recognition
    distribution of the DBN's variational bound), not the exact posterior.
    ``log_likelihood`` is a Monte Carlo **estimate of that lower bound**,
    :math:`\mathbb{E}_q[\log p(v, h^{(1..L-1)}) - \log q(h^{(1..L-1)} \mid
    v)]` with the top RBM's marginal exact (or AIS), over ``n_bound_samples``
    draws with a fixed seed (so it is repeatable).

    Parameters
    ----------
    n_components : int, default=16
        Units in the top layer.
    hidden_layers : tuple of int, default=(64,)
        Sizes of the layers below the top one, bottom first.
    learning_rate : float, default=0.1
        As for :class:`RBM`, for every layer.
    batch_size : int, default=10
        As for :class:`RBM`, for every layer.
    n_iter : int, default=10
        Training epochs of every layer.
    burn_in : int, default=1000
        Gibbs sweeps of the top RBM before :meth:`sample` keeps a draw.
    max_exact_units : int, default=20
        As for :class:`RBM`, for the top RBM's partition function.
    n_ais_chains : int, default=100
        As for :class:`RBM`.
    n_ais_betas : int, default=1000
        As for :class:`RBM`.
    n_bound_samples : int, default=50
        Draws of the lower layers for the likelihood bound.
    random_state : None, int or numpy.random.Generator, default=None
        Seeds the fit and every later call made without its own ``random_state``.

    Attributes
    ----------
    layers_ : list of dict
        Per layer, bottom first: ``W`` (H_l, H_{l-1}), ``b`` (H_l,) and ``c`` (H_{l-1},).
    history_ : ndarray of shape (1,)
        The likelihood bound (mean per observation) on the training data after the fit.
    backend_ : list of sklearn.neural_network.BernoulliRBM
        The fitted layer backends.
    {common}

    See Also
    --------
    RBM : One layer, exact posterior and likelihood.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import DBN
    >>> X = (np.random.default_rng(0).random((100, 8)) < 0.3).astype(float)
    >>> dbn = DBN(2, hidden_layers=(4,), n_iter=5, random_state=0).fit(X)
    >>> post = dbn.posterior(X)
    >>> post.method, post.probs.shape
    ('variational', (100, 2))
    """

    _latent_name = "h"
    _tags = ModelTags(exact_posterior=False, exact_log_likelihood=False)
    _parameter_constraints = {**RBM._parameter_constraints, "hidden_layers": ["array-like"],
                              "n_bound_samples": [Interval("int", 1, None)]}
    _conformance_params = {"n_components": 2, "hidden_layers": (4,), "n_iter": 20, "burn_in": 50,
                           "learning_rate": 0.05}
    _conformance_alt_params = {"hidden_layers": (5, 3), "batch_size": 7}

    def __init__(self, n_components: int = 16, *, hidden_layers: tuple[int, ...] = (64,), learning_rate: float = 0.1,
                 batch_size: int = 10, n_iter: int = 10, burn_in: int = 1000, max_exact_units: int = 20,
                 n_ais_chains: int = 100, n_ais_betas: int = 1000, n_bound_samples: int = 50,
                 random_state: Any = None) -> None:
        self.n_components = n_components
        self.hidden_layers = hidden_layers
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.n_iter = n_iter
        self.burn_in = burn_in
        self.max_exact_units = max_exact_units
        self.n_ais_chains = n_ais_chains
        self.n_ais_betas = n_ais_betas
        self.n_bound_samples = n_bound_samples
        self.random_state = random_state

    def _fit(self, X: np.ndarray, lengths: None, rng: np.random.Generator) -> None:
        _check_binary(X, type(self).__name__)
        sizes = [int(s) for s in self.hidden_layers] + [self.n_components]
        if any(s < 1 for s in sizes):
            raise ValueError(f"DBN: every layer needs at least one unit; got hidden_layers={self.hidden_layers!r}.")
        layers, backends, inp = [], [], X
        for size in sizes:
            rbm = neural_network.BernoulliRBM(size, learning_rate=self.learning_rate, batch_size=self.batch_size,
                                              n_iter=self.n_iter, random_state=sklearn_seed(rng)).fit(inp)
            W, b, c = rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_
            if not all(np.all(np.isfinite(a)) for a in (W, b, c)):
                raise ValueError("DBN training diverged (non-finite weights); lower learning_rate.")
            layers.append({"W": W, "b": b, "c": c})
            backends.append(rbm)
            inp = expit(inp @ W.T + b)
        top = layers[-1]
        lz = log_partition(top["W"], top["b"], top["c"], rng, max_exact=self.max_exact_units,
                           n_chains=self.n_ais_chains, n_betas=self.n_ais_betas)
        self.layers_, self.backend_ = layers, backends
        self.log_partition_, self.log_partition_se_ = lz.log_z, lz.se
        self.n_iter_, self.converged_ = self.n_iter, True
        self.history_ = np.array([float(np.mean(self._log_likelihood(X, None)))])

    def _get_parameters(self) -> dict[str, Any]:
        return {f"{k}{i}": v for i, layer in enumerate(self.layers_) for k, v in layer.items()}

    def _get_state(self) -> dict[str, Any]:
        return {"fitted": {k: v for k, v in vars(self).items()
                           if k.endswith("_") and not k.startswith("_") and k not in self._unsaved}}

    def _set_state(self, state: dict[str, Any]) -> None:
        for name, value in state["fitted"].items():
            setattr(self, name, value)
        self.backend_ = None

    def _posterior(self, X: np.ndarray, lengths: None) -> Bernoulli:
        _check_binary(X, type(self).__name__)
        p = X
        for layer in self.layers_[:-1]:
            p = expit(p @ layer["W"].T + layer["b"])
        top = self.layers_[-1]
        return Bernoulli(logits=p @ top["W"].T + top["b"], method="variational")

    def _log_likelihood(self, X: np.ndarray, lengths: None) -> np.ndarray:
        """Monte Carlo estimate of a lower bound on ``log p(v)`` (fixed seed; see the class docstring)."""
        _check_binary(X, type(self).__name__)
        rng = np.random.default_rng(0)
        S, N = self.n_bound_samples, X.shape[0]
        below = np.broadcast_to(X, (S, N, X.shape[1]))
        total = np.zeros((S, N))
        for layer in self.layers_[:-1]:
            logits_up = below @ layer["W"].T + layer["b"]
            h = (rng.random(logits_up.shape) < expit(logits_up)).astype(np.float64)
            # log q(h | below) subtracted, log p(below | h) through the directed layer's visible biases added
            total -= np.where(h == 1.0, -np.logaddexp(0, -logits_up), -np.logaddexp(0, logits_up)).sum(-1)
            logits_down = h @ layer["W"] + layer["c"]
            total += np.where(below == 1.0, -np.logaddexp(0, -logits_down), -np.logaddexp(0, logits_down)).sum(-1)
            below = h
        top = self.layers_[-1]
        flat = below.reshape(-1, below.shape[-1])
        total += (-free_energy(flat, top["W"], top["b"], top["c"]) - self.log_partition_).reshape(S, N)
        return total.mean(axis=0)

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        top = self.layers_[-1]
        V, Hs = gibbs_chains(top["W"], top["b"], top["c"], rng, n_chains=n_samples, burn_in=self.burn_in)
        x = V[:, 0]
        for layer in reversed(self.layers_[:-1]):
            p = expit(x @ layer["W"] + layer["c"])
            x = (rng.random(p.shape) < p).astype(np.float64)
        return x, Hs[:, 0]

    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"h": ("obs", "hidden_unit"), "x": ("obs", "feature")}

    def _posterior_predictive(self, X, latents, params, rng):
        # top hidden draws -> the top RBM's visible units -> down the directed layers, as in _sample
        top = self.layers_[-1]
        x = latents
        for W, c in [(top["W"], top["c"])] + [(layer["W"], layer["c"]) for layer in reversed(self.layers_[:-1])]:
            p = expit(x @ W + c)
            x = (rng.random(p.shape) < p).astype(np.float64)
        return x


RBM.__doc__ = RBM.__doc__.replace("{common}", _COMMON.lstrip())
DBN.__doc__ = DBN.__doc__.replace("{common}", _COMMON.lstrip())
