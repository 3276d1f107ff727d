"""The emission protocol: what a hidden state (or a mixture component) emits, in one object.

An HMM is an initial distribution, a transition matrix and an emission; a
finite mixture is the same without transitions. Everything that depends on
the kind of observation lives in one :class:`Emission` subclass per file:

- its parameter arrays (names, shapes, the array that orders states for relabelling);
- its per-frame log-density, **one** compiled numba kernel with the
  :data:`FRAMES` signature. The numpy path (``log_frames``: posteriors,
  likelihoods, the EM E-step) and the compiled Gibbs sampler call that same
  kernel; the only other definition is the torch version used by NUTS
  (``torch_frames``), tested equal to it. Missing values (NaN) are summed out
  inside the kernel;
- sampling given states, the missing-value M-step, and, where it has them,
  the conjugate prior (hyper-parameters, defaults, the compiled Gibbs update
  with the :data:`UPDATE` signature) and the NUTS sites.

The engines (:mod:`probspace._bayes`, :mod:`probspace.inference._gibbs`)
never ask which emission they hold. Parameters travel to the compiled
kernels as one flat float64 vector ``theta`` (the arrays of :attr:`names`
raveled and concatenated, see :meth:`Emission.pack`), so one compiled Gibbs
driver serves every emission through numba's first-class function types.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numba
import numpy as np
from numba import types

__all__ = ["FRAMES", "JIT", "UPDATE", "Emission", "PriorReader", "check_counts", "dirichlet", "dirichlet_free",
           "dirichlet_log_density",
           "emission_names", "inverse_cdf", "is_distribution", "registered_emission", "run_frames", "state_sums"]

#: Emission classes by their short :attr:`Emission.name`, filled in as the classes are defined.
_REGISTRY: dict[str, type[Emission]] = {}


def registered_emission(name: str) -> type[Emission]:
    """Return the emission class registered under ``name`` (``HMM(emission=name)`` reads this)."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"no emission is registered under {name!r}; registered: {emission_names()}. An Emission "
                         "subclass registers itself by its class attribute `name` when its module is "
                         "imported.") from None


def emission_names() -> list[str]:
    """Return the names of the registered emissions, sorted."""
    return sorted(_REGISTRY)


def check_counts(X: np.ndarray, owner: str, what: str, upper: int | None = None) -> None:
    """Reject values that are not non-negative integers (NaN allowed), or at least ``upper``."""
    values = X[~np.isnan(X)]
    bad = values[(values < 0) | (values != np.round(values))]
    if bad.size:
        raise ValueError(f"X passed to {owner} must hold non-negative integer {what} (NaN for missing); got values "
                         f"such as {bad[:3]}.")
    if upper is not None and values.size and values.max() >= upper:
        raise ValueError(f"X passed to {owner} holds symbol {int(values.max())}, but the model knows {upper} "
                         f"symbols (0 to {upper - 1}).")

#: Signature of an emission's compiled log-density: ``frames(X, aux, theta, out)`` writes log p(x_i | z_i = k)
#: into ``out`` (N, K); ``aux`` is the per-row data constant of :meth:`Emission.aux`.
FRAMES = types.void(types.float64[:, ::1], types.float64[::1], types.float64[::1], types.float64[:, ::1])
#: Signature of a conjugate Gibbs update: ``update(X, z, K, hyper, fixed, theta)`` draws the emission
#: parameters given the labels ``z`` in place; ``fixed[j]`` holds array ``names[j]`` at its value.
UPDATE = types.void(types.float64[:, ::1], types.int64[::1], types.int64, types.float64[::1], types.boolean[::1],
                    types.float64[::1])
JIT = {"cache": True, "nogil": True}


#: Rows per block of a threaded emission log-density (the cut does not change any value: rows are independent).
_FRAME_BLOCK = 1 << 15


