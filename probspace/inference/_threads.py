"""Run independent blocks of compiled (``nogil``) work on every core, reproducibly.

The HMM kernels release the GIL, so Python threads run them in parallel. Work
is cut into blocks that depend only on the problem (never on the number of
threads), each block draws its random numbers from its own generator seeded
up front, and results are written into disjoint slices: so a result is the
same, bit for bit, whether one thread or sixteen computed it.

Threads rather than numba's ``prange``: numba's default (workqueue) threading
layer aborts the process when two Python threads enter a parallel region at
once, which a user's own thread pool or a web server would do; a plain thread
pool over ``nogil`` kernels has no such limit.

The number of threads is ``n_threads`` where a function takes it, else the
environment variable ``PROBSPACE_NUM_THREADS``, else the CPUs this process may
run on.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

__all__ = ["in_pool_thread", "map_blocks", "resolve_threads", "submit"]

_POOL: ThreadPoolExecutor | None = None
_POOL_SIZE = 0
_LOCK = threading.Lock()


def _after_fork_in_child() -> None:
    """Forget the parent's pool in a forked child: its threads do not exist there (work sent to it would hang)."""
    global _POOL, _POOL_SIZE, _LOCK
    _POOL, _POOL_SIZE, _LOCK = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _available() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def resolve_threads(n_threads: int | None = None) -> int:
    """Return the number of threads to use: ``n_threads``, ``PROBSPACE_NUM_THREADS``, or the usable CPUs."""
    if n_threads is None:
        env = os.environ.get("PROBSPACE_NUM_THREADS", "").strip()
        n_threads = int(env) if env else _available()
    if int(n_threads) < 1:
        raise ValueError(f"n_threads must be a positive integer; got {n_threads!r}.")
    return int(n_threads)


def _pool(n: int) -> ThreadPoolExecutor:
    """Return the shared pool with at least ``n`` workers (a larger request replaces it; the old one idles)."""
    global _POOL, _POOL_SIZE
    with _LOCK:
        if _POOL is None or _POOL_SIZE < n:
            _POOL = ThreadPoolExecutor(max_workers=n, thread_name_prefix="probspace")
            _POOL_SIZE = n
        return _POOL


def in_pool_thread() -> bool:
    """Return whether the caller runs on a pool thread (nested parallel work then stays in that thread)."""
    return threading.current_thread().name.startswith("probspace")


def map_blocks(func: Callable[[Any], Any], blocks: Sequence[Any], n_threads: int | None = None) -> list[Any]:
    """Return ``[func(b) for b in blocks]``, computed on up to ``n_threads`` threads.

    ``func`` must be safe to run concurrently (compiled ``nogil`` kernels
    writing into disjoint slices). The calling thread works too, and threads
    take the next block when they finish one. With one thread or one block,
    or when called from inside a pool thread (nested use, which would
    otherwise wait on itself), everything runs in the calling thread.
    """
    n = min(resolve_threads(n_threads), len(blocks))
    if n <= 1 or in_pool_thread():
        return [func(b) for b in blocks]
    results: list[Any] = [None] * len(blocks)
    order = iter(range(len(blocks)))
    take = threading.Lock()

    def work() -> None:
        while True:
            with take:
                i = next(order, None)
            if i is None:
                return
            results[i] = func(blocks[i])

    helpers = [_pool(n - 1).submit(work) for _ in range(n - 1)]
    try:
        work()
    finally:
        for h in helpers:
            h.result()
    return results


def submit(func: Callable[..., Any], *args: Any) -> Any:
    """Run ``func(*args)`` on a pool thread; return its future (``.result()`` waits and re-raises)."""
    return _pool(1).submit(func, *args)
