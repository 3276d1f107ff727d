"""Inference kernels: pure functions over arrays (no model objects)."""

from ._hmm import (
    ForwardBackward,
    entropy,
    forward_backward,
    pairwise_marginals,
    path_log_prob,
    sample_chain,
    sample_paths,
    viterbi,
)
from ._kalman import KalmanResult, kalman_smoother

__all__ = [
    "ForwardBackward",
    "entropy",
    "forward_backward",
    "pairwise_marginals",
    "path_log_prob",
    "sample_chain",
    "sample_paths",
    "viterbi",
    "KalmanResult",
    "kalman_smoother",
]
