"""probspace: posteriors over latent variables, behind one model interface.

Every model answers ``posterior(X)`` with a distribution over its hidden
variables that can be sampled, summarised, scored and handed to ArviZ.
Importing probspace does not import torch, pyro or arviz.
"""

from ._base import LatentModel
from ._validation import InvalidParameterError
from .diagnostics import to_inference_data
from .models import GMMHMM, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM
from .posteriors import Categorical, MarkovChain, Posterior

__version__ = "0.1.0"

__all__ = [
    "GMMHMM",
    "Categorical",
    "CategoricalHMM",
    "GaussianHMM",
    "GaussianMixture",
    "InvalidParameterError",
    "LatentModel",
    "MarkovChain",
    "Posterior",
    "PoissonHMM",
    "__version__",
    "to_inference_data",
]
