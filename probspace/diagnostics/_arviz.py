"""The ArviZ bridge: the only module in probspace that imports arviz.

Builds a plain ``{group: {variable: array}}`` mapping from a fitted model and
makes one ``from_dict`` call, in the form of the installed ArviZ line:
ArviZ 0.x (one keyword per group, ``<group>_attrs``) returns
``arviz.InferenceData``; ArviZ 1.x (one nested mapping, attrs keyed by group)
returns ``xarray.DataTree``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

__all__ = ["arviz_major_version", "to_inference_data"]


def _import_arviz():
    with warnings.catch_warnings():
        # ArviZ 0.23 announces its 1.0 refactor with a FutureWarning at import.
        warnings.simplefilter("ignore", FutureWarning)
        import arviz
    return arviz


def arviz_major_version() -> int:
    """Major version of the installed ArviZ (0 or 1).

    Returns
    -------
    int
    """
    return int(_import_arviz().__version__.split(".")[0])


def _coords(model: Any, groups: dict, dims: dict) -> dict[str, np.ndarray]:
    sizes: dict[str, int] = {}
    for data in groups.values():
        for name, arr in data.items():
            var_dims = dims.get(name, ())
            lead = 2 if arr.ndim > len(var_dims) else 0
            for dim, size in zip(var_dims, arr.shape[lead:], strict=False):
                sizes.setdefault(dim, size)
    coords = {dim: np.arange(size) for dim, size in sizes.items()}
    names = getattr(model, "feature_names_in_", None)
    if names is not None and "feature" in coords and len(names) == coords["feature"].size:
        coords["feature"] = np.asarray(names)
        if "feature_bis" in coords:
            coords["feature_bis"] = np.asarray(names)
    return coords


def to_inference_data(
    model: Any,
    X: Any,
    *,
    n_draws: int = 500,
    random_state: Any = None,
    lengths: Any = None,
    y: Any = None,
):
    """Posterior draws of a fitted probspace model for data ``X``, as an ArviZ object.

    Groups:

    - ``posterior``: ``n_draws`` joint draws of the latent variables of ``X``
      (and, for Bayesian fits, paired draws of the parameters), with a chain
      axis of length 1. For MCMC fits (``sampler=...``), the fit's chains:
      ``n_chains`` by at most ``n_draws`` draws per chain (evenly thinned),
      each latent draw made under the parameter draw it is paired with.
      Attrs record ``inference_method``.
    - ``log_likelihood``: pointwise ``log p(x_i)``; per parameter draw for
      Bayesian fits (so ``arviz.loo`` works), the fitted value repeated across
      draws otherwise (``plug_in`` attr set); absent for a model without a density
      (``Embedding``).
    - ``posterior_predictive``: replicated data given each latent draw.
    - ``observed_data``: ``X``.
    - ``sample_stats``: the fit's objective trace ``history_`` (dim
      ``iteration``); for MCMC fits the per-draw sampler statistics
      (``log_likelihood``; ``diverging``, ``acceptance_rate``, ``step_size``
      for NUTS).

    R-hat and ESS on independent posterior draws are not evidence of
    convergence of an EM or variational fit; diagnose those with ``history_``.

    Parameters
    ----------
    model : LatentModel
        A fitted probspace model.
    X : array-like of shape (n_samples, n_features)
        Data, one row per observation (per time step for sequences).
    n_draws : int, default=500
        Number of joint posterior draws.
    random_state : None, int or numpy.random.Generator, optional
        Seed for this call only; without it the draws continue the model's ``rng_``.
    lengths : array-like of int, optional
        Sequence lengths (sequential families only).
    y : array-like, optional
        Conditions, one per row of ``X`` (conditional families only).

    Returns
    -------
    arviz.InferenceData or xarray.DataTree
        ``InferenceData`` with ArviZ 0.x, ``DataTree`` with ArviZ 1.x.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import GaussianMixture, to_inference_data
    >>> X = np.random.default_rng(0).normal(size=(40, 2))
    >>> idata = to_inference_data(GaussianMixture(2, random_state=0).fit(X), X, n_draws=20)
    >>> idata.posterior["label"].shape
    (1, 20, 40)
    """
    from .._validation import check_n_samples

    model._check_fitted()
    n_draws = check_n_samples(n_draws, name="n_draws")
    rng = model._generator(random_state)
    Xc, lengths = model._check_input(X, lengths)
    tags = model._model_tags()
    cond = model._condition_kwargs(y, Xc.shape[0], fitting=False)
    post = model._posterior(Xc, lengths, **cond)
    draws = getattr(model, "draws_", None)
    if draws is not None:  # MCMC: keep the chains; pair latent draw (c, d) with parameter draw (c, d)
        n_chains, n_total = next(iter(draws.values())).shape[:2]
        keep = np.unique(np.linspace(0, n_total - 1, min(n_draws, n_total)).round().astype(np.int64))
        grid = (n_chains, keep.size)
        index = (np.arange(n_chains)[:, None] * n_total + keep[None, :]).ravel()
        latents = post.sample_at(index, rng)
        params = {k: v[:, keep].reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
        stats = {k: np.asarray(v)[:, keep] for k, v in model.sample_stats_.items()}
    else:
        grid = (1, n_draws)
        latents = post.sample(n_draws, random_state=rng)
        params = model._sample_parameters(n_draws, rng) if tags.parameter_posterior else None
        stats = {"objective": np.asarray(model.history_, dtype=np.float64)[None, None, :]}

    def by_chain(arr):
        arr = np.asarray(arr)
        return arr.reshape(grid + arr.shape[1:])

    latent_name = model._latent_name
    posterior = {latent_name: latents, **(params or {})}
    loglik = model._pointwise_log_likelihood(Xc, lengths, params, **cond)  # None: no density (an embedding)
    groups: dict[str, dict[str, np.ndarray]] = {"posterior": {k: by_chain(v) for k, v in posterior.items()}}
    if loglik is not None:
        loglik = np.asarray(loglik, dtype=np.float64)
        plug_in = loglik.ndim == 1
        if plug_in:
            loglik = np.broadcast_to(loglik, (n_draws,) + loglik.shape)
        groups["log_likelihood"] = {"x": by_chain(np.ascontiguousarray(loglik))}
    predictive = model._posterior_predictive(Xc, latents, params, rng, **cond)
    if predictive is not None:
        groups["posterior_predictive"] = {"x": by_chain(predictive)}
    constant = model._arviz_constant_data(Xc, lengths)
    if constant:
        groups["constant_data"] = {k: np.asarray(v) for k, v in constant.items()}
    groups["observed_data"] = {"x": np.asarray(Xc.toarray() if hasattr(Xc, "toarray") else Xc)}
    groups["sample_stats"] = stats

    dims = {k: list(v) for k, v in model._arviz_dims().items()}
    dims["objective"] = ["iteration"]
    coords = _coords(model, groups, dims)
    from .. import __version__

    attrs = {
        "posterior": {"inference_method": post.method, "model": type(model).__name__,
                      "latent_variable": latent_name, "probspace_version": __version__},
        "sample_stats": ({"sampler": model.sampler} if draws is not None
                         else {"objective": "history_ of the fit, one value per iteration"}),
    }
    if loglik is not None:
        attrs["log_likelihood"] = {"plug_in": int(plug_in),
                                   "exact": int(tags.exact_log_likelihood and not tags.parameter_posterior)}
    az = _import_arviz()
    if arviz_major_version() >= 1:
        return az.from_dict(groups, coords=coords, dims=dims, attrs=attrs)
    group_attrs = {f"{g}_attrs": a for g, a in attrs.items()}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return az.from_dict(coords=coords, dims=dims, **groups, **group_attrs)


def loo_waic(data: Any) -> dict[str, float]:
    """PSIS-LOO and WAIC of an ArviZ object's pointwise log-likelihood, on either ArviZ line.

    Parameters
    ----------
    data : arviz.InferenceData or xarray.DataTree
        Output of :func:`to_inference_data` for a fit with parameter draws.

    Returns
    -------
    dict
        ``elpd_loo``, ``se_loo``, ``p_loo``, ``elpd_waic``, ``se_waic``, and
        ``max_pareto_k`` (above 0.7 the LOO estimate is unreliable).
    """
    az = _import_arviz()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loo = az.loo(data, pointwise=True)
        waic = az.waic(data) if hasattr(az, "waic") else None
    if arviz_major_version() >= 1:
        out = {"elpd_loo": float(loo.elpd), "se_loo": float(loo.se), "p_loo": float(loo.p),
               "max_pareto_k": float(np.max(np.asarray(loo.pareto_k)))}
        if waic is not None:
            out.update(elpd_waic=float(waic.elpd), se_waic=float(waic.se))
    else:
        out = {"elpd_loo": float(loo["elpd_loo"]), "se_loo": float(loo["se"]), "p_loo": float(loo["p_loo"]),
               "max_pareto_k": float(np.max(np.asarray(loo["pareto_k"])))}
        out.update(elpd_waic=float(waic["elpd_waic"]), se_waic=float(waic["se"]))
    return out
