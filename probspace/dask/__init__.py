"""Scale-out on Dask: lazy posteriors over chunked data, chunked exact HMM inference, distributed EM.

Needs the ``dask`` extra (``pip install probspace[dask]``); ``import probspace``
never imports dask. ``model.posterior(X)`` with a :class:`dask.array.Array`
``X`` returns a :class:`LazyPosterior` (or, for one long sequence spread over
several chunks, a :class:`ChunkedMarkovChain`).
"""

try:
    import dask.array  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("probspace.dask needs dask: pip install 'probspace[dask]' "
                      "(dask[array] and distributed).") from exc

from ._chunked import ChunkedMarkovChain, chunked_forward_backward
from ._em import expected_statistics, fit, partial_fit
from ._parallel import SweepResult, fit_chains, sweep
from ._posterior import LazyPosterior, chunk_sequences, posterior

__all__ = [
    "ChunkedMarkovChain",
    "LazyPosterior",
    "SweepResult",
    "chunk_sequences",
    "chunked_forward_backward",
    "expected_statistics",
    "fit",
    "fit_chains",
    "partial_fit",
    "posterior",
    "sweep",
]