def run_frames(kernel: Any, X: np.ndarray, aux: np.ndarray, theta: np.ndarray, n_states: int) -> np.ndarray:
    """Return ``kernel``'s (N, K) log-densities of the rows of ``X``, blocks of rows on parallel threads.

    ``X`` is C-contiguous float64; every row is computed alone, so the
    result is the same whatever the number of threads.
    """
    from ..inference._threads import map_blocks

    N = X.shape[0]
    out = np.empty((N, n_states))
    aux = np.ascontiguousarray(aux, dtype=np.float64)
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    blocks = range(0, N, _FRAME_BLOCK) if N * n_states >= 4 * _FRAME_BLOCK else [0]
    step = _FRAME_BLOCK if len(blocks) > 1 else max(N, 1)

    def run(lo):
        kernel(X[lo:lo + step], aux[lo:lo + step], theta, out[lo:lo + step])

    map_blocks(run, blocks)
    return out


@numba.njit(**JIT)
def state_sums(X, z, K):  # pragma: no cover - compiled
    """Return the number of points ``n`` (K,) and the per-feature sums (K, D) of the points in each state."""
    N, D = X.shape
    n = np.zeros(K)
    sums = np.zeros((K, D))
    for i in range(N):
        n[z[i]] += 1.0
        for d in range(D):
            sums[z[i], d] += X[i, d]
    return n, sums


@numba.njit(**JIT)
def dirichlet(alpha, out):  # pragma: no cover - compiled
    """Draw ``out ~ Dirichlet(alpha)`` in place from numba's generator."""
    total = 0.0
    for k in range(alpha.shape[0]):
        out[k] = np.random.gamma(alpha[k], 1.0)
        total += out[k]
    if total > 0.0:
        for k in range(alpha.shape[0]):
            out[k] /= total
    else:  # every gamma draw underflowed (tiny concentrations): the largest-concentration corner
        out[:] = 0.0
        out[np.argmax(alpha)] = 1.0


@numba.njit(**JIT)
def dirichlet_free(alpha, free, out):  # pragma: no cover - compiled
    """Draw the free entries of ``out`` given its held ones: ``Dirichlet(alpha_free)`` scaled to the mass left.

    With every entry free this is :func:`dirichlet` (the same draws in the
    same order). Held entries (structural zeros among them) keep their value.
    """
    K = alpha.shape[0]
    left = 1.0
    n_free = 0
    for k in range(K):
        if free[k]:
            n_free += 1
        else:
            left -= out[k]
    if n_free == K:
        dirichlet(alpha, out)
        return
    if n_free == 0:
        return
    total = 0.0
    for k in range(K):
        if free[k]:
            out[k] = np.random.gamma(alpha[k], 1.0) if alpha[k] > 0.0 else 0.0
            total += out[k]
    left = max(left, 0.0)
    for k in range(K):
        if free[k]:
            out[k] = out[k] / total * left if total > 0.0 else left / n_free


def dirichlet_log_density(x: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``log Dirichlet(x | alpha)`` over the last axis of ``x`` (leading axes kept); ``alpha`` broadcasts to ``x``."""
    from scipy.special import gammaln, xlogy

    alpha = np.broadcast_to(np.asarray(alpha, dtype=np.float64), np.shape(x))
    return (gammaln(alpha.sum(axis=-1)) - gammaln(alpha).sum(axis=-1) + xlogy(alpha - 1.0, x).sum(axis=-1))


def is_distribution(value: Any) -> bool:
    """Whether ``value`` is a torch/pyro distribution (a ``prior`` entry over a whole array)."""
    return hasattr(value, "log_prob") and hasattr(value, "support")


def inverse_cdf(weights: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of unnormalised ``weights`` (n, M) by inverse-CDF sampling (one uniform per row)."""
    cdf = np.cumsum(weights, axis=1)
    u = rng.random(weights.shape[0])[:, None] * cdf[:, -1:]
    return (u >= cdf[:, :-1]).sum(axis=1)


class PriorReader:
    """Reads numeric ``prior`` entries with one error shape (owner, entry, what is allowed, what was given)."""

    def __init__(self, user: dict, owner: str) -> None:
        self.user = user
        self.owner = owner

    def floats(self, key: str, value: Any) -> np.ndarray:
        try:
            return np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"prior['{key}'] of {self.owner} must be a number or an array of numbers; "
                             f"got {value!r}.") from None

    def number(self, key: str, default: Any, shape: tuple[int, ...], *, positive: bool = True) -> np.ndarray:
        value = self.user.get(key, default)
        if is_distribution(value):
            value = default
        arr = self.floats(key, value)
        try:
            arr = np.broadcast_to(arr, shape).copy()
        except ValueError:
            raise ValueError(f"prior['{key}'] of {self.owner} must be a scalar or have shape {shape}; "
                             f"got shape {np.shape(value)}.") from None
        if not np.all(np.isfinite(arr)) or (positive and not np.all(arr > 0)):
            raise ValueError(f"prior['{key}'] of {self.owner} must be finite"
                             f"{' and positive' if positive else ''}; got {value!r}.")
        return arr


