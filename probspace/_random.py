"""Random number handling: one ``numpy.random.Generator`` per fitted model.

``random_state`` is ``None``, an int or a :class:`numpy.random.Generator`.
``fit`` turns the constructor's value into ``rng_``; calls without their own
``random_state`` draw from ``rng_`` (so consecutive calls differ and a refit of a
seeded model replays the same sequence), and a per-call ``random_state``
reproduces exactly. Global numpy and torch state is never touched.
"""

from __future__ import annotations

import contextlib
import numbers
from collections.abc import Iterator
from typing import Any

import numpy as np

__all__ = ["as_generator", "child_generator", "sklearn_seed", "torch_fork_rng"]


def as_generator(random_state: Any) -> np.random.Generator:
    """Return a :class:`numpy.random.Generator` for ``random_state``.

    Parameters
    ----------
    random_state : None, int or numpy.random.Generator
        ``None`` gives fresh OS entropy, an int a seeded generator, and a
        generator is returned as is (it is shared, not copied).

    Returns
    -------
    numpy.random.Generator

    Examples
    --------
    >>> from probspace._random import as_generator
    >>> int(as_generator(0).integers(100)) == int(as_generator(0).integers(100))
    True
    """
    if random_state is None:
        return np.random.default_rng()
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if random_state < 0:
            raise ValueError(f"'random_state' must be non-negative; got {random_state}.")
        return np.random.default_rng(int(random_state))
    raise ValueError(
        f"'random_state' must be None, a non-negative int or a numpy.random.Generator; got {random_state!r}."
    )


def child_generator(rng: np.random.Generator) -> np.random.Generator:
    """Return an independent generator seeded from ``rng``'s own stream (advancing it).

    The child's bit generator (of ``rng``'s kind) is seeded through a
    :class:`numpy.random.SeedSequence` with 256 bits drawn from ``rng``. So the
    whole stream lives in ``rng.bit_generator.state``: a generator restored
    from that state (a loaded model) derives the same children as the
    original would. ``Generator.spawn`` draws on the seed sequence instead,
    which that state does not hold, so a restored generator would spawn
    children from fresh entropy.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace._random import child_generator
    >>> a, b = np.random.default_rng(0), np.random.default_rng(0)
    >>> bool(child_generator(a).random() == child_generator(b).random())
    True
    >>> bool(child_generator(a).random() == child_generator(a).random())  # each call advances the parent
    False
    """
    seed = np.random.SeedSequence(rng.bit_generator.random_raw(4))
    return np.random.Generator(type(rng.bit_generator)(seed))


def sklearn_seed(rng: np.random.Generator) -> int:
    """Draw an int seed for a backend that takes ``random_state`` as an int."""
    return int(rng.integers(0, 2**31 - 1))


@contextlib.contextmanager
def torch_fork_rng(rng: np.random.Generator) -> Iterator[None]:
    """Seed torch from ``rng`` inside a context that restores torch's global state.

    Imports torch lazily; the user's torch random state is the same after the
    block as before it.
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(rng.integers(0, 2**63 - 1)))
        yield
