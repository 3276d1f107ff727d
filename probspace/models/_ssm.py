"""``LinearGaussianSSM``: the linear-Gaussian state space model (Kalman filter and smoother), fitted by EM."""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import numpy as np
from scipy.special import logsumexp

from .._base import LatentModel
from .._docstrings import fill
from .._tags import ModelTags
from .._validation import Interval, Options, check_gaussian_scale, check_n_samples, warn_unconverged
from ..inference import _kalman
from ..inference._progress import progress_bar
from ..posteriors import GaussMarkovChain, MultivariateNormal
from ..posteriors._mixture import FiniteMixture
from . import _ssm_bayes

__all__ = ["LinearGaussianSSM"]

#: The parameters: (constructor name, kind, shape given d, p and the number of inputs m). The first six are
#: what the kernels take, in their order; the last two multiply the inputs.
_PARAMS = (
    ("transition_matrix", "matrix", lambda d, p, m: (d, d)),
    ("observation_matrix", "matrix", lambda d, p, m: (p, d)),
    ("transition_covariance", "covariance", lambda d, p, m: (d, d)),
    ("observation_covariance", "covariance", lambda d, p, m: (p, p)),
    ("initial_mean", "vector", lambda d, p, m: (d,)),
    ("initial_covariance", "covariance", lambda d, p, m: (d, d)),
    ("control_matrix", "matrix", lambda d, p, m: (d, m)),
    ("feedthrough_matrix", "matrix", lambda d, p, m: (p, m)),
)
_NAMES = tuple(name for name, _, _ in _PARAMS)
_KERNEL = _NAMES[:6]

#: Parameter text shared by ``forecast`` and ``forecast_distribution`` (filled in with ``fill``).
_FORECAST_DOCS = {
    "forecast_prefix": """\
    X : array-like of shape (n_samples, n_features)
        Observed prefix (NaN for missing values); the last sequence is continued.
    n_steps : int
        Number of future frames.""",
    "forecast_inputs": """\
    y : array-like of shape (n_samples, n_inputs), optional
        The inputs of the observed frames (models fitted with inputs).
    y_future : array-like of shape (n_steps, n_inputs), optional
        The inputs of the future frames (models fitted with inputs).
    lengths : array-like of int, optional
        Lengths of the sequences in ``X``.""",
}


class _Names:
    """Constraint: None, ``"all"``, a collection of parameter names, or a dict of names to held-entry masks."""

    def accepts(self, value: Any) -> bool:
        if value is None or (isinstance(value, str) and value == "all"):
            return True
        if isinstance(value, dict):
            return all(k in _NAMES for k in value)
        return isinstance(value, (list, tuple, set, frozenset)) and all(v in _NAMES for v in value)

    def __str__(self) -> str:
        return f"None, 'all', a list of names or a dict of names to boolean masks (names among {', '.join(_NAMES)})"


