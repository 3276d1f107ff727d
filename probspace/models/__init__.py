"""Model families. ``VAE`` and ``CVAE`` load torch and pyro only when first used."""

from ._embedding import Embedding
from ._factor import PPCA, FactorAnalysis, ProbabilisticPCA
from ._gmm import GaussianMixture
from ._hsmm import SemiMarkovHMM
from ._iohmm import InputDrivenHMM
from ._lda import LDA, TokenTopicDraws
from ._pmf import ProbabilisticMF, ratings_matrix
from ._rbm import DBN, RBM
from ._rdpg import RDPG
from ._ssm import LinearGaussianSSM
from .hmm import (
    GMMHMM,
    HMM,
    AutoregressiveHMM,
    BernoulliHMM,
    CategoricalHMM,
    GaussianHMM,
    PoissonHMM,
)

__all__ = ["Embedding", "FactorAnalysis", "PPCA", "ProbabilisticPCA",
           "BernoulliHMM", "HMM",
           "GMMHMM", "LDA", "TokenTopicDraws", "CategoricalHMM", "GaussianHMM", "GaussianMixture", "PoissonHMM", "RDPG",
           "DBN", "RBM", "ProbabilisticMF", "ratings_matrix",
           "InputDrivenHMM", "SemiMarkovHMM", "LinearGaussianSSM", "AutoregressiveHMM"]


def __getattr__(name):
    if name in ("VAE", "CVAE"):
        from . import _vae

        return getattr(_vae, name)
    if name == "Autoencoder":
        from . import _autoencoder

        return _autoencoder.Autoencoder
    if name == "GeneratorPosterior":
        from . import _generator

        return _generator.GeneratorPosterior
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
