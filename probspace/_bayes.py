"""Fully Bayesian fits of mixtures and HMMs by MCMC: blocked Gibbs or NUTS, shared by the families.

A family opts in with the constructor parameters ``sampler``, ``n_chains``,
``n_draws``, ``n_warmup`` and ``prior`` (see :data:`MCMC_CONSTRAINTS`) and
a few small hooks: ``_mcmc_layout`` (emission family, mixture or HMM, the
names of its parameters), ``_mcmc_em_start`` (a maximum-likelihood fit from
a seed, the start of one chain) and ``_mcmc_set_point`` (write posterior
means where the fitted attributes read them). Everything else lives here:
priors, running the engines, relabelling, and the posterior, likelihood and
ArviZ quantities that average over parameter draws.

Label switching: mixture and HMM likelihoods do not change when states are
permuted, so chains can visit permuted copies of one mode. Every draw is
relabelled by sorting its states by a scalar: the first feature of the mean
(Gaussian), the first rate (Poisson), or the mean symbol index (categorical).
Under an exchangeable prior, sorted draws are exact draws from the posterior
under the ordering constraint, so no information is lost. A per-state prior
(one value per state, or a held-fixed array) refers to that sorted order:
each chain's EM start is sorted before sampling, so every chain samples the
labelling the prior describes (see :func:`prepare_start`). When the sorting
key is itself held fixed, its given order is kept and draws are not sorted.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp

from ._random import child_generator
from ._validation import Interval, Options
from .inference import _gibbs, _hmm
from .inference._gaussian import sample_components

__all__ = ["MCMC_CONSTRAINTS", "MCMC_PARAMS_DOC", "MCMC_ATTRIBUTES_DOC"]

MCMC_CONSTRAINTS = {
    "sampler": [None, Options("gibbs", "nuts")],
    "n_chains": [Interval("int", 1, None)],
    "n_draws": [Interval("int", 1, None)],
    "n_warmup": [Interval("int", 0, None)],
    "prior": [None, dict],
}

MCMC_PARAMS_DOC = """\
    sampler : {None, "gibbs", "nuts"}, default=None
        Fully Bayesian fit by MCMC. ``"gibbs"``: blocked Gibbs with conjugate
        priors (latents drawn exactly given the parameters, then parameters
        from their conjugate conditionals; compiled, chains in sequence).
        ``"nuts"``: Pyro's NUTS on the marginal likelihood with the latents
        summed out analytically; accepts non-conjugate priors. ``None``: a
        point (EM) or variational fit. See :ref:`bayesian-fits`.
    n_chains : int, default=4
        Independent chains, each started from its own EM fit.
    n_draws : int, default=1000
        Draws kept per chain.
    n_warmup : int, default=1000
        Draws discarded per chain (NUTS adapts its step size and mass matrix
        during them).
    prior : dict, optional
        Prior hyper-parameters; missing entries take weakly informative
        defaults (see :ref:`bayesian-fits`). An entry named after a parameter
        array may be ``pyro.distributions.Delta(value)``, which holds that
        array fixed (both samplers), or, with ``sampler="nuts"``, any
        ``torch``/``pyro`` distribution over it. Per-state values refer to
        the states in the reported (sorted) order. Anything else raises a
        ``ValueError`` naming what the entry accepts."""

MCMC_ATTRIBUTES_DOC = """\
    draws_ : dict of str to ndarray or None
        MCMC fits: the parameter draws, each ``(n_chains, n_draws, ...)``,
        relabelled by ordering (see Notes); ``None`` otherwise.
    sample_stats_ : dict of str to ndarray or None
        MCMC fits: per-draw sampler statistics ``(n_chains, n_draws)``:
        ``total_log_likelihood`` (``log p(X | draw)``, both engines), ``diverging``, ``acceptance_rate``
        and ``step_size`` (NUTS); ``None`` otherwise.
    prior_ : dict or None
        MCMC fits: the prior actually used (defaults filled in); ``None`` otherwise."""


class Layout(NamedTuple):
    """How a family's parameters map onto the shared kernels."""

    family: int  # _gibbs.DIAG, FULL, POISSON or CATEGORICAL
    hmm: bool
    pi: str  # "weights" or "startprob"
    loc: str  # "means", "lambdas" or "emissionprob"
    scale: str | None  # "covariances" / "covars" (Gaussian) or None


# -- priors ---------------------------------------------------------------------------
def _hyper_keys(layout: Layout) -> tuple[str, ...]:
    """Entries that take numbers only: hyper-parameters of the conjugate emission prior."""
    if layout.family in (_gibbs.DIAG, _gibbs.FULL):
        return ("mean", "mean_precision", "dof", "scale")
    if layout.family == _gibbs.POISSON:
        return ("rate_shape", "rate_rate")
    return ()


