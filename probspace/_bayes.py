"""Fully Bayesian fits of mixtures and HMMs by MCMC (blocked Gibbs or NUTS), as an object.

A model is a :class:`Structure`: an emission component
(:mod:`probspace.emissions`) plus either independent labels (a finite
mixture, weights ``"weights"``) or a Markov chain (an HMM, ``"startprob"``
and ``"transmat"``). :meth:`MCMC.run` takes the structure, the data, one
start per chain (the family's EM fits) and the sampler settings, and returns
the fitted engine: chains of parameter draws, per-draw statistics and the
prior used. The engine answers what a fitted family is asked (posterior,
log-likelihood, sampling, forecasts, parameter draws, the pointwise
log-likelihood and posterior predictive of the ArviZ bridge) for any
emission, so families hold one ``mcmc_`` object and never branch on how they
were fitted; :class:`PlugIn` answers the same questions at one parameter
point (EM and variational HMM fits). Nothing here knows which emission it
holds, and nothing here calls back into a family.

Label switching: mixture and HMM likelihoods do not change when states are
permuted, so chains can visit permuted copies of one mode. Every draw is
relabelled by sorting its states by the emission's scalar key: the first
feature of the mean (Gaussian), the first rate (Poisson), or the mean symbol
index (categorical). Under an exchangeable prior, sorted draws are exact
draws from the posterior under the ordering constraint, so no information is
lost. A per-state prior (one value per state, or a held-fixed array) refers
to that sorted order: each chain's EM start is sorted before sampling, so
every chain samples the labelling the prior describes (see
:func:`prepare_start`). When the sorting key is itself held fixed, its given
order is kept and draws are not sorted.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
from scipy.special import logsumexp

from ._validation import Interval, Options
from .emissions._base import Emission, PriorReader, dirichlet_log_density, is_distribution
from .inference import _gibbs, _hmm
from .inference._progress import progress_bar
from .inference._threads import map_blocks

__all__ = ["MCMC", "MCMC_ATTRIBUTES_DOC", "MCMC_CONSTRAINTS", "MCMC_PARAMS_DOC", "PlugIn", "Structure"]

MCMC_CONSTRAINTS = {
    "sampler": [None, Options("gibbs", "nuts", "nuts-pyro")],
    "n_chains": [Interval("int", 1, None)],
    "n_draws": [Interval("int", 1, None)],
    "n_warmup": [Interval("int", 0, None)],
    "prior": [None, dict],
}

MCMC_PARAMS_DOC = """\
    sampler : {None, "gibbs", "nuts", "nuts-pyro"}, default=None
        Fully Bayesian fit by MCMC. ``"gibbs"``: blocked Gibbs with conjugate
        priors (latents drawn exactly given the parameters, then parameters
        from their conjugate conditionals; compiled, chains in sequence).
        ``"nuts"``: NUTS on the marginal likelihood with the latents summed
        out analytically: probspace's compiled NUTS (exact closed-form
        gradients, chains on parallel threads) where it covers the model,
        Pyro's NUTS for a torch-distribution prior (non-conjugate priors) or
        entries held by ``fixed``/``topology``.
        ``"nuts-pyro"``: always Pyro's NUTS. ``None``: a point (EM) or
        variational fit. See :ref:`bayesian-fits`.
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
        ``total_log_likelihood`` (``log p(X | draw)``, both engines), ``lp`` (Gibbs: the log joint
        ``log p(X | draw) + log p(draw)`` under the conjugate prior used, constrained scale),
        ``diverging``, ``acceptance_rate``, ``step_size`` and ``energy`` (NUTS; compiled NUTS also
        ``tree_depth`` and ``n_steps``); ``None`` otherwise.
    prior_ : dict or None
        MCMC fits: the prior actually used (defaults filled in); ``None`` otherwise.
    mcmc_ : probspace._bayes.MCMC or None
        MCMC fits: the fitted engine (chains, draws, statistics, prior) that
        answers the posterior, likelihood, sampling and ArviZ questions;
        ``draws_``, ``sample_stats_`` and ``prior_`` read it. ``None`` otherwise."""


class Structure(NamedTuple):
    """What the engines need to know about a family: its emission, and labels or a Markov chain."""

    emission: Emission
    hmm: bool

    @property
    def pi(self) -> str:
        """Name of the label (mixture) or initial-state (HMM) probabilities."""
        return "startprob" if self.hmm else "weights"

    @property
    def arrays(self) -> tuple[str, ...]:
        """Every parameter array, by its public name."""
        return (self.pi, *(("transmat",) if self.hmm else ()), *self.emission.names)

    @property
    def simplex(self) -> tuple[str, ...]:
        """Arrays on a simplex: a number under their name in ``prior`` is a Dirichlet concentration."""
        return (self.pi, *(("transmat",) if self.hmm else ()), *self.emission.simplex)

    def shapes(self, K: int, D: int) -> dict[str, tuple[int, ...]]:
        """Shape of each array, as in ``draws_`` without the chain and draw axes."""
        return {self.pi: (K,), **({"transmat": (K, K)} if self.hmm else {}), **self.emission.shapes(K, D)}


# -- priors ---------------------------------------------------------------------------
def _point_mass(value: Any) -> np.ndarray | None:
    """Return the value of a ``pyro.distributions.Delta`` (also under ``to_event``, ``expand``, transforms) or None."""
    if not is_distribution(value):
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


def resolve_prior(structure: Structure, prior: dict | None, sampler: str, X: np.ndarray, K: int,
                  owner: str) -> tuple[np.ndarray, np.ndarray, dict, dict, dict]:
    """Fill in defaults and check every entry.

    Returns ``(alpha_pi, alpha_A, hyper, distributions, fixed)``: the Dirichlet
    concentrations of the weights and transition rows, the emission's conjugate
    hyper-parameters (public names), the user's distributions by parameter
    array (NUTS), and the arrays held fixed by a ``Delta`` prior.
    """
    em = structure.emission
    user = dict(prior or {})
    allowed = structure.arrays + tuple(em.hyper_keys)
    unknown = sorted(repr(k) for k in user if k not in allowed)
    if unknown:
        raise ValueError(f"prior of {owner} has unknown entries [{', '.join(unknown)}]; allowed: {list(allowed)}.")
    shapes = structure.shapes(K, X.shape[1])
    fixed, dists = {}, {}
    for key, value in user.items():
        if key in em.hyper_keys:
            if is_distribution(value):
                raise ValueError(
                    f"prior['{key}'] of {owner} is a hyper-parameter of the conjugate prior and takes numbers; got a "
                    f"distribution. A distribution over a parameter array goes under that array's name, here "
                    f"prior['{em.hyper_keys[key]}'] (sampler='nuts').")
            continue
        point = _point_mass(value)
        if point is not None:
            fixed[key] = _check_fixed(owner, key, point, shapes[key], key in structure.simplex, key in em.positive)
        elif is_distribution(value):
            dists[key] = value
        elif key not in structure.simplex:
            raise ValueError(
                f"prior['{key}'] of {owner} takes a distribution over the {key} array of shape {shapes[key]}: a "
                f"torch/pyro distribution (sampler='nuts'), or pyro.distributions.Delta(value) to hold the array "
                f"fixed (either sampler); got {value!r}. Numbers set its conjugate prior through "
                f"{em.number_hint(key)}.")
    if dists and sampler == "gibbs":
        raise ValueError(f"prior entries {sorted(dists)} of {owner} are distributions; the Gibbs sampler needs "
                         "conjugate hyper-parameters (or a pyro.distributions.Delta, which holds an array fixed). "
                         "Use sampler='nuts' for other priors.")
    for array in em.names:
        unused = [k for k, a in em.hyper_keys.items() if a == array and k in user]
        if unused and (array in dists or array in fixed):
            raise ValueError(f"prior entries {unused} of {owner} would be unused: prior['{array}'] replaces the "
                             f"conjugate prior they parametrise. Drop them, or drop prior['{array}'].")
    if len(fixed) == len(shapes):
        raise ValueError(f"prior of {owner} holds every parameter array fixed ({sorted(fixed)}); nothing is left "
                         "to sample.")
    reader = PriorReader(user, owner)
    alpha_pi = reader.number(structure.pi, 1.0, (K,))
    alpha_A = reader.number("transmat", 1.0, (K, K)) if structure.hmm else np.ones((K, K))
    return alpha_pi, alpha_A, em.resolve_hyper(reader, X, K), dists, fixed


def check_request(structure: Structure, sampler: str, prior: dict | None, X: np.ndarray, K: int, owner: str,
                  bayesian: bool = False) -> None:
    """Reject settings the engines do not cover, with the reason (called before the EM fits)."""
    if bayesian:
        raise ValueError(f"{owner}: choose one Bayesian fit: bayesian=True (variational) or sampler="
                         f"{sampler!r} (MCMC), not both.")
    if np.isnan(X).any() and not getattr(structure.emission, "nan_by_design", False):  # lagged rows hold NaN lags
        raise ValueError(f"{owner}(sampler={sampler!r}).fit needs complete data; X has missing values (NaN). "
                         "Fit with sampler=None (EM marginalises them).")
    structure.emission.check_sampler("nuts" if sampler == "nuts-pyro" else sampler, X, owner)
    resolve_prior(structure, prior, sampler, X, K, owner)  # a bad prior fails here, before the EM fits


# -- state order ---------------------------------------------------------------------------------
def permute(p: dict[str, np.ndarray], perm: np.ndarray) -> dict[str, np.ndarray]:
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


def relabel(structure: Structure, p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Sort the states of every draw by the emission's ordering key (leading axes are draw axes)."""
    return permute(p, np.argsort(structure.emission.order_key(p), axis=-1, kind="stable"))


