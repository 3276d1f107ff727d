"""Hidden Markov models: initial probabilities + transition matrix + an emission component.

``_base`` holds the shared EM/MCMC machinery, ``_adapter`` every use of
hmmlearn's private API, and each family is one thin file.
"""

from ._autoregressive import AutoregressiveHMM
from ._bernoulli import BernoulliHMM
from ._categorical import CategoricalHMM
from ._filter import FilterStep, StreamingFilter
from ._gaussian import GaussianHMM
from ._generic import HMM
from ._gmm import GMMHMM
from ._poisson import PoissonHMM

__all__ = ["HMM", "AutoregressiveHMM", "BernoulliHMM", "CategoricalHMM", "GMMHMM", "GaussianHMM", "PoissonHMM",
           "FilterStep", "StreamingFilter"]