def _array_keys(layout: Layout) -> tuple[str, ...]:
    """Entries named after a parameter array (a distribution over it, or a Dirichlet concentration)."""
    keys = [layout.pi] + (["transmat"] if layout.hmm else []) + [layout.loc]
    return tuple(keys + ([layout.scale] if layout.scale is not None else []))


def _simplex_keys(layout: Layout) -> tuple[str, ...]:
    """Array entries on a simplex: a number there is the concentration of their Dirichlet prior."""
    keys = [layout.pi] + (["transmat"] if layout.hmm else [])
    return tuple(keys + ([layout.loc] if layout.family == _gibbs.CATEGORICAL else []))


def _prior_keys(layout: Layout) -> tuple[str, ...]:
    return _array_keys(layout) + _hyper_keys(layout)


def _is_distribution(value: Any) -> bool:
    return hasattr(value, "log_prob") and hasattr(value, "support")


def _point_mass(value: Any) -> np.ndarray | None:
    """Return the value of a ``pyro.distributions.Delta`` (also under ``to_event``, ``expand``, transforms) or None."""
    if not _is_distribution(value):
        return None
    from pyro.distributions import Delta
    from pyro.distributions.torch_distribution import ExpandedDistribution
    from torch.distributions import Independent, TransformedDistribution

    transforms = []
    d = value
    while not isinstance(d, Delta):
        if isinstance(d, TransformedDistribution):
            transforms = list(d.transforms) + transforms
        elif not isinstance(d, Independent | ExpandedDistribution):
            return None
        d = d.base_dist
    v = d.v.detach()
    for t in transforms:
        v = t(v)
    return v.cpu().numpy().astype(np.float64)


def _shapes(layout: Layout, K: int, D: int, n_symbols: int) -> dict[str, tuple[int, ...]]:
    """Shape of each parameter array, as in ``draws_`` (without the chain and draw axes)."""
    shapes = {layout.pi: (K,)}
    if layout.hmm:
        shapes["transmat"] = (K, K)
    if layout.family == _gibbs.CATEGORICAL:
        shapes[layout.loc] = (K, n_symbols)
    else:
        shapes[layout.loc] = (K, D)
    if layout.scale is not None:
        shapes[layout.scale] = (K, D, D) if layout.family == _gibbs.FULL else (K, D)
    return shapes


def _check_fixed(name: str, key: str, value: np.ndarray, shape: tuple[int, ...], simplex: bool,
                 positive: bool) -> np.ndarray:
    """Broadcast a held-fixed value to its array's shape and check it lies in the array's support."""
    where = f"prior['{key}'] of {name} is a point mass (Delta)"
    try:
        arr = np.broadcast_to(value, shape).astype(np.float64)
    except ValueError:
        raise ValueError(f"{where} whose value must broadcast to the {key} array's shape {shape}; got shape "
                         f"{np.shape(value)}.") from None
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{where} whose value must be finite; got {value!r}.")
    if simplex:
        total = arr.sum(axis=-1, keepdims=True)
        if np.any(arr < 0) or not np.allclose(total, 1.0, rtol=0, atol=1e-6):
            raise ValueError(f"{where} whose value must be probabilities (non-negative, each row summing to 1); "
                             f"got {value!r}.")
        arr = arr / total
    elif positive:
        if arr.ndim == 3:  # full covariance matrices
            ok = np.allclose(arr, np.swapaxes(arr, -1, -2)) and np.all(np.linalg.eigvalsh(arr) > 0)
            what = "symmetric positive definite matrices"
        else:
            ok, what = bool(np.all(arr > 0)), "positive"
        if not ok:
            raise ValueError(f"{where} whose value must be {what}; got {value!r}.")
    return arr


