"""NUTS through Pyro on the marginal likelihood of mixtures and HMMs (latents summed out).

This is the engine of ``sampler="nuts-pyro"`` and of ``sampler="nuts"`` when a
prior entry is a torch distribution (or the emission has no compiled
gradient); every other ``sampler="nuts"`` fit runs probspace's compiled NUTS
(:mod:`probspace.inference._nuts_numba`), tens of times faster.

The potential energy is ``-(log p(X | theta) + log p(theta) + log|J|)`` over
unconstrained parameters: simplexes through the stick-breaking bijection,
positive values through ``exp``. ``log p(X | theta)`` sums the latent
variables out analytically: a log-sum-exp over components for a mixture, the
forward algorithm for an HMM. For the HMM the forward algorithm and its
gradient come from the compiled forward-backward kernel in one call: the
gradient of ``log p(X)`` with respect to the log initial probabilities, log
transition probabilities and log emission likelihoods are the smoothed first
marginals, the expected transition counts and the smoothed marginals. No
per-step autograd graph and no enumeration of discrete sites.

Pyro's :class:`~pyro.infer.mcmc.NUTS` runs with a ``potential_fn``, so no
model tracing happens per gradient. Torch and Pyro are imported on first use.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _hmm

__all__ = ["Site", "hmm_log_likelihood", "run_nuts"]


class Site:
    """One parameter array of the model: its shape, constraint, prior and held entries.

    Parameters
    ----------
    name : str
        Name of the parameter (``"weights"``, ``"means"``...).
    shape : tuple of int
        Shape of the constrained value.
    constraint : {"real", "positive", "simplex"}
        Support; simplexes lie along the last axis.
    prior : callable or torch.distributions.Distribution
        Either a distribution whose ``log_prob`` of the value is summed, or a
        callable ``(value, values) -> log densities`` (one per entry of the
        value, or a tensor broadcasting to it; summed here) that may read
        other parameters (conditional conjugate priors).
    held : ndarray of shape ``shape``, optional
        Held entries (NaN: free), in the constrained layout. The unconstrained
        vector then covers the free entries only: ``real`` entries are
        themselves, ``positive`` ones the ``exp`` of theirs, and in each
        simplex row with ``f >= 2`` free entries and held mass ``h`` the free
        entries are ``(1 - h)`` times torch's stick-breaking bijection of
        ``f - 1`` coordinates; a row with one free entry (or no mass left)
        has no coordinates and its free entries are ``1 - h`` (or 0). Values
        are built by writing the free entries into a constant tensor, so a
        held 0 (structural zero) never sends a NaN into the gradient. The
        prior of a held entry is dropped: a factorised prior is summed over
        the free entries, and a Dirichlet row becomes ``Dirichlet(alpha_free)``
        of the free entries rescaled by ``1 / (1 - h)`` (the conditional of the
        Dirichlet given the held entries, as the Gibbs sampler draws them).
    """

    #: Mass left by the held entries of a simplex row at or below which its free entries get none.
    _NO_MASS = 1e-9

    def __init__(self, name: str, shape: tuple[int, ...], constraint: str, prior: Any,
                 held: np.ndarray | None = None) -> None:
        self.name = name
        self.shape = tuple(shape)
        self.constraint = constraint
        self.prior = prior
        self.held = None
        if held is not None:
            self.hold(held)

    def hold(self, held: np.ndarray) -> None:
        """Hold the finite entries of ``held`` (NaN: free) from now on; ``size`` is then the unconstrained length."""
        held = np.asarray(held, dtype=np.float64)
        if held.shape != self.shape:
            raise ValueError(f"held entries of site {self.name!r} must have shape {self.shape}; got {held.shape}.")
        free = np.isnan(held)
        base = np.where(free, 0.0, held)
        self.held = held
        self._free = free
        self._rows = []  # simplex rows with coordinates: (row, free columns, mass left, first coordinate)
        if self.constraint != "simplex":
            self._index = np.flatnonzero(free)
            self.size = int(self._index.size)
        else:
            S = self.shape[-1]
            flat_base, flat_free = base.reshape(-1, S), free.reshape(-1, S)
            size = 0
            for r in range(flat_base.shape[0]):
                cols = np.flatnonzero(flat_free[r])
                left = 1.0 - flat_base[r].sum()
                if cols.size >= 2 and left > self._NO_MASS:
                    self._rows.append((r, cols, left, size))
                    size += cols.size - 1
                elif cols.size:  # determined: one free entry takes the mass left, or no mass is left
                    flat_base[r, cols] = max(left, 0.0) / cols.size
            base = flat_base.reshape(self.shape)
            self._index = np.concatenate([r * S + cols for r, cols, _, _ in self._rows]).astype(np.int64) \
                if self._rows else np.zeros(0, dtype=np.int64)
            self.size = size
        self._base = base

    @property
    def n_unconstrained(self) -> int:
        """Length of the unconstrained vector (entries of the array when nothing is held)."""
        return int(np.prod(self.shape, dtype=int)) if self.held is None else self.size

    def completed(self) -> np.ndarray:
        """Return the value of a site with no coordinates (every free entry determined by the held ones)."""
        return self._base.copy()

    def transform(self):
        """Return the torch bijection from unconstrained space to the support (of the whole array)."""
        from torch.distributions import biject_to, constraints
        from torch.distributions.transforms import identity_transform

        if self.constraint == "real":
            return identity_transform
        return biject_to({"real": constraints.real, "positive": constraints.positive,
                             "simplex": constraints.simplex}[self.constraint])

    def constrain(self, u):
        """Return ``(value, log|J|)`` of the unconstrained ``u`` (leading batch axes kept in ``value``).

        Without held entries this is :meth:`transform` (``log|J|`` summed over
        everything); with them, ``u`` has ``size`` entries on its last axis.
        """
        import torch

        if self.held is None:
            t = self.transform()
            v = t(u)
            return v, (0.0 if self.constraint == "real" else t.log_abs_det_jacobian(u, v).sum())
        lead = u.shape[:-1]
        value = torch.as_tensor(self._base, dtype=u.dtype).reshape(-1).expand(lead + (self._base.size,)).clone()
        index = torch.as_tensor(self._index)
        if self.constraint == "real":
            value[..., index] = u
            return value.reshape(lead + self.shape), 0.0
        if self.constraint == "positive":
            value[..., index] = torch.exp(u)
            return value.reshape(lead + self.shape), u.sum()
        t = self.transform()
        parts, logdet = [], 0.0
        for _, cols, left, first in self._rows:
            x = u[..., first:first + cols.size - 1]
            s = t(x)
            parts.append(left * s)
            logdet = logdet + t.log_abs_det_jacobian(x, s).sum()
        if parts:
            value[..., index] = torch.cat(parts, dim=-1)
        return value.reshape(lead + self.shape), logdet

    def unconstrain(self, value):
        """Inverse of :meth:`constrain`: the unconstrained vector of a constrained ``value`` (no batch axes)."""
        import torch

        if self.held is None:
            return self.transform().inv(value)
        flat = value.reshape(-1)
        if self.constraint == "real":
            return flat[torch.as_tensor(self._index)].clone()
        if self.constraint == "positive":
            return torch.log(flat[torch.as_tensor(self._index)])
        t, S = self.transform(), self.shape[-1]
        parts = [t.inv(flat[r * S + cols] / flat[r * S + cols].sum()) for r, cols, _, _ in self._rows]
        return torch.cat(parts) if parts else flat.new_zeros(0)

    def log_prior(self, value, values):
        """Log prior density of ``value`` (summed over the whole array, or over its free entries)."""
        import torch

        if callable(self.prior) and not hasattr(self.prior, "log_prob"):
            lp = self.prior(value, values)
            return lp.sum() if self.held is None else self._over_free(lp)
        if self.held is None:
            return self.prior.log_prob(value).sum()
        if self.constraint == "simplex" and is_dirichlet(self.prior):
            return self._free_dirichlet(value)
        # held entries (a structural zero may lie outside the prior's support) are scored at a free entry's value,
        # then dropped
        free = torch.as_tensor(self._free)
        stand_in = value.reshape(-1)[int(np.flatnonzero(self._free)[0])]
        return self._over_free(self.prior.log_prob(torch.where(free, value, stand_in)))

    def _over_free(self, lp):
        """Sum of per-entry log densities over the free entries (held ones have their prior dropped)."""
        import torch

        lp = torch.broadcast_to(torch.as_tensor(lp), self.shape)
        return lp.reshape(-1)[torch.as_tensor(np.flatnonzero(self._free))].sum()

    def _free_dirichlet(self, value):
        """``Dirichlet(alpha_free)`` of each row's free entries rescaled to sum to 1, summed over rows."""
        import torch
        from torch.distributions import Dirichlet

        alpha = torch.broadcast_to(self.prior.concentration, self.shape).reshape(-1, self.shape[-1])
        rows = value.reshape(-1, self.shape[-1])
        total = 0.0
        for r, cols, left, _ in self._rows:
            idx = torch.as_tensor(cols)
            total = total + Dirichlet(alpha[r, idx]).log_prob(rows[r, idx] / left)
        return total


