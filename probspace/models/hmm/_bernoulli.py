"""BernoulliHMM: Markov chain + Bernoulli emissions (:class:`~probspace.emissions.BernoulliEmission`)."""

from __future__ import annotations

from typing import Any

from ... import _bayes
from ..._docstrings import fill
from ..._validation import Interval
from ...emissions import BernoulliEmission
from ._base import _HMM, COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS, two_state_data
from ._generic import HMM
from ._native import NativeHMM

__all__ = ["BernoulliHMM"]


class BernoulliHMM(_HMM):
    r"""Hidden Markov model whose states emit vectors of independent binary features.

    The model: :math:`z_t` a Markov chain and :math:`x_{td} \mid z_t = k \sim
    \mathrm{Bernoulli}(p_{kd})`. Fitted by probspace's own EM (hmmlearn has no
    Bernoulli HMM): forward-backward E-step and closed-form M-steps, started
    from random rows of ``X``. The posterior over state paths is an exact
    :class:`~probspace.posteriors.MarkovChain`; NaN entries are marginalised,
    in ``fit`` too. With ``sampler="gibbs"`` the fit is fully Bayesian
    (Beta priors on the probabilities, ``prior={"alpha": ..., "beta": ...}``).

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    bayesian : bool, default=False
        Must be False (no variational variant).
    startprob_prior, transmat_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
    probs_prior : float, default=1.0
        Symmetric Beta prior of the EM fit of the probabilities (1: maximum
        likelihood); EM keeps them within ``[1e-10, 1 - 1e-10]``.
    fixed : dict, optional
        Parameters held during fitting (EM and MCMC), by name without the
        trailing underscore (``"startprob"``, ``"transmat"``, the emission's
        arrays): an array of the parameter's shape whose finite entries are
        held at that value and whose NaN entries are estimated. A held 0 is a
        structural zero and stays exactly 0. See :ref:`hmm-variants`.
    topology : {"ergodic", "left-to-right", "banded"}, optional
        Allowed transitions: ``"left-to-right"`` (``i -> j`` for ``j >= i``,
        at most ``bandwidth`` states ahead; starts in state 0) or
        ``"banded"`` (``|i - j| <= bandwidth``); forbidden transitions are
        structural zeros.
    bandwidth : int, optional
        Width of the band (``"banded"``: default 1; ``"left-to-right"``: no limit).
    {mcmc_params}
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the total log-likelihood gain.
    implementation : {"log", "scaling"}, default="log"
        Accepted for symmetry with the other HMMs (probspace's EM works in log space).
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
    probs_ : ndarray of shape (n_components, n_features)
        Probability of a 1 for each state and feature.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    CategoricalHMM : One symbol per frame.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import BernoulliHMM
    >>> X = np.array([[1, 1, 0], [1, 1, 0], [0, 0, 1], [0, 1, 1], [1, 1, 0], [0, 0, 1]])
    >>> model = BernoulliHMM(2, random_state=0).fit(X)
    >>> model.posterior(X).marginals.shape
    (6, 2)
    """

    _non_negative = True
    _emission_names = ("probs_",)
    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "probs_prior": [Interval("real", 1, None)],
        **_bayes.MCMC_CONSTRAINTS,
        **CONSTRAINT_CONSTRAINTS,
    }
    _supports_mcmc = True
    _native_backend = True
    _conformance_alt_params = {"startprob_prior": 2.0, "probs_prior": 1.5}

    def __init__(self, n_components: int = 1, *, bayesian: bool = False, startprob_prior: Any = 1.0,
                 transmat_prior: Any = 1.0, probs_prior: float = 1.0, fixed: dict | None = None,
                 topology: str | None = None, bandwidth: int | None = None, sampler: str | None = None,
                 n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None, max_iter: int = 100,
                 tol: float = 1e-2, implementation: str = "log", random_state: Any = None, verbose: bool = False,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.bayesian = bayesian
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.probs_prior = probs_prior
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
        return two_state_data(rng, BernoulliEmission.conformance_data)

    def _check_data(self, X):
        self._emission().check_data(X, "BernoulliHMM")

    def _backend_class(self):
        if self.bayesian:
            raise ValueError("BernoulliHMM has no variational variant. Use bayesian=False (or sampler='gibbs').")
        return NativeHMM, {"startprob_prior": self.startprob_prior, "transmat_prior": self.transmat_prior}

    _fit_backend = HMM._fit_backend  # start from the emission's init, then probspace's EM

    probs_ = property(lambda self: self.backend_.probs_, doc="Probabilities of a 1 (K, D).")

    def _emission(self, X=None):
        return BernoulliEmission(self.probs_prior)

    def _emission_point(self):
        return {"probs": self.probs_}


BernoulliHMM.__doc__ = fill(BernoulliHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                            mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