def resolve_prior(model: Any, layout: Layout, X: np.ndarray, n_symbols: int) -> tuple[dict, dict, dict]:
    """Fill in defaults and check every entry.

    Returns ``(hyper, distributions, fixed)``: the conjugate hyper-parameters
    as kernel arrays, the user's distributions by parameter array (NUTS), and
    the arrays held fixed by a ``Delta`` prior (public shapes).
    """
    name = type(model).__name__
    user = dict(model.prior or {})
    allowed = _prior_keys(layout)
    unknown = sorted(repr(k) for k in user if k not in allowed)
    if unknown:
        raise ValueError(f"prior of {name} has unknown entries [{', '.join(unknown)}]; allowed: {list(allowed)}.")
    K = model.n_components
    N, D = X.shape
    shapes = _shapes(layout, K, D, n_symbols)
    fixed, dists = {}, {}
    for key, value in user.items():
        if key in _hyper_keys(layout):
            if _is_distribution(value):
                array = layout.loc if key in ("mean", "rate_shape", "rate_rate") else layout.scale
                raise ValueError(
                    f"prior['{key}'] of {name} is a hyper-parameter of the conjugate prior and takes numbers; got a "
                    f"distribution. A distribution over a parameter array goes under that array's name, here "
                    f"prior['{array}'] (sampler='nuts').")
            continue
        point = _point_mass(value)
        if point is not None:
            fixed[key] = _check_fixed(name, key, point, shapes[key], key in _simplex_keys(layout),
                                      key in (layout.scale, "lambdas"))
        elif _is_distribution(value):
            dists[key] = value
        elif key not in _simplex_keys(layout):
            numbers = {"means": "'mean' (the location) and 'mean_precision'",
                       "lambdas": "'rate_shape' and 'rate_rate'"}.get(key, "'dof' and 'scale'")
            raise ValueError(
                f"prior['{key}'] of {name} takes a distribution over the {key} array of shape {shapes[key]}: a "
                f"torch/pyro distribution (sampler='nuts'), or pyro.distributions.Delta(value) to hold the array "
                f"fixed (either sampler); got {value!r}. Numbers set its conjugate prior through {numbers}.")
    if dists and model.sampler == "gibbs":
        raise ValueError(f"prior entries {sorted(dists)} of {name} are distributions; the Gibbs sampler needs "
                         "conjugate hyper-parameters (or a pyro.distributions.Delta, which holds an array fixed). "
                         "Use sampler='nuts' for other priors.")
    replaced = {layout.loc: ("mean", "mean_precision", "rate_shape", "rate_rate"), layout.scale: ("dof", "scale")}
    for array, hypers in replaced.items():
        unused = [k for k in hypers if k in user] if array in dists or array in fixed else []
        if unused:
            raise ValueError(f"prior entries {unused} of {name} would be unused: prior['{array}'] replaces the "
                             f"conjugate prior they parametrise. Drop them, or drop prior['{array}'].")
    if len(fixed) == len(shapes):
        raise ValueError(f"prior of {name} holds every parameter array fixed ({sorted(fixed)}); nothing is left "
                         "to sample.")

    def floats(key, value):
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"prior['{key}'] of {name} must be a number or an array of numbers; "
                             f"got {value!r}.") from None

    def number(key, default, shape, *, positive=True):
        value = user.get(key, default)
        if _is_distribution(value):
            value = default
        arr = floats(key, value)
        try:
            arr = np.broadcast_to(arr, shape).copy()
        except ValueError:
            raise ValueError(f"prior['{key}'] of {name} must be a scalar or have shape {shape}; "
                             f"got shape {np.shape(value)}.") from None
        if not np.all(np.isfinite(arr)) or (positive and not np.all(arr > 0)):
            raise ValueError(f"prior['{key}'] of {name} must be finite"
                             f"{' and positive' if positive else ''}; got {value!r}.")
        return arr

    hyper = {"alpha_pi": number(layout.pi, 1.0, (K,)),
             "alpha_A": number("transmat", 1.0, (K, K)) if layout.hmm else np.ones((K, K)),
             "m0": np.zeros(D), "kappa0": 1.0, "nu0": 1.0, "psi0": np.eye(D),
             "a0": np.ones(D), "b0": np.ones(D), "alpha_emit": np.ones(max(n_symbols, 1))}
    if layout.family in (_gibbs.DIAG, _gibbs.FULL):
        var = np.var(X, axis=0)
        var = np.where(var > 0, var, 1.0)
        hyper["m0"] = number("mean", X.mean(axis=0), (D,), positive=False)
        hyper["kappa0"] = float(number("mean_precision", 0.01, ()))
        hyper["nu0"] = float(number("dof", D + 2.0, ()))
        if hyper["nu0"] <= D - 1:
            raise ValueError(f"prior['dof'] must exceed n_features - 1 = {D - 1}; got {hyper['nu0']}.")
        scale = floats("scale", user.get("scale", var / K**2))
        if scale.ndim < 2:
            try:
                scale = np.diag(np.broadcast_to(scale, (D,)))
            except ValueError:
                raise ValueError(f"prior['scale'] of {name} must be a scalar, a vector of length "
                                 f"{D} or a ({D}, {D}) matrix; got shape {scale.shape}.") from None
        if scale.shape != (D, D):
            raise ValueError(f"prior['scale'] of {name} must be a scalar, a vector of length {D} "
                             f"or a ({D}, {D}) matrix; got shape {scale.shape}.")
        psi0 = np.array(scale, dtype=np.float64)
        if not np.all(np.isfinite(psi0)) or not np.allclose(psi0, psi0.T) or not np.all(
                np.linalg.eigvalsh(psi0) > 0):
            raise ValueError("prior['scale'] must be finite, symmetric and positive definite (a positive scalar, "
                             "vector or matrix).")
        hyper["psi0"] = psi0
    elif layout.family == _gibbs.POISSON:
        mean = X.mean(axis=0)
        hyper["a0"] = number("rate_shape", 1.0, (D,))
        hyper["b0"] = number("rate_rate", 1.0 / np.where(mean > 0, mean, 1.0), (D,))
    else:
        hyper["alpha_emit"] = number(layout.loc, 1.0, (n_symbols,))
    return hyper, dists, fixed


