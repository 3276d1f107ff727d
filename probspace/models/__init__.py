"""Model families."""

from ._gmm import GaussianMixture

__all__ = ["GaussianMixture"]
