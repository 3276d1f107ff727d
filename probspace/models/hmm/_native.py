"""A backend for emissions hmmlearn does not have: the fitted arrays of an HMM, fitted by probspace's own EM.

:class:`NativeHMM` only holds parameters (scikit-learn style: constructor
parameters, fitted attributes ending in ``_``), so persistence and the
families treat it like an hmmlearn backend. EM itself is the families'
(``_HMM._em_loop``): forward-backward, Dirichlet MAP updates of the initial
and transition probabilities, and the emission's M-step.
"""

from __future__ import annotations

from typing import Any

from sklearn.base import BaseEstimator

__all__ = ["NativeHMM"]


class NativeHMM(BaseEstimator):
    """Parameters of an HMM fitted by probspace's EM (``startprob_``, ``transmat_``, emission arrays).

    Parameters
    ----------
    n_components : int, default=1
        Number of states.
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet priors of the MAP fit (1: maximum likelihood).
    """

    def __init__(self, n_components: int = 1, startprob_prior: Any = 1.0, transmat_prior: Any = 1.0) -> None:
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