# -- conversions between public parameter dicts and the kernels' arrays ----------------------
def to_kernel(layout: Layout, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Public parameters of one draw -> kernel state ``pi, A, loc, scale`` (float64 copies)."""
    pi = np.array(p[layout.pi], dtype=np.float64)
    K = pi.shape[0]
    A = np.array(p["transmat"], dtype=np.float64) if layout.hmm else np.full((K, K), 1.0 / K)
    loc = np.array(p[layout.loc], dtype=np.float64)
    if layout.scale is None:
        scale = np.ones((K, 1, 1))
    else:
        s = np.asarray(p[layout.scale], dtype=np.float64)
        scale = s[..., None] * np.eye(s.shape[-1]) if s.ndim == 2 else np.array(s)
    return {"pi": pi, "A": A, "loc": loc, "scale": scale}


def from_kernel(layout: Layout, out: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Kernel arrays with leading draw axes -> public parameter dict."""
    p = {layout.pi: out["pi"], layout.loc: out["loc"]}
    if layout.hmm:
        p["transmat"] = out["A"]
    if layout.scale is not None:
        scale = out["scale"]
        p[layout.scale] = np.diagonal(scale, axis1=-2, axis2=-1).copy() if layout.family == _gibbs.DIAG else scale
    return p


def _order_key(layout: Layout, p: dict[str, np.ndarray]) -> np.ndarray:
    loc = p[layout.loc]
    if layout.family == _gibbs.CATEGORICAL:
        return loc @ np.arange(loc.shape[-1], dtype=np.float64)
    return loc[..., 0]


def permute(layout: Layout, p: dict[str, np.ndarray], perm: np.ndarray) -> dict[str, np.ndarray]:
    """Reorder the states of every array: new state ``k`` is old state ``perm[..., k]``.

    ``perm`` has the leading (draw) axes of ``p`` plus the state axis; the
    transition matrix is permuted along rows and columns.
    """
    lead = perm.ndim - 1
    out = {}
    for name, arr in p.items():
        idx = perm.reshape(perm.shape + (1,) * (arr.ndim - lead - 1))
        moved = np.take_along_axis(arr, idx, axis=lead)
        if name == "transmat":
            moved = np.take_along_axis(moved, perm[..., None, :], axis=lead + 1)
        out[name] = moved
    return out


def relabel(layout: Layout, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sort the states of every draw by the ordering key (leading axes are draw axes)."""
    return permute(layout, p, np.argsort(_order_key(layout, p), axis=-1, kind="stable"))


def flat_draws(model: Any) -> dict[str, np.ndarray]:
    """``draws_`` with chains and draws merged into one leading axis."""
    return {k: v.reshape((-1,) + v.shape[2:]) for k, v in model.draws_.items()}


def draw(params: dict[str, np.ndarray], s: int) -> dict[str, np.ndarray]:
    """Parameter draw ``s`` of a dict with one leading draw axis."""
    return {k: v[s] for k, v in params.items()}


def frames(layout: Layout, X: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """Emission log-likelihoods (N, K) of one parameter draw."""
    k = to_kernel(layout, p)
    X = np.ascontiguousarray(X, dtype=np.float64)
    const = _gibbs.frame_constant(layout.family, X)
    out = np.empty((X.shape[0], k["pi"].shape[0]))
    _gibbs._frames(layout.family, X, k["loc"], k["scale"], const, out)
    return out


def emit(layout: Layout, p: dict[str, np.ndarray], states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One observation per entry of ``states`` under parameter draw ``p``."""
    if layout.family in (_gibbs.DIAG, _gibbs.FULL):
        return sample_components(p[layout.loc], to_kernel(layout, p)["scale"], "full", states, rng)
    if layout.family == _gibbs.POISSON:
        return rng.poisson(p[layout.loc][states]).astype(np.int64)
    cdf = np.cumsum(p[layout.loc], axis=1)[states]
    u = rng.random(len(states))[:, None] * cdf[:, -1:]
    return (u >= cdf[:, :-1]).sum(axis=1, keepdims=True).astype(np.int64)


# -- fitting ---------------------------------------------------------------------------------
def check_request(model: Any, X: np.ndarray, layout: Layout) -> None:
    """Reject settings the engines do not cover, with the reason."""
    name = type(model).__name__
    if getattr(model, "bayesian", False):
        raise ValueError(f"{name}: choose one Bayesian fit: bayesian=True (variational) or sampler="
                         f"{model.sampler!r} (MCMC), not both.")
    if np.isnan(X).any():
        raise ValueError(f"{name}(sampler={model.sampler!r}).fit needs complete data; X has missing values (NaN). "
                         "Fit with sampler=None (EM marginalises them).")
    if layout.scale is not None and getattr(model, "covariance_type", "full") not in ("full", "diag"):
        raise ValueError(f"{name}(sampler={model.sampler!r}) supports covariance_type 'full' or 'diag'; got "
                         f"{model.covariance_type!r}.")
    if model.sampler == "nuts" and layout.family == _gibbs.FULL and X.shape[1] > 1:
        raise ValueError(f"{name}(sampler='nuts') supports covariance_type='diag' (or 'full' with one feature); "
                         f"got 'full' with {X.shape[1]} features. Use sampler='gibbs' for full covariances.")
    n_symbols = 0
    if layout.family == _gibbs.CATEGORICAL:
        n_symbols = getattr(model, "n_symbols", None) or int(np.max(X, initial=0)) + 1
    resolve_prior(model, layout, X, n_symbols)  # a bad prior fails here, before the EM fits


def fit(model: Any, X: np.ndarray, lengths: np.ndarray | None, rng: np.random.Generator) -> None:
    """Run the requested engine; set ``draws_``, ``sample_stats_``, ``prior_`` and the point estimates.

    The family calls :func:`check_request` first, before its EM fit.
    """
    layout = model._mcmc_layout()
    n_symbols = 0
    starts = []
    for _ in range(model.n_chains):  # each chain starts from its own EM fit
        starts.append(model._mcmc_em_start(X, lengths, child_generator(rng)))
    if layout.family == _gibbs.CATEGORICAL:
        n_symbols = starts[0][layout.loc].shape[1]
    hyper, dists, fixed = resolve_prior(model, layout, X, n_symbols)
    starts = [prepare_start(layout, start, fixed, X) for start in starts]
    bounds = _hmm.sequence_bounds(lengths, X.shape[0]) if layout.hmm else np.array([0, X.shape[0]])
    if model.sampler == "gibbs":
        draws, stats = _run_gibbs(model, layout, X, bounds, hyper, fixed, starts, rng)
    else:
        draws, stats = _run_nuts(model, layout, X, bounds, hyper, dists, fixed, starts, rng)
    model.draws_ = draws if layout.loc in fixed else relabel(layout, draws)
    model.sample_stats_ = stats
    user_dists = {k: v for k, v in (model.prior or {}).items() if _is_distribution(v)}
    model.prior_ = {**_public_hyper(layout, hyper), **user_dists}  # a distribution replaces the conjugate entry
    model._mcmc_set_point({k: v.mean(axis=(0, 1)) for k, v in model.draws_.items()})


#: Weight of the uniform distribution mixed into simplex starts, and floor of positive starts relative to the
#: data's scale: an EM start on a simplex corner or at zero lies at infinity in unconstrained coordinates.
_INTERIOR = 1e-3


def prepare_start(layout: Layout, start: dict[str, np.ndarray], fixed: dict[str, np.ndarray],
                  X: np.ndarray) -> dict[str, np.ndarray]:
    """One chain's start: its EM fit in the reported state order, fixed arrays set, moved off the boundary.

    The reported order sorts states by the ordering key, and a per-state prior
    (state ``k`` of a prior entry) means state ``k`` of that order, so the
    start is sorted the same way before sampling. When the key array itself
    is held fixed, its given order is the reported order and the EM states
    are matched to it by the rank of their keys.
    """
    start = {k: np.array(v, dtype=np.float64) for k, v in start.items()}
    if layout.loc in fixed:
        perm = np.empty(start[layout.pi].shape[0], dtype=np.int64)
        perm[np.argsort(_order_key(layout, fixed), kind="stable")] = np.argsort(_order_key(layout, start),
                                                                                 kind="stable")
        start = permute(layout, start, perm)
    else:
        start = relabel(layout, start)
    for name in _simplex_keys(layout):
        if name not in fixed:
            p = np.clip(start[name], 0.0, None)
            p /= p.sum(axis=-1, keepdims=True)
            start[name] = (1.0 - _INTERIOR) * p + _INTERIOR / p.shape[-1]
    if layout.family == _gibbs.POISSON and layout.loc not in fixed:
        mean = X.mean(axis=0)
        start[layout.loc] = np.maximum(start[layout.loc], _INTERIOR * np.where(mean > 0, mean, 1.0))
    if layout.scale is not None and layout.scale not in fixed:
        var = np.var(X, axis=0)
        floor = _INTERIOR * np.where(var > 0, var, 1.0)
        cov = start[layout.scale]
        if cov.ndim == 2:  # variances (diag)
            start[layout.scale] = np.maximum(cov, floor)
        else:
            low = np.linalg.eigvalsh(cov)[:, :1, None]
            start[layout.scale] = cov + np.maximum(floor.min() - low, 0.0) * np.eye(cov.shape[-1])
    start.update({k: v.copy() for k, v in fixed.items()})
    return start


def _public_hyper(layout: Layout, hyper: dict) -> dict:
    out = {layout.pi: hyper["alpha_pi"]}
    if layout.hmm:
        out["transmat"] = hyper["alpha_A"]
    if layout.family in (_gibbs.DIAG, _gibbs.FULL):
        out.update(mean=hyper["m0"], mean_precision=hyper["kappa0"], dof=hyper["nu0"], scale=hyper["psi0"])
    elif layout.family == _gibbs.POISSON:
        out.update(rate_shape=hyper["a0"], rate_rate=hyper["b0"])
    else:
        out[layout.loc] = hyper["alpha_emit"]
    return out


_CHUNK = 100  # sweeps per compiled call (progress bar granularity; part of what a seed reproduces)


def _run_gibbs(model, layout, X, bounds, hyper, fixed, starts, rng):
    bar = None
    total = model.n_chains * (model.n_warmup + model.n_draws)
    if getattr(model, "progress", False):
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc="Gibbs", unit="sweep", leave=False)
    kernel_name = {layout.pi: "pi", "transmat": "A", layout.loc: "loc", layout.scale: "scale"}
    frozen = tuple(kernel_name[k] for k in fixed)
    chains = []
    try:
        for c in range(model.n_chains):
            state = to_kernel(layout, starts[c])
            seed = int(rng.integers(0, 2**31 - 1))
            parts = []
            done, n_total = 0, model.n_warmup + model.n_draws
            while done < n_total:
                step = min(_CHUNK, n_total - done)
                keep = max(0, done + step - model.n_warmup) - max(0, done - model.n_warmup)
                parts.append(_gibbs.run_chain(layout.family, layout.hmm, X, bounds, hyper, state, step, keep,
                                              seed if done == 0 else -1, frozen))
                done += step
                if bar is not None:
                    bar.set_postfix(chain=c + 1)
                    bar.update(step)
            chains.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    finally:
        if bar is not None:
            bar.close()
    stacked = {k: np.stack([ch[k] for ch in chains]) for k in chains[0]}
    stats = {"total_log_likelihood": stacked.pop("log_likelihood")}
    return from_kernel(layout, stacked), stats


def _run_nuts(model, layout, X, bounds, hyper, dists, fixed, starts, rng):
    import torch

    from .inference import _nuts

    sites = [s for s in _nuts_sites(layout, X, hyper, dists, model.n_components, starts[0]) if s.name not in fixed]

    def site_value(name, v):  # full covariances with one feature are sampled as (K, 1) variances
        return v[..., 0] if name == layout.scale and v.ndim == 3 else v

    constants = {k: torch.as_tensor(site_value(k, v), dtype=torch.float64) for k, v in fixed.items()}
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float64)
    if layout.family == _gibbs.POISSON:
        const = torch.lgamma(Xt + 1.0).sum(dim=1, keepdim=True)
    sym = torch.as_tensor(X[:, 0].astype(np.int64)) if layout.family == _gibbs.CATEGORICAL else None

    def torch_frames(v):
        if layout.family == _gibbs.CATEGORICAL:
            return torch.log(v[layout.loc]).T[sym]
        if layout.family == _gibbs.POISSON:
            lam = v[layout.loc]
            return Xt @ torch.log(lam).T - lam.sum(dim=1) - const
        mu, var = v[layout.loc], v[layout.scale]
        diff = Xt[:, None, :] - mu[None]
        return -0.5 * (torch.log(2 * np.pi * var).sum(dim=1) + (diff * diff / var[None]).sum(dim=2))

    def log_likelihood(v):
        f = torch_frames(v)
        if layout.hmm:
            return _nuts.hmm_log_likelihood(torch.log(v[layout.pi]), torch.log(v["transmat"]), f, bounds)
        return torch.logsumexp(torch.log(v[layout.pi]) + f, dim=1).sum()

    inits = [{s.name: site_value(s.name, start[s.name]) for s in sites} for start in starts]
    _check_user_priors(type(model).__name__, sites, dists, inits, constants)
    draws, stats = _nuts.run_nuts(sites, log_likelihood, inits, model.n_warmup, model.n_draws, rng,
                                  progress=getattr(model, "progress", False), constants=constants)
    if layout.family == _gibbs.FULL and layout.scale in draws:
        draws[layout.scale] = draws[layout.scale][..., None]  # (K, 1) variances -> (K, 1, 1) covariances
    for k, v in fixed.items():  # held fixed: repeated in every draw
        draws[k] = np.broadcast_to(v, (model.n_chains, model.n_draws) + v.shape).copy()
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
    ll = np.array([_total_log_likelihood(layout, X, bounds, draw(flat, s)) for s in range(len(flat[layout.pi]))])
    stats["total_log_likelihood"] = ll.reshape(model.n_chains, model.n_draws)
    return draws, stats