def is_dirichlet(d: Any) -> bool:
    """Whether ``d`` is a torch (or Pyro) Dirichlet distribution."""
    from torch.distributions import Dirichlet

    return isinstance(d, Dirichlet)


def _hmm_function():
    import torch

    class _HMMLogLikelihood(torch.autograd.Function):
        """log p(X) of an HMM with its exact gradient from one forward-backward pass."""

        @staticmethod
        def forward(ctx, log_start, log_trans, log_frames, bounds):
            start = torch.exp(log_start).detach().numpy().astype(np.float64)
            trans = torch.exp(log_trans).detach().numpy().astype(np.float64)
            frames = log_frames.detach().numpy().astype(np.float64)
            lengths = np.diff(bounds)
            fb = _hmm.forward_backward(start / start.sum(), trans / trans.sum(axis=1, keepdims=True), frames,
                                       lengths)
            g_start = fb.marginals[bounds[:-1]].sum(axis=0)
            g_trans = fb.transition_counts.sum(axis=0)
            ctx.save_for_backward(torch.as_tensor(g_start, dtype=log_start.dtype),
                                  torch.as_tensor(g_trans, dtype=log_trans.dtype),
                                  torch.as_tensor(fb.marginals, dtype=log_frames.dtype))
            return torch.as_tensor(fb.log_likelihood.sum(), dtype=log_frames.dtype)

        @staticmethod
        def backward(ctx, grad):
            g_start, g_trans, g_frames = ctx.saved_tensors
            return grad * g_start, grad * g_trans, grad * g_frames, None

    return _HMMLogLikelihood


