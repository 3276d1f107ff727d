"""Former home of the HMM families, kept so that older import paths and saved files keep working.

The families live in :mod:`probspace.models.hmm`; the hmmlearn backends in
:mod:`probspace.models.hmm._adapter`. Files saved in format 1 name the
backends as ``probspace.models._hmm.<name>``: :func:`probspace._persistence._backends`
maps those names to the classes below.
"""

from .hmm import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from .hmm._adapter import GuardedCategoricalHMM as _GuardedCategoricalHMM
from .hmm._adapter import GuardedGMMHMM as _GuardedGMMHMM
from .hmm._adapter import GuardedPoissonHMM as _GuardedPoissonHMM
from .hmm._adapter import KernelEStepGaussianHMM as _KernelEStepGaussianHMM
from .hmm._adapter import hmmlearn_log_as_warnings as _hmmlearn_log_as_warnings

__all__ = ["CategoricalHMM", "GMMHMM", "GaussianHMM", "PoissonHMM"]
#: Names older code and files use (``_backends()`` of probspace._persistence reads the backends here).
_COMPATIBLE = (_KernelEStepGaussianHMM, _GuardedCategoricalHMM, _GuardedPoissonHMM, _GuardedGMMHMM,
               _hmmlearn_log_as_warnings)