class Emission:
    """Base class of emission components (see the module docstring).

    Subclasses set the class attributes below and implement
    :meth:`shapes`, :meth:`sample` and, for MCMC, :meth:`resolve_hyper`,
    :meth:`pack_hyper`, :meth:`nuts_sites` and :meth:`torch_frames`.

    A subclass with a :attr:`name` registers itself under it when it is
    defined, so the generic :class:`probspace.HMM` (``HMM(emission=name)``)
    fits it with no other file changed; for that it also implements
    :meth:`init` and :meth:`m_step` (EM), and :meth:`conformance_data`
    (the data :mod:`probspace.testing` fits). With :meth:`suff_stats` and
    :meth:`m_step_from_stats` it is also fitted by distributed EM
    (:func:`probspace.dask.fit`). The constructor's keyword
    arguments are the emission's settings (``HMM(emission_params=...)``),
    stored under their own names.
    """

    #: Short name under which the class registers itself ("" for none); ``HMM(emission=name)`` looks it up.
    name: ClassVar[str] = ""
    #: Whether observations are non-negative (counts, symbols), and the fewest frames a fit accepts.
    non_negative: ClassVar[bool] = False
    min_samples: ClassVar[int] = 1

    #: Parameter arrays, by their public (``draws_``) names, in packing order.
    names: tuple[str, ...] = ()
    #: The array whose states are sorted to relabel draws (by its first column unless ``order_key`` says otherwise).
    key: str = ""
    #: Conjugate hyper-parameters (numbers) accepted in ``prior=``, and for each the array whose prior it sets.
    hyper_keys: ClassVar[dict[str, str]] = {}
    #: Arrays on a simplex (a number under their name is a Dirichlet concentration) and positive arrays.
    simplex: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    #: Compiled log-density (:data:`FRAMES`) and conjugate Gibbs update (:data:`UPDATE`; None: no Gibbs).
    frames_kernel: Any = None
    update_kernel: Any = None
    #: Samplers this emission supports (``"gibbs"`` needs ``update_kernel``, ``"nuts"`` needs ``torch_frames``).
    samplers: tuple[str, ...] = ()
    #: Arrays whose single entries the Gibbs update can hold (``HMM(fixed=...)`` with NaN entries): the
    #: update kernel then reads one flag per entry of ``theta`` (True: held) after its per-array flags.
    gibbs_entry_holds: tuple[str, ...] = ()
    #: Those of :attr:`gibbs_entry_holds` held per state only (a state's entries are coupled): a state's entries
    #: are all held or all drawn (:func:`probspace.inference._gibbs.run_chain` rejects anything else).
    gibbs_state_holds: tuple[str, ...] = ()
    #: Groups of those arrays whose states the Gibbs update holds together or not at all (one conditional block).
    gibbs_joint_holds: tuple[tuple[str, ...], ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        name = cls.__dict__.get("name", "")
        if not name:
            return
        old = _REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ValueError(f"emission name {name!r} is taken by {old.__module__}.{old.__qualname__}; give "
                             f"{cls.__qualname__} another `name`.")
        _REGISTRY[name] = cls  # a re-definition (module reloaded) replaces the old class

    # -- settings (the generic HMM's ``emission_params``) ----------------------------------
    def settings(self) -> dict[str, Any]:
        """Return the constructor's keyword arguments as stored on the instance (plain values)."""
        params = inspect.signature(type(self).__init__).parameters
        return {p: getattr(self, p) for p in params if p != "self" and params[p].kind not in
                (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)}

    def for_data(self, X: np.ndarray) -> Emission:
        """Return the emission with settings that depend on the data filled in (default: itself)."""
        return self

    def check_data(self, X: np.ndarray, owner: str) -> None:
        """Reject data the emission cannot hold (validated float ``X``, NaN for missing); ``owner`` names the model."""

    @staticmethod
    def conformance_data(states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Observations (len(states), n_features) of two well-separated states (0 and 1), for the conformance suite."""
        raise NotImplementedError

    # -- parameters ------------------------------------------------------------------
    def shapes(self, K: int, D: int) -> dict[str, tuple[int, ...]]:
        """Shape of each parameter array for ``K`` states and ``D`` features."""
        raise NotImplementedError

    def pack(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """Return the kernels' flat parameter vector ``theta`` of one parameter set."""
        return np.concatenate([np.asarray(params[n], dtype=np.float64).ravel() for n in self.names])

    def unpack(self, theta: np.ndarray, K: int, D: int) -> dict[str, np.ndarray]:
        """Inverse of :meth:`pack`; ``theta`` may have leading (draw) axes."""
        lead, out, at = theta.shape[:-1], {}, 0
        for name, shape in self.shapes(K, D).items():
            size = int(np.prod(shape))
            out[name] = theta[..., at:at + size].reshape(lead + shape).copy()
            at += size
        return out

    def dims(self) -> dict[str, tuple[str, ...]]:
        """ArviZ dims of the parameter arrays (``"state"``, ``"feature"``...); arrays left out get ArviZ's names."""
        return {}

    def order_key(self, params: dict[str, np.ndarray]) -> np.ndarray:
        """Scalar per state (leading axes kept) by which draws are sorted."""
        return params[self.key][..., 0]

    # -- density and sampling ----------------------------------------------------------
    def aux(self, X: np.ndarray) -> np.ndarray:
        """Per-row constant of the log-density that no parameter touches (passed to the kernel)."""
        return np.zeros(X.shape[0])

    def log_frames(self, X: np.ndarray, params: dict[str, np.ndarray]) -> np.ndarray:
        """``log p(x_i | z_i = k)`` (N, K) from the compiled kernel; NaN entries are summed out."""
        X = np.ascontiguousarray(X, dtype=np.float64)
        return run_frames(self.frames_kernel, X, self.aux(X), self.pack(params), self.n_states(params))

    def n_states(self, params: dict[str, np.ndarray]) -> int:
        return np.shape(params[self.names[0]])[0]

    def sample(self, params: dict[str, np.ndarray], states: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One observation per entry of the 1-D array ``states``, shape (len(states), n_features)."""
        raise NotImplementedError

    # -- EM ---------------------------------------------------------------------------------------
    def init(self, X: np.ndarray, K: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Return starting parameters of ``K`` states for EM on ``X`` (NaN marks missing values)."""
        raise NotImplementedError(f"{type(self).__name__} has no EM start (init).")

    def missing_supported(self, missing: np.ndarray) -> bool:
        """Whether the missing-value M-step covers this pattern (default: whole missing frames only)."""
        return not (missing.any(axis=1) & ~missing.all(axis=1)).any()

    def m_step(self, X: np.ndarray, gamma: np.ndarray, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Closed-form M-step over the observed values given state responsibilities ``gamma`` (N, K).

        It is the M-step of the generic :class:`probspace.HMM` and, for the named families, of EM with missing values.
        """
        raise NotImplementedError(f"{type(self).__name__} has no missing-value M-step.")

    def suff_stats(self, X: np.ndarray, gamma: np.ndarray, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the expected sufficient statistics of :meth:`m_step`, additive over frames and blocks.

        Distributed EM (:mod:`probspace.dask`) computes them per block of
        frames, adds them up and runs :meth:`m_step_from_stats` on the sum, so
        ``m_step_from_stats(suff_stats(X, gamma, p), p)`` equals
        ``m_step(X, gamma, p)`` to rounding. Keys must differ from ``start``,
        ``trans``, ``loglik`` and ``rows``. An emission without them is fitted
        in memory only.

        Parameters
        ----------
        X : ndarray of shape (N, D)
            Observations (NaN for missing values, where :meth:`missing_supported`).
        gamma : ndarray of shape (N, K)
            State responsibilities.
        params : dict of str to ndarray
            The current parameters.

        Returns
        -------
        dict of str to ndarray
        """
        raise NotImplementedError(f"{type(self).__name__} has no additive sufficient statistics (suff_stats).")

    def m_step_from_stats(self, stats: dict[str, np.ndarray], params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return the M-step of :meth:`m_step` from (summed) :meth:`suff_stats`.

        Parameters
        ----------
        stats : dict of str to ndarray
            Sufficient statistics, summed over blocks.
        params : dict of str to ndarray
            The current parameters (kept for states with no weight).

        Returns
        -------
        dict of str to ndarray
        """
        raise NotImplementedError(f"{type(self).__name__} has no M-step from sufficient statistics.")

    @classmethod
    def has_suff_stats(cls) -> bool:
        """Whether the emission implements :meth:`suff_stats` and :meth:`m_step_from_stats` (distributed EM)."""
        return cls.suff_stats is not Emission.suff_stats and cls.m_step_from_stats is not Emission.m_step_from_stats

    # -- MCMC ----------------------------------------------------------------------------------
    def check_sampler(self, sampler: str, X: np.ndarray, owner: str) -> None:
        """Reject a sampler this emission (with these settings) does not support, naming the reason."""
        if sampler not in self.samplers:
            raise ValueError(f"{owner} supports sampler {list(self.samplers)}; got {sampler!r}.")

    def number_hint(self, array: str) -> str:
        """Which numeric ``prior`` entries set the conjugate prior of ``array`` (for error messages)."""
        keys = [k for k, a in self.hyper_keys.items() if a == array]
        return " and ".join(f"'{k}'" for k in keys)

    def resolve_hyper(self, reader: PriorReader, X: np.ndarray, K: int) -> dict[str, Any]:
        """Conjugate hyper-parameters (public names), defaults filled in and checked."""
        return {}

    def pack_hyper(self, hyper: dict[str, Any], D: int) -> np.ndarray:
        """Return the hyper-parameters as the flat float64 vector the Gibbs update reads."""
        return np.zeros(1)

    def log_prior(self, params: dict[str, np.ndarray], hyper: dict[str, Any], fixed: tuple[str, ...] = ()
                  ) -> np.ndarray:
        """Log density of the conjugate prior (the one the Gibbs update uses) at each draw.

        ``params`` holds the emission arrays with one leading draw axis (n, ...);
        ``hyper`` the hyper-parameters of :meth:`resolve_hyper`; arrays named in
        ``fixed`` are held at a point mass and contribute nothing. Returns (n,),
        on the constrained scale (no Jacobian).
        """
        raise NotImplementedError(f"{type(self).__name__} has no conjugate prior.")

    def prepare_start(self, start: dict[str, np.ndarray], fixed: dict, X: np.ndarray, floor: float) -> None:
        """Move positive arrays of an EM start off zero (in place); ``floor`` is relative to the data's scale."""

    def nuts_sites(self, hyper: dict[str, Any], dists: dict, K: int, D: int, start: dict) -> list:
        """NUTS sites (:class:`probspace.inference._nuts.Site`) of the emission arrays, in sampling order."""
        raise NotImplementedError

    def held_support(self, K: int, D: int) -> dict[str, str]:
        """Support of held values (``HMM(fixed=...)``) where it is not "every entry > 0" for a positive array.

        ``"matrix"``: covariance matrices on the last two axes (diagonal
        entries > 0, a fully held matrix symmetric positive definite);
        ``"probability"``: entries in [0, 1]; ``"nonnegative"``: entries >= 0
        (a held 0 is a structural zero). The default: positive arrays with
        three or more axes are covariance matrices.
        """
        shapes = self.shapes(K, D)
        return {n: "matrix" for n in self.positive if n in shapes and len(shapes[n]) >= 3}

    def to_site(self, name: str, value: Any) -> Any:
        """Return a parameter value in the layout its NUTS site samples (default: unchanged)."""
        return value

    def from_sites(self, draws: dict[str, np.ndarray]) -> None:
        """Undo :meth:`to_site` on NUTS draws, in place."""

    def torch_aux(self, Xt: Any) -> Any:
        """Return the data constant of :meth:`torch_frames` (computed once per fit; default None)."""
        return None

    def torch_frames(self, Xt: Any, aux: Any, values: dict[str, Any]) -> Any:
        """``log p(x_i | z_i = k)`` as a differentiable torch tensor (N, K): the kernel's twin for NUTS."""
        raise NotImplementedError
