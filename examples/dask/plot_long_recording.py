"""
A recording too long for one worker: chunked exact inference and distributed EM
================================================================================

The eruptions of Old Faithful alternate between short and long waits, and a
two-state hidden Markov model describes that as a hidden regime per
eruption. Here we pretend the 272 recorded waits are the start of a much
longer monitoring record: the series is repeated, with fresh measurement
noise, into one sequence of 100 million frames (800 MB), generated on the
fly by Dask block by block, so it never exists in memory as a whole, and is
larger than the 512 MiB memory budget of each of our two workers.

On that one long sequence, :mod:`probspace.dask` gives the exact posterior
over the hidden path (a chunked forward-backward: per-chunk transfer matrices
in parallel, a scan of the boundary messages, then parallel smoothing), runs
EM with the E-step's statistics computed per chunk and reduced on the
cluster, and draws whole state paths jointly across chunk boundaries.

``PROBSPACE_EXAMPLES_FAST=1`` shrinks the record to 400,000 frames and runs
on Dask's synchronous scheduler instead of a two-worker cluster.
"""

# %%
# The real series, and the long record built from it
# ---------------------------------------------------
# The waiting time to the next eruption (minutes), in eruption order. The
# long record repeats it with Gaussian measurement noise (sd 1 minute) drawn
# per block from a seed keyed by the block's position, so every worker
# regenerates the same values whenever a block is needed.
import contextlib
import os

import dask
import dask.array as da
import matplotlib.pyplot as plt
import numpy as np

import probspace
import probspace.dask as psd
from probspace.datasets import load_old_faithful

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
waits = load_old_faithful().data[:, 1]
T = 400_000 if FAST else 100_000_000
CHUNK = 50_000 if FAST else 2_000_000


def make_block(block_info=None):
    """Rows [lo, hi) of the long record: the real waits, repeated, plus noise seeded by the block's start."""
    lo, hi = block_info[None]["array-location"][0]
    rng = np.random.default_rng([2026, lo])
    return (waits[np.arange(lo, hi) % waits.size] + rng.normal(0.0, 1.0, hi - lo))[:, None]


n_blocks = T // CHUNK
X = da.map_blocks(make_block, chunks=((CHUNK,) * n_blocks, (1,)), dtype=np.float64, meta=np.empty((0, 1)))
print(f"{X.shape[0]:,} frames in {n_blocks} blocks of {CHUNK:,}: {X.nbytes / 2**20:,.0f} MiB in all")

# %%
# A starting fit on the real data
# -------------------------------
# The 272 real waits give the starting parameters: a short-wait and a
# long-wait regime that tend to alternate.
model = probspace.GaussianHMM(2, random_state=0).fit(waits[:, None])
print("means", model.means_.ravel().round(1), "\ntransitions\n", model.transmat_.round(2))

# %%
# A cluster, or the synchronous scheduler
# ---------------------------------------
# Two single-threaded workers with a 512 MiB budget each (the whole record
# is larger than that). They run as threads of this process
# (``processes=False``), so that the script needs no ``__main__`` guard;
# on a real cluster each worker is its own process or machine, and the
# budget is enforced. Dask's dashboard (``client.dashboard_link``, with
# ``bokeh`` installed) shows the tasks live; here a text progress bar
# reports them (and ``progress=True`` a bar over EM iterations). The cluster
# is always closed at the end.
stack = contextlib.ExitStack()
if FAST:
    stack.enter_context(dask.config.set(scheduler="synchronous"))
    from dask.diagnostics import ProgressBar as progress_context
else:
    import logging
    import tempfile

    from distributed import Client, LocalCluster

    # threads share this process's memory: the budget caps what each worker stores, without pausing the process
    stack.enter_context(dask.config.set({"distributed.worker.memory.pause": False,
                                         "distributed.worker.memory.terminate": False,
                                         "temporary-directory": tempfile.gettempdir()}))
    cluster = stack.enter_context(LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                               memory_limit="512MiB", dashboard_address=None,
                                               silence_logs=logging.ERROR))
    client = stack.enter_context(Client(cluster))
    progress_context = contextlib.nullcontext

# %%
# Distributed EM on the whole record
# ----------------------------------
# Each iteration computes every chunk's transfer matrix in parallel, scans
# the boundary messages, smooths each chunk and reduces its expected
# transition counts and moments by a tree; the M-step runs here, on the
# client. Two iterations from the real-data fit.
with stack:
    with progress_context():
        psd.fit(model, X, max_iter=2, tol=0.0, progress=True)
    print("EM log-likelihood per frame:", model.history_.round(4))
    print("means", model.means_.ravel().round(2))

    # %%
    # The exact posterior over the one long path
    # ------------------------------------------
    # ``model.posterior(X)`` on a dask array holding one sequence in many
    # chunks returns a :class:`~probspace.dask.ChunkedMarkovChain`: the
    # same marginals as the monolithic forward-backward, computed chunk by
    # chunk. We reduce them per block (the fraction of time spent in the
    # long-wait regime) and keep the first 300 frames in full, with five
    # joint path draws (boundary states first, then each chunk's interior).
    post = model.posterior(X)
    long_state = int(np.argmax(model.means_.ravel()))
    per_block = post.marginals[:, long_state].map_blocks(lambda m: m.mean(keepdims=True), chunks=((1,) * n_blocks,))
    with progress_context():
        occupancy, head, paths, loglik = dask.compute(per_block, post.marginals[:300, long_state],
                                                      post.sample(5, random_state=0)[:, :300], post.log_likelihood)
    print(f"log p(x) of the whole record: {loglik[0]:,.1f}")

# %%
# What the posterior says
# -----------------------
# Left: the first 300 frames, the probability of the long-wait regime, and
# five joint draws of the path (offset for visibility). Right: the share of
# time in the long-wait regime in every block of the record, steady because
# the record repeats one real series.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [2, 1]})
x0 = X[:300, 0].compute()
ax1.plot(x0, color="0.6", lw=0.8, label="wait (min)")
ax1b = ax1.twinx()
ax1b.plot(head, color="C1", lw=1.5, label="P(long-wait regime)")
for i, p in enumerate(paths):
    ax1b.plot(1.1 + 0.12 * i + 0.08 * (p == long_state), color="C0", lw=0.6)
ax1.set(xlabel="eruption", ylabel="wait (min)", title="First 300 frames: marginals and joint path draws")
ax1b.set(ylabel="probability / draws", ylim=(-0.05, 1.8))
ax2.bar(np.arange(n_blocks), occupancy, color="C1")
ax2.set(xlabel="block", ylabel="share of frames", title="Long-wait regime, per block", ylim=(0, 1))
fig.tight_layout()
plt.show()
