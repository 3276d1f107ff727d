"""Posterior distributions over latent variables."""

from ._base import Posterior
from ._categorical import Categorical

__all__ = ["Categorical", "Posterior"]