#: Weight of the uniform distribution mixed into simplex starts, and floor of positive starts relative to the
#: data's scale: an EM start on a simplex corner or at zero lies at infinity in unconstrained coordinates.
_INTERIOR = 1e-3


def prepare_start(structure: Structure, start: dict[str, np.ndarray], fixed: dict[str, np.ndarray],
                  X: np.ndarray, keep_order: bool = False) -> dict[str, np.ndarray]:
    """One chain's start: its EM fit in the reported state order, fixed arrays set, moved off the boundary.

    The reported order sorts states by the ordering key, and a per-state prior
    (state ``k`` of a prior entry) means state ``k`` of that order, so the
    start is sorted the same way before sampling. When the key array itself
    is held fixed, its given order is the reported order and the EM states
    are matched to it by the rank of their keys. With ``keep_order`` (known
    labels or held entries name the states) the start keeps its order.
    """
    em = structure.emission
    start = {k: np.array(v, dtype=np.float64) for k, v in start.items()}
    if keep_order:
        pass
    elif em.key in fixed:
        perm = np.empty(start[structure.pi].shape[0], dtype=np.int64)
        perm[np.argsort(em.order_key(fixed), kind="stable")] = np.argsort(em.order_key(start), kind="stable")
        start = permute(start, perm)
    else:
        start = relabel(structure, start)
    for name in structure.simplex:
        if name not in fixed:
            p = np.clip(start[name], 0.0, None)
            p /= p.sum(axis=-1, keepdims=True)
            start[name] = (1.0 - _INTERIOR) * p + _INTERIOR / p.shape[-1]
    em.prepare_start(start, fixed, X, _INTERIOR)
    start.update({k: v.copy() for k, v in fixed.items()})
    return start


