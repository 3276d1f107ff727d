"""Posterior distributions over latent variables."""

from ._base import Posterior
from ._categorical import Categorical
from ._dirichlet import Dirichlet
from ._markov import MarkovChain

__all__ = ["Categorical", "Dirichlet", "MarkovChain", "Posterior"]
