"""PoissonHMM: Markov chain + Poisson emissions (:class:`~probspace.emissions.PoissonEmission`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _bayes
from ..._docstrings import fill
from ..._validation import Interval
from ...emissions import PoissonEmission
from . import _adapter
from ._base import _HMM, COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS, check_integer_values, two_state_data

__all__ = ["PoissonHMM"]


class PoissonHMM(_HMM):
    r"""Hidden Markov model with independent Poisson counts per feature.

    The model: :math:`z_t` a Markov chain and :math:`x_{td} \mid z_t = k \sim
    \mathrm{Poisson}(\lambda_{kd})`. Fitted by :class:`hmmlearn.hmm.PoissonHMM`
    (EM; hmmlearn has no variational Poisson HMM, so ``bayesian=True`` is an
    error). The posterior over state paths is an exact
    :class:`~probspace.posteriors.MarkovChain`; NaN entries are marginalised.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    bayesian : bool, default=False
        Must be False (no variational backend exists).
    startprob_prior, transmat_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
    lambdas_prior, lambdas_weight : float, default=0.0
        Gamma prior on the rates (hmmlearn's parametrisation).
    {held_params}
    {mcmc_params}
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    implementation : {"log", "scaling"}, default="log"
        hmmlearn's forward-backward during the fit.
    {random_state}
    verbose : bool, default=False
        Print hmmlearn's per-iteration report.
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transmat_ : ndarray of shape (n_components, n_components)
        Transition matrix.
    lambdas_ : ndarray of shape (n_components, n_features)
        Poisson rates of each state.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    hmmlearn.hmm.PoissonHMM : The EM backend.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import PoissonHMM
    >>> X = np.array([[1, 0, 2, 1, 9, 12, 8, 11, 1, 0]]).T
    >>> model = PoissonHMM(2, random_state=0).fit(X)
    >>> model.posterior(X).map().shape
    (10,)
    """

    _non_negative = True
    _emission_names = ("lambdas_",)
    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "lambdas_prior": [Interval("real", 0, None), "array-like"],
        "lambdas_weight": [Interval("real", 0, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
        **CONSTRAINT_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_alt_params = {"startprob_prior": 2.0, "implementation": "scaling"}

    def __init__(self, n_components: int = 1, *, bayesian: bool = False, startprob_prior: Any = 1.0,
                 transmat_prior: Any = 1.0, lambdas_prior: Any = 0.0, lambdas_weight: Any = 0.0,
                 fixed: dict | None = None, topology: str | None = None,
                 bandwidth: int | None = None, sampler: str | None = None, n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None, max_iter: int = 100,
                 tol: float = 1e-2, implementation: str = "log", random_state: Any = None, verbose: bool = False,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.bayesian = bayesian
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
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
        self.implementation = implementation
        self.random_state = random_state
        self.verbose = verbose
        self.progress = progress

    @staticmethod
    def _conformance_data(rng):
        rates = np.array([[1.0, 4.0], [8.0, 0.5]])
        return two_state_data(rng, lambda z, r: r.poisson(rates[z]).astype(float))

    def _check_data(self, X):
        check_integer_values(self, X, "counts")

    def _backend_class(self):
        if self.bayesian:
            raise ValueError("PoissonHMM has no Bayesian variant: hmmlearn offers no variational Poisson HMM. "
                             "Use bayesian=False.")
        return _adapter.GuardedPoissonHMM, {"startprob_prior": self.startprob_prior,
                                            "transmat_prior": self.transmat_prior,
                                            "lambdas_prior": self.lambdas_prior, "lambdas_weight": self.lambdas_weight}

    lambdas_ = property(lambda self: self.backend_.lambdas_, doc="Poisson rates (K, D).")

    def _init_backend(self, backend, X):
        # hmmlearn draws starting rates from a Gamma matched to the mean and variance of X, which is
        # undefined for constant counts (variance 0): start every state at the mean count instead.
        if X.var() == 0:
            backend.lambdas_ = np.full((self.n_components, X.shape[1]), X.mean())
            backend.init_params = backend.init_params.replace("l", "")

    def _emission(self, X=None):
        return PoissonEmission(self.lambdas_prior, self.lambdas_weight)

    def _emission_point(self):
        return {"lambdas": self.lambdas_}


PoissonHMM.__doc__ = fill(PoissonHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                          mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
