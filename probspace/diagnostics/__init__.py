"""Diagnostics: the ArviZ bridge."""

from ._arviz import arviz_major_version, to_inference_data

__all__ = ["arviz_major_version", "to_inference_data"]