def _check_user_priors(name, sites, dists, inits, constants):
    """Score every user distribution at every chain's start: a clear error for a wrong shape or support."""
    import torch

    for c, init in enumerate(inits):
        values = {**constants, **{k: torch.as_tensor(v, dtype=torch.float64) for k, v in init.items()}}
        for site in sites:
            if site.name not in dists:
                continue
            d = dists[site.name]
            shape = tuple(getattr(d, "batch_shape", ())) + tuple(getattr(d, "event_shape", ()))
            try:
                ok = np.broadcast_shapes(shape, site.shape) == site.shape
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"prior['{site.name}'] of {name} has shape {shape} (batch and event), which does "
                                 f"not broadcast to the {site.name} array's shape {site.shape}.")
            try:
                lp = float(site.log_prior(values[site.name], values))
            except Exception as err:  # torch raises RuntimeError/ValueError for shapes, ValueError for support
                raise ValueError(f"prior['{site.name}'] of {name} cannot score the start of chain {c} (the "
                                 f"chain's EM fit; the {site.name} array has shape {site.shape} and support "
                                 f"{site.constraint}): {err}") from None
            if not np.isfinite(lp):
                raise ValueError(f"prior['{site.name}'] of {name} gives zero density to the start of chain {c} "
                                 f"({site.name} = {np.round(init[site.name], 4).tolist()}, the chain's EM fit); its "
                                 f"support must cover the {site.constraint} values the {site.name} array can take.")


