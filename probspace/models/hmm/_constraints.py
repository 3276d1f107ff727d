"""Constraints, labels and weights of HMM fits: frozen entries, structural zeros, topologies, known states.

One object, :class:`Constraints`, holds what an HMM constructor's ``fixed``,
``topology`` and ``bandwidth`` say, checked against the parameter shapes:
for each parameter array a float array of the same shape whose finite
entries are held at that value and whose NaN entries are estimated. A
structural zero is a held entry equal to 0. EM then runs a constrained
M-step (:meth:`Constraints.project`): the unconstrained update of the free
entries, and on a probability simplex (a row of ``startprob``,
``transmat``, ``emissionprob``, GMM ``weights``) the free entries share the
mass the held ones leave, in proportion to their update. That is the exact
maximiser of the EM objective over the free entries (the multinomial
likelihood restricted to a face of the simplex), so EM stays monotone, and
the held entries are copied, so they never move, not even by one bit.

Known states (``labels``, -1 for unknown) enter as a mask on the emission
log-likelihoods (:func:`label_mask`): ``log p(x_t | z_t = k)`` becomes
``-inf`` for every ``k`` other than a known ``labels[t]``. The posterior of
the resulting chain is exactly ``p(z | x, z_S = labels_S)`` and its
likelihood ``p(x, z_S = labels_S)``, so marginals, Viterbi, joint draws
and EM all condition on the labels with no other change.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["Constraints", "check_labels", "check_sequence_weight", "constrained_emission_m_step", "label_mask",
           "label_permutation", "lead_by_labels", "topology_mask", "whole_state_arrays"]

_TOPOLOGIES = ("ergodic", "left-to-right", "banded")
#: Tolerance on the sum of a held probability row.
_ROW_TOL = 1e-9


def topology_mask(topology: str | None, bandwidth: int | None, K: int) -> tuple[np.ndarray, np.ndarray | None]:
    """Return the allowed transitions (K, K) of a topology, and the held initial distribution (None: free).

    ``"left-to-right"``: ``i -> j`` for ``i <= j <= i + bandwidth`` (every later
    state when ``bandwidth`` is None), starting in state 0. ``"banded"``:
    ``|i - j| <= bandwidth`` (default 1), any start. ``"ergodic"`` or None:
    every transition.
    """
    i, j = np.indices((K, K))
    if topology in (None, "ergodic"):
        return np.ones((K, K), dtype=bool), None
    if topology == "left-to-right":
        width = K - 1 if bandwidth is None else bandwidth
        start = np.zeros(K)
        start[0] = 1.0
        return (j >= i) & (j - i <= width), start
    width = 1 if bandwidth is None else bandwidth
    return np.abs(i - j) <= width, None


def check_topology(topology: Any, bandwidth: Any, owner: str) -> None:
    """Reject an unknown topology or a bandwidth that is not a non-negative integer."""
    if topology is not None and topology not in _TOPOLOGIES:
        raise ValueError(f"topology of {owner} must be one of {list(_TOPOLOGIES)} or None; got {topology!r}.")
    if bandwidth is not None:
        if isinstance(bandwidth, bool) or not isinstance(bandwidth, (int, np.integer)) or bandwidth < 0:
            raise ValueError(f"bandwidth of {owner} must be a non-negative integer or None; got {bandwidth!r}.")
        if topology in (None, "ergodic"):
            raise ValueError(f"bandwidth of {owner} applies to topology 'left-to-right' or 'banded'; got "
                             f"topology={topology!r}.")


def _check_support(arr: np.ndarray, given: np.ndarray, kind: str, name: str, owner: str) -> None:
    """Check held values against a support other than "every entry > 0" (see ``Constraints.build``)."""
    if kind == "probability" and ((arr[given] < 0) | (arr[given] > 1)).any():
        raise ValueError(f"fixed[{name!r}] of {owner} holds probabilities, which must lie in [0, 1].")
    if kind == "nonnegative" and (arr[given] < 0).any():
        raise ValueError(f"fixed[{name!r}] of {owner} must be non-negative (a held 0 is a structural zero).")
    if kind != "matrix":
        return
    D = arr.shape[-1]
    mats, held = arr.reshape(-1, D, D), given.reshape(-1, D, D)
    diag = np.diagonal(mats, axis1=1, axis2=2)[np.diagonal(held, axis1=1, axis2=2)]
    if (diag <= 0).any():
        raise ValueError(f"fixed[{name!r}] of {owner} holds covariance matrices, whose diagonal entries must be "
                         "positive.")
    for m, h in zip(mats, held, strict=True):
        if h.all() and (not np.allclose(m, m.T, rtol=1e-12, atol=0.0) or np.linalg.eigvalsh(m)[0] <= 0):
            raise ValueError(f"fixed[{name!r}] of {owner} holds covariance matrices, which must be symmetric "
                             "positive definite.")


class Constraints:
    """Held entries of each parameter array (NaN: estimated), checked against the arrays' shapes.

    Parameters
    ----------
    held : dict of str to ndarray
        Per array (public name without the trailing underscore), a float
        array of the array's shape: finite entries are held, NaN entries free.
    simplex : tuple of str
        Arrays whose last axis is a probability vector.
    """

    def __init__(self, held: dict[str, np.ndarray], simplex: tuple[str, ...]) -> None:
        self.held = held
        self.simplex = simplex

    @classmethod
    def build(cls, fixed: dict | None, topology: str | None, bandwidth: int | None,
              shapes: dict[str, tuple[int, ...]], simplex: tuple[str, ...], positive: tuple[str, ...],
              owner: str, whole: dict[str, str] | None = None,
              support: dict[str, str] | None = None) -> Constraints:
        """Check ``fixed`` and the topology against ``shapes`` and return the constraints.

        ``whole`` names arrays that may only be held per state (all entries of
        a state or none), with the reason; the other arrays may be held entry
        by entry. ``support`` overrides the "> 0" rule of ``positive`` arrays
        (:meth:`probspace.emissions.Emission.held_support`): ``"matrix"``
        (covariance matrices: positive diagonal, a fully held matrix symmetric
        positive definite), ``"probability"`` ([0, 1]) or ``"nonnegative"``.
        """
        check_topology(topology, bandwidth, owner)
        if fixed is not None and not isinstance(fixed, dict):
            raise ValueError(f"fixed of {owner} must be a dict from parameter names to arrays (NaN: estimated); "
                             f"got {type(fixed).__name__}.")
        held: dict[str, np.ndarray] = {}
        for name, value in (fixed or {}).items():
            if name not in shapes:
                raise ValueError(f"fixed of {owner} names {name!r}; the parameters are {sorted(shapes)} (without "
                                 "the trailing underscore).")
            try:
                arr = np.array(value, dtype=np.float64)
            except (TypeError, ValueError):
                raise ValueError(f"fixed[{name!r}] of {owner} must be an array of numbers (NaN: estimated); got "
                                 f"{value!r}.") from None
            if arr.shape != shapes[name]:
                raise ValueError(f"fixed[{name!r}] of {owner} must have shape {shapes[name]} (NaN marks the entries "
                                 f"to estimate); got shape {arr.shape}.")
            if np.isinf(arr).any():
                raise ValueError(f"fixed[{name!r}] of {owner} must be finite (NaN marks the entries to estimate).")
            given = ~np.isnan(arr)
            if name in simplex and ((arr[given] < 0) | (arr[given] > 1)).any():
                raise ValueError(f"fixed[{name!r}] of {owner} holds probabilities, which must lie in [0, 1].")
            kind = (support or {}).get(name)
            if kind is not None:
                _check_support(arr, given, kind, name, owner)
            elif name in positive and (arr[given] <= 0).any():
                raise ValueError(f"fixed[{name!r}] of {owner} must be positive.")
            if whole and name in whole:
                per_state = given.reshape(arr.shape[0], -1)
                if (per_state.any(axis=1) & ~per_state.all(axis=1)).any():
                    raise ValueError(f"fixed[{name!r}] of {owner} must hold all entries of a state or none "
                                     f"({whole[name]}); got a state with some entries NaN.")
            held[name] = arr
        allowed, start = (topology_mask(topology, bandwidth, shapes["transmat"][0]) if topology not in
                          (None, "ergodic") else (None, None))  # families without a transition matrix have no topology
        if allowed is not None and not allowed.all():
            A = held.get("transmat", np.full(shapes["transmat"], np.nan))
            if (np.nan_to_num(A, nan=0.0)[~allowed] != 0).any():
                raise ValueError(f"fixed['transmat'] of {owner} holds non-zero transitions that topology="
                                 f"{topology!r} forbids.")
            held["transmat"] = np.where(allowed, A, 0.0)
        if start is not None:
            given = held.get("startprob")
            if given is not None and not np.array_equal(np.where(np.isnan(given), start, given), start):
                raise ValueError(f"fixed['startprob'] of {owner} conflicts with topology={topology!r}, which starts "
                                 "in state 0.")
            held["startprob"] = start
        for name in simplex:
            if name in held:
                cls._check_rows(held[name], name, owner)
        return cls(held, simplex)

    @staticmethod
    def _check_rows(arr: np.ndarray, name: str, owner: str) -> None:
        rows = arr.reshape(-1, arr.shape[-1])
        mass = np.nansum(rows, axis=1)
        free = np.isnan(rows).any(axis=1)
        if (mass > 1 + _ROW_TOL).any():
            raise ValueError(f"fixed[{name!r}] of {owner}: the held entries of a probability row sum to "
                             f"{mass.max():.6g} > 1.")
        if (~free & (np.abs(mass - 1) > _ROW_TOL)).any():
            raise ValueError(f"fixed[{name!r}] of {owner}: a fully held probability row must sum to 1; got "
                             f"{mass[~free][np.abs(mass[~free] - 1) > _ROW_TOL][0]:.6g}.")
        # a partly held row whose held entries sum to 1 leaves its free entries at 0 (see project)

    def __bool__(self) -> bool:
        return bool(self.held)

    def names(self) -> list[str]:
        """Arrays with at least one held entry."""
        return list(self.held)

    def whole(self) -> list[str]:
        """Arrays held entirely (no NaN)."""
        return [k for k, v in self.held.items() if not np.isnan(v).any()]

    def project(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Return ``params`` with held entries set and each constrained simplex row's free entries rescaled."""
        out = dict(params)
        for name, arr in self.held.items():
            if name not in out:
                continue
            free = np.isnan(arr)
            new = np.where(free, np.asarray(out[name], dtype=np.float64), arr)
            if name in self.simplex:
                left = 1.0 - np.where(free, 0.0, arr).sum(axis=-1, keepdims=True)
                part = np.where(free, new, 0.0)
                tot = part.sum(axis=-1, keepdims=True)
                # free entries share the mass the held ones leave, in proportion to their update
                spread = np.where(tot > 0, part / np.where(tot > 0, tot, 1.0),
                                  free / np.maximum(free.sum(axis=-1, keepdims=True), 1))
                new = np.where(free, np.clip(left, 0.0, None) * spread, arr)
            out[name] = new
        return out

    def restore(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy the held entries (bit for bit) into ``params`` (used after a change of units)."""
        return {k: (np.where(np.isnan(self.held[k]), v, self.held[k]) if k in self.held else v)
                for k, v in params.items()}


def check_labels(labels: Any, n_frames: int, K: int, owner: str) -> np.ndarray | None:
    """Validate ``labels`` (int, -1 unknown) for ``n_frames`` frames and ``K`` states; None stays None."""
    if labels is None:
        return None
    arr = np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n_frames:
        raise ValueError(f"labels passed to {owner} must be a 1-D array with one entry per frame of X "
                         f"({n_frames}); got shape {arr.shape}.")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
            raise ValueError(f"labels passed to {owner} must be integers (state index, -1 for unknown); got dtype "
                             f"{arr.dtype}.")
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < -1 or arr.max() >= K):
        raise ValueError(f"labels passed to {owner} must lie in [-1, {K - 1}] (-1: unknown state); got values "
                         f"from {arr.min()} to {arr.max()}.")
    return arr


def label_mask(labels: np.ndarray | None, K: int) -> np.ndarray | None:
    """Additive log-mask (T, K): 0 where a state is allowed, -inf where a known label rules it out."""
    if labels is None:
        return None
    mask = np.zeros((labels.shape[0], K))
    known = labels >= 0
    mask[known] = -np.inf
    mask[np.flatnonzero(known), labels[known]] = 0.0
    return mask


def label_permutation(labels: np.ndarray, log_resp: np.ndarray, K: int) -> np.ndarray:
    """Renumbering of EM's start states that agrees best with the known labels.

    ``labels`` and ``log_resp`` (the start's log state responsibilities) are
    those of the labelled frames; the answer solves the assignment problem on
    ``cost[j, k] = -sum of log_resp[t, k] over the frames labelled j``: new
    state ``j`` is old state ``perm[j]``.
    """
    from scipy.optimize import linear_sum_assignment

    cost = np.zeros((K, K))
    np.add.at(cost, labels, -log_resp)
    return linear_sum_assignment(cost)[1]


def lead_by_labels(gamma: np.ndarray, known: np.ndarray) -> np.ndarray:
    """Weight the labelled frames of ``gamma`` (in place) as much as all the others together, so labels lead."""
    gamma[known] *= max(1.0, (~known).sum() / known.sum())
    return gamma


def check_sequence_weight(sample_weight: Any, n: int, owner: str, what: str = "sequence",
                          arg: str = "sample_weight") -> np.ndarray | None:
    """Validate non-negative finite weights, one per ``what`` (the argument is named ``arg``); None stays None."""
    if sample_weight is None:
        return None
    try:
        w = np.asarray(sample_weight, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{arg} passed to {owner} must be numbers, one per {what}; got "
                         f"{sample_weight!r}.") from None
    if w.ndim != 1 or w.shape[0] != n:
        raise ValueError(f"{arg} passed to {owner} must have one entry per {what} ({n}); got shape "
                         f"{w.shape}.")
    if not np.all(np.isfinite(w)) or (w < 0).any():
        raise ValueError(f"{arg} passed to {owner} must be finite and non-negative; got values such as "
                         f"{w[~np.isfinite(w) | (w < 0)][:3]}.")
    if not (w.sum() > 0):
        raise ValueError(f"{arg} passed to {owner} must not be all zero.")
    return w


def whole_state_arrays(emission: Any) -> dict[str, str]:
    """Emission arrays held only per state, with the reason (coupled entries have no entry-wise M-step)."""
    coupled = getattr(emission, "covariance_type", "diag") in ("full", "tied") or len(emission.names) > 2
    if not coupled:
        return {}
    why = "the entries of a state are coupled through its covariance"
    return {n: why for n in emission.names if n not in emission.simplex}


def constrained_emission_m_step(emission: Any, X: np.ndarray, gamma: np.ndarray, params: dict[str, np.ndarray],
                                held: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run the emission's M-step given held arrays (Gaussian covariances around held means); project afterwards."""
    if "means" in held and getattr(emission, "name", None) in ("gaussian", "gmm") and \
            hasattr(emission, "covariance_type"):
        return emission.m_step(X, gamma, params, means=held["means"])
    return emission.m_step(X, gamma, params)