# -- engines ---------------------------------------------------------------------------------------
_CHUNK = 100  # sweeps per compiled call (progress bar granularity; part of what a seed reproduces)


def _run_gibbs(structure, X, bounds, alpha_pi, alpha_A, hyper, fixed, starts, rng, n_warmup, n_draws, progress,
               log_mask=None, free=None):
    em = structure.emission
    K, D = starts[0][structure.pi].shape[0], X.shape[1]
    frozen = tuple({structure.pi: "pi", "transmat": "A"}.get(k, k) for k in fixed)
    packed = em.pack_hyper(hyper, D)
    n_total = n_warmup + n_draws
    chains = []
    with progress_bar(progress, len(starts) * n_total, "Gibbs", "sweep") as bar:
        for c, start in enumerate(starts):
            state = {"pi": np.array(start[structure.pi], dtype=np.float64),
                     "A": np.array(start["transmat"], dtype=np.float64) if structure.hmm else np.full((K, K), 1.0 / K),
                     "theta": em.pack(start)}
            seed = int(rng.integers(0, 2**31 - 1))
            parts, done = [], 0
            while done < n_total:
                step = min(_CHUNK, n_total - done)
                keep = max(0, done + step - n_warmup) - max(0, done - n_warmup)
                parts.append(_gibbs.run_chain(em, structure.hmm, X, bounds, alpha_pi, alpha_A, packed, state, step,
                                              keep, seed if done == 0 else -1, frozen, log_mask, free))
                done += step
                bar.set_postfix(chain=c + 1)
                bar.update(step)
            chains.append({k: np.concatenate([p[k] for p in parts]) for k in parts[0]})
    out = {k: np.stack([ch[k] for ch in chains]) for k in chains[0]}
    draws = {structure.pi: out["pi"], **({"transmat": out["A"]} if structure.hmm else {}),
             **em.unpack(out["theta"], K, D)}
    ll = out["log_likelihood"]
    lp = ll + log_prior(structure, draws, alpha_pi, alpha_A, hyper, fixed)
    return draws, {"total_log_likelihood": ll, "lp": lp}


def log_prior(structure: Structure, draws: dict[str, np.ndarray], alpha_pi: np.ndarray, alpha_A: np.ndarray,
              hyper: dict, fixed: dict) -> np.ndarray:
    """Log density of the conjugate prior at each draw (leading axes of ``draws`` kept), constrained scale.

    The Dirichlet priors of the weights (initial probabilities) and of each
    transition row, plus the emission's conjugate prior
    (:meth:`~probspace.emissions.Emission.log_prior`); arrays held fixed by a
    ``Delta`` prior contribute nothing.
    """
    lead = draws[structure.pi].shape[:-1]
    flat = {k: v.reshape((-1,) + v.shape[len(lead):]) for k, v in draws.items()}
    n = flat[structure.pi].shape[0]
    out = np.zeros(n)
    if structure.pi not in fixed:
        out += dirichlet_log_density(flat[structure.pi], alpha_pi)
    if structure.hmm and "transmat" not in fixed:
        out += dirichlet_log_density(flat["transmat"], alpha_A).sum(axis=-1)
    em = structure.emission
    out += em.log_prior({k: flat[k] for k in em.names}, hyper, tuple(k for k in fixed if k in em.names))
    return out.reshape(lead)


