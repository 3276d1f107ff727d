"""HMM: a Markov chain over any registered emission, fitted by probspace's own EM.

The named families (``GaussianHMM``...) sit on hmmlearn; :class:`HMM` composes
initial probabilities, a transition matrix and the emission registered under
``emission`` (see :class:`probspace.emissions.Emission`), so a new emission
file is all a new HMM takes: its class registers itself by its ``name`` and
supplies ``init`` and ``m_step`` for EM, and the engines do the rest (exact
posterior, sampling, forecasts, missing values, Gibbs/NUTS where the emission
has them, saving).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _bayes
from ..._docstrings import fill
from ..._validation import Interval
from ...emissions import Emission, registered_emission
from ...emissions._base import _REGISTRY
from ._base import _HMM, COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS, two_state_data
from ._native import NativeHMM

__all__ = ["HMM"]


class _ConformanceData:
    """``_conformance_data(rng)`` from the emission: of the instance's, or (on the class) ``_conformance_emission``."""

    def __get__(self, instance: Any, owner: type) -> Any:
        name = owner._conformance_emission if instance is None else instance.emission
        return lambda rng: two_state_data(rng, registered_emission(name).conformance_data)


class HMM(_HMM):
    r"""Hidden Markov model over any registered emission, fitted by probspace's own EM.

    The model: :math:`z_t` a Markov chain (initial probabilities ``startprob_``,
    transition matrix ``transmat_``) and :math:`x_t \mid z_t = k` drawn from
    the emission registered under ``emission`` with the parameters of state
    :math:`k`. EM runs forward-backward in its E-step and the emission's
    closed-form M-step, from the emission's own start (``init``). The
    posterior over state paths is an exact :class:`~probspace.posteriors.MarkovChain`;
    NaN entries are marginalised (in ``fit`` where the emission's M-step
    allows them). ``sampler="gibbs"`` or ``"nuts"`` fits by MCMC where the
    emission has a conjugate prior or NUTS sites.

    The fitted emission arrays are attributes named after the emission's
    parameters with a trailing underscore (``means_`` and ``covars_`` for
    ``"gaussian"``, ``probs_`` for ``"bernoulli"``...).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    emission : str, default="gaussian"
        Name of a registered emission (:func:`probspace.emissions.emission_names`):
        ``"gaussian"``, ``"categorical"``, ``"poisson"``, ``"gmm"``,
        ``"bernoulli"``, ``"studentt"``, ``"product"`` (see
        :ref:`emissions-guide`), or one defined by the user.
    emission_params : dict, optional
        The emission's settings, its constructor's keyword arguments (for
        example ``{"covariance_type": "full"}`` or ``{"n_symbols": 5}``).
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet priors of the EM (MAP) fit (1: maximum likelihood).
    {held_params}
    {mcmc_params}
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    {random_state}
    verbose : bool, default=False
        Unused (kept for symmetry with the other HMMs).
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition matrix.
    emission_settings_ : dict
        The emission's settings used by the fit, those inferred from the data
        (such as ``n_symbols``) filled in.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    GaussianHMM, CategoricalHMM, PoissonHMM, GMMHMM : Families fitted by hmmlearn.
    probspace.emissions.Emission : The protocol a new emission implements.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import HMM
    >>> X = np.array([[0.1], [0.2], [5.1], [4.9], [0.0], [5.2]])
    >>> model = HMM(2, emission="gaussian", random_state=0).fit(X)
    >>> model.posterior(X).marginals.shape
    (6, 2)
    """

    _parameter_constraints = {
        **{k: v for k, v in COMMON_CONSTRAINTS.items() if k not in ("bayesian", "implementation")},
        "emission": [str],
        "emission_params": [None, dict],
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
        **CONSTRAINT_CONSTRAINTS,
    }
    _supports_mcmc = True
    _native_backend = True
    #: No variational variant: EM or MCMC.
    bayesian = False
    _conformance_emission = "gaussian"
    _conformance_data = _ConformanceData()
    _conformance_alt_params = {"startprob_prior": 2.0, "transmat_prior": 1.5}

    def __init__(self, n_components: int = 1, *, emission: str = "gaussian", emission_params: dict | None = None,
                 startprob_prior: Any = 1.0, transmat_prior: Any = 1.0, fixed: dict | None = None,
                 topology: str | None = None, bandwidth: int | None = None, sampler: str | None = None,
                 n_chains: int = 4, n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None,
                 max_iter: int = 100, tol: float = 1e-2, random_state: Any = None, verbose: bool = False,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.emission = emission
        self.emission_params = emission_params
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.fixed = fixed
        self.topology = topology
        self.bandwidth = bandwidth
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    # -- the emission ---------------------------------------------------------------------
    def _emission_class(self) -> type[Emission]:
        return _REGISTRY.get(self.emission, Emission) if isinstance(self.emission, str) else Emission

    _non_negative = property(lambda self: self._emission_class().non_negative)
    _min_samples = property(lambda self: self._emission_class().min_samples)

    def _owner(self) -> str:
        return f"HMM(emission={self.emission!r})"

    def _emission(self, X: np.ndarray | None = None) -> Emission:
        if X is None:  # the fitted emission
            return registered_emission(self.emission)(**self.emission_settings_)
        cls = registered_emission(self.emission)
        try:
            emission = cls(**(self.emission_params or {}))
        except TypeError as err:
            raise ValueError(f"emission_params={self.emission_params!r} do not fit {cls.__name__}: {err}.") from None
        return emission.for_data(X)

    @property
    def _emission_names(self) -> tuple[str, ...]:
        return tuple(f"{name}_" for name in self._emission().names)

    def _emission_point(self) -> dict[str, np.ndarray]:
        return {name: getattr(self.backend_, f"{name}_") for name in self._emission().names}

    def __getattr__(self, name: str) -> Any:
        # The fitted emission arrays (``means_``, ``probs_``...) live on the backend, named by the emission.
        backend = self.__dict__.get("backend_")
        if name.endswith("_") and not name.startswith("_") and backend is not None and name in vars(backend):
            return getattr(backend, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # -- fitting ------------------------------------------------------------------------------
    def _check_X(self, X, lengths, *, reset):
        X, lengths = super(_HMM, self)._check_X(X, lengths, reset=reset)
        (self._emission(X) if reset else self._emission()).check_data(X, self._owner())
        return X, lengths

    def _check_frame(self, X):
        self._emission().check_data(X, self._owner())

    def _fit(self, X, lengths, rng):
        self.emission_settings_ = self._emission(X).settings()
        super()._fit(X, lengths, rng)

    def _backend_class(self):
        return NativeHMM, {"startprob_prior": self.startprob_prior, "transmat_prior": self.transmat_prior}

    def _fit_backend(self, X, lengths, rng, n_iter):
        cls, kwargs = self._backend_class()
        backend = cls(n_components=self.n_components, **kwargs)
        K = self.n_components
        backend.startprob_ = np.full(K, 1.0 / K)
        backend.transmat_ = np.full((K, K), 1.0 / K)
        for name, value in self._emission().init(X, K, rng).items():
            setattr(backend, f"{name}_", np.asarray(value, dtype=np.float64))
        self.backend_ = backend
        self._em_loop(X, lengths, n_iter, "EM")

    # -- ArviZ --------------------------------------------------------------------------------
    def _arviz_dims(self):
        dims = super()._arviz_dims()
        for name in ("means", "covars", "lambdas", "emissionprob"):
            dims.pop(name)
        return {**dims, **self._emission().dims()}


HMM.__doc__ = fill(HMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC, mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
