"""Capabilities of a model family, read by the base class, the tests and the docs."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ModelTags"]


@dataclass(frozen=True)
class ModelTags:
    """What a model family can do, declared once next to the class.

    Attributes
    ----------
    sequential : bool
        Observations form sequences (``lengths`` is accepted).
    allow_nan : bool
        Missing values (NaN) in ``X`` are marginalised rather than rejected
        by ``posterior``, ``embed`` and ``log_likelihood``.
    allow_nan_in_fit : bool
        ``fit`` accepts missing values too.
    non_negative : bool
        ``X`` holds non-negative counts (topic models).
    accept_sparse : bool
        ``X`` may be a SciPy sparse matrix.
    discrete_latent : bool
        Latent draws are integer codes (labels, states).
    exact_posterior : bool
        ``posterior`` is exact given the fitted parameters, not variational.
    exact_log_likelihood : bool
        ``log_likelihood`` is exact, not a bound or an estimate.
    parameter_posterior : bool
        The fit has a posterior over parameters that ``sample_parameters`` draws from.
    min_samples : int
        Fewest rows ``fit`` accepts.
    density : bool
        The model defines a density over ``X``: ``log_likelihood`` and
        ``score`` work (false for deterministic embeddings).
    generative : bool
        ``sample`` draws new data from the model.
    random_posterior : bool
        Posterior draws vary (false for a point mass, whose every draw is
        its location).
    conditional : bool
        ``y`` is a condition (class labels or covariates, one row per
        observation) that ``fit``, ``posterior``, ``embed``,
        ``log_likelihood``, ``score``, ``sample`` and ``to_arviz`` take and
        pass to the hooks as ``cond`` (see ``LatentModel._check_condition``).
    """

    sequential: bool = False
    allow_nan: bool = False
    allow_nan_in_fit: bool = False
    non_negative: bool = False
    accept_sparse: bool = False
    discrete_latent: bool = False
    exact_posterior: bool = True
    exact_log_likelihood: bool = True
    parameter_posterior: bool = False
    min_samples: int = 1
    density: bool = True
    generative: bool = True
    random_posterior: bool = True
    conditional: bool = False