def _run_nuts(structure, X, bounds, alpha_pi, alpha_A, hyper, dists, fixed, starts, rng, n_warmup, n_draws,
              progress, owner, entries=None):
    import pyro.distributions as pdist
    import torch

    from .inference import _nuts

    em, pi = structure.emission, structure.pi
    K, D = starts[0][pi].shape[0], X.shape[1]
    sites = [_nuts.Site(pi, (K,), "simplex", dists.get(pi, pdist.Dirichlet(torch.as_tensor(alpha_pi))))]
    if structure.hmm:
        sites.append(_nuts.Site("transmat", (K, K), "simplex",
                                dists.get("transmat", pdist.Dirichlet(torch.as_tensor(alpha_A)))))
    sites = [s for s in sites + em.nuts_sites(hyper, dists, K, D, starts[0]) if s.name not in fixed]
    constants = {k: torch.as_tensor(em.to_site(k, v), dtype=torch.float64) for k, v in fixed.items()}
    determined = {}  # arrays held entrywise whose free entries are all determined by the held ones
    for site in sites:
        if entries and site.name in entries:
            _check_held_prior(owner, site, dists)
            site.hold(em.to_site(site.name, entries[site.name]))
            if site.size == 0:
                determined[site.name] = site.completed()
                constants[site.name] = torch.as_tensor(determined[site.name], dtype=torch.float64)
    sites = [s for s in sites if s.name not in determined]
    Xt = torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float64)
    aux = em.torch_aux(Xt)

    def log_likelihood(v):
        f = em.torch_frames(Xt, aux, v)
        if structure.hmm:
            return _nuts.hmm_log_likelihood(torch.log(v[pi]), torch.log(v["transmat"]), f, bounds)
        return torch.logsumexp(torch.log(v[pi]) + f, dim=1).sum()

    inits = [{s.name: em.to_site(s.name, start[s.name]) for s in sites} for start in starts]
    _check_user_priors(owner, sites, dists, inits, constants)
    draws, stats = _nuts.run_nuts(sites, log_likelihood, inits, n_warmup, n_draws, rng, progress=progress,
                                  constants=constants)
    n_chains = len(starts)
    for k, v in determined.items():
        draws[k] = np.broadcast_to(v, (n_chains, n_draws) + v.shape).copy()
    em.from_sites(draws)
    for k, v in (entries or {}).items():  # held entries exactly as given (they are already; this is the contract)
        draws[k] = np.where(np.isnan(v), draws[k], v)
    for k, v in fixed.items():  # held fixed: repeated in every draw
        draws[k] = np.broadcast_to(v, (n_chains, n_draws) + v.shape).copy()
    flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
    answers = _Answers(structure)
    ll = map_blocks(lambda s: answers._total_log_likelihood(_draw(flat, s), X, bounds), range(n_chains * n_draws),
                    _draw_threads(X))
    stats["total_log_likelihood"] = np.array(ll).reshape(n_chains, n_draws)
    return draws, stats


def compiled_nuts_covers(structure: Structure, X: np.ndarray, dists: dict, entries: dict | None = None,
                         fixed: dict | None = None) -> bool:
    """Return whether probspace's compiled NUTS covers the model.

    It does without torch priors and without arrays held entrywise
    (``entries``: held entries, NaN free; whole arrays it holds, except
    positive emission arrays with a held 0, a structural zero rate, whose log
    its closed forms take), for Gaussian (diagonal, or one feature), Poisson
    and categorical emissions. Anything else runs on Pyro's NUTS.
    """
    from .inference._nuts_numba import KINDS

    em = structure.emission
    if dists or entries or em.name not in KINDS:
        return False
    if any(k in em.positive and np.any(np.asarray(v) == 0) for k, v in (fixed or {}).items()):
        return False
    return em.name != "gaussian" or em.covariance_type == "diag" or (em.covariance_type == "full" and X.shape[1] == 1)


def _compiled_layout(structure, K, D):
    """Names and shapes of the constrained parameter vector of the compiled NUTS: pi | transmat | e1 | e2."""
    em = structure.emission
    e_names = (em.names[1], "means") if em.name == "gaussian" else em.names
    shapes = {structure.pi: (K,), "transmat": (K, K)}
    for name in e_names:
        shapes[name] = (K, em.n_symbols) if em.name == "categorical" else (K, D)
    return [structure.pi, "transmat", *e_names], shapes


