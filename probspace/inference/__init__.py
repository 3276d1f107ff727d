"""Inference kernels: pure functions over arrays (no model objects)."""
