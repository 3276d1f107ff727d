"""Probabilistic matrix factorisation of explicit ratings: MAP by ALS, or Bayesian PMF by Gibbs sampling."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
from scipy import sparse
from scipy.special import logsumexp, ndtr

from .._base import LatentModel
from .._docstrings import fill
from .._random import child_generator
from .._tags import ModelTags
from .._validation import Interval, Options
from ..inference import _pmf
from ..posteriors import FiniteMixture, MultivariateNormal
from ._rdpg import split_rhat

__all__ = ["ProbabilisticMF", "RatingPredictive", "RatingsMatrix", "ratings_matrix"]

_CHUNK = 25  # sweeps per progress-bar update


class RatingsMatrix(NamedTuple):
    """A sparse user x item rating matrix and the labels of its rows and columns.

    Parameters
    ----------
    X : scipy.sparse.csr_matrix of shape (n_users, n_items)
        Stored entries are the ratings (an explicit zero rating is a stored zero).
    users : ndarray of shape (n_users,)
        Label of each row.
    items : ndarray of shape (n_items,)
        Label of each column.
    """

    X: Any
    users: np.ndarray
    items: np.ndarray


class RatingPredictive(NamedTuple):
    """Predictive distribution of ratings, one entry per (user, item) pair.

    Parameters
    ----------
    mean, sd : ndarray of shape (n_pairs,)
        Predictive mean and standard deviation.
    lower, upper : ndarray of shape (n_pairs,)
        Equal-tailed predictive interval at ``level``.
    draws : ndarray of shape (n_samples, n_pairs)
        Joint draws of the ratings (one parameter draw per row).
    level : float
        Level of the interval.
    """

    mean: np.ndarray
    sd: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    draws: np.ndarray
    level: float


def ratings_matrix(users: Any, items: Any = None, ratings: Any = None, *, user: str = "user", item: str = "item",
                   rating: str = "rating") -> RatingsMatrix:
    """Build a sparse rating matrix from ``(user, item, rating)`` triples or a DataFrame.

    Parameters
    ----------
    users : array-like or pandas.DataFrame
        User label of each rating, or a DataFrame with columns ``user``, ``item`` and ``rating``.
    items, ratings : array-like, optional
        Item label and rating of each triple (not with a DataFrame).
    user, item, rating : str
        Column names when ``users`` is a DataFrame.

    Returns
    -------
    RatingsMatrix
        ``X`` (CSR, explicit zero ratings stored), and the sorted labels of its rows and columns.
    """
    if items is None and ratings is None and hasattr(users, "columns"):
        users, items, ratings = users[user].to_numpy(), users[item].to_numpy(), users[rating].to_numpy()
    users, items = np.asarray(users), np.asarray(items)
    values = np.asarray(ratings, dtype=np.float64)
    if not (users.shape == items.shape == values.shape) or users.ndim != 1:
        raise ValueError(f"users, items and ratings must be 1-D of one length; got shapes {users.shape}, "
                         f"{items.shape}, {values.shape}.")
    if not np.all(np.isfinite(values)):
        raise ValueError("ratings must be finite (NaN or inf found); drop missing ratings instead.")
    if values.size == 0:
        raise ValueError("ratings_matrix: no (user, item, rating) triples given.")
    user_labels, rows = np.unique(users, return_inverse=True)
    item_labels, cols = np.unique(items, return_inverse=True)
    key = rows.astype(np.int64) * len(item_labels) + cols
    if np.unique(key).size != key.size:
        raise ValueError("a (user, item) pair is rated more than once; keep one rating per pair.")
    X = sparse.csr_matrix((values, (rows, cols)), shape=(len(user_labels), len(item_labels)))
    X.sort_indices()
    return RatingsMatrix(X, user_labels, item_labels)


class ProbabilisticMF(LatentModel):
    r"""Probabilistic matrix factorisation of explicit ratings, with a posterior over every user's factors.

    The model (Salakhutdinov and Mnih, 2008): user :math:`i` has a factor
    vector :math:`u_i \in \mathbb{R}^d` (``d = n_components``), item
    :math:`j` a vector :math:`v_j`, and a rating is :math:`r_{ij} = m +
    u_i \cdot v_j + \varepsilon`, :math:`\varepsilon \sim \mathcal{N}(0,
    \alpha^{-1})`, with :math:`m` the training mean (``offset_``). With
    ``biases=True`` a user bias and an item bias are added (stored as an
    extra coordinate of each side's vector, the partner coordinate fixed to
    one). ``sampler="gibbs"`` is Bayesian PMF: :math:`u_i \sim
    \mathcal{N}(\mu_U, \Lambda_U^{-1})` with a Normal-Wishart hyperprior
    (:math:`\mu_0 = 0, \beta_0 = 2, W_0 = I, \nu_0 = D`), items likewise,
    :math:`\alpha \sim \mathrm{Gamma}(1, 1)`, sampled by conjugate block
    updates (every user's vector, then every item's, then the
    hyperparameters) in a compiled kernel, then a move along the
    directions the ratings cannot see (:math:`u \to uA, v \to vA^{-T}`,
    ``A`` symmetric positive definite, drawn exactly from its conditional:
    without it the factor scale, hence :math:`\Lambda_U, \Lambda_V`, mixes
    10-50 times more slowly), over ``n_chains`` chains started at the MAP
    fit. ``sampler=None`` is the MAP fit by alternating
    least squares with prior precision ``regularization`` and the noise
    precision re-estimated each iteration.

    Parameters
    ----------
    n_components : int, default=5
        Factor dimension ``d``.
    biases : bool, default=False
        Add per-user and per-item biases.
    sampler : {"gibbs"} or None, default="gibbs"
        Bayesian PMF by Gibbs sampling, or ``None`` for the MAP fit.
    regularization : float, default=1.0
        Prior precision of every factor coordinate in the MAP fit (and the
        starting point of the chains).
    rating_range : tuple of float or None, default=None
        ``(low, high)``: ratings outside raise a ``ValueError``. Predictions
        are never clipped to it.
    max_iter : int, default=100
        ALS iterations (MAP fit, and the start of every chain).
    tol : float, default=1e-5
        Relative change of the MAP objective at which ALS stops.
    n_chains : int, default=2
        Gibbs chains.
    n_draws : int, default=200
        Sweeps kept per chain.
    n_warmup : int, default=100
        Sweeps discarded per chain.
    {random_state}
    progress : bool or None, default=None
        Show a progress bar during Gibbs sampling (``None``: above ~10 s of expected work).

    Attributes
    ----------
    offset_ : float
        Mean training rating ``m``.
    user_factors_ : ndarray of shape (n_users, K)
        Posterior mean (MAP: estimate) of each user's vector, in the full
        layout: ``K = d``, or ``d + 2`` with biases (column ``d`` the user
        bias, column ``d + 1`` ones).
    item_factors_ : ndarray of shape (n_items, K)
        Same for items (column ``d`` ones, column ``d + 1`` the item bias).
    noise_sd_ : float
        Posterior mean (MAP: estimate) of the noise standard deviation.
    user_factor_draws_, item_factor_draws_ : ndarray of float32, shape (n_chains, n_draws, n_rows, K)
        Kept draws (MAP: one "draw", shape ``(1, 1, ...)``).
    user_mean_draws_, item_mean_draws_ : ndarray of shape (n_chains, n_draws, D)
        Hyperparameters :math:`\mu_U, \mu_V` (``D = d``, or ``d + 1`` with biases).
    user_precision_draws_, item_precision_draws_ : ndarray of shape (n_chains, n_draws, D, D)
        Hyperparameters :math:`\Lambda_U, \Lambda_V`.
    noise_precision_draws_ : ndarray of shape (n_chains, n_draws)
        Noise precision :math:`\alpha`.
    draws_ : dict of str to ndarray
        Gibbs fits only: the draws ``to_arviz`` writes to ``posterior``:
        ``noise_sd``, ``user_mean``, ``item_mean``, ``user_scale``,
        ``item_scale`` (square roots of the diagonal of :math:`\Lambda^{-1}`).
    sample_stats_ : dict of str to ndarray
        Gibbs fits only: ``total_log_likelihood`` and ``rmse`` of the training ratings per draw.
    ratings_ : scipy.sparse.csr_matrix of shape (n_users, n_items)
        The training ratings (predictions for fitted users fold them in).
    n_features_in_ : int
        Number of items.
    n_iter_ : int
        ALS iterations (MAP) or sweeps per chain (Gibbs).
    converged_ : bool
        ALS converged, or (Gibbs) split R-hat of the noise precision below 1.1.
    history_ : ndarray
        MAP objective per ALS iteration, or (Gibbs) training log-likelihood per sweep averaged over chains.
    rng_ : numpy.random.Generator
        The model's random stream.
    backend_ : None
        No backend object.

    See Also
    --------
    ratings_matrix : Build ``X`` from (user, item, rating) triples or a DataFrame.
    probspace.posteriors.MultivariateNormal : The fold-in posterior of each row.

    Notes
    -----
    **Input.** ``X`` is a user x item matrix, a SciPy sparse matrix or a
    dense array. In a sparse matrix every *stored* entry is a rating,
    including a stored zero: that is how an explicit zero rating is passed
    (:func:`ratings_matrix` stores them). In a dense array zeros are missing
    ratings. NaN and inf raise a ``ValueError``.

    **Posterior.** ``posterior(X)`` is, for each row of ``X`` (a fitted
    user's row or a new user's), the exact Gaussian of the user's free
    coordinates (factors, then the bias) given the item factors and
    hyperparameters: a :class:`~probspace.posteriors.MultivariateNormal`
    for the MAP fit, an equal mixture of them over the Gibbs draws
    (:class:`~probspace.posteriors.FiniteMixture`) otherwise, so new users
    fold in without a refit. A row without ratings gets the population
    distribution (cold start).

    **Observation unit: a rating.** ``log_likelihood(X)`` returns one value
    per stored rating of ``X`` (CSR order) and ``score`` their mean:
    :math:`\log p(r_{ij} \mid r_{i,-j})`, the user folded in from the
    other ratings of the row (exact per draw, log-mean over the Gibbs
    draws), or with ``users=`` the held-out ratings of fitted users given
    the training data (as :meth:`rating_log_likelihood`).
    :meth:`predictive` gives the predictive distribution of ratings and
    :meth:`recommend` ranks items, for fitted users or for new users'
    rows (``rows=``, ``row=``: exact under the fold-in posterior, per draw).
    ``sample(n)`` draws ``n`` new users with every item rated (dense,
    unclipped). ``to_arviz`` writes the hyperparameters in ``posterior``,
    the user factor draws (``factor``) and, for Gibbs fits, the item factor
    draws (``item_factor``; with biases the last column is the item bias)
    in ``latent_posterior``, and per rating (dim
    ``rating``) the observed rating, its user and item (``constant_data``
    ``rating_user``, ``rating_item``) and its log-likelihood per draw
    (:math:`\log p(r_{ij} \mid r_{i,-j}, \theta_s)`, whose PSIS-LOO is the
    leave-one-rating-out predictive), so ``az.loo`` works per rating.
    :meth:`item_posterior` does the same for items (columns of a user x
    item matrix), given the user factors.
    Example: ``examples/recommender/plot_movielens_uncertainty.py``.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import ProbabilisticMF
    >>> X = ProbabilisticMF._conformance_data(np.random.default_rng(0))[0]
    >>> model = ProbabilisticMF(2, n_draws=50, n_warmup=50, random_state=0).fit(X)
    >>> model.posterior(X[:3]).sample(4).shape
    (4, 3, 2)
    >>> model.predictive([0, 1], [2, 3]).mean.shape
    (2,)
    """

    _latent_name = "factor"
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        "biases": ["boolean"],
        "sampler": [None, Options("gibbs")],
        "regularization": [Interval("real", 0, None, "neither")],
        "rating_range": [None, "array-like"],
        "max_iter": [Interval("int", 1, None)],
        "tol": [Interval("real", 0, None)],
        "n_chains": [Interval("int", 1, None)],
        "n_draws": [Interval("int", 1, None)],
        "n_warmup": [Interval("int", 0, None)],
        "random_state": ["random_state"],
        "progress": [None, "boolean"],
    }
    _tags = ModelTags(accept_sparse=True, exact_posterior=False, parameter_posterior=True)

    _conformance_params = {"n_components": 2, "n_chains": 2, "n_draws": 30, "n_warmup": 30, "max_iter": 20}
    _conformance_alt_params = {"sampler": None, "biases": True, "n_components": 1}
    _expected_failures: dict[str, str] = {}

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, None]:
        return simulate_ratings(rng, 40, 15, 2, density=0.6)[0], None

    def __init__(self, n_components: int = 5, *, biases: bool = False, sampler: str | None = "gibbs",
                 regularization: float = 1.0, rating_range: Any = None, max_iter: int = 100, tol: float = 1e-5,
                 n_chains: int = 2, n_draws: int = 200, n_warmup: int = 100, random_state: Any = None,
                 progress: bool | None = None) -> None:
        self.n_components = n_components
        self.biases = biases
        self.sampler = sampler
        self.regularization = regularization
        self.rating_range = rating_range
        self.max_iter = max_iter
        self.tol = tol
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.random_state = random_state
        self.progress = progress

    def _model_tags(self) -> ModelTags:
        gibbs = self.sampler == "gibbs"
        return ModelTags(accept_sparse=True, exact_posterior=not gibbs, parameter_posterior=gibbs)

    def _get_parameters(self) -> dict[str, Any]:
        return {"user_factors_": self.user_factors_, "item_factors_": self.item_factors_, "noise_sd_": self.noise_sd_}

    # -- layout ------------------------------------------------------------------------
    def _layout(self) -> tuple[int, np.ndarray, int, np.ndarray, int]:
        """``(K, free_user, fix_user, free_item, fix_item)``: full width, free columns and the column fixed to one."""
        d = self.n_components
        if not self.biases:
            free = np.arange(d, dtype=np.int64)
            return d, free, -1, free, -1
        return (d + 2, np.arange(d + 1, dtype=np.int64), d + 1,
                np.r_[np.arange(d), d + 1].astype(np.int64), d)

    def _ratings(self, X: Any, where: str) -> sparse.csr_matrix:
        """Return validated ``X`` as CSR: stored sparse entries are ratings; dense zeros are missing."""
        R = sparse.csr_matrix(X, dtype=np.float64, copy=True) if sparse.issparse(X) else sparse.csr_matrix(X)
        R.sort_indices()
        if self.rating_range is not None and R.nnz:
            low, high = (float(v) for v in self.rating_range)
            bad = (R.data < low) | (R.data > high)
            if bad.any():
                raise ValueError(f"{type(self).__name__}.{where}: rating {R.data[bad][0]:g} is outside rating_range "
                                 f"({low:g}, {high:g}).")
        return R

    # -- hooks -----------------------------------------------------------------------
    def _fit(self, X: Any, lengths: None, rng: np.random.Generator) -> None:
        if self.rating_range is not None and (len(self.rating_range) != 2
                                              or not float(self.rating_range[0]) < float(self.rating_range[1])):
            raise ValueError(f"rating_range must be (low, high) with low < high; got {self.rating_range!r}.")
        R = self._ratings(X, "fit")
        if R.nnz == 0:
            raise ValueError(f"{type(self).__name__}.fit: X holds no ratings (in a dense array zeros are missing).")
        K, fu, xu, fv, xv = self._layout()
        offset = float(R.data.mean())
        y = R.data - offset
        scale = max(float(np.sqrt(np.mean(y**2))), 1e-8)
        Rt = R.T.tocsr()
        Rt.sort_indices()
        yt = Rt.data - offset
        n_u, n_v = R.shape
        U = np.zeros((n_u, K))
        V = np.zeros((n_v, K))
        if self.biases:
            U[:, xu] = 1.0
            V[:, xv] = 1.0
        U[:, fu] = 0.1 * rng.standard_normal((n_u, fu.size))
        V[:, fv] = 0.1 * rng.standard_normal((n_v, fv.size))
        lam_u = self.regularization * np.eye(fu.size)
        lam_v = self.regularization * np.eye(fv.size)
        zero_u, zero_v = np.zeros(fu.size), np.zeros(fv.size)
        alpha = 1.0 / scale**2
        history, converged, it = [], False, 0
        for it in range(1, self.max_iter + 1):
            U[:, fu] = _cond(R.indptr, R.indices, y, V, fu, xu, zero_u, lam_u, alpha)[0]
            V[:, fv] = _cond(Rt.indptr, Rt.indices, yt, U, fv, xv, zero_v, lam_v, alpha)[0]
            sse = _pmf.sum_squared_errors(R.indptr, R.indices, y, U, V)
            alpha = R.nnz / max(sse, 1e-12 * R.nnz * scale**2)
            obj = (0.5 * R.nnz * np.log(alpha) - 0.5 * alpha * sse
                   - 0.5 * self.regularization * (np.sum(U[:, fu] ** 2) + np.sum(V[:, fv] ** 2)))
            history.append(obj)
            if it > 1 and abs(history[-1] - history[-2]) <= self.tol * max(1.0, abs(history[-1])):
                converged = True
                break
        self.offset_ = offset
        self.ratings_ = R
        if self.sampler is None:
            self._store(U[None, None], V[None, None], np.broadcast_to(zero_u, (1, 1, fu.size)).copy(),
                        lam_u[None, None], np.broadcast_to(zero_v, (1, 1, fv.size)).copy(), lam_v[None, None],
                        np.array([[alpha]]))
            self.n_iter_, self.converged_, self.history_ = it, converged, np.asarray(history)
            if not converged:
                from sklearn.exceptions import ConvergenceWarning

                warnings.warn(f"{type(self).__name__}: ALS stopped at max_iter={self.max_iter} before tol.",
                              ConvergenceWarning, stacklevel=3)
        else:
            self._gibbs(R, y, Rt, yt, U, V, alpha, rng)
        self.backend_ = None

    def _gibbs(self, R, y, Rt, yt, U0, V0, alpha0, rng) -> None:
        K, fu, xu, fv, xv = self._layout()
        C, W, S = self.n_chains, self.n_warmup, self.n_draws
        n_u, n_v = R.shape
        out = {k: [] for k in ("U", "V", "mu_u", "lam_u", "mu_v", "lam_v", "alpha", "ll", "rmse")}
        trace = np.zeros(W + S)
        show = self.progress if self.progress is not None else R.nnz * C * (W + S) > 2e9
        bar = None
        if show:
            from tqdm.auto import tqdm

            bar = tqdm(total=C * (W + S), desc=type(self).__name__, unit="sweep", leave=False)
        try:
            for _c in range(C):
                U, V, alpha = U0.copy(), V0.copy(), alpha0
                U[:, fu] += 0.01 * rng.standard_normal((n_u, fu.size))
                keep = {k: [] for k in out}
                for t in range(W + S):
                    mu_u, lam_u = _pmf.sample_normal_wishart(U[:, fu], rng)
                    mu_v, lam_v = _pmf.sample_normal_wishart(V[:, fv], rng)
                    V[:, fv] = _cond(Rt.indptr, Rt.indices, yt, U, fv, xv, mu_v, lam_v, alpha, rng)[1]
                    U[:, fu] = _cond(R.indptr, R.indices, y, V, fu, xu, mu_u, lam_u, alpha, rng)[1]
                    sse = _pmf.sum_squared_errors(R.indptr, R.indices, y, U, V)
                    alpha = rng.gamma(1.0 + 0.5 * R.nnz, 1.0 / (1.0 + 0.5 * sse))
                    _pmf.rescale_factors(U, V, self.n_components, mu_u, lam_u, mu_v, lam_v, rng)
                    ll = 0.5 * R.nnz * (np.log(alpha) - np.log(2 * np.pi)) - 0.5 * alpha * sse
                    trace[t] += ll / C
                    if t >= W:
                        for k, v in (("U", U.astype(np.float32)), ("V", V.astype(np.float32)), ("mu_u", mu_u),
                                     ("lam_u", lam_u), ("mu_v", mu_v), ("lam_v", lam_v), ("alpha", alpha),
                                     ("ll", ll), ("rmse", np.sqrt(sse / R.nnz))):
                            keep[k].append(v)
                    if bar is not None and (t + 1) % _CHUNK == 0:
                        bar.update(_CHUNK)
                for k in out:
                    out[k].append(np.stack(keep[k]))
        finally:
            if bar is not None:
                bar.close()
        st = {k: np.stack(v) for k, v in out.items()}
        self._store(st["U"], st["V"], st["mu_u"], st["lam_u"], st["mu_v"], st["lam_v"], st["alpha"])
        scale = lambda lam: np.sqrt(np.diagonal(np.linalg.inv(lam), axis1=-2, axis2=-1))  # noqa: E731
        self.draws_ = {"noise_sd": 1.0 / np.sqrt(st["alpha"]), "user_mean": st["mu_u"], "item_mean": st["mu_v"],
                       "user_scale": scale(st["lam_u"]), "item_scale": scale(st["lam_v"])}
        self.sample_stats_ = {"total_log_likelihood": st["ll"], "rmse": st["rmse"]}
        self.history_ = trace
        self.n_iter_ = W + S
        rhat = split_rhat(st["alpha"][:, :, None])[0]
        self.converged_ = bool(C == 1 or rhat < 1.1)
        if not self.converged_:
            from sklearn.exceptions import ConvergenceWarning

            warnings.warn(f"{type(self).__name__}: the chains have not mixed (split R-hat of the noise precision "
                          f"{rhat:.3f} >= 1.1); increase n_warmup and n_draws.", ConvergenceWarning, stacklevel=4)

    def _store(self, U, V, mu_u, lam_u, mu_v, lam_v, alpha) -> None:
        self.user_factor_draws_, self.item_factor_draws_ = U, V
        self.user_mean_draws_, self.user_precision_draws_ = mu_u, lam_u
        self.item_mean_draws_, self.item_precision_draws_ = mu_v, lam_v
        self.noise_precision_draws_ = np.asarray(alpha, dtype=np.float64)
        self.user_factors_ = U.mean(axis=(0, 1), dtype=np.float64)
        self.item_factors_ = V.mean(axis=(0, 1), dtype=np.float64)
        self.noise_sd_ = float(np.mean(1.0 / np.sqrt(self.noise_precision_draws_)))

    # -- per-draw fold-in --------------------------------------------------------------
    @property
    def _n_sets(self) -> int:
        return int(self.noise_precision_draws_.size)

    def _fold_in(self, R: sparse.csr_matrix, s: int, rng: np.random.Generator | None = None):
        """Conditional of the rows of ``R`` given draw ``s``: ``(mean, precision, loglik)``."""
        K, fu, xu, fv, xv = self._layout()
        c, t = divmod(int(s), self.noise_precision_draws_.shape[1])
        V = np.ascontiguousarray(self.item_factor_draws_[c, t], dtype=np.float64)
        mean, _, prec, ll = _cond(R.indptr, R.indices, R.data - self.offset_, V, fu, xu, self.user_mean_draws_[c, t],
                                  self.user_precision_draws_[c, t], float(self.noise_precision_draws_[c, t]), rng)
        return mean, prec, ll

    def _component(self, R: sparse.csr_matrix, s: int) -> MultivariateNormal:
        mean, prec, _ = self._fold_in(R, s)
        return MultivariateNormal(mean, np.linalg.inv(prec), method="exact")

    def _posterior(self, X: Any, lengths: None):
        R = self._ratings(X, "posterior")
        if self.sampler is None:
            return self._component(R, 0)
        return FiniteMixture(lambda s: self._component(R, s), self._n_sets)

    def item_posterior(self, X: Any):
        """Posterior over the factors of items given their ratings by the fitted users.

        The item-side counterpart of :meth:`posterior`: for each *column* of
        ``X`` (a fitted item's ratings, or a new item's), the exact Gaussian
        of the item's free coordinates (factors, then the bias) given the
        user factors, the item hyperparameters and the noise precision of a
        draw; an equal mixture of them over the Gibbs draws, one Gaussian
        for the MAP fit. New items fold in without a refit; a column without
        ratings gets the item population distribution.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_users, n_new_items)
            Ratings of the items (columns) by the fitted users (rows), with
            the same conventions as ``fit`` (stored sparse entries are
            ratings; dense zeros are missing).

        Returns
        -------
        MultivariateNormal or FiniteMixture
            Batch of ``n_new_items`` distributions of dimension ``D``.
        """
        self._check_fitted()
        if not sparse.issparse(X):
            X = np.asarray(X, dtype=np.float64)
            if X.ndim != 2:
                raise ValueError(f"{type(self).__name__}.item_posterior: X must be 2-D (n_users, n_items).")
        data = X.data if sparse.issparse(X) else X
        if not np.all(np.isfinite(data)):
            raise ValueError(f"{type(self).__name__}.item_posterior: X contains NaN or infinity.")
        n_users = self.ratings_.shape[0]
        if X.shape[0] != n_users:
            raise ValueError(f"{type(self).__name__}.item_posterior: X has {X.shape[0]} rows; the model was fitted "
                             f"on {n_users} users (rows are users, columns the items).")
        Rt = self._ratings(X.T if sparse.issparse(X) else X.T, "item_posterior")
        K, fu, xu, fv, xv = self._layout()
        T = self.noise_precision_draws_.shape[1]

        def component(s: int) -> MultivariateNormal:
            c, t = divmod(int(s), T)
            U = np.ascontiguousarray(self.user_factor_draws_[c, t], dtype=np.float64)
            mean, _, prec, _ = _cond(Rt.indptr, Rt.indices, Rt.data - self.offset_, U, fv, xv,
                                     self.item_mean_draws_[c, t], self.item_precision_draws_[c, t],
                                     float(self.noise_precision_draws_[c, t]))
            return MultivariateNormal(mean, np.linalg.inv(prec), method="exact")

        post = component(0) if self.sampler is None else FiniteMixture(component, self._n_sets)
        post._rng = child_generator(self.rng_)
        return post

    def _loo_in_row(self, R: sparse.csr_matrix, s: int) -> np.ndarray:
        """Per stored rating of ``R``: ``log p(r_ij | the other ratings of row i, draw s)``, the row's user integrated.

        With the row's Gaussian conditional ``N(m, P^{-1})`` (all its ratings), the
        leverage ``h = alpha x^T P^{-1} x`` and the fit ``f = x^T m`` of rating ``t``,
        deleting it gives the predictive ``N((f - h t) / (1 - h), 1 / (alpha (1 - h)))``
        (Sherman-Morrison on ``P - alpha x x^T``).
        """
        K, fu, xu, fv, xv = self._layout()
        c, t = divmod(int(s), self.noise_precision_draws_.shape[1])
        mean, prec, _ = self._fold_in(R, s)
        rows = np.repeat(np.arange(R.shape[0]), np.diff(R.indptr))
        Vs = self.item_factor_draws_[c, t][R.indices].astype(np.float64)
        x = Vs[:, fu]
        target = R.data - self.offset_ - (Vs[:, xu] if xu >= 0 else 0.0)
        alpha = float(self.noise_precision_draws_[c, t])
        cov = np.linalg.inv(prec)
        one_minus_h = 1.0 - alpha * np.einsum("nd,nde,ne->n", x, cov[rows], x)
        fit = np.einsum("nd,nd->n", x, mean[rows])
        loo_mean = (fit - (1.0 - one_minus_h) * target) / one_minus_h
        var = 1.0 / (alpha * one_minus_h)
        return -0.5 * (np.log(2 * np.pi * var) + (target - loo_mean) ** 2 / var)

    def _log_likelihood(self, X: Any, lengths: None) -> np.ndarray:
        R = self._ratings(X, "log_likelihood")
        if R.nnz == 0:
            raise ValueError(f"{type(self).__name__}.log_likelihood: X holds no ratings to score.")
        lls = np.stack([self._loo_in_row(R, s) for s in range(self._n_sets)])
        return logsumexp(lls, axis=0) - np.log(self._n_sets)

    def _n_observations(self, X: Any, lengths: None) -> int:
        return int(self._ratings(X, "log_likelihood").nnz)

    def log_likelihood(self, X: Any, y: Any = None, *, lengths: Any = None, users: Any = None) -> np.ndarray:
        r"""Log predictive density of each rating of ``X`` (the observation unit is a rating).

        One value per stored rating of ``X``, in CSR order (by row, then by
        column; for a dense ``X`` the nonzero entries in C order).

        * ``users=None``: the rows of ``X`` are users known only by those
          rows (new users, or fitted users' rows taken on their own), and
          rating ``r_ij`` gets :math:`\log p(r_{ij} \mid r_{i,-j})`, the
          user's factors folded in from the *other* ratings of the row
          (exact per parameter draw, mixed over the Gibbs draws); a row's
          only rating gets the population predictive. This is what
          ``to_arviz`` writes per draw, so ``az.loo`` works per rating.
        * ``users`` given (the fitted-user index of each row of ``X``):
          held-out ratings of fitted users, each scored given the training
          data, :math:`\log p(r_{ij} \mid \text{training ratings})`, as
          :meth:`rating_log_likelihood`.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_rows, n_items)
            Ratings (stored sparse entries; nonzero dense entries).
        y : None
            Ignored.
        lengths : None
            Ignored (not a sequential family).
        users : array-like of int of shape (n_rows,), optional
            Fitted users whose held-out ratings ``X`` holds.

        Returns
        -------
        ndarray of shape (n_ratings,)
        """
        if users is None:
            return super().log_likelihood(X, y, lengths=lengths)
        X, _ = self._check_input(X, None)
        R = self._ratings(X, "log_likelihood")
        users = np.atleast_1d(np.asarray(users))
        if users.shape != (R.shape[0],):
            raise ValueError(f"users must give one fitted user per row of X ({R.shape[0]}); got shape {users.shape}.")
        if R.nnz == 0:
            raise ValueError(f"{type(self).__name__}.log_likelihood: X holds no ratings to score.")
        return self.rating_log_likelihood(np.repeat(users, np.diff(R.indptr)), R.indices, R.data)

    def score(self, X: Any, y: Any = None, *, lengths: Any = None, users: Any = None) -> float:
        """Mean of :meth:`log_likelihood` per rating (higher is better).

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_rows, n_items)
            Ratings.
        y : None
            Ignored.
        lengths : None
            Ignored.
        users : array-like of int, optional
            As in :meth:`log_likelihood`.

        Returns
        -------
        float
        """
        return float(np.mean(self.log_likelihood(X, y, lengths=lengths, users=users)))

    def _sample(self, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        K, fu, xu, fv, xv = self._layout()
        s = int(rng.integers(0, self._n_sets))
        c, t = divmod(s, self.noise_precision_draws_.shape[1])
        cov = np.linalg.inv(self.user_precision_draws_[c, t])
        Z = rng.multivariate_normal(self.user_mean_draws_[c, t], cov, size=n_samples)
        U = np.zeros((n_samples, K))
        U[:, fu] = Z
        if xu >= 0:
            U[:, xu] = 1.0
        mean = U @ self.item_factor_draws_[c, t].astype(np.float64).T + self.offset_
        X = mean + rng.standard_normal(mean.shape) / np.sqrt(self.noise_precision_draws_[c, t])
        return X, Z

    def _sample_parameters(self, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in self.draws_.items()}
        idx = rng.integers(0, self._n_sets, size=n_samples)
        return {k: v[idx] for k, v in flat.items()}

    # -- predictions -------------------------------------------------------------------
    def _pairs(self, users: Any, items: Any, n_users: int) -> tuple[np.ndarray, np.ndarray]:
        self._check_fitted()
        u = np.atleast_1d(np.asarray(users))
        v = np.atleast_1d(np.asarray(items))
        u, v = np.broadcast_arrays(u, v)
        n_v = self.ratings_.shape[1]
        for name, idx, n in (("user", u, n_users), ("item", v, n_v)):
            if not np.issubdtype(idx.dtype, np.integer):
                raise ValueError(f"{name} indices must be integers (rows/columns of the fitted X); got {idx.dtype}.")
            bad = (idx < 0) | (idx >= n)
            if bad.any():
                hint = "fold new users in with rows=..." if name == "user" else "fold new items in with item_posterior"
                raise ValueError(f"unknown {name} {int(idx[bad][0])}: there are {n} {name}s ({hint}).")
        return u.ravel().astype(np.int64), v.ravel().astype(np.int64)

    def _rows(self, rows: Any, where: str) -> sparse.csr_matrix:
        """Validate new users' rating rows (2-D, ``n_items`` columns; a 1-D array is one row)."""
        self._check_fitted()
        if not sparse.issparse(rows):
            rows = np.asarray(rows, dtype=np.float64)
            if rows.ndim == 1:
                rows = rows[None, :]
        X, _ = self._check_input(rows, None)
        return self._ratings(X, where)

    def _source(self, users: Any, items: Any, rows: Any, where: str):
        """``(R, u, v)``: the rows to fold in, and the pairs as (row of ``R``, item)."""
        if rows is None:
            u, v = self._pairs(users, items, self.ratings_.shape[0])
            fitted, inv = np.unique(u, return_inverse=True)
            return self.ratings_[fitted], inv.astype(np.int64), v
        R = self._rows(rows, where)
        u, v = self._pairs(users, items, R.shape[0])
        return R, u, v

    def _pair_moments(self, R: sparse.csr_matrix, u: np.ndarray, v: np.ndarray):
        """Per draw: mean and variance of ``u_i . v_j`` given the fold-in of row ``u`` of ``R``, and noise variance."""
        K, fu, xu, fv, xv = self._layout()
        S = self._n_sets
        means = np.empty((S, u.size))
        var = np.empty((S, u.size))
        noise = 1.0 / self.noise_precision_draws_.reshape(-1)
        for s in range(S):
            c, t = divmod(s, self.noise_precision_draws_.shape[1])
            mean, prec, _ = self._fold_in(R, s)
            cov = np.linalg.inv(prec)[u]
            Vs = self.item_factor_draws_[c, t][v].astype(np.float64)
            x = Vs[:, fu]
            base = Vs[:, xu] if xu >= 0 else 0.0
            means[s] = np.einsum("nd,nd->n", mean[u], x) + base + self.offset_
            var[s] = np.einsum("nd,nde,ne->n", x, cov, x)
        return means, var, noise

    def predictive(self, users: Any, items: Any, *, rows: Any = None, level: float = 0.9, n_samples: int = 1000,
                   random_state: Any = None) -> RatingPredictive:
        """Predictive distribution of ratings of fitted users, or of new users given their rows, for items.

        Given each draw the user's factors are integrated exactly (the
        Gaussian fold-in of the user's row: the training row of a fitted
        user, or the given row of a new user), so the predictive is a
        mixture of Gaussians over the draws (one Gaussian for the MAP fit).
        Never clipped to ``rating_range``.

        Parameters
        ----------
        users, items : array-like of int
            Users and item columns of the fitted ``X`` (broadcast together).
            Users are rows of the fitted ``X``, or rows of ``rows`` when given.
        rows : array-like or sparse matrix of shape (n_new_users, n_items), optional
            New users' ratings (same conventions as ``fit``), folded in
            without a refit; a 1-D array is one user.
        level : float, default=0.9
            Level of the equal-tailed interval (exact mixture quantiles).
        n_samples : int, default=1000
            Number of joint draws returned.
        random_state : None, int or numpy.random.Generator, optional
            Seed for the draws; without it they continue ``rng_``.

        Returns
        -------
        RatingPredictive
        """
        if not 0.0 < float(level) < 1.0:
            raise ValueError(f"level must be in (0, 1); got {level!r}.")
        means, var, noise = self._pair_moments(*self._source(users, items, rows, "predictive"))
        total = var + noise[:, None]
        mean = means.mean(axis=0)
        sd = np.sqrt(np.maximum((total + means**2).mean(axis=0) - mean**2, 0.0))
        lower = _mixture_quantile(means, np.sqrt(total), (1.0 - level) / 2.0)
        upper = _mixture_quantile(means, np.sqrt(total), (1.0 + level) / 2.0)
        rng = self._generator(random_state)
        s = rng.integers(0, means.shape[0], size=n_samples)
        draws = means[s] + np.sqrt(total[s]) * rng.standard_normal((n_samples, mean.size))
        return RatingPredictive(mean, sd, lower, upper, draws, float(level))

    def rating_log_likelihood(self, users: Any, items: Any, ratings: Any, *, rows: Any = None) -> np.ndarray:
        """Log predictive density of single ratings (held-out comparison), given the users' rows.

        Parameters
        ----------
        users, items : array-like of int
            Users (rows of the fitted ``X``, or of ``rows``) and item columns.
        ratings : array-like of float
            The ratings.
        rows : array-like or sparse matrix of shape (n_new_users, n_items), optional
            New users' known ratings, folded in as in :meth:`predictive`.

        Returns
        -------
        ndarray of shape (n_ratings,)
        """
        R, u, v = self._source(users, items, rows, "rating_log_likelihood")
        r = np.asarray(ratings, dtype=np.float64).ravel()
        if r.shape != u.shape or not np.all(np.isfinite(r)):
            raise ValueError(f"ratings must be finite with one per (user, item) pair ({u.size}); got {r.shape}.")
        means, var, noise = self._pair_moments(R, u, v)
        total = var + noise[:, None]
        lp = -0.5 * (np.log(2 * np.pi * total) + (r - means) ** 2 / total)
        return logsumexp(lp, axis=0) - np.log(means.shape[0])

    def recommend(self, user: int | None = None, n: int = 10, *, row: Any = None, strategy: str = "mean",
                  level: float = 0.9, exclude_rated: bool = True, random_state: Any = None) -> np.ndarray:
        """Return the indices of the ``n`` items to recommend to a fitted user, or to a new user given a row.

        Parameters
        ----------
        user : int, optional
            Row of the fitted ``X`` (not with ``row``).
        n : int, default=10
            How many items.
        row : array-like or sparse matrix of shape (n_items,) or (1, n_items), optional
            A new user's ratings, folded in without a refit (not with ``user``).
        strategy : {"mean", "thompson", "upper"}, default="mean"
            Rank by predictive mean; by one joint posterior draw of the
            user's and items' factors (Thompson sampling); or by the upper
            end of the ``level`` predictive interval (optimism).
        level : float, default=0.9
            Interval level for ``"upper"``.
        exclude_rated : bool, default=True
            Leave out items the user rated (in the training data, or in ``row``).
        random_state : None, int or numpy.random.Generator, optional
            Seed for ``"thompson"``; without it the draw continues ``rng_``.

        Returns
        -------
        ndarray of int, shape (n,) (fewer if fewer items are left)
        """
        if strategy not in ("mean", "thompson", "upper"):
            raise ValueError(f"strategy must be 'mean', 'thompson' or 'upper'; got {strategy!r}.")
        if (user is None) == (row is None):
            raise ValueError("recommend takes a fitted user or a new user's row (exactly one of them).")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n must be a positive integer; got {n!r}.")
        self._check_fitted()
        n_items = self.ratings_.shape[1]
        if row is not None:
            row = self._rows(row, "recommend")
            if row.shape[0] != 1:
                raise ValueError(f"row must be one user's ratings; got {row.shape[0]} rows.")
        R, u, v = self._source(np.full(n_items, 0 if row is not None else user), np.arange(n_items), row, "recommend")
        if strategy == "mean":
            score = self._pair_moments(R, u, v)[0].mean(axis=0)
        elif strategy == "upper":
            score = self.predictive(u, v, rows=R, level=level, n_samples=1).upper
        else:
            rng = self._generator(random_state)
            s = int(rng.integers(0, self._n_sets))
            K, fu, xu, fv, xv = self._layout()
            c, t = divmod(s, self.noise_precision_draws_.shape[1])
            mean, prec, _ = self._fold_in(R, s)
            z = rng.multivariate_normal(mean[0], np.linalg.inv(prec[0]))
            Vs = self.item_factor_draws_[c, t].astype(np.float64)
            score = Vs[:, fu] @ z + (Vs[:, xu] if xu >= 0 else 0.0)
        score = np.asarray(score, dtype=np.float64).copy()
        if exclude_rated:
            score[R[0].indices] = -np.inf
        order = np.argsort(-score, kind="stable")
        return order[: min(int(n), int(np.isfinite(score).sum()))]

    # -- ArviZ hooks -------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        # "x" (observed ratings and their pointwise log-likelihood) is one entry per stored rating.
        dims = {"factor": ("user", "latent_dim"), "item_factor": ("item", "latent_dim"), "x": ("rating",),
                "rating_user": ("rating",), "rating_item": ("rating",)}
        dims.update({k: ("latent_dim",) for k in ("user_mean", "item_mean", "user_scale", "item_scale")})
        return dims

    def _arviz_latent_extras(self, index: np.ndarray) -> dict[str, np.ndarray]:
        # the free columns, as for the users' ``factor``: d factors (and the item bias)
        V = self.item_factor_draws_[..., self._layout()[3]]
        return {"item_factor": V.reshape((-1,) + V.shape[2:])[index].astype(np.float64)}

    def _arviz_observed_data(self, X: Any) -> np.ndarray:
        return self._ratings(X, "to_arviz").data

    def _arviz_constant_data(self, X: Any, lengths: None, **cond: Any) -> dict[str, np.ndarray]:
        R = self._ratings(X, "to_arviz")
        return {"rating_user": np.repeat(np.arange(R.shape[0]), np.diff(R.indptr)),
                "rating_item": R.indices.astype(np.int64)}

    def _pointwise_log_likelihood(self, X, lengths, params):
        if params is None:
            return self._log_likelihood(X, lengths)
        # The bridge passes the kept draws' values; find their indices by the (unique) noise draws.
        flat = self.draws_["noise_sd"].reshape(-1)
        order = np.argsort(flat)
        index = order[np.searchsorted(flat[order], params["noise_sd"])]
        R = self._ratings(X, "to_arviz")
        return np.stack([self._loo_in_row(R, s) for s in index])


