"""Posterior distributions over latent variables."""

from ._base import Posterior
from ._categorical import Categorical
from ._dirichlet import Dirichlet
from ._empirical import EllipticalRegions, Empirical
from ._markov import MarkovChain
from ._mixture import FiniteMixture
from ._normal import DiagonalNormal

__all__ = ["Categorical", "DiagonalNormal", "Dirichlet", "EllipticalRegions", "Empirical", "FiniteMixture",
           "MarkovChain", "Posterior"]
