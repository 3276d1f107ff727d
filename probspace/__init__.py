"""probspace: posteriors over latent variables, behind one model interface.

Every model answers ``posterior(X)`` with a distribution over its hidden
variables that can be sampled, summarised, scored and handed to ArviZ.
Importing probspace does not import torch, pyro or arviz.
"""

from ._base import LatentModel
from ._persistence import load
from ._selection import compare
from ._validation import InvalidParameterError
from .diagnostics import to_inference_data
from .models import (
    DBN,
    GMMHMM,
    HMM,
    LDA,
    PPCA,
    RBM,
    RDPG,
    AutoregressiveHMM,
    BernoulliHMM,
    CategoricalHMM,
    Embedding,
    FactorAnalysis,
    GaussianHMM,
    GaussianMixture,
    InputDrivenHMM,
    LinearGaussianSSM,
    PoissonHMM,
    ProbabilisticMF,
    ProbabilisticPCA,
    SemiMarkovHMM,
    ratings_matrix,
)
from .posteriors import (
    Bernoulli,
    Categorical,
    Dirichlet,
    GaussMarkovChain,
    MarkovChain,
    MultivariateNormal,
    PointMass,
    Posterior,
    SemiMarkovChain,
    TimeVaryingMarkovChain,
)

#: Long alias of :class:`LDA`.
LatentDirichletAllocation = LDA

__version__ = "0.1.0"


def __getattr__(name):
    # VAE and CVAE sit on torch and pyro: imported on first use, so `import probspace` stays light.
    if name in ("VAE", "CVAE"):
        from .models import _vae

        return getattr(_vae, name)
    if name == "Autoencoder":
        from .models import _autoencoder

        return _autoencoder.Autoencoder
    if name == "GeneratorPosterior":
        from .models import _generator

        return _generator.GeneratorPosterior
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Autoencoder",
    "CVAE",
    "BernoulliHMM",
    "HMM",
    "GMMHMM",
    "LDA",
    "Categorical",
    "CategoricalHMM",
    "GaussianHMM",
    "GaussianMixture",
    "GeneratorPosterior",
    "Dirichlet",
    "Embedding",
    "FactorAnalysis",
    "InvalidParameterError",
    "LatentDirichletAllocation",
    "LatentModel",
    "LinearGaussianSSM",
    "GaussMarkovChain",
    "MarkovChain",
    "MultivariateNormal",
    "PPCA",
    "PointMass",
    "ProbabilisticPCA",
    "Posterior",
    "PoissonHMM",
    "RDPG",
    "ProbabilisticMF",
    "ratings_matrix",
    "DBN",
    "RBM",
    "Bernoulli",
    "VAE",
    "__version__",
    "compare",
    "load",
    "to_inference_data",
    "InputDrivenHMM",
    "SemiMarkovHMM",
    "SemiMarkovChain",
    "TimeVaryingMarkovChain",
]
__all__ += ["AutoregressiveHMM"]
