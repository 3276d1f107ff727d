"""probspace: posteriors over latent variables, behind one model interface.

Every model answers ``posterior(X)`` with a distribution over its hidden
variables that can be sampled, summarised, scored and handed to ArviZ.
Importing probspace does not import torch, pyro or arviz.
"""

from ._base import LatentModel
from ._validation import InvalidParameterError
from .diagnostics import to_inference_data
from .models import GMMHMM, LDA, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM
from .posteriors import Categorical, Dirichlet, MarkovChain, Posterior

#: Long alias of :class:`LDA`.
LatentDirichletAllocation = LDA

__version__ = "0.1.0"

__all__ = [
    "GMMHMM",
    "LDA",
    "Categorical",
    "CategoricalHMM",
    "GaussianHMM",
    "GaussianMixture",
    "Dirichlet",
    "InvalidParameterError",
    "LatentDirichletAllocation",
    "LatentModel",
    "MarkovChain",
    "Posterior",
    "PoissonHMM",
    "__version__",
    "to_inference_data",
]