def _run_compiled_nuts(structure, X, bounds, alpha_pi, alpha_A, hyper, fixed, starts, rng, n_warmup, n_draws,
                       progress=False):
    """NUTS by :mod:`probspace.inference._nuts_numba`: chains on parallel threads, exact closed-form gradients."""
    from scipy.special import gammaln

    from .inference import _nuts_numba

    em = structure.emission
    K, (N, D) = starts[0][structure.pi].shape[0], X.shape
    names, shapes = _compiled_layout(structure, K, D)
    sizes = [int(np.prod(shapes[n])) for n in names]
    offsets = np.r_[0, np.cumsum(sizes)]
    fixed_site = {k: em.to_site(k, v) for k, v in fixed.items()}
    theta_fixed = np.zeros(offsets[-1])
    free = np.ones(4, dtype=np.bool_)
    for i, name in enumerate(names):
        if name in fixed_site:
            theta_fixed[offsets[i]:offsets[i + 1]] = np.ravel(fixed_site[name])
            free[i] = False
    if not structure.hmm:
        free[1] = False
    kind = _nuts_numba.KINDS[em.name]
    if kind == 0:
        packed = np.concatenate([hyper["mean"], [hyper["mean_precision"], 0.5 * hyper["dof"]],
                                 0.5 * np.diag(hyper["scale"])])
    elif kind == 1:
        packed = np.concatenate([hyper["rate_shape"], hyper["rate_rate"]])
    else:
        packed = np.asarray(hyper["emissionprob"], dtype=np.float64)
    aux = gammaln(X + 1.0).sum(axis=1) if kind == 1 else np.zeros(N)
    S = em.n_symbols if kind == 2 else 0
    model = (np.ascontiguousarray(X, dtype=np.float64), aux, np.asarray(bounds, dtype=np.int64),
             np.asarray(alpha_pi, dtype=np.float64), np.ascontiguousarray(alpha_A, dtype=np.float64),
             np.asarray(packed, dtype=np.float64), theta_fixed, free,
             np.array([kind, int(structure.hmm), K, D, S], dtype=np.int64))

    def unconstrained(start):
        parts = []
        for i, name in enumerate(names):
            if not free[i]:
                continue
            value = np.asarray(em.to_site(name, start[name]), dtype=np.float64).reshape(shapes[name])
            if name in (structure.pi, "transmat") or (kind == 2 and name == "emissionprob"):
                logp = np.log(value)
                parts.append((logp[..., :-1] - logp[..., -1:]).ravel())
            elif i == 2:  # variances or rates
                parts.append(np.log(value).ravel())
            else:
                parts.append(value.ravel())
        return np.concatenate(parts)

    _, theta, st = _nuts_numba.run_chains(model, [unconstrained(s) for s in starts], n_warmup, n_draws, rng,
                                          progress=progress)
    n_chains = len(starts)
    draws = {}
    for i, name in enumerate(names):
        if name == "transmat" and not structure.hmm:
            continue
        draws[name] = theta[..., offsets[i]:offsets[i + 1]].reshape((n_chains, n_draws) + shapes[name])
    em.from_sites(draws)
    for k, v in fixed.items():  # exactly as given (the compiled vector holds the site layout)
        draws[k] = np.broadcast_to(v, (n_chains, n_draws) + np.shape(v)).copy()
    stats = {"acceptance_rate": st[..., 0], "step_size": st[..., 1], "tree_depth": st[..., 2].astype(np.int64),
             "n_steps": st[..., 3].astype(np.int64), "diverging": st[..., 4] > 0, "lp": st[..., 5],
             "energy": st[..., 6], "total_log_likelihood": st[..., 7]}
    return draws, stats


def _check_held_prior(owner, site, dists):
    """Reject a user distribution that cannot drop the prior of held entries: it must factorise or be a Dirichlet."""
    from .inference._nuts import is_dirichlet

    if site.name not in dists:
        return
    d = dists[site.name]
    batch, event = tuple(getattr(d, "batch_shape", ())), tuple(getattr(d, "event_shape", ()))
    if site.constraint == "simplex" and is_dirichlet(d):
        try:
            ok = np.broadcast_shapes(batch + event, site.shape) == site.shape
        except ValueError:
            ok = False
        if ok:
            return
    elif not event:
        try:
            if np.broadcast_shapes(batch, site.shape) == site.shape:
                return
        except ValueError:
            pass
    raise ValueError(f"prior['{site.name}'] of {owner} must be a per-entry distribution (event shape (), batch "
                     f"shape broadcasting to the {site.name} array's shape {site.shape})"
                     f"{' or a Dirichlet over its rows' if site.constraint == 'simplex' else ''}, because "
                     f"fixed['{site.name}'] holds some of its entries and their prior is dropped; got batch shape "
                     f"{batch} and event shape {event}.")


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


def _draw(params: dict[str, np.ndarray], s: int) -> dict[str, np.ndarray]:
    """Parameter draw ``s`` of a dict with one leading draw axis."""
    return {k: v[s] for k, v in params.items()}


def _draw_threads(X: np.ndarray) -> int | None:
    """Return the threads for work repeated over parameter draws: the default, or one for tiny data.

    Each draw's compiled work releases the GIL, so draws run in parallel;
    below about 2,000 observations a draw is too small to pay for the hand-over.
    """
    return None if X.shape[0] >= 2048 else 1


def _per_draw(answers: _Answers, X, lengths, params: dict[str, np.ndarray]) -> np.ndarray:
    """``(n_draws, n_obs)`` pointwise log-likelihoods, one row per parameter draw (leading axis of ``params``)."""
    n = next(iter(params.values())).shape[0]
    return np.stack(map_blocks(lambda s: answers._pointwise(_draw(params, s), X, lengths), range(n),
                               _draw_threads(X)))