def _total_log_likelihood(layout, X, bounds, p):
    f = frames(layout, X, p)
    if layout.hmm:
        return float(_hmm.forward_backward(p[layout.pi], p["transmat"], f, np.diff(bounds)).log_likelihood.sum())
    with np.errstate(divide="ignore"):
        return float(logsumexp(np.log(p[layout.pi]) + f, axis=1).sum())


def _nuts_sites(layout, X, hyper, dists, K, start):
    import pyro.distributions as pdist
    import torch

    from .inference._nuts import Site

    def t(a):
        return torch.as_tensor(np.array(a, dtype=np.float64))

    def pick(name, default):
        return dists.get(name, default)

    sites = [Site(layout.pi, (K,), "simplex", pick(layout.pi, pdist.Dirichlet(t(hyper["alpha_pi"]))))]
    if layout.hmm:
        sites.append(Site("transmat", (K, K), "simplex", pick("transmat", pdist.Dirichlet(t(hyper["alpha_A"])))))
    D = X.shape[1]
    if layout.family in (_gibbs.DIAG, _gibbs.FULL):
        psi = t(np.diag(hyper["psi0"]))
        m0, kappa0 = t(hyper["m0"]), float(hyper["kappa0"])
        var_prior = pick(layout.scale, pdist.InverseGamma(t(0.5 * hyper["nu0"]) * torch.ones(D), 0.5 * psi))

        def conditional_mean_prior(value, values):  # mu | sigma^2 ~ N(m0, sigma^2 / kappa0)
            return pdist.Normal(m0, torch.sqrt(values[layout.scale] / kappa0)).log_prob(value).sum()

        sites.append(Site(layout.scale, (K, D), "positive", var_prior))
        sites.append(Site(layout.loc, (K, D), "real", pick(layout.loc, conditional_mean_prior)))
    elif layout.family == _gibbs.POISSON:
        sites.append(Site(layout.loc, (K, D), "positive",
                          pick(layout.loc, pdist.Gamma(t(hyper["a0"]), t(hyper["b0"])))))
    else:
        sites.append(Site(layout.loc, np.shape(start[layout.loc]), "simplex",
                          pick(layout.loc, pdist.Dirichlet(t(hyper["alpha_emit"])))))
    return sites


