"""probspace: posteriors over latent variables, behind one model interface.

Every model answers ``posterior(X)`` with a distribution over its hidden
variables that can be sampled, summarised, scored and handed to ArviZ.
Importing probspace does not import torch, pyro or arviz.
"""

from ._base import LatentModel
from ._validation import InvalidParameterError
from .diagnostics import to_inference_data
from .models import GaussianMixture
from .posteriors import Categorical, Posterior

__version__ = "0.1.0"

__all__ = [
    "Categorical",
    "GaussianMixture",
    "InvalidParameterError",
    "LatentModel",
    "Posterior",
    "__version__",
    "to_inference_data",
]
