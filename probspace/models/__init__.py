"""Model families."""

from ._gmm import GaussianMixture
from ._hmm import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM

__all__ = ["GMMHMM", "CategoricalHMM", "GaussianHMM", "GaussianMixture", "PoissonHMM"]