# -- answers: what a fitted model is asked -------------------------------------------------------
class _Answers:
    """Questions answered from parameter values, shared by :class:`PlugIn` and :class:`MCMC`."""

    def __init__(self, structure: Structure) -> None:
        self.structure = structure

    def _latents(self, p: dict[str, np.ndarray], X: np.ndarray, lengths: np.ndarray | None, method: str):
        """Exact posterior of the latents given parameters ``p``: a Markov chain (HMM) or label responsibilities."""
        from .posteriors import Categorical, MarkovChain

        f = self.structure.emission.log_frames(X, p)
        if self.structure.hmm:
            return MarkovChain(p["startprob"], p["transmat"], f, lengths, method=method)
        with np.errstate(divide="ignore"):
            logp = np.log(p["weights"]) + f
        logp -= logsumexp(logp, axis=1, keepdims=True)
        return Categorical._trusted(np.exp(logp), method)

    def _pointwise(self, p, X, lengths):
        """``log p(x_i | p)`` (mixtures) or one-step-ahead ``log p(x_t | x_<t, p)`` per frame (HMMs)."""
        f = self.structure.emission.log_frames(X, p)
        if self.structure.hmm:
            return _hmm.forward_backward(p["startprob"], p["transmat"], f, lengths).log_predictive
        with np.errstate(divide="ignore"):
            return logsumexp(np.log(p["weights"]) + f, axis=1)

    def _per_sequence(self, p, X, lengths):
        """``log p(x | p)`` per observation (mixtures) or per sequence (HMMs)."""
        if not self.structure.hmm:
            return self._pointwise(p, X, lengths)
        f = self.structure.emission.log_frames(X, p)
        return _hmm.forward_backward(p["startprob"], p["transmat"], f, lengths).log_likelihood

    def _total_log_likelihood(self, p, X, bounds):
        return float(self._per_sequence(p, X, np.diff(bounds) if self.structure.hmm else None).sum())

    def _generate(self, p, n_samples, rng):
        if self.structure.hmm:
            states = _hmm.sample_chain(p["startprob"], p["transmat"], n_samples, rng)
        else:
            from .posteriors._categorical import sample_categorical

            states = sample_categorical(p["weights"][None, :], n_samples, rng)[:, 0]
        return self.structure.emission.sample(p, states, rng), states

    def _continue(self, p, X, lengths, n_steps, n, rng):
        """``n`` continuations of the last sequence of ``X`` under parameters ``p``: observations and states."""
        f = self.structure.emission.log_frames(X, p)
        last = _hmm.forward_backward(p["startprob"], p["transmat"], f, lengths).filtered[-1]
        pred = last @ p["transmat"]
        z = _hmm.sample_chain(np.broadcast_to(pred, (n, pred.size)), p["transmat"], n_steps, rng)
        return self.structure.emission.sample(p, z.ravel(), rng).reshape(n, n_steps, -1), z


class PlugIn(_Answers):
    """The answers of a point fit (EM, or a variational fit's plug-in values): one parameter set.

    Parameters
    ----------
    structure : Structure
        Emission and latent structure.
    params : dict of str to ndarray
        The fitted parameters under the structure's names.
    method : {"exact", "variational"}
        What the posterior reports as its ``method``.
    draw : callable, optional
        ``draw(n, rng)`` returns ``n`` parameter draws from a variational
        posterior over the parameters (leading draw axis, the layout of
        MCMC draws); None for a point fit.
    """

    def __init__(self, structure: Structure, params: dict[str, np.ndarray], method: str,
                 draw: Any = None) -> None:
        super().__init__(structure)
        self.params = params
        self.method = method
        self.draw = draw

    def posterior(self, X, lengths):
        """Exact posterior of the latents of ``X`` given the parameters."""
        return self._latents(self.params, X, lengths, self.method)

    def log_likelihood(self, X, lengths):
        """``log p(x)`` per observation (per sequence)."""
        return self._per_sequence(self.params, X, lengths)

    def sample(self, n_samples, rng):
        """``(X, Z)`` drawn from the generative model."""
        return self._generate(self.params, n_samples, rng)

    def forecast(self, X, lengths, n_steps, n_samples, rng):
        """Continuations of the last sequence of ``X``."""
        return self._continue(self.params, X, lengths, n_steps, n_samples, rng)

    def pointwise_log_likelihood(self, X, lengths, params):
        """Per observation, or one-step-ahead per frame for HMMs (they sum to each sequence's log-likelihood).

        With parameter draws ``params`` (a variational posterior): one row per draw, ``(n_draws, n_obs)``.
        """
        if params is None:
            return self._pointwise(self.params, X, lengths)
        return _per_draw(self, X, lengths, params)

    def posterior_predictive(self, X, latents, params, rng):
        """Replicated data given latent draws ``(n_draws, n_obs)`` (draw ``s`` under parameter draw ``s`` if given)."""
        n_draws, n_obs = latents.shape
        if params is not None:
            emission = self.structure.emission
            return np.stack([emission.sample(_draw(params, s), latents[s].astype(np.int64), rng)
                             for s in range(n_draws)])
        return self.structure.emission.sample(self.params, latents.ravel(), rng).reshape(n_draws, n_obs, -1)

    def sample_parameters(self, n_samples, rng):
        """Draws from the variational posterior over the parameters (only where ``draw`` was given)."""
        if self.draw is None:
            raise NotImplementedError("a point fit has no parameter posterior")
        return self.draw(n_samples, rng)


