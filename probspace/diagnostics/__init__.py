"""Diagnostics: the ArviZ bridge."""

from ._arviz import arviz_major_version, loo_waic, to_inference_data

__all__ = ["arviz_major_version", "loo_waic", "to_inference_data"]
