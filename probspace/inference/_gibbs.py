"""Blocked Gibbs sampler for mixtures and HMMs with conjugate priors, compiled with numba.

One sweep draws the latent variables exactly given the parameters (one label
per observation for a mixture; a whole state path per sequence by forward
filtering, backward sampling for an HMM), then every parameter from its
conjugate conditional given the latents: the weights (initial probabilities)
and each transition row from their Dirichlet conditionals here, and the
emission parameters by the emission's own compiled update.

The emission enters as two compiled functions passed as numba first-class
function values (:data:`probspace.emissions._base.FRAMES` and ``UPDATE``
signatures) and its parameters as one flat vector ``theta``, so this one
driver, compiled once, serves every emission. Random numbers come from
numba's own generator, seeded once per chain, so a chain is reproducible
from its seed. The weights, the transitions and each emission array can be
held fixed (never drawn): the chain then samples the posterior of the
others given them.
"""

from __future__ import annotations

import math

import numba
import numpy as np
from numba import types

from ..emissions._base import FRAMES, JIT, UPDATE, dirichlet_free

__all__ = ["run_chain"]


@numba.njit(**JIT)
def _pick(weights, total):  # pragma: no cover - compiled
    """Inverse-CDF draw from unnormalised ``weights`` summing to ``total``."""
    u = np.random.random() * total
    acc = 0.0
    K = weights.shape[0]
    for k in range(K - 1):
        acc += weights[k]
        if u < acc:
            return k
    return K - 1


@numba.njit(**JIT)
def _draw_labels(logw, logf, z):  # pragma: no cover - compiled
    """Mixture labels given parameters; returns log p(X | parameters)."""
    N, K = logf.shape
    w = np.empty(K)
    total_ll = 0.0
    for i in range(N):
        m = -np.inf
        for k in range(K):
            w[k] = logw[k] + logf[i, k]
            if w[k] > m:
                m = w[k]
        tot = 0.0
        for k in range(K):
            w[k] = math.exp(w[k] - m) if m > -np.inf else 0.0
            tot += w[k]
        total_ll += m + math.log(tot) if tot > 0.0 else -np.inf
        z[i] = _pick(w, tot) if tot > 0.0 else np.argmax(logw)
    return total_ll


@numba.njit(**JIT)
def _draw_paths(pi, A, logf, bounds, z, filt):  # pragma: no cover - compiled
    """Forward filtering, backward sampling of one path per sequence; returns log p(X | parameters)."""
    T, K = logf.shape
    f = np.empty(K)
    w = np.empty(K)
    total_ll = 0.0
    for s in range(bounds.shape[0] - 1):
        lo, hi = bounds[s], bounds[s + 1]
        for t in range(lo, hi):
            m = -np.inf
            for k in range(K):
                if logf[t, k] > m:
                    m = logf[t, k]
            if m == -np.inf:
                return -np.inf
            for k in range(K):
                f[k] = math.exp(logf[t, k] - m)
            c = 0.0
            for k in range(K):
                if t == lo:
                    pred = pi[k]
                else:
                    pred = 0.0
                    for j in range(K):
                        pred += filt[t - 1, j] * A[j, k]
                filt[t, k] = pred * f[k]
                c += filt[t, k]
            if c <= 0.0:
                return -np.inf
            for k in range(K):
                filt[t, k] /= c
            total_ll += math.log(c) + m
        z[hi - 1] = _pick(filt[hi - 1], 1.0)
        for t in range(hi - 2, lo - 1, -1):
            tot = 0.0
            for k in range(K):
                w[k] = filt[t, k] * A[k, z[t + 1]]
                tot += w[k]
            z[t] = _pick(w, tot)
    return total_ll


_f8, _b1, _i8 = types.float64, types.boolean, types.int64
_RUN = types.void(types.FunctionType(FRAMES), types.FunctionType(UPDATE), _b1, _f8[:, ::1], _f8[::1], _i8[::1],
                  _i8, _i8, _i8, _b1, _b1, _f8[::1], _f8[:, ::1], _f8[::1], _b1[::1],
                  _f8[::1], _f8[:, ::1], _f8[::1], _f8[:, ::1], _f8[:, :, ::1], _f8[:, ::1], _f8[::1],
                  _f8[:, ::1], _b1[::1], _b1[:, ::1])