def _cond(indptr, indices, y, other, free, fixcol, mu, lam, alpha, rng=None):
    """Run :func:`probspace.inference._pmf.row_conditionals`; returns ``(mean, sample, precision, loglik)``."""
    n, D = indptr.size - 1, free.size
    z = np.zeros((n, D)) if rng is None else rng.standard_normal((n, D))
    mean, sample = np.empty((n, D)), np.empty((n, D))
    prec, ll = np.empty((n, D, D)), np.empty(n)
    _pmf.row_conditionals(indptr.astype(np.int64), indices.astype(np.int64), np.ascontiguousarray(y, np.float64),
                          np.ascontiguousarray(other, np.float64), free, int(fixcol), np.asarray(mu, np.float64),
                          np.ascontiguousarray(lam, np.float64), float(alpha), z, mean, sample, prec, ll)
    return mean, sample, prec, ll


def _mixture_quantile(means: np.ndarray, sds: np.ndarray, q: float) -> np.ndarray:
    """Quantile ``q`` of equal-weight Gaussian mixtures (columns), by bisection on the CDF."""
    lo = (means - 8 * sds).min(axis=0)
    hi = (means + 8 * sds).max(axis=0)
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = ndtr((mid - means) / sds).mean(axis=0) < q
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return 0.5 * (lo + hi)


def simulate_ratings(rng: np.random.Generator, n_users: int, n_items: int, n_components: int, *,
                     density: float = 0.3, noise_sd: float = 0.5):
    """Draw a dense rating array (0 = missing) from the PMF model; returns ``(X, U, V)``."""
    U = rng.standard_normal((n_users, n_components))
    V = rng.standard_normal((n_items, n_components))
    full = 3.0 + U @ V.T + noise_sd * rng.standard_normal((n_users, n_items))
    mask = rng.random((n_users, n_items)) < density
    mask[np.arange(n_users), rng.integers(0, n_items, n_users)] = True
    return np.where(mask, full, 0.0), U, V


ProbabilisticMF.__doc__ = fill(ProbabilisticMF.__doc__)
