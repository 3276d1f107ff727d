"""Posterior distributions over latent variables."""

from ._base import Posterior
from ._bernoulli import Bernoulli
from ._categorical import Categorical
from ._dirichlet import Dirichlet
from ._empirical import EllipticalRegions, Empirical
from ._gauss_markov import GaussMarkovChain
from ._input_chain import TimeVaryingMarkovChain
from ._markov import MarkovChain
from ._mixture import FiniteMixture
from ._mvn import MultivariateNormal
from ._normal import DiagonalNormal
from ._point import PointMass
from ._semimarkov import SemiMarkovChain

__all__ = ["MultivariateNormal", "PointMass", "Bernoulli",
           "Categorical", "DiagonalNormal", "Dirichlet", "EllipticalRegions", "Empirical", "FiniteMixture",
           "MarkovChain", "Posterior",
           "SemiMarkovChain", "TimeVaryingMarkovChain", "GaussMarkovChain"]