_HMM_FN = None


def hmm_log_likelihood(log_start, log_trans, log_frames, bounds: np.ndarray):
    """Total ``log p(X)`` of an HMM as a differentiable torch scalar.

    Parameters
    ----------
    log_start : torch.Tensor of shape (K,)
        Log initial probabilities.
    log_trans : torch.Tensor of shape (K, K)
        Log transition probabilities.
    log_frames : torch.Tensor of shape (T, K)
        Emission log-likelihoods.
    bounds : ndarray of int
        Sequence start offsets plus the end.

    Returns
    -------
    torch.Tensor
        A scalar whose gradient is exact (smoothed marginals and expected counts).
    """
    global _HMM_FN
    if _HMM_FN is None:
        _HMM_FN = _hmm_function()
    return _HMM_FN.apply(log_start, log_trans, log_frames, bounds)


def run_nuts(sites: list[Site], log_likelihood: Callable, inits: list[dict[str, np.ndarray]], n_warmup: int,
             n_draws: int, seed_rng: np.random.Generator, *, progress: bool = False,
             target_accept: float = 0.8, max_tree_depth: int = 10,
             constants: dict[str, Any] | None = None, kernel: str = "nuts",
             num_steps: int | None = None) -> tuple[dict[str, np.ndarray], dict]:
    """Run one Pyro NUTS (or HMC) chain per entry of ``inits``, in sequence.

    Parameters
    ----------
    sites : list of Site
        The parameters, their supports, priors and held entries (a site with
        held entries samples its free entries only).
    log_likelihood : callable
        ``values -> torch scalar``: ``log p(X | theta)`` with the latents summed out.
    inits : list of dict
        Constrained starting values of each chain.
    n_warmup, n_draws : int
        Adaptation iterations (step size and diagonal mass matrix) and kept draws per chain.
    seed_rng : numpy.random.Generator
        Seeds torch inside a forked RNG (global torch state is left unchanged).
    progress : bool, default=False
        Show Pyro's progress bar.
    target_accept : float, default=0.8
        Target acceptance probability of the step-size adaptation.
    max_tree_depth : int, default=10
        Largest NUTS tree depth.
    constants : dict of str to torch.Tensor, optional
        Parameters held fixed: not sampled, passed to ``log_likelihood`` and
        to conditional priors with the sampled values.
    kernel : {"nuts", "hmc"}, default="nuts"
        Pyro's ``NUTS``, or static-path ``HMC`` (the same step-size and
        diagonal mass-matrix adaptation; ``max_tree_depth`` is not used).
    num_steps : int, optional
        HMC leapfrog steps per transition, fixed whatever step size the
        adaptation picks; ``None`` lets Pyro derive them from its default
        trajectory length (2 pi) and the adapted step size.

    Returns
    -------
    draws : dict of str to ndarray
        Constrained draws, each ``(n_chains, n_draws) + site.shape``.
    stats : dict of str to ndarray
        ``diverging`` (bool), ``acceptance_rate``, ``step_size``, ``lp`` (the
        log density of the draw on the unconstrained scale, Jacobian
        included: minus the potential energy) and ``energy``, each
        ``(n_chains, n_draws)``. Pyro does not expose the Hamiltonian it
        realised at each draw, so ``energy`` is the potential energy at the
        draw plus an independently drawn kinetic energy: NUTS resamples the
        momentum at every transition from N(0, M), whose kinetic energy is
        half a chi-square with as many degrees of freedom as parameters
        whatever the mass matrix M, so this has the distribution of the
        Hamiltonian at the start of the next transition, which is what
        ArviZ's energy plot and BFMI compare. Tree depths are not exposed
        either and are not recorded.
    """
    import torch

    from .._random import torch_fork_rng

    if kernel not in ("nuts", "hmc"):
        raise ValueError(f"kernel must be 'nuts' or 'hmc', got {kernel!r}")
    if not sites:
        raise ValueError("run_nuts needs at least one site to sample; every parameter is a constant.")
    transforms = {s.name: s.transform() for s in sites}
    constants = dict(constants or {})

    def constrain(params):
        values, logdet = dict(constants), 0.0
        for s in sites:
            u = params[s.name]
            if s.held is not None:  # free entries only
                values[s.name], ld = s.constrain(u)
                logdet = logdet + ld
                continue
            if s.constraint == "real":
                values[s.name] = u
                continue
            t = transforms[s.name]
            v = t(u)
            values[s.name] = v
            logdet = logdet + t.log_abs_det_jacobian(u, v).sum()
        return values, logdet

    def potential(params):
        values, logdet = constrain(params)
        lp = log_likelihood(values) + logdet
        for s in sites:
            lp = lp + s.log_prior(values[s.name], values)
        return -lp

    all_draws: dict[str, list] = {s.name: [] for s in sites}
    stats: dict[str, list] = {"diverging": [], "acceptance_rate": [], "step_size": [], "lp": []}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: extra threads only spin-wait (tens of times slower on a busy machine)
    try:
        with torch_fork_rng(seed_rng):
            _chains(sites, transforms, potential, inits, n_warmup, n_draws, progress, target_accept, max_tree_depth,
                    all_draws, stats, kernel, num_steps)
    finally:
        torch.set_num_threads(threads)
    out = {k: np.stack(v) for k, v in stats.items()}
    n_params = sum(s.n_unconstrained for s in sites)
    # after the chains, so the draws are the same with or without this statistic
    out["energy"] = -out["lp"] + 0.5 * seed_rng.chisquare(n_params, size=out["lp"].shape)
    return ({k: np.stack(v) for k, v in all_draws.items()}, out)