class MCMC(_Answers):
    """A fitted Bayesian engine: chains of parameter draws, and the answers that average over them.

    Built by :meth:`run`. The latent posterior of data ``X`` is the equal-weight
    mixture of the exact posteriors under each draw; likelihoods are posterior
    predictive densities; generation picks a parameter draw at random.

    Attributes
    ----------
    structure : Structure
        Emission and latent structure.
    sampler : {"gibbs", "nuts", "nuts-pyro"}
        The engine that made the draws.
    draws : dict of str to ndarray
        Parameter draws, each ``(n_chains, n_draws, ...)``, relabelled by ordering.
    stats : dict of str to ndarray
        Per-draw statistics ``(n_chains, n_draws)``.
    prior : dict
        The prior actually used (defaults filled in).
    """

    def __init__(self, structure: Structure, sampler: str, draws: dict, stats: dict, prior: dict) -> None:
        super().__init__(structure)
        self.sampler = sampler
        self.draws = draws
        self.stats = stats
        self.prior = prior

    @classmethod
    def run(cls, structure: Structure, X: np.ndarray, lengths: np.ndarray | None, starts: list[dict], *,
            sampler: str, prior: dict | None, n_draws: int, n_warmup: int, rng: np.random.Generator,
            progress: bool = False, owner: str = "model", log_mask: np.ndarray | None = None,
            held: Any = None) -> MCMC:
        """Run ``len(starts)`` chains from the given starts (one EM fit each) and return the fitted engine.

        Parameters
        ----------
        structure : Structure
            Emission and latent structure.
        X : ndarray of shape (N, D)
            Complete data.
        lengths : ndarray of int or None
            Sequence lengths (HMMs).
        starts : list of dict
            One parameter set per chain, under the structure's names.
        sampler : {"gibbs", "nuts", "nuts-pyro"}
            The engine (``"nuts"``: compiled where :func:`compiled_nuts_covers` the model, else Pyro).
        prior : dict or None
            The user's prior entries (see :data:`MCMC_PARAMS_DOC`).
        n_draws, n_warmup : int
            Kept and discarded draws per chain.
        rng : numpy.random.Generator
            Seeds the chains.
        progress : bool, default=False
            Show a progress bar.
        owner : str, default="model"
            The family's name, for error messages.
        log_mask : ndarray of shape (N, K), optional
            Added to the emission log-likelihoods (known labels; Gibbs only).
        held : Constraints, optional
            Held entries (``probspace.models.hmm._constraints``): whole arrays
            are held like a ``Delta`` prior (every engine). Held entries
            (structural zeros among them) keep their values, bit for bit, while
            the free entries are sampled. Gibbs: the free entries of each row
            of ``startprob``/``transmat`` are drawn given the held ones, and
            held entries (or states) of emission arrays are passed to the
            emission's update (its ``gibbs_entry_holds``). NUTS: entries of every array it samples,
            always on Pyro's engine (the compiled NUTS holds whole arrays
            only); each free entry keeps its prior (a Dirichlet row becomes the
            Dirichlet of its free entries given the held ones, as in Gibbs)
            and the prior of a held entry is dropped (see
            :class:`probspace.inference._nuts.Site`).

        Returns
        -------
        MCMC
        """
        em = structure.emission
        K = np.shape(starts[0][structure.pi])[0]
        alpha_pi, alpha_A, hyper, dists, fixed = resolve_prior(structure, prior, sampler, X, K, owner)
        free = None
        entries = {}  # arrays held entrywise (NaN: free)
        if held:
            fixed = {**fixed, **{k: held.held[k] for k in held.whole()}}
            entries = {k: v for k, v in held.held.items() if k not in fixed}
            free = {"pi": np.isnan(held.held.get(structure.pi, np.full(K, np.nan))),
                    "A": np.isnan(held.held.get("transmat", np.full((K, K), np.nan)))}
            free.update({k: np.isnan(v) for k, v in held.held.items() if k in em.names and k not in fixed})
        keep_order = bool(held) or log_mask is not None
        starts = [prepare_start(structure, start, fixed, X, keep_order) for start in starts]
        if held:  # the starts off the boundary, then the held entries (structural zeros) back in place
            starts = [held.project(start) for start in starts]
        bounds = _hmm.sequence_bounds(lengths, X.shape[0]) if structure.hmm else np.array([0, X.shape[0]])
        if sampler == "gibbs":
            draws, stats = _run_gibbs(structure, X, bounds, alpha_pi, alpha_A, hyper, fixed, starts, rng, n_warmup,
                                      n_draws, progress, log_mask, free)
        elif sampler == "nuts" and compiled_nuts_covers(structure, X, dists, entries, fixed):
            draws, stats = _run_compiled_nuts(structure, X, bounds, alpha_pi, alpha_A, hyper, fixed, starts, rng,
                                              n_warmup, n_draws, progress)
        else:
            draws, stats = _run_nuts(structure, X, bounds, alpha_pi, alpha_A, hyper, dists, fixed, starts, rng,
                                     n_warmup, n_draws, progress, owner, entries)
        draws = draws if em.key in fixed or keep_order else relabel(structure, draws)
        used = {structure.pi: alpha_pi, **({"transmat": alpha_A} if structure.hmm else {}), **hyper}
        used.update({k: v for k, v in (prior or {}).items() if is_distribution(v)})  # replaces the conjugate entry
        return cls(structure, sampler, draws, stats, used)

    @property
    def n_total(self) -> int:
        """Number of draws, all chains together."""
        first = next(iter(self.draws.values()))
        return first.shape[0] * first.shape[1]

    @property
    def flat(self) -> dict[str, np.ndarray]:
        """``draws`` with chains and draws merged into one leading axis."""
        return {k: v.reshape((-1,) + v.shape[2:]) for k, v in self.draws.items()}

    def point(self) -> dict[str, np.ndarray]:
        """Posterior means of every array (what a family reports as its fitted attributes)."""
        return {k: v.mean(axis=(0, 1)) for k, v in self.draws.items()}

    def posterior(self, X, lengths):
        """:class:`~probspace.posteriors.FiniteMixture` over every parameter draw (chains merged)."""
        from .posteriors._mixture import FiniteMixture

        params = self.flat
        return FiniteMixture(lambda s: self._latents(_draw(params, s), X, lengths, "exact"), self.n_total)

    def pointwise_log_likelihood(self, X, lengths, params):
        """``(n_draws, n_obs)``: per observation (mixtures) or one-step-ahead per frame (HMMs)."""
        return _per_draw(self, X, lengths, self.flat if params is None else params)

    def log_likelihood(self, X, lengths):
        """Log posterior predictive density of each observation (sequence): ``log mean_s p(x | theta_s)``."""
        params = self.flat
        per = np.array(map_blocks(lambda s: self._per_sequence(_draw(params, s), X, lengths), range(self.n_total),
                                  _draw_threads(X)))
        return logsumexp(per, axis=0) - np.log(self.n_total)

    def sample(self, n_samples, rng):
        """Generate from one parameter draw picked at random (the posterior predictive of a data set)."""
        return self._generate(_draw(self.flat, int(rng.integers(0, self.n_total))), n_samples, rng)

    def sample_parameters(self, n_samples, rng):
        """Draws picked uniformly at random (with replacement) from all chains."""
        idx = rng.integers(0, self.n_total, size=n_samples)
        return {k: v[idx] for k, v in self.flat.items()}

    def posterior_predictive(self, X, latents, params, rng):
        """Replicated data: draw ``s`` emits from latent draw ``s`` under parameter draw ``s``."""
        emission = self.structure.emission
        return np.stack([emission.sample(_draw(params, s), latents[s].astype(np.int64), rng)
                         for s in range(latents.shape[0])])

    def forecast(self, X, lengths, n_steps, n_samples, rng):
        """Continuations of the last sequence, each under its own parameter draw picked at random."""
        params = self.flat
        which = rng.integers(0, self.n_total, size=n_samples)
        obs, states = None, np.empty((n_samples, n_steps), dtype=np.int64)
        for s in np.unique(which):
            where = np.flatnonzero(which == s)
            x, z = self._continue(_draw(params, s), X, lengths, n_steps, where.size, rng)
            if obs is None:
                obs = np.empty((n_samples, n_steps, x.shape[-1]), dtype=x.dtype)
            obs[where], states[where] = x, z
        return obs, states