# -- what fitted MCMC models answer ------------------------------------------------------------
def posterior(model: Any, X: np.ndarray, lengths: np.ndarray | None):
    """:class:`~probspace.posteriors.FiniteMixture` over every parameter draw (chains merged)."""
    from .posteriors import Categorical, MarkovChain
    from .posteriors._mixture import FiniteMixture

    layout = model._mcmc_layout()
    params = flat_draws(model)

    def component(s):
        p = draw(params, s)
        f = frames(layout, X, p)
        if layout.hmm:
            return MarkovChain(p[layout.pi], p["transmat"], f, lengths)
        with np.errstate(divide="ignore"):
            logp = np.log(p[layout.pi]) + f
        logp -= logsumexp(logp, axis=1, keepdims=True)
        return Categorical._trusted(np.exp(logp), "exact")

    return FiniteMixture(component, params[layout.pi].shape[0])


def pointwise_log_likelihood(model: Any, X: np.ndarray, lengths: np.ndarray | None,
                             params: dict[str, np.ndarray]) -> np.ndarray:
    """``(n_draws, n_obs)``: per observation (mixtures) or one-step-ahead per frame (HMMs)."""
    layout = model._mcmc_layout()
    n = params[layout.pi].shape[0]
    out = np.empty((n, X.shape[0]))
    for s in range(n):
        p = draw(params, s)
        f = frames(layout, X, p)
        if layout.hmm:
            out[s] = _hmm.forward_backward(p[layout.pi], p["transmat"], f, lengths).log_predictive
        else:
            with np.errstate(divide="ignore"):
                out[s] = logsumexp(np.log(p[layout.pi]) + f, axis=1)
    return out


