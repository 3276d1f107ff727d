"""CategoricalHMM: Markov chain + categorical emissions (:class:`~probspace.emissions.CategoricalEmission`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ... import _bayes
from ..._docstrings import fill
from ..._validation import Interval
from ...emissions import CategoricalEmission
from . import _adapter
from ._base import _HMM, COMMON_CONSTRAINTS, CONSTRAINT_CONSTRAINTS, check_integer_values, two_state_data

__all__ = ["CategoricalHMM"]

#: Largest emission table (n_components x n_symbols) a CategoricalHMM allocates (800 MB of float64).
_MAX_EMISSION_ENTRIES = 10**8



class CategoricalHMM(_HMM):
    r"""Hidden Markov model with categorical emissions (one symbol per frame).

    The model: :math:`z_t` a Markov chain as in :class:`GaussianHMM`, and
    :math:`x_t \mid z_t = k \sim \mathrm{Categorical}(B_k)` over ``n_symbols``
    symbols. Fitted by :class:`hmmlearn.hmm.CategoricalHMM` (EM), or by
    :class:`hmmlearn.vhmm.VariationalCategoricalHMM` when ``bayesian=True``.
    The posterior over state paths is an exact
    :class:`~probspace.posteriors.MarkovChain`. ``X`` has one column of
    integer symbols; NaN marks a missing frame.

    Parameters
    ----------
    n_components : int, default=1
        Number of hidden states.
    n_symbols : int, optional
        Size of the alphabet; inferred from the data (largest symbol + 1) when ``None``.
    bayesian : bool, default=False
        Fit by variational Bayes (with hmmlearn's default priors); ``sample_parameters`` then draws from the
        variational posterior.
    startprob_prior, transmat_prior, emissionprob_prior : float, default=1.0
        Dirichlet priors of the EM (MAP) fit.
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
    emissionprob_ : ndarray of shape (n_components, n_symbols)
        Symbol probabilities of each state.
    {mcmc_attributes}
    {common_attributes}

    See Also
    --------
    hmmlearn.hmm.CategoricalHMM : The EM backend.
    GaussianHMM : Gaussian emissions.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import CategoricalHMM
    >>> X = np.array([[0, 0, 1, 0, 2, 2, 2, 1, 2, 2]]).T
    >>> model = CategoricalHMM(2, random_state=0).fit(X)
    >>> model.posterior(X).sample(3).shape
    (3, 10)
    """

    _non_negative = True
    _emission_names = ("emissionprob_",)
    _parameter_constraints = {
        **COMMON_CONSTRAINTS,
        "n_symbols": [None, Interval("int", 1, None)],
        "startprob_prior": [Interval("real", 0, None), "array-like"],
        "transmat_prior": [Interval("real", 0, None), "array-like"],
        "emissionprob_prior": [Interval("real", 0, None), "array-like"],
        **_bayes.MCMC_CONSTRAINTS,
        **CONSTRAINT_CONSTRAINTS,
    }
    _supports_mcmc = True
    _conformance_alt_params = {"bayesian": True, "n_symbols": 4}

    def __init__(self, n_components: int = 1, *, n_symbols: int | None = None, bayesian: bool = False,
                 startprob_prior: Any = 1.0, transmat_prior: Any = 1.0, emissionprob_prior: Any = 1.0,
                 fixed: dict | None = None, topology: str | None = None,
                 bandwidth: int | None = None, sampler: str | None = None, n_chains: int = 4,
                 n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None,
                 max_iter: int = 100, tol: float = 1e-2, implementation: str = "log", random_state: Any = None,
                 verbose: bool = False, progress: bool = False) -> None:
        self.n_components = n_components
        self.n_symbols = n_symbols
        self.bayesian = bayesian
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
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
        B = np.array([[0.7, 0.2, 0.05, 0.05], [0.05, 0.05, 0.3, 0.6]])
        return two_state_data(rng, lambda z, r: (r.random(len(z))[:, None] > np.cumsum(B[z], axis=1)[:, :-1])
                               .sum(axis=1, keepdims=True).astype(float))

    def _check_data(self, X):
        if X.shape[1] != 1:
            raise ValueError(f"X passed to CategoricalHMM must have one column of symbols; got {X.shape[1]} columns.")
        fitted = hasattr(self, "backend_")
        upper = self.backend_.emissionprob_.shape[1] if fitted else self.n_symbols
        check_integer_values(self, X, "symbols", upper)
        if not fitted:
            n_symbols = self.n_symbols if self.n_symbols is not None else int(np.nanmax(X, initial=-1)) + 1
            if n_symbols * self.n_components > _MAX_EMISSION_ENTRIES:
                raise ValueError(
                    f"CategoricalHMM would need an emission table of n_components x n_symbols = {self.n_components} "
                    f"x {n_symbols} entries (symbols are coded 0 to n_symbols - 1, and X holds symbol "
                    f"{n_symbols - 1}); the limit is {_MAX_EMISSION_ENTRIES:.0e}. Recode the symbols to 0..S-1, "
                    "for example with np.unique(X, return_inverse=True).")

    def _backend_class(self):
        if self.bayesian:
            return _adapter.VariationalCategoricalHMM, {"n_features": self.n_symbols}
        return _adapter.GuardedCategoricalHMM, {"n_features": self.n_symbols, "startprob_prior": self.startprob_prior,
                                    "transmat_prior": self.transmat_prior,
                                    "emissionprob_prior": self.emissionprob_prior}

    def _fit_backend(self, X, lengths, rng, n_iter):
        super()._fit_backend(X.astype(np.int64), lengths, rng, n_iter)

    emissionprob_ = property(lambda self: self.backend_.emissionprob_, doc="Symbol probabilities (K, n_symbols).")

    def _emission(self, X=None):
        if X is None:
            n_symbols = self.emissionprob_.shape[1]
        else:
            n_symbols = self.n_symbols or int(np.nanmax(X, initial=0)) + 1
        return CategoricalEmission(n_symbols, self.emissionprob_prior)

    def _emission_point(self):
        return {"emissionprob": self.emissionprob_}

    _variational_draws = True

    def _draw_emission(self, n_samples, rng):
        """Each row of ``emissionprob`` from its variational Dirichlet (``emissionprob_posterior_``)."""
        rows = self.backend_.emissionprob_posterior_
        return {"emissionprob": np.stack([rng.dirichlet(r, size=n_samples) for r in rows], axis=1)}


CategoricalHMM.__doc__ = fill(CategoricalHMM.__doc__, mcmc_params=_bayes.MCMC_PARAMS_DOC,
                              mcmc_attributes=_bayes.MCMC_ATTRIBUTES_DOC)