@numba.njit(_RUN, **JIT)
def _run(frames, update, hmm, X, aux, bounds, n_sweeps, n_keep, seed, fix_pi, fix_A,
         alpha_pi, alpha_A, hyper, fix_emission, pi, A, theta,
         out_pi, out_A, out_theta, out_ll, log_mask, free_pi, free_A):  # pragma: no cover - compiled
    if seed >= 0:
        np.random.seed(seed)
    N = X.shape[0]
    K = pi.shape[0]
    logf = np.empty((N, K))
    filt = np.empty((N, K))
    z = np.zeros(N, dtype=np.int64)
    logw = np.empty(K)
    first = n_sweeps - n_keep
    for sweep in range(n_sweeps + 1):
        frames(X, aux, theta, logf)
        if log_mask.shape[0] == N:  # known labels: -inf for the states they rule out
            for i in range(N):
                for k in range(K):
                    logf[i, k] += log_mask[i, k]
        if hmm:
            ll = _draw_paths(pi, A, logf, bounds, z, filt)
        else:
            for k in range(K):
                logw[k] = math.log(pi[k]) if pi[k] > 0.0 else -np.inf
            ll = _draw_labels(logw, logf, z)
        if sweep > first:  # ll belongs to the parameters recorded at the end of the previous sweep
            out_ll[sweep - 1 - first] = ll
        if sweep == n_sweeps:
            break
        # parameters given the latents
        counts = np.zeros(K)
        if hmm:
            trans = np.zeros((K, K))
            for s in range(bounds.shape[0] - 1):
                counts[z[bounds[s]]] += 1.0
                for t in range(bounds[s] + 1, bounds[s + 1]):
                    trans[z[t - 1], z[t]] += 1.0
            if not fix_A:
                row = np.empty(K)
                for j in range(K):
                    row[:] = A[j]
                    dirichlet_free(alpha_A[j] + trans[j], free_A[j], row)
                    A[j] = row
        else:
            for i in range(N):
                counts[z[i]] += 1.0
        if not fix_pi:
            dirichlet_free(alpha_pi + counts, free_pi, pi)
        update(X, z, K, hyper, fix_emission, theta)
        if sweep >= first:
            r = sweep - first
            out_pi[r] = pi
            out_A[r] = A
            out_theta[r] = theta