def log_likelihood(model: Any, X: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """Log posterior predictive density of each observation (sequence): ``log mean_s p(x | theta_s)``."""
    layout = model._mcmc_layout()
    params = flat_draws(model)
    n = params[layout.pi].shape[0]
    if layout.hmm:
        per = np.array([_hmm.forward_backward(params[layout.pi][s], params["transmat"][s],
                                              frames(layout, X, draw(params, s)), lengths).log_likelihood
                        for s in range(n)])
    else:
        per = pointwise_log_likelihood(model, X, lengths, params)
    return logsumexp(per, axis=0) - np.log(n)


def sample(model: Any, n_samples: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Generate from one parameter draw picked at random (the posterior predictive of a data set)."""
    layout = model._mcmc_layout()
    params = flat_draws(model)
    p = draw(params, int(rng.integers(0, params[layout.pi].shape[0])))
    if layout.hmm:
        states = _hmm.sample_chain(p[layout.pi], p["transmat"], n_samples, rng)
    else:
        from .posteriors._categorical import sample_categorical

        states = sample_categorical(p[layout.pi][None, :], n_samples, rng)[:, 0]
    return emit(layout, p, states, rng), states


def sample_parameters(model: Any, n_samples: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Draws picked uniformly at random (with replacement) from all chains."""
    params = flat_draws(model)
    n = next(iter(params.values())).shape[0]
    idx = rng.integers(0, n, size=n_samples)
    return {k: v[idx] for k, v in params.items()}


def posterior_predictive(model: Any, X: np.ndarray, latents: np.ndarray, params: dict[str, np.ndarray],
                         rng: np.random.Generator) -> np.ndarray:
    """Replicated data: draw ``s`` emits from latent draw ``s`` under parameter draw ``s``."""
    layout = model._mcmc_layout()
    out = [emit(layout, draw(params, s), latents[s].astype(np.int64), rng) for s in range(latents.shape[0])]
    return np.stack(out)


def forecast(model: Any, X: np.ndarray, lengths: np.ndarray | None, n_steps: int, n_samples: int,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Continuations of the last sequence, each under its own parameter draw picked at random."""
    layout = model._mcmc_layout()
    params = flat_draws(model)
    which = rng.integers(0, params[layout.pi].shape[0], size=n_samples)
    obs, states = None, np.empty((n_samples, n_steps), dtype=np.int64)
    for s in np.unique(which):
        where = np.flatnonzero(which == s)
        p = draw(params, s)
        last = _hmm.forward_backward(p[layout.pi], p["transmat"], frames(layout, X, p), lengths).filtered[-1]
        pred = last @ p["transmat"]
        z = _hmm.sample_chain(np.broadcast_to(pred, (where.size, pred.size)), p["transmat"], n_steps, rng)
        x = emit(layout, p, z.ravel(), rng).reshape(where.size, n_steps, -1)
        if obs is None:
            obs = np.empty((n_samples, n_steps, x.shape[-1]), dtype=x.dtype)
        obs[where], states[where] = x, z
    return obs, states
