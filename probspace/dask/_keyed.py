"""Random numbers keyed by global position, so that draws do not depend on how data are chunked.

A lazy posterior draws the latent values of observation ``i`` (or sequence
``i``) from numbers that are a function of ``(seed, i)`` only, never of the
block that holds ``i`` or of the worker that computes it. Uniforms and normals
for the element-wise samplers come from a counter-based hash (SplitMix64's
finaliser) of ``(seed, i, draw, stream)``, vectorised over a block; samplers
that need a full generator (Dirichlet's gammas, a sequence's path) get one
:class:`numpy.random.Generator` per observation or sequence, seeded by
``SeedSequence(seed, spawn_key=(i,))``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["keyed_generator", "keyed_normals", "keyed_uniforms"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def _mix(z: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: a bijection of uint64 with full avalanche."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def keyed_uniforms(seed: int, index: np.ndarray, n_draws: int, stream: int = 0) -> np.ndarray:
    """Uniforms on ``[0, 1)`` of shape ``(n_draws, len(index))``, a function of ``(seed, index, draw, stream)`` only.

    Parameters
    ----------
    seed : int
        Root seed (non-negative, below ``2**63``).
    index : ndarray of int
        Global positions of the observations.
    n_draws : int
        Number of draws per observation.
    stream : int, default=0
        Independent stream number (one per uniform an observation needs).

    Returns
    -------
    ndarray of shape (n_draws, len(index))
        Uniforms with 53 random bits each.
    """
    with np.errstate(over="ignore"):
        key = _mix(np.uint64(seed) * _GOLDEN + np.uint64(stream) * _M1 + np.uint64(0x632BE59BD9B4E019))
        idx = np.asarray(index, dtype=np.uint64)
        draw = np.arange(n_draws, dtype=np.uint64)[:, None]
        z = _mix(_mix(key ^ (idx[None, :] * _GOLDEN)) + (draw + np.uint64(1)) * _M2)
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def keyed_normals(seed: int, index: np.ndarray, n_draws: int, n_dims: int) -> np.ndarray:
    """Return standard normals of shape ``(n_draws, len(index), n_dims)`` by Box-Muller from keyed uniforms.

    Parameters
    ----------
    seed : int
        Root seed.
    index : ndarray of int
        Global positions of the observations.
    n_draws : int
        Number of draws per observation.
    n_dims : int
        Normals per observation and draw.

    Returns
    -------
    ndarray of shape (n_draws, len(index), n_dims)
    """
    out = np.empty((n_draws, len(index), n_dims))
    for d in range(n_dims):
        u1 = keyed_uniforms(seed, index, n_draws, 2 * d)
        u2 = keyed_uniforms(seed, index, n_draws, 2 * d + 1)
        out[..., d] = np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)
    return out


def keyed_generator(seed: int, i: int) -> np.random.Generator:
    """Return a generator for observation or sequence ``i``: ``SeedSequence(seed, spawn_key=(i,))``.

    Parameters
    ----------
    seed : int
        Root seed.
    i : int
        Global index of the observation or sequence.

    Returns
    -------
    numpy.random.Generator
    """
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(int(i),))))
