"""Model families."""

from ._gmm import GaussianMixture
from ._hmm import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from ._lda import LDA

__all__ = ["GMMHMM", "LDA", "CategoricalHMM", "GaussianHMM", "GaussianMixture", "PoissonHMM"]