def run_chain(emission, hmm: bool, X: np.ndarray, bounds: np.ndarray, alpha_pi: np.ndarray, alpha_A: np.ndarray,
              hyper: np.ndarray, state: dict, n_sweeps: int, n_keep: int, seed: int,
              fixed: tuple[str, ...] = (), log_mask: np.ndarray | None = None,
              free: dict[str, np.ndarray] | None = None) -> dict:
    """Run ``n_sweeps`` blocked Gibbs sweeps of one chain, keeping the last ``n_keep``.

    Parameters
    ----------
    emission : probspace.emissions.Emission
        Supplies the compiled log-density and conjugate update (``frames_kernel``, ``update_kernel``).
    hmm : bool
        Latents are Markov state paths (``True``) or independent labels.
    X : ndarray of shape (N, D)
        Complete data.
    bounds : ndarray of int
        Sequence start offsets plus the end (HMMs; ``[0, N]`` for mixtures).
    alpha_pi, alpha_A : ndarray
        Dirichlet concentrations of the weights (K,) and of each transition row (K, K).
    hyper : ndarray
        The emission's packed hyper-parameters (:meth:`Emission.pack_hyper`).
    state : dict
        Current ``pi`` (K,), ``A`` (K, K) and ``theta`` (the emission's packed parameters) as float64
        arrays, updated in place (so a chain can run in chunks).
    n_sweeps, n_keep : int
        Total sweeps and how many of the last ones to record.
    seed : int
        Seed of numba's generator for this chain (negative: continue the stream
        of the previous call in this thread).
    fixed : tuple of str, default=()
        Arrays held at their values in ``state``: ``"pi"``, ``"A"`` or names
        of emission arrays. A fixed Gaussian mean drops its conjugate prior
        (``Sigma ~ IW(nu0, Psi0)`` alone); a fixed covariance keeps
        ``mu | Sigma ~ N(m0, Sigma / kappa0)`` at the fixed ``Sigma``.
    log_mask : ndarray of shape (N, K), optional
        Added to the emission log-likelihoods (``-inf`` for states that known labels rule out).
    free : dict, optional
        Boolean masks ``"pi"`` (K,) and ``"A"`` (K, K) of the entries drawn;
        the others (held entries, structural zeros) keep their values in
        ``state``, and each row's free entries share the mass left. Masks
        under emission array names (those in the emission's
        ``gibbs_entry_holds``) mark the entries of that array drawn; the
        update kernel then gets one more flag per entry of ``theta`` (True:
        held) after its per-array flags. Arrays in the emission's
        ``gibbs_state_holds`` are held per state (a state's entries all held or all free), and the
        arrays of each group in its ``gibbs_joint_holds`` hold the same states.

    Returns
    -------
    dict
        ``pi`` (n_keep, K), ``A`` (n_keep, K, K), ``theta`` (n_keep, P) and
        ``log_likelihood`` (n_keep,): ``log p(X | parameters)`` of each kept draw.
    """
    unknown = sorted(set(fixed) - {"pi", "A", *emission.names})
    if unknown:
        raise ValueError(f"fixed must name 'pi', 'A' or arrays among {list(emission.names)}; got {unknown}.")
    if emission.update_kernel is None:
        raise ValueError(f"{type(emission).__name__} has no conjugate Gibbs update.")
    K = state["pi"].shape[0]
    X = np.ascontiguousarray(X, dtype=np.float64)
    out = {"pi": np.empty((n_keep, K)), "A": np.empty((n_keep, K, K)),
           "theta": np.empty((n_keep, state["theta"].shape[0])), "log_likelihood": np.empty(n_keep)}
    fix_emission = np.array([name in fixed for name in emission.names], dtype=np.bool_)
    entries = {k: np.asarray(v, dtype=bool) for k, v in (free or {}).items() if k in emission.names}
    if entries:  # held entries of emission arrays: one flag per entry of theta after the arrays' flags
        unheld = sorted(set(entries) - set(emission.gibbs_entry_holds))
        if unheld:
            raise ValueError(f"{type(emission).__name__}'s Gibbs update holds entries of "
                             f"{list(emission.gibbs_entry_holds)} only; got held entries of {unheld}.")
        K0, D0 = np.shape(state["pi"])[0], X.shape[1]
        for n in sorted(set(entries) & set(emission.gibbs_state_holds)):
            rows = entries[n].reshape(K0, -1)
            if np.any(rows.any(axis=1) & ~rows.all(axis=1)):
                raise ValueError(f"{type(emission).__name__}'s Gibbs update holds {n!r} per state (its entries are "
                                 f"coupled): each state's entries must be all held or all free; got free masks "
                                 f"{rows.tolist()}.")
        for group in emission.gibbs_joint_holds:
            states = {n: np.ones(K0, dtype=bool) if n in fixed else
                      ~entries[n].reshape(K0, -1).all(axis=1) if n in entries else np.zeros(K0, dtype=bool)
                      for n in group}
            if len({tuple(v) for v in states.values()}) > 1:
                got = {n: np.flatnonzero(v).tolist() for n, v in states.items()}
                raise ValueError(f"{type(emission).__name__}'s Gibbs update holds the states of {list(group)} "
                                 f"together; got held states {got}.")
        masks = {n: ~entries[n] if n in entries else np.zeros(s, dtype=bool)
                 for n, s in emission.shapes(K0, D0).items()}
        fix_emission = np.concatenate([fix_emission, emission.pack(masks) > 0])
    f8 = np.float64
    free = free or {}
    free_pi = np.ascontiguousarray(free.get("pi", np.ones(K, dtype=bool)), dtype=np.bool_)
    free_A = np.ascontiguousarray(free.get("A", np.ones((K, K), dtype=bool)), dtype=np.bool_)
    log_mask = np.zeros((0, K)) if log_mask is None else np.ascontiguousarray(log_mask, dtype=f8)
    _run(emission.frames_kernel, emission.update_kernel, bool(hmm), X, np.ascontiguousarray(emission.aux(X), f8),
         np.asarray(bounds, dtype=np.int64), int(n_sweeps), int(n_keep), int(seed), "pi" in fixed, "A" in fixed,
         np.ascontiguousarray(alpha_pi, f8), np.ascontiguousarray(alpha_A, f8), np.ascontiguousarray(hyper, f8),
         fix_emission, state["pi"], state["A"], state["theta"], out["pi"], out["A"], out["theta"],
         out["log_likelihood"], log_mask, free_pi, free_A)
    return out