class LinearGaussianSSM(LatentModel):
    r"""Linear-Gaussian state space model: exact Kalman smoothing, joint path draws and EM.

    The continuous-state counterpart of the hidden Markov model. For each
    sequence, with a hidden state :math:`x_t \in \mathbb{R}^d` (``d =
    n_components``) and observations :math:`y_t \in \mathbb{R}^p`:

    .. math::

        x_1 \sim \mathcal{N}(\mu_0, P_0), \quad
        x_t = A x_{t-1} + B u_t + w_t, \; w_t \sim \mathcal{N}(0, Q), \quad
        y_t = C x_t + D u_t + v_t, \; v_t \sim \mathcal{N}(0, R),

    with optional known inputs :math:`u_t \in \mathbb{R}^m` (control inputs or
    covariates, passed as ``y``: one row per frame, in ``fit``, ``posterior``,
    ``log_likelihood``, ``score``, ``sample``, ``forecast`` and ``to_arviz``;
    without them :math:`B u_t` and :math:`D u_t` are zero).

    :meth:`posterior` is exact: a :class:`~probspace.posteriors.GaussMarkovChain`
    computed by the Kalman filter (Joseph-form updates, Cholesky-factored
    innovations) and the RTS smoother, with smoothed means and covariances,
    joint draws of whole state paths (forward filtering, backward sampling:
    a simulation smoother), the log density of a path and its entropy.
    ``log_likelihood`` is the exact :math:`\log p(y)` of each sequence by the
    prediction-error decomposition. Missing values (NaN frames and NaN
    entries) are marginalised everywhere, in ``fit`` too. ``fit`` runs exact
    EM (Shumway and Stoffer; Ghahramani and Hinton), with the missing entries
    as latent too, so every iteration raises the observed-data likelihood.
    Parameters given to the constructor are EM's starting values, and those
    named in ``fixed`` stay exactly as given (a local level model fixes
    :math:`A = C = 1`). Several sequences are passed as in hmmlearn
    (``lengths=``); they share the parameters and each starts from
    :math:`\mathcal{N}(\mu_0, P_0)`.

    Parameters
    ----------
    n_components : int, default=1
        State dimension ``d``.
    transition_matrix : array-like of shape (d, d), optional
        ``A`` (start of EM, or its value if fixed). Default: the identity.
    observation_matrix : array-like of shape (p, d), optional
        ``C``. Default: the leading principal directions of the data's second moments.
    transition_covariance : array-like of shape (d, d), optional
        ``Q``, positive definite. Default: a tenth of the state scale.
    observation_covariance : array-like of shape (p, p), optional
        ``R``, positive definite. Default: half of each feature's variance, on the diagonal.
    initial_mean : array-like of shape (d,), optional
        :math:`\mu_0`. Default: the least-squares state of the first frame.
    initial_covariance : array-like of shape (d, d), optional
        :math:`P_0`, positive definite. Default: the state scale times the identity.
    control_matrix : array-like of shape (d, m), optional
        ``B``, the inputs' effect on the state (only with inputs). Default: zeros.
    feedthrough_matrix : array-like of shape (p, m), optional
        ``D``, the inputs' direct effect on the observations (only with inputs). Default: zeros.
    fixed : list of str, dict or "all", optional
        Parameters EM leaves exactly as given (each must then be given):
        names among ``transition_matrix``, ``observation_matrix``,
        ``transition_covariance``, ``observation_covariance``,
        ``initial_mean``, ``initial_covariance``, ``control_matrix`` and
        ``feedthrough_matrix``. ``"all"`` fits nothing (smoothing under
        known parameters). A dict maps names to ``True`` (the whole array)
        or to a boolean mask of the array's shape, True where an entry is
        held: held entries of the matrices and of ``initial_mean`` keep
        their given values (structural zeros stay zero) and the free ones
        are fitted given them; a covariance's mask may hold its whole
        off-diagonal at zero (a diagonal covariance).
    max_iter : int, default=100
        Most EM iterations (0: keep the starting values).
    tol : float, default=1e-4
        Stop when an iteration raises the total log-likelihood by less than this.
    min_covar : float, default=1e-9
        Floor of the eigenvalues of the fitted covariances, relative to the data's variance (in state
        units for ``Q`` and :math:`P_0`), which keeps them positive definite on degenerate data.
    random_state : None, int or numpy.random.Generator, optional
        Seed of the starting values (when ``n_components`` exceeds the number of features) and of the
        model's random stream.
    progress : bool, default=False
        Show a progress bar over the EM iterations (and the Gibbs sweeps).
    sampler : {None, "gibbs"}, default=None
        ``"gibbs"``: a fully Bayesian fit by blocked Gibbs sampling, started
        from the EM fit (see Notes). ``None``: the EM point fit.
    n_chains : int, default=4
        Gibbs chains: the first starts at the EM fit, the others at the EM fit
        with each free covariance scaled by a random factor ``exp(N(0, 0.5^2))``.
    n_draws : int, default=1000
        Draws kept per chain.
    n_warmup : int, default=1000
        Sweeps discarded per chain.
    prior : dict, optional
        Prior hyper-parameters of the Gibbs fit; missing entries take the
        defaults in brackets (``s``: the data's mean variance, ``s_x``: ``s``
        in state units, i.e. divided by the mean squared loading of the start
        ``C``). Entries of ``[A B]``: independent normals with
        ``transition_coef_mean`` [``[I 0]``] and ``transition_coef_sd`` [1 for
        ``A``, ``10 sqrt(s_x) / sd(u)`` for ``B``]; of ``[C D]``:
        ``observation_coef_mean`` [0] and ``observation_coef_sd`` [``10
        sqrt(s / s_x)``, ``10 sqrt(s) / sd(u)``]; of :math:`\mu_0`:
        ``initial_mean_mean`` [0] and ``initial_mean_sd`` [10 times the data's
        root mean square in state units] (scalars broadcast). Covariances:
        inverse-Wishart with ``transition_covariance_df`` [``d + 2``] and
        ``transition_covariance_scale`` [``0.1 s_x I``],
        ``observation_covariance_df`` [``p + 2``] and
        ``observation_covariance_scale`` [half of each feature's variance, on
        the diagonal], ``initial_covariance_df`` [``d + 2``] and
        ``initial_covariance_scale`` [``s_x I``] (a scalar scale means that
        times the identity). For ``k = 1`` the inverse-Wishart ``IW(df,
        scale)`` is the inverse-gamma ``IG(df / 2, scale / 2)``; a diagonal
        covariance (off-diagonal held by ``fixed``) has independent ``IG(df /
        2, scale_ii / 2)`` entries. Unknown names, wrong shapes and
        non-positive values raise a ``ValueError``.

    Attributes
    ----------
    transition_matrix_ : ndarray of shape (d, d)
        Fitted ``A``.
    observation_matrix_ : ndarray of shape (p, d)
        Fitted ``C``.
    transition_covariance_ : ndarray of shape (d, d)
        Fitted ``Q``.
    observation_covariance_ : ndarray of shape (p, p)
        Fitted ``R``.
    initial_mean_ : ndarray of shape (d,)
        Fitted :math:`\mu_0`.
    initial_covariance_ : ndarray of shape (d, d)
        Fitted :math:`P_0`.
    control_matrix_ : ndarray of shape (d, m)
        Fitted ``B`` (``m = 0`` columns when fitted without inputs).
    feedthrough_matrix_ : ndarray of shape (p, m)
        Fitted ``D``.
    n_inputs_ : int
        Number of inputs ``m`` per frame seen during ``fit`` (0 without ``y``).
    n_features_in_ : int
        Number of features ``p`` seen during ``fit``.
    n_iter_ : int
        EM iterations run.
    converged_ : bool
        Whether the last iteration's gain fell below ``tol`` (True when there was nothing to fit).
    history_ : ndarray of shape (n_iter,)
        Log-likelihood per frame at each iteration (never decreasing: EM is exact).
    draws_ : dict of str to ndarray or None
        Gibbs fits: the draws of every sampled array, each ``(n_chains,
        n_draws, ...)`` (arrays held whole by ``fixed`` are left out: they
        are their ``_`` attributes); ``None`` for EM fits.
    sample_stats_ : dict of str to ndarray or None
        Gibbs fits, each ``(n_chains, n_draws)``: ``total_log_likelihood``,
        :math:`\log p(y \mid \theta)` of each draw, and ``lp``, the log
        joint :math:`\log p(y \mid \theta) + \log p(\theta)` under the
        prior used (free entries only); ``None`` otherwise.
    prior_ : dict or None
        Gibbs fits: the prior used (defaults filled in); ``None`` otherwise.
    rng_ : numpy.random.Generator
        The model's random stream; calls without ``random_state`` draw from it.
    backend_ : None
        There is no backend: the filter, smoother and EM are probspace's own.

    See Also
    --------
    probspace.GaussianHMM : The discrete-state counterpart.
    probspace.posteriors.GaussMarkovChain : The posterior over state paths.

    Notes
    -----
    ``to_arviz`` writes the joint path draws (``state``, dims ``time`` and
    ``latent_dim``) to ``latent_posterior``, data replicated from each path
    to ``posterior_predictive``, and to ``constant_data`` the smoothed means
    and standard deviations and ``log_predictive``: the pointwise
    log-likelihood of each time step *one step ahead*, :math:`\log p(y_t
    \mid y_{1:t-1})`, which sums to the log-likelihood (a point fit has no
    parameter draws, so no ``log_likelihood`` group for LOO). The gallery
    example :ref:`sphx_glr_auto_examples_ssm_plot_nile_local_level.py` fits the
    local level model to the Nile.

    **Bayesian fit** (``sampler="gibbs"``). Given the state path, the
    parameters are conditionally conjugate: ``[A B]`` and ``Q`` are a
    Bayesian multivariate regression of :math:`x_t` on :math:`[x_{t-1};
    u_t]`, ``[C D]`` and ``R`` one of :math:`y_t` on :math:`[x_t; u_t]`, and
    :math:`\mu_0, P_0` the mean and covariance of the first states. Each
    sweep draws the whole state path jointly (the simulation smoother, which
    conditions on the observed entries), then the missing observation
    entries given the path (so path and missing entries are one exact joint
    draw, and missing values need no approximation anywhere), then each
    coefficient block given its covariance (normal prior: Gaussian
    conditional, held entries in place) and each covariance given its
    coefficients (inverse-Wishart, or inverse-gamma per entry when
    diagonal). Arrays in ``fixed`` never move: the local level model holds
    ``A = C = 1`` and samples the two variances. The fitted ``_``
    attributes are then the posterior means of the draws (plug-in values for
    :meth:`forecast` and :meth:`forecast_distribution`); :meth:`posterior`
    is the equal-weight mixture over all draws of the exact Gaussian path
    posterior under each draw (a :class:`~probspace.posteriors.FiniteMixture`
    with ``method="mcmc"``: its mean and variance include the parameter
    uncertainty), ``log_likelihood`` the posterior predictive density
    :math:`\log \frac1S \sum_s p(y \mid \theta_s)`, ``sample`` generates
    under a draw picked at random, and ``to_arviz`` keeps the chains (R-hat,
    ESS) and writes the per-draw one-step-ahead log-likelihoods to
    ``log_likelihood`` (for LOO). With everything free, the model is only
    identified up to an invertible change of state coordinates, so the
    draws of ``A``, ``C`` and ``Q`` wander along it (their R-hat says so);
    hold what fixes the coordinates (as in the local level model) to read
    them.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import LinearGaussianSSM
    >>> rng = np.random.default_rng(0)
    >>> level = np.cumsum(rng.normal(scale=0.3, size=200))
    >>> y = (level + rng.normal(size=200))[:, None]
    >>> one = np.eye(1)
    >>> model = LinearGaussianSSM(1, transition_matrix=one, observation_matrix=one,
    ...                           fixed=["transition_matrix", "observation_matrix"], random_state=0).fit(y)
    >>> post = model.posterior(y)
    >>> post.mean.shape, post.sample(5).shape
    ((200, 1), (5, 200, 1))
    >>> bool(np.all(np.diff(model.history_) >= -1e-9))
    True
    >>> bayes = LinearGaussianSSM(1, transition_matrix=one, observation_matrix=one,
    ...                           fixed=["transition_matrix", "observation_matrix"], sampler="gibbs",
    ...                           n_chains=2, n_draws=100, n_warmup=50, random_state=0).fit(y)
    >>> bayes.draws_["transition_covariance"].shape
    (2, 100, 1, 1)
    """

    _latent_name = "state"
    _tags = ModelTags(sequential=True, allow_nan=True, allow_nan_in_fit=True, min_samples=2, conditional=True)
    _parameter_constraints = {
        "n_components": [Interval("int", 1, None)],
        **{name: ["array-like", None] for name in _NAMES},
        "fixed": [_Names()],
        "max_iter": [Interval("int", 0, None)],
        "tol": [Interval("real", 0, None)],
        "min_covar": [Interval("real", 0, None)],
        "random_state": ["random_state"],
        "progress": ["boolean"],
        "sampler": [None, Options("gibbs")],
        "n_chains": [Interval("int", 1, None)],
        "n_draws": [Interval("int", 1, None)],
        "n_warmup": [Interval("int", 0, None)],
        "prior": [None, dict],
    }
    _conformance_params = {"n_components": 2, "max_iter": 30, "tol": 0.1}
    _conformance_alt_params = {"n_components": 1, "max_iter": 5, "tol": 1e-2}

    def __init__(self, n_components: int = 1, *, transition_matrix: Any = None, observation_matrix: Any = None,
                 transition_covariance: Any = None, observation_covariance: Any = None, initial_mean: Any = None,
                 initial_covariance: Any = None, control_matrix: Any = None, feedthrough_matrix: Any = None,
                 fixed: Any = None, max_iter: int = 100, tol: float = 1e-4, min_covar: float = 1e-9,
                 random_state: Any = None, progress: bool = False, sampler: str | None = None, n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None) -> None:
        self.n_components = n_components
        self.transition_matrix = transition_matrix
        self.observation_matrix = observation_matrix
        self.transition_covariance = transition_covariance
        self.observation_covariance = observation_covariance
        self.initial_mean = initial_mean
        self.initial_covariance = initial_covariance
        self.control_matrix = control_matrix
        self.feedthrough_matrix = feedthrough_matrix
        self.fixed = fixed
        self.max_iter = max_iter
        self.tol = tol
        self.min_covar = min_covar
        self.random_state = random_state
        self.progress = progress
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior

    def _model_tags(self) -> ModelTags:
        tags = super()._model_tags()
        if self.sampler is None:
            return tags
        return replace(tags, parameter_posterior=True, exact_posterior=False, exact_log_likelihood=False)

    def _conformance_alt(self, alt: dict[str, Any]) -> dict[str, Any]:
        """Keep the state dimension where parameters of that size are given."""
        given = any(getattr(self, name) is not None for name in _NAMES)
        return {k: v for k, v in alt.items() if not (given and k == "n_components")}

    def _conformance_condition(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        """Return inputs ``u_t`` (as many as a given control or feedthrough matrix has columns), else None."""
        given = next((np.asarray(m) for m in (self.control_matrix, self.feedthrough_matrix) if m is not None), None)
        return None if given is None else rng.normal(size=(n, given.shape[1]))

    @staticmethod
    def _conformance_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Two sequences (lengths 70 and 50) of a rotating two-dimensional state seen through three features."""
        A = 0.95 * np.array([[np.cos(0.3), -np.sin(0.3)], [np.sin(0.3), np.cos(0.3)]])
        C = np.array([[1.0, 0.0], [0.5, 1.0], [-1.0, 0.5]])
        lengths = np.array([70, 50])
        X = np.concatenate([_simulate(A, C, 0.3 * np.eye(2), 0.2 * np.eye(3), np.zeros(2), np.eye(2), n, rng)[0]
                            for n in lengths])
        return X, lengths

    # -- parameters ---------------------------------------------------------------------
    def _params(self) -> tuple[np.ndarray, ...]:
        """Return the six parameters the kernels take: A, C, Q, R, mu0, P0."""
        return tuple(getattr(self, name + "_") for name in _KERNEL)

    def _offsets(self, U: np.ndarray | None) -> dict[str, np.ndarray | None]:
        """Return the kernels' offsets ``B u_t`` and ``D u_t`` (None without inputs)."""
        if U is None or U.shape[1] == 0:
            return {"state_offset": None, "obs_offset": None}
        return {"state_offset": U @ self.control_matrix_.T, "obs_offset": U @ self.feedthrough_matrix_.T}

    def _get_parameters(self) -> dict[str, Any]:
        return {name + "_": getattr(self, name + "_") for name in _NAMES}

    def _held(self, d: int, p: int, m: int) -> dict[str, np.ndarray]:
        """Boolean masks of the entries EM holds, per parameter (all True: fixed, all False: free)."""
        owner = type(self).__name__
        fixed = self.fixed
        if fixed is None:
            fixed = {}
        elif isinstance(fixed, str):
            fixed = dict.fromkeys(_NAMES, True)
        elif not isinstance(fixed, dict):
            fixed = dict.fromkeys(fixed, True)
        held = {}
        for name, kind, shape in _PARAMS:
            spec = fixed.get(name, False)
            if isinstance(spec, (bool, np.bool_)):
                held[name] = np.full(shape(d, p, m), bool(spec))
                continue
            mask = np.asarray(spec)
            if mask.dtype != bool or mask.shape != shape(d, p, m):
                raise ValueError(f"{owner}: fixed[{name!r}] must be True, False or a boolean mask of shape "
                                 f"{shape(d, p, m)}; got {mask.dtype} of shape {mask.shape}.")
            if kind == "covariance" and mask.any() and not mask.all():
                off = ~np.eye(shape(d, p, m)[0], dtype=bool)
                if not np.array_equal(mask, off):
                    raise ValueError(f"{owner}: a mask in fixed[{name!r}] may hold the whole covariance or its "
                                     "off-diagonal (a diagonal covariance), not other patterns.")
            held[name] = mask
        return held

    def _given(self, d: int, p: int, m: int, held: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Validate the parameters given to the constructor; return them as float arrays."""
        owner = type(self).__name__
        given = {}
        for name, kind, shape in _PARAMS:
            value = getattr(self, name)
            if value is None:
                if held[name].any() and (m > 0 or name not in _NAMES[6:]):
                    raise ValueError(f"{owner}: {name!r} is in fixed but was not given; give its value.")
                continue
            if m == 0 and name in _NAMES[6:]:
                raise ValueError(f"{owner}: {name} multiplies the inputs, but fit received none; pass them as y "
                                 "(one row per frame) or leave it None.")
            arr = np.asarray(value, dtype=np.float64)
            if arr.shape != shape(d, p, m):
                raise ValueError(f"{owner}: {name} must have shape {shape(d, p, m)} (n_components={d}, "
                                 f"n_features={p}, n_inputs={m}); got shape {arr.shape}.")
            if not np.all(np.isfinite(arr)):
                raise ValueError(f"{owner}: {name} must be finite.")
            if kind == "covariance":
                if held[name].any() and not held[name].all() and np.any(arr[held[name]] != 0):
                    raise ValueError(f"{owner}: {name} must be diagonal where fixed holds its off-diagonal.")
                if not np.allclose(arr, arr.T, rtol=1e-10, atol=1e-12 * max(1.0, np.abs(arr).max())):
                    raise ValueError(f"{owner}: {name} must be symmetric.")
                if np.linalg.eigvalsh(arr)[0] <= 0.0:
                    raise ValueError(f"{owner}: {name} must be positive definite; its smallest eigenvalue is "
                                     f"{np.linalg.eigvalsh(arr)[0]:.3g}.")
            given[name] = arr
        return given

    def _start(self, X: np.ndarray, m: int, given: dict[str, np.ndarray], rng: np.random.Generator):
        """EM's starting values: the given parameters, the rest from the data's moments."""
        d, p = self.n_components, X.shape[1]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            col_mean = np.nan_to_num(np.nanmean(X, axis=0))
            var = np.nan_to_num(np.nanvar(X, axis=0))
        filled = np.where(np.isnan(X), col_mean, X)
        scale = _data_scale(var, filled)
        C = given.get("observation_matrix")
        if C is None:
            vals, vecs = np.linalg.eigh(filled.T @ filled / X.shape[0])
            vals, vecs = vals[::-1][:d], vecs[:, ::-1][:, :d]
            C = np.zeros((p, d))
            C[:, : vals.size] = vecs * np.sqrt(np.maximum(vals, 1e-3 * scale))
            if d > p:  # more states than features: small random loadings for the rest
                C[:, p:] = rng.normal(scale=0.1 * np.sqrt(scale), size=(p, d - p))
        state_scale = _state_scale(C, scale)
        start = {
            "transition_matrix": np.eye(d),
            "observation_matrix": C,
            "transition_covariance": 0.1 * state_scale * np.eye(d),
            "observation_covariance": np.diag(np.maximum(0.5 * var, 1e-3 * scale)),
            "initial_mean": np.linalg.lstsq(C, filled[0], rcond=None)[0],
            "initial_covariance": state_scale * np.eye(d),
            "control_matrix": np.zeros((d, m)),
            "feedthrough_matrix": np.zeros((p, m)),
        }
        start.update(given)
        return {name: start[name] for name in _NAMES}, scale

    def _check_condition(self, y: Any, n: int, *, fitting: bool, generating: bool = False) -> np.ndarray | None:
        """Validate the inputs ``u_t`` (passed as ``y``): a finite float array with one row per frame."""
        owner = type(self).__name__
        m = None if fitting else self.n_inputs_
        if y is None:
            if not m:
                return None
            raise ValueError(f"{owner} was fitted with {m} input(s) per frame: pass them as y, an array of shape "
                             f"({n}, {m}).")
        try:
            U = np.asarray(y, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"y (the inputs u_t of {owner}) must be a numeric array; got {type(y).__name__}.") from err
        U = U.reshape(-1, 1) if U.ndim == 1 else U
        if U.ndim != 2 or U.shape[0] != n:
            raise ValueError(f"y (the inputs u_t of {owner}) must have one row per frame, shape ({n}, n_inputs); "
                             f"got shape {np.shape(y)}.")
        if not np.all(np.isfinite(U)):
            raise ValueError(f"y (the inputs u_t of {owner}) must be finite (no NaN or inf).")
        if m is not None and U.shape[1] != m:
            raise ValueError(f"y has {U.shape[1]} input(s) per frame, but {owner} was fitted with {m}.")
        return U if U.shape[1] else None

    # -- fitting --------------------------------------------------------------------------
    def _fit(self, X: np.ndarray, lengths: np.ndarray, rng: np.random.Generator, cond: Any = None) -> None:
        name = type(self).__name__
        check_gaussian_scale(X, name)
        empty = np.flatnonzero(np.isnan(X).all(axis=0))
        if empty.size:
            raise ValueError(f"X passed to {name}.fit has no observed value in column(s) {empty.tolist()}.")
        U = cond
        m = 0 if U is None else U.shape[1]
        held = self._held(self.n_components, X.shape[1], m)
        given = self._given(self.n_components, X.shape[1], m, held)
        params, scale = self._start(X, m, given, rng)
        for name, mask in held.items():  # a held off-diagonal makes the starting covariance diagonal
            if _PARAMS[_NAMES.index(name)][1] == "covariance" and mask.any() and not mask.all():
                params[name] = np.diag(np.diag(params[name]))
        n_iter = self.max_iter if any(not mask.all() for mask in held.values() if mask.size) else 0
        trace: list[float] = []
        converged = n_iter == 0
        patterns = _missing_patterns(X)

        def smoother(params, smooth=True):
            off = {} if U is None else {"state_offset": U @ params["control_matrix"].T,
                                        "obs_offset": U @ params["feedthrough_matrix"].T}
            return _kalman.kalman_smoother(X, *(params[k] for k in _KERNEL), lengths, smooth=smooth, **off)

        with progress_bar(self.progress, n_iter, f"{name} EM", "iter") as bar:
            for _ in range(n_iter):
                ks = smoother(params)
                total = float(ks.log_likelihood.sum())
                trace.append(total)
                bar.set_postfix(loglik_per_frame=f"{total / X.shape[0]:.4f}")
                bar.update(1)
                if len(trace) > 1 and trace[-1] - trace[-2] < self.tol:
                    converged = True
                    break
                params = _m_step(X, U, lengths, ks, params, patterns, held, scale, self.min_covar)
        if not trace or not converged:
            trace.append(float(smoother(params, smooth=False).log_likelihood.sum()))
        self.draws_ = self.sample_stats_ = self.prior_ = None
        if self.sampler == "gibbs":
            if all(mask.all() for mask in held.values()):
                raise ValueError(f"{type(self).__name__}: sampler='gibbs' has nothing to sample, every parameter "
                                 "is held by fixed; leave sampler=None to smooth under known parameters.")
            C0 = params["observation_matrix"]
            prior = _ssm_bayes.resolve_prior(self.prior, X, np.zeros((X.shape[0], m)) if U is None else U, C0, scale,
                                             _state_scale(C0, scale), type(self).__name__)
            self.draws_, self.sample_stats_ = _ssm_bayes.run(
                X, U, lengths, params, held, prior, patterns, n_chains=self.n_chains, n_draws=self.n_draws,
                n_warmup=self.n_warmup, rng=rng, progress=self.progress, owner=type(self).__name__)
            self.prior_ = prior
            params = {**params, **{k: v.mean(axis=(0, 1)) for k, v in self.draws_.items()}}
        for pname, value in params.items():
            setattr(self, pname + "_", value)
        self.n_inputs_ = m
        self.backend_ = None
        self.n_iter_ = len(trace) - 1  # M-steps taken; history_ ends with the fitted parameters' value
        self.converged_ = bool(converged)
        self.history_ = np.asarray(trace) / X.shape[0]
        if not converged and self.sampler is None:  # with a sampler, EM only starts the chains
            warn_unconverged(self, self.max_iter, f"the last iteration raised the log-likelihood by "
                                                  f"{trace[-1] - trace[-2]:.3g} (tol={self.tol:g})")

    # -- parameter draws (sampler="gibbs") -------------------------------------------------
    def _n_total(self) -> int:
        """Return the number of parameter draws, all chains together (0 for a point fit)."""
        draws = getattr(self, "draws_", None)
        if not draws:
            return 0 if draws is None else 1
        first = next(iter(draws.values()))
        return first.shape[0] * first.shape[1]

    def _draw(self, s: int, params: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """All eight parameters at flat draw ``s`` of ``params`` (default: ``draws_``); held arrays as fitted."""
        if params is None:
            params = {k: v.reshape((-1,) + v.shape[2:]) for k, v in (self.draws_ or {}).items()}
        return {name: (params[name][s] if name in params else getattr(self, name + "_")) for name in _NAMES}

    def _kernel_args(self, p: dict[str, np.ndarray], cond: Any) -> tuple[tuple[np.ndarray, ...], dict[str, Any]]:
        """Return the kernels' six parameters and the offsets of the inputs under the parameter set ``p``."""
        off = ({"state_offset": None, "obs_offset": None} if cond is None or cond.shape[1] == 0 else
               {"state_offset": cond @ p["control_matrix"].T, "obs_offset": cond @ p["feedthrough_matrix"].T})
        return tuple(p[name] for name in _KERNEL), off

    def _per_draw(self, X, lengths, cond, field: str, params=None) -> np.ndarray:
        """``field`` of the Kalman filter (``log_likelihood`` or ``log_predictive``) under every draw, stacked."""
        n = self._n_total() if params is None else next(iter(params.values()), np.zeros(1)).shape[0]
        out = []
        for s in range(n):
            args, off = self._kernel_args(self._draw(s, params), cond)
            out.append(getattr(_kalman.kalman_smoother(X, *args, lengths, smooth=False, **off), field))
        return np.array(out)

    # -- the model --------------------------------------------------------------------------
    def _posterior(self, X: np.ndarray, lengths: np.ndarray, cond: Any = None):
        if self.draws_ is None:
            return GaussMarkovChain(*self._params(), X, lengths, **self._offsets(cond))

        def component(s: int) -> GaussMarkovChain:
            args, off = self._kernel_args(self._draw(s), cond)
            return GaussMarkovChain(*args, X, lengths, **off, method="mcmc")

        return FiniteMixture(component, self._n_total())

    def _log_likelihood(self, X: np.ndarray, lengths: np.ndarray, cond: Any = None) -> np.ndarray:
        if self.draws_ is not None:  # the posterior predictive density: log mean_s p(y | theta_s)
            per = self._per_draw(X, lengths, cond, "log_likelihood")
            return logsumexp(per, axis=0) - np.log(per.shape[0])
        return _kalman.kalman_smoother(X, *self._params(), lengths, smooth=False,
                                       **self._offsets(cond)).log_likelihood

    def _sample(self, n_samples: int, rng: np.random.Generator, cond: Any = None) -> tuple[np.ndarray, np.ndarray]:
        if self.draws_ is not None:  # one parameter draw picked at random, then the model runs forward
            args, off = self._kernel_args(self._draw(int(rng.integers(0, self._n_total()))), cond)
            return _simulate(*args, n_samples, rng, **off)
        return _simulate(*self._params(), n_samples, rng, **self._offsets(cond))

    def _sample_parameters(self, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        idx = rng.integers(0, self._n_total(), size=n_samples)
        return {k: v.reshape((-1,) + v.shape[2:])[idx] for k, v in self.draws_.items()}

    def forecast(self, X: Any, n_steps: int, n_samples: int = 100, *, y: Any = None, y_future: Any = None,
                 lengths: Any = None, random_state: Any = None) -> tuple[np.ndarray, np.ndarray]:
        r"""Sample continuations of the last sequence in ``X``: future states and observations.

        The state at the last frame is drawn from its filtered distribution
        :math:`p(x_T \mid y_{1:T})`, then the model runs forward, so the
        spread of the draws is the forecast uncertainty (given the fitted
        parameters). Without inputs, the exact forecast mean of step ``h``
        is :math:`C A^h m_{T|T}`.

        Parameters
        ----------
        {forecast_prefix}
        n_samples : int, default=100
            Number of independent continuations.
        {forecast_inputs}
        random_state : None, int or numpy.random.Generator, optional
            Seed for this call only.

        Returns
        -------
        X_future : ndarray of shape (n_samples, n_steps, n_features)
            Forecast observations.
        Z_future : ndarray of shape (n_samples, n_steps, n_components)
            The states behind them.
        """
        n_steps = check_n_samples(n_steps, name="n_steps")
        n_samples = check_n_samples(n_samples)
        X, lengths = self._check_input(X, lengths)
        U = self._check_condition(y, X.shape[0], fitting=False)
        future = self._offsets(self._check_condition(y_future, n_steps, fitting=False))
        rng = self._generator(random_state)
        ks = _kalman.kalman_smoother(X, *self._params(), lengths, smooth=False, **self._offsets(U))
        A, C, Q, R = self._params()[:4]
        d, p = A.shape[0], C.shape[0]
        bx = np.zeros((n_steps, d)) if future["state_offset"] is None else future["state_offset"]
        by = np.zeros((n_steps, p)) if future["obs_offset"] is None else future["obs_offset"]
        x = rng.multivariate_normal(ks.filtered_mean[-1], ks.filtered_cov[-1], size=n_samples, method="cholesky")
        Z = np.empty((n_samples, n_steps, d))
        for h in range(n_steps):
            x = x @ A.T + bx[h] + rng.multivariate_normal(np.zeros(d), Q, size=n_samples, method="cholesky")
            Z[:, h] = x
        noise = rng.multivariate_normal(np.zeros(p), R, size=(n_samples, n_steps), method="cholesky")
        return Z @ C.T + by + noise, Z

    def forecast_distribution(self, X: Any, n_steps: int, *, y: Any = None, y_future: Any = None,
                              lengths: Any = None) -> MultivariateNormal:
        r"""Return the exact predictive distribution of each of the next ``n_steps`` observations.

        From the filtered state at the last frame, :math:`\mathcal{N}(m, P)`,
        each step applies :math:`m \leftarrow A m + B u`, :math:`P \leftarrow
        A P A' + Q`; the observation is :math:`\mathcal{N}(C m + D u, C P C' +
        R)`. These are the marginals of :meth:`forecast`'s draws (which are
        joint across steps).

        Parameters
        ----------
        {forecast_prefix}
        {forecast_inputs}

        Returns
        -------
        MultivariateNormal
            Batch ``(n_steps,)``, event ``(n_features,)``: ``mean`` and ``covariance_matrix`` per step.
        """
        n_steps = check_n_samples(n_steps, name="n_steps")
        X, lengths = self._check_input(X, lengths)
        U = self._check_condition(y, X.shape[0], fitting=False)
        future = self._offsets(self._check_condition(y_future, n_steps, fitting=False))
        ks = _kalman.kalman_smoother(X, *self._params(), lengths, smooth=False, **self._offsets(U))
        A, C, Q, R = self._params()[:4]
        m, P = ks.filtered_mean[-1], ks.filtered_cov[-1]
        loc, cov = np.empty((n_steps, C.shape[0])), np.empty((n_steps, C.shape[0], C.shape[0]))
        for h in range(n_steps):
            m = A @ m + (0.0 if future["state_offset"] is None else future["state_offset"][h])
            P = A @ P @ A.T + Q
            loc[h] = C @ m + (0.0 if future["obs_offset"] is None else future["obs_offset"][h])
            cov[h] = C @ P @ C.T + R
        cov = 0.5 * (cov + np.swapaxes(cov, 1, 2))
        return MultivariateNormal._trusted(loc, cov, np.linalg.cholesky(cov))

    # -- ArviZ hooks ----------------------------------------------------------------------
    def _arviz_dims(self) -> dict[str, tuple[str, ...]]:
        return {"state": ("time", "latent_dim"), "x": ("time", "feature"),
                "smoothed_mean": ("time", "latent_dim"), "smoothed_sd": ("time", "latent_dim"),
                "log_predictive": ("time",)}

    def _pointwise_log_likelihood(self, X, lengths, params, cond=None):
        # One-step-ahead terms log p(y_t | y_1..t-1): they sum to each sequence's log-likelihood.
        if params is not None and self.draws_ is not None:
            return self._per_draw(X, lengths, cond, "log_predictive", params)
        return _kalman.kalman_smoother(X, *self._params(), lengths, smooth=False,
                                       **self._offsets(cond)).log_predictive

    def _posterior_predictive(self, X, latents, params, rng, cond=None):
        if params is not None and self.draws_ is not None:  # draw s emits from path s under parameter draw s
            out = []
            for s in range(latents.shape[0]):
                p = self._draw(s, params)
                by = 0.0 if cond is None else cond @ p["feedthrough_matrix"].T
                noise = rng.multivariate_normal(np.zeros(X.shape[1]), p["observation_covariance"],
                                                size=latents.shape[1], method="cholesky")
                out.append(latents[s] @ p["observation_matrix"].T + by + noise)
            return np.array(out)
        C, R = self._params()[1], self._params()[3]
        noise = rng.multivariate_normal(np.zeros(C.shape[0]), R, size=latents.shape[:2], method="cholesky")
        by = self._offsets(cond)["obs_offset"]
        return latents @ C.T + noise + (0.0 if by is None else by)

    def _arviz_constant_data(self, X, lengths, cond=None):
        post = self._posterior(X, lengths, cond)
        out = {"smoothed_mean": post.mean, "smoothed_sd": np.sqrt(post.variance)}
        if self.draws_ is None:  # MCMC fits: the per-draw terms are in the log_likelihood group
            out["log_predictive"] = post.log_predictive
        return out


LinearGaussianSSM.forecast.__doc__ = fill(LinearGaussianSSM.forecast.__doc__, **_FORECAST_DOCS)
LinearGaussianSSM.forecast_distribution.__doc__ = fill(LinearGaussianSSM.forecast_distribution.__doc__,
                                                       **_FORECAST_DOCS)


# -- helpers: simulation, starting scales, the M-step -----------------------------------------------
def _simulate(A, C, Q, R, m0, P0, n: int, rng: np.random.Generator, state_offset=None,
              obs_offset=None) -> tuple[np.ndarray, np.ndarray]:
    """One sequence of ``n`` frames from the model: ``(Y (n, p), X (n, d))``."""
    d, p = A.shape[0], C.shape[0]
    w = rng.multivariate_normal(np.zeros(d), Q, size=n, method="cholesky")
    if state_offset is not None:
        w = w + state_offset
    Z = np.empty((n, d))
    Z[0] = rng.multivariate_normal(m0, P0, method="cholesky")
    for t in range(1, n):
        Z[t] = A @ Z[t - 1] + w[t]
    Y = Z @ C.T + rng.multivariate_normal(np.zeros(p), R, size=n, method="cholesky")
    return (Y if obs_offset is None else Y + obs_offset), Z


def _data_scale(var: np.ndarray, filled: np.ndarray) -> float:
    """Return a positive variance scale of the data (its mean variance; its mean square, or 1, if constant)."""
    for value in (float(np.mean(var)), float(np.mean(filled**2)), 1.0):
        if np.isfinite(value) and value > 0:
            return value
    return 1.0


def _state_scale(C: np.ndarray, scale: float) -> float:
    """Return the data's variance in state units: ``scale`` divided by the mean squared loading."""
    loading = float(np.sum(C**2)) / C.shape[1]
    return scale / loading if loading > 0 else scale


def _floor(S: np.ndarray, floor: float) -> np.ndarray:
    """Symmetrise ``S`` and lift its eigenvalues to at least ``floor``."""
    S = 0.5 * (S + S.T)
    vals, vecs = np.linalg.eigh(S)
    if vals[0] >= floor:
        return S
    return (vecs * np.maximum(vals, floor)) @ vecs.T


def _missing_patterns(X: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(frames, missing mask)`` of every pattern of NaN entries that occurs (complete frames left out)."""
    miss = np.isnan(X)
    rows = np.flatnonzero(miss.any(axis=1))
    if rows.size == 0:
        return []
    pats, inverse = np.unique(miss[rows], axis=0, return_inverse=True)
    return [(rows[inverse.ravel() == i], pats[i]) for i in range(pats.shape[0])]


def _regress(Syz: np.ndarray, Szz: np.ndarray, W: np.ndarray, held: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Minimise ``tr(S^-1 E[(y - W z)(y - W z)'])`` over the entries of ``W`` not ``held``.

    With whole columns held, the free columns solve ``W_f Szz_ff = Syz_f -
    W_h Szz_hf``, whatever ``S``. With single entries held, the rows couple
    through ``S``: the free entries solve the normal equations
    ``(Szz kron S^-1) vec(W) = vec(S^-1 Syz)`` restricted to them, the held
    ones moved to the right-hand side (given the current ``S``: an ECM
    step, which still never lowers the likelihood).
    """
    W = W.copy()
    if held.all():
        return W
    if np.all(held == held[:1]):  # the same columns held in every row
        free = ~held[0]
        rhs = Syz[:, free] - W[:, ~free] @ Szz[np.ix_(~free, free)]
        W[:, free] = np.linalg.lstsq(Szz[np.ix_(free, free)], rhs.T, rcond=None)[0].T
        return W
    S_inv = np.linalg.inv(S)
    H = np.kron(Szz, S_inv)  # acts on vec(W), columns stacked (order "F")
    g = (S_inv @ Syz).ravel(order="F")
    h = held.ravel(order="F")
    w = W.ravel(order="F")
    w[~h] = np.linalg.lstsq(H[np.ix_(~h, ~h)], g[~h] - H[np.ix_(~h, h)] @ w[h], rcond=None)[0]
    return w.reshape(W.shape, order="F")


def _covariance(Syy: np.ndarray, Syz: np.ndarray, Szz: np.ndarray, W: np.ndarray, n: int, held: np.ndarray,
                old: np.ndarray, floor: float) -> np.ndarray:
    """Return the covariance update: the mean residual second moment (diagonal where its off-diagonal is held)."""
    if held.all():
        return old
    S = (Syy - W @ Syz.T - Syz @ W.T + W @ Szz @ W.T) / n
    if held.any():  # a diagonal covariance
        return np.diag(np.maximum(np.diag(S), floor))
    return _floor(S, floor)


def _m_step(X, U, lengths, ks, params, patterns, held, scale, min_covar):
    """One exact M-step: closed-form updates of the free parameters given the smoother's moments.

    The expected complete-data log-likelihood splits into three blocks:
    ``(A, B, Q)`` (regress ``x_t`` on ``z = [x_t-1; u_t]``), ``(C, D, R)``
    (regress ``y_t`` on ``[x_t; u_t]``) and ``(mu0, P0)``. Within each block
    the free coefficients are solved with the held ones in place
    (:func:`_regress`), and the covariance update uses the coefficients in
    force, so fixing any subset still maximises over the rest. Missing
    entries of ``y`` are latent too: given ``x_t`` and the observed entries
    they are Gaussian, which adds their conditional moments to the
    sufficient statistics.
    """
    new = dict(params)
    A, C = params["transition_matrix"], params["observation_matrix"]
    d = A.shape[0]
    T = X.shape[0]
    U = np.zeros((T, 0)) if U is None else U
    mean, P, lag = ks.smoothed_mean, ks.smoothed_cov, ks.lag_cov
    Exx = P + mean[:, :, None] * mean[:, None, :]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    last = np.zeros(T, dtype=bool)
    last[bounds[1:] - 1] = True
    state_floor = min_covar * _state_scale(C, scale)
    inner = np.flatnonzero(~last)
    mask = np.hstack([held["transition_matrix"], held["control_matrix"]])
    if inner.size and not (mask.all() and held["transition_covariance"].all()):
        after, u = inner + 1, U[inner + 1]  # x_t+1 regressed on [x_t; u_t+1]
        Szz = np.block([[Exx[inner].sum(axis=0), mean[inner].T @ u], [u.T @ mean[inner], u.T @ u]])
        Syz = np.hstack([(lag[inner] + mean[after, :, None] * mean[inner, None, :]).sum(axis=0), mean[after].T @ u])
        W = _regress(Syz, Szz, np.hstack([A, params["control_matrix"]]), mask, params["transition_covariance"])
        new["transition_matrix"], new["control_matrix"] = W[:, :d], W[:, d:]
        new["transition_covariance"] = _covariance(Exx[after].sum(axis=0), Syz, Szz, W, inner.size,
                                                   held["transition_covariance"], params["transition_covariance"],
                                                   state_floor)
    mask = np.hstack([held["observation_matrix"], held["feedthrough_matrix"]])
    if not (mask.all() and held["observation_covariance"].all()):
        Ey, Syx_extra, Syy_extra = _conditional_observations(X, U, mean, P, C, params["feedthrough_matrix"],
                                                              params["observation_covariance"], patterns)
        Szz = np.block([[Exx.sum(axis=0), mean.T @ U], [U.T @ mean, U.T @ U]])
        Syz = np.hstack([Ey.T @ mean + Syx_extra, Ey.T @ U])
        W = _regress(Syz, Szz, np.hstack([C, params["feedthrough_matrix"]]), mask, params["observation_covariance"])
        new["observation_matrix"], new["feedthrough_matrix"] = W[:, :d], W[:, d:]
        new["observation_covariance"] = _covariance(Ey.T @ Ey + Syy_extra, Syz, Szz, W, T,
                                                    held["observation_covariance"], params["observation_covariance"],
                                                    min_covar * scale)
    first = bounds[:-1]
    m1, P1 = mean[first], P[first]  # the first states of the sequences
    n_seq = first.size
    # mu0: generalised least squares of the first states' means, the held entries in place
    mu0 = _regress(m1.sum(axis=0)[:, None], np.array([[float(n_seq)]]), params["initial_mean"][:, None],
                   held["initial_mean"][:, None], params["initial_covariance"])[:, 0]
    new["initial_mean"] = mu0
    diff = m1 - mu0
    second = (P1 + diff[:, :, None] * diff[:, None, :]).sum(axis=0)
    new["initial_covariance"] = _covariance(second, np.zeros((d, 1)), np.zeros((1, 1)), np.zeros((d, 1)), n_seq,
                                            held["initial_covariance"], params["initial_covariance"], state_floor)
    return new


def _conditional_observations(X, U, mean, P, C, D, R, patterns):
    """Posterior means of the observations (missing entries filled in) and the extra second moments they carry.

    Given ``x_t`` and the observed entries ``o``, the missing entries ``u``
    are ``N(G x_t + h_t, V)`` with ``K = R_uo R_oo^-1``, ``G = C_u - K C_o``,
    ``h_t = K y_o + (D_u - K D_o) u_t`` and ``V = R_uu - K R_ou``. So
    ``E[y x'] = E[y] E[x]' + (G P_t on the rows u)`` and ``E[y y'] =
    E[y] E[y]' + (G P_t G' + V on the block u, u)``. Returns ``(E[y] (T, p),
    the first extra term summed (p, d), the second summed (p, p))``.
    """
    Ey = X.copy()
    p, d = C.shape
    Syx = np.zeros((p, d))
    Syy = np.zeros((p, p))
    for rows, miss in patterns:
        o, u = np.flatnonzero(~miss), np.flatnonzero(miss)
        K = np.linalg.solve(R[np.ix_(o, o)], R[np.ix_(o, u)]).T if o.size else np.zeros((u.size, 0))
        G = C[u] - K @ C[o]
        V = R[np.ix_(u, u)] - K @ R[np.ix_(o, u)]
        h = X[np.ix_(rows, o)] @ K.T + U[rows] @ (D[u] - K @ D[o]).T
        Ey[np.ix_(rows, u)] = mean[rows] @ G.T + h
        Psum = P[rows].sum(axis=0)
        Syx[u] += G @ Psum
        Syy[np.ix_(u, u)] += G @ Psum @ G.T + rows.size * V
    return Ey, Syx, Syy