def engine_field(field: str, doc: str) -> property:
    """Return a public fitted attribute (``draws_``, ``sample_stats_``, ``prior_``) that reads ``mcmc_``.

    ``None`` for a point fit. Setting it (as loading a saved model does,
    field by field) stores the value in the engine, built on first use from
    the model's ``_structure()``, so the getter returns what was set.
    """

    def get(self):
        mcmc = self.__dict__.get("mcmc_")
        return None if mcmc is None else getattr(mcmc, field)

    def set_(self, value):
        if value is None:
            self.__dict__.setdefault("mcmc_", None)
            return
        if self.__dict__.get("mcmc_") is None:
            self.mcmc_ = MCMC(self._structure(), self.sampler, {}, {}, {})
        setattr(self.mcmc_, field, value)

    return property(get, set_, doc=doc)


#: The public fitted attributes that read the engine (see :func:`engine_field`).
ENGINE_FIELDS = ("draws_", "sample_stats_", "prior_")


def add_engine_state(model: Any, state: dict[str, Any]) -> dict[str, Any]:
    """Add the engine's arrays to what a family's ``_get_state`` returns (``mcmc_`` itself is not saved)."""
    state["fitted"].update({name: getattr(model, name) for name in ENGINE_FIELDS})
    return state


def split_engine_state(state: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the engine's fields from a saved state: they are restored after the backend they read."""
    fitted = dict(state["fitted"])
    engine = {name: fitted.pop(name) for name in ENGINE_FIELDS if name in fitted}
    return {**state, "fitted": fitted}, engine


def restore_engine(model: Any, engine: dict[str, Any]) -> None:
    """Rebuild ``mcmc_`` on a loaded model from its saved fields (``None`` for a point fit)."""
    for name, value in engine.items():
        setattr(model, name, value)
    model.__dict__.setdefault("mcmc_", None)
