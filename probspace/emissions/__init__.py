"""Emission components: the observation model of an HMM state or a mixture component.

One file per emission family; an HMM composes initial probabilities, a
transition matrix and one of these, and a finite mixture reuses the same
objects without transitions. See :class:`Emission` for the protocol.
"""

from ._base import Emission
from ._bernoulli import BernoulliEmission
from ._categorical import CategoricalEmission
from ._gaussian import GaussianEmission
from ._gmm import GaussianMixtureEmission
from ._poisson import PoissonEmission

__all__ = ["BernoulliEmission", "CategoricalEmission", "Emission", "GaussianEmission", "GaussianMixtureEmission",
           "PoissonEmission"]
