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


#: Group holding the per-observation latent draws (kept out of ``posterior``, which ArviZ's defaults read).
LATENT_GROUP = "latent_posterior"


def to_inference_data(
    model: Any,
    X: Any,
    *,
    n_draws: int = 500,
    random_state: Any = None,
    lengths: Any = None,
    y: Any = None,
    labels: Any = None,
):
    """Posterior draws of a fitted probspace model for data ``X``, as an ArviZ object.

    The groups are laid out so that ArviZ's default calls (``summary``,
    ``plot_trace``, ``plot_posterior``/``plot_dist``, ``plot_forest``,
    ``plot_rank``, ``plot_pair``, ``loo``) answer the first questions about a
    fit (are the parameters converged, what are they, does the model predict
    the data) with a bounded number of rows and panels:

    - ``posterior``: parameter draws where the fit has a posterior over them
      (MCMC, variational mixtures), plus a few summaries of the latent
      variables per draw: for discrete latents the share of observations
      (frames) in each component or state (``<latent>_share``); for
      continuous ones their mean over observations (``<latent>_mean``). Attrs
      record ``inference_method`` and, for EM and variational fits, the
      objective trace ``history_`` (``objective``).
    - ``latent_posterior``: the joint draws of every observation's latent
      variable (``label``, ``path``, ``theta``, ``z``), one per draw. Reach it
      with ``data["latent_posterior"]`` or, for example,
      ``arviz.summary(data, group="latent_posterior", var_names=["path"],
      coords={"time": window})``.
    - ``log_likelihood``: pointwise ``log p(x_i)`` per parameter draw, only
      for fits with parameter draws (so ``arviz.loo``, ``waic`` and
      ``compare`` are meaningful). EM and variational HMM/LDA/VAE fits have a
      single plug-in value per observation, which would make PSIS-LOO
      meaningless (p_loo = 0): the group is left out, and such models are
      compared with :func:`probspace.compare` or held-out
      ``log_likelihood``.
    - ``posterior_predictive``: replicated data given each latent (and
      parameter) draw; ``observed_data``: ``X``.
    - ``sample_stats`` (MCMC fits only): the sampler's per-draw statistics.
    - ``constant_data``: exact quantities (HMM state marginals) and, for
      sequential families, ``lengths`` (dim ``sequence``) and the sequence
      of each frame (``sequence``, dim ``time``); with ``labels``, the known
      states (``labels``, dim ``time``, -1 unknown).

    With ``labels`` (families whose ``posterior`` takes known states: the
    HMMs), every group answers for the conditioned posterior
    ``p(z | x, z_t = labels_t for the known t)``: the path draws keep the
    known states, the state marginals condition on them, the pointwise
    log-likelihood terms sum to each sequence's ``log p(x, known states)``
    (what ``log_likelihood(X, labels=...)`` gives) and the replicated data
    are drawn along the conditioned paths.

    MCMC fits keep their chains (``n_chains`` by at most ``n_draws`` draws
    per chain, evenly thinned, each latent draw made under the parameter draw
    it is paired with); other fits have one chain of independent draws, on
    which R-hat and ESS are no evidence of convergence: diagnose those fits
    with ``history_``.

    Parameters
    ----------
    model : LatentModel
        A fitted probspace model.
    X : array-like of shape (n_samples, n_features)
        Data, one row per observation (per time step for sequences).
    n_draws : int, default=500
        Number of joint posterior draws (per chain for MCMC fits).
    random_state : None, int or numpy.random.Generator, optional
        Seed for this call only; without it the draws continue the model's ``rng_``.
    lengths : array-like of int, optional
        Sequence lengths (sequential families only).
    y : array-like, optional
        Conditions, one per row of ``X`` (conditional families only).
    labels : array-like of int, shape (n_samples,), optional
        Known latent state of each row (``-1``: unknown), for families whose
        ``posterior`` takes ``labels`` (the HMMs); a ``ValueError`` elsewhere.

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
    >>> idata["latent_posterior"]["label"].shape
    (1, 20, 40)
    >>> idata.posterior["label_share"].shape
    (1, 20, 2)
    """
    from .._validation import check_n_samples

    model._check_fitted()
    n_draws = check_n_samples(n_draws, name="n_draws")
    rng = model._generator(random_state)
    Xc, lengths = model._check_input(X, lengths)
    tags = model._model_tags()
    cond = model._condition_kwargs(y, Xc.shape[0], fitting=False)
    if labels is not None:  # known states reach the hooks beside the condition
        known = getattr(model, "_label_kwargs", None)
        if known is None:
            raise ValueError(f"{type(model).__name__} takes no labels (known latent states); got labels of type "
                             f"{type(labels).__name__}.")
        cond = {**cond, **known(labels, Xc.shape[0])}
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
        stats = None

    def by_chain(arr):
        arr = np.asarray(arr)
        return arr.reshape(grid + arr.shape[1:])

    latent_name = model._latent_name
    dims = {k: list(v) for k, v in model._arviz_dims().items()}
    summaries = _latent_summaries(model, latent_name, latents, post, tags, dims)
    groups: dict[str, dict[str, np.ndarray]] = {
        # parameters (a latent sampled as a parameter, e.g. RDPG positions, stays in the latent group)
        "posterior": {k: by_chain(v) for k, v in {**(params or {}), **summaries}.items() if k != latent_name},
        LATENT_GROUP: {latent_name: by_chain(latents)},
    }
    if draws is not None:
        groups[LATENT_GROUP].update({k: by_chain(v) for k, v in model._arviz_latent_extras(index).items()})
    loglik = model._pointwise_log_likelihood(Xc, lengths, params, **cond)  # None: no density (an embedding)
    loglik = None if loglik is None else np.asarray(loglik, dtype=np.float64)
    per_draw = loglik is not None and loglik.ndim == 2
    if per_draw:
        groups["log_likelihood"] = {"x": by_chain(np.ascontiguousarray(loglik))}
    predictive = model._posterior_predictive(Xc, latents, params, rng, **cond)
    if predictive is not None:
        groups["posterior_predictive"] = {"x": by_chain(predictive)}
    constant = dict(model._arviz_constant_data(Xc, lengths, **cond) or {})
    if tags.sequential and lengths is not None:
        constant["lengths"] = np.asarray(lengths, dtype=np.int64)
        constant["sequence_index"] = np.repeat(np.arange(len(lengths)), lengths)
        dims.setdefault("lengths", ["sequence"])
        dims.setdefault("sequence_index", ["time"])
    if constant:
        groups["constant_data"] = {k: np.asarray(v) for k, v in constant.items()}
    groups["observed_data"] = {"x": model._arviz_observed_data(Xc)}
    if stats is not None:
        groups["sample_stats"] = stats
    coords = _coords(model, groups, dims)
    from .. import __version__

    posterior_attrs = {"inference_method": post.method, "model": type(model).__name__,
                       "latent_variable": latent_name, "latent_group": LATENT_GROUP,
                       "probspace_version": __version__}
    if loglik is None:
        posterior_attrs["log_likelihood"] = "not written: this model defines no density"
    elif not per_draw:
        posterior_attrs["log_likelihood"] = ("not written: this fit has one plug-in log-likelihood per observation, "
                                             "on which PSIS-LOO/WAIC are meaningless; compare models with "
                                             "probspace.compare or held-out log_likelihood")
    if draws is None:
        posterior_attrs["objective"] = np.asarray(model.history_, dtype=np.float64)
    attrs = {"posterior": posterior_attrs, LATENT_GROUP: {"inference_method": post.method}}
    if stats is not None:
        attrs["sample_stats"] = {"sampler": model.sampler}
    if per_draw:
        attrs["log_likelihood"] = {"exact": int(tags.exact_log_likelihood and not tags.parameter_posterior)}
    return _from_groups(groups, coords, dims, attrs)