def _fixed_steps_hmc(hmc_class, num_steps):
    """Pyro's HMC, or (``num_steps`` given) a subclass taking exactly ``num_steps`` leapfrog steps per transition.

    Pyro reads its own ``num_steps`` argument as a trajectory length in units
    of the *initial* step size (``trajectory_length / step_size`` steps once
    the step size has adapted), so the steps are fixed here instead.
    """
    if num_steps is None:
        return hmc_class

    class FixedStepsHMC(hmc_class):
        @property
        def num_steps(self):
            return num_steps

    return FixedStepsHMC


def _chains(sites, transforms, potential, inits, n_warmup, n_draws, progress, target_accept, max_tree_depth,
            all_draws, stats, kind="nuts", num_steps=None):
    import torch
    from pyro.infer.mcmc import HMC, MCMC, NUTS

    for init in inits:
        start = {s.name: (transforms[s.name].inv if s.held is None else s.unconstrain)(
            torch.as_tensor(np.asarray(init[s.name]), dtype=torch.float64)) for s in sites}
        if kind == "hmc":
            kernel = _fixed_steps_hmc(HMC, num_steps)(potential_fn=potential, target_accept_prob=target_accept,
                                                      adapt_step_size=True, adapt_mass_matrix=True, full_mass=False)
        else:
            kernel = NUTS(potential_fn=potential, target_accept_prob=target_accept, max_tree_depth=max_tree_depth,
                          adapt_step_size=True, adapt_mass_matrix=True, full_mass=False)
        accept: list[float] = []
        steps: list[float] = []
        lps: list[float] = []
        diverged: list[bool] = []

        def hook(kern, params, stage, i, accept=accept, steps=steps, diverged=diverged, lps=lps):
            # Pyro keeps per-iteration acceptance only as a running mean (HMC._mean_accept_prob) and
            # divergences as a list of draw indices (HMC._divergences), both private; they are read here
            # and nowhere else (tests/test_bayes.py checks both are recorded).
            if stage.startswith("Sample"):
                accept.append(float(getattr(kern, "_mean_accept_prob", np.nan)))
                steps.append(float(kern.step_size))
                with torch.no_grad():
                    lps.append(-float(potential(params)))
                marks = getattr(kern, "_divergences", [])
                diverged.append(bool(marks) and marks[-1] == len(diverged))

        mcmc = MCMC(kernel, num_samples=n_draws, warmup_steps=n_warmup, initial_params=start,
                    disable_progbar=not progress, hook_fn=hook)
        mcmc.run()
        samples = mcmc.get_samples()
        with torch.no_grad():
            for s in sites:
                value = transforms[s.name](samples[s.name]) if s.held is None else s.constrain(samples[s.name])[0]
                all_draws[s.name].append(value.numpy())
        diverging = np.asarray(diverged, dtype=bool)
        running = np.asarray(accept, dtype=np.float64)
        n = np.arange(1, running.size + 1)
        per_draw = running * n - np.r_[0.0, running[:-1] * n[:-1]]
        stats["diverging"].append(diverging)
        stats["acceptance_rate"].append(np.clip(per_draw, 0.0, 1.0))
        stats["step_size"].append(np.asarray(steps, dtype=np.float64))
        stats["lp"].append(np.asarray(lps, dtype=np.float64))