def _latent_summaries(model: Any, name: str, latents: np.ndarray, post: Any, tags: Any,
                      dims: dict[str, list[str]]) -> dict[str, np.ndarray]:
    """Return a few per-draw summaries of the latent draws ``(n_draws, n_obs, ...)`` for the ``posterior`` group."""
    latents = np.asarray(latents)
    if tags.discrete_latent:
        n_classes = np.asarray(post.mean).shape[-1]
        flat = latents.reshape(latents.shape[0], -1)
        share = np.stack([(flat == k).mean(axis=1) for k in range(n_classes)], axis=1)
        dims.setdefault(f"{name}_share", [model._arviz_class_dim])
        return {f"{name}_share": share}
    if latents.ndim < 2:
        return {}
    latent_dims = dims.get(name, [])
    dims.setdefault(f"{name}_mean", list(latent_dims[1:]))
    return {f"{name}_mean": latents.mean(axis=1)}


def _from_groups(groups: dict, coords: dict, dims: dict, attrs: dict):
    """One ``from_dict`` call in the installed ArviZ line's form (custom groups added on 0.x)."""
    az = _import_arviz()
    if arviz_major_version() >= 1:
        return az.from_dict(groups, coords=coords, dims=dims, attrs=attrs)
    standard = {g: v for g, v in groups.items() if g != LATENT_GROUP}
    group_attrs = {f"{g}_attrs": a for g, a in attrs.items() if g != LATENT_GROUP}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        data = az.from_dict(coords=coords, dims=dims, **standard, **group_attrs)
        latent = az.from_dict(posterior=groups[LATENT_GROUP], coords=coords, dims=dims,
                              posterior_attrs=attrs.get(LATENT_GROUP, {}))
        data.add_groups({LATENT_GROUP: latent.posterior})
    return data


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
