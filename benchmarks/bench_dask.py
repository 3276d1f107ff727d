"""Scale-out on Dask: throughput with 2 workers vs 1, and overhead vs in-memory at 1 worker.

Goals (issue #18), on N = 1e7 observations (a 3-component Gaussian mixture in 2-D):

- posterior marginals (responsibilities, reduced per component so nothing large comes back) and
  one EM iteration (per-block statistics, tree reduction, M-step on the client):
  throughput with ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` >= 1.7x
  that of 1 worker;
- the same at 1 worker <= 1.2x the in-memory time of the same computation in this process.

Also printed, without a goal: the chunked exact forward-backward of ONE sequence of T = 1e7 frames
(2-state Gaussian HMM) with 2 and 1 workers, against the monolithic in-memory forward-backward.

Setup, as a user with data on a cluster would have it: the data are generated on the workers block
by block (seeded per block, never shipped from this process) and kept there, an equal share of
consecutive blocks on each worker; the in-memory reference computes the same array in this process.
Both clusters run side by side and the three ways (in-memory, 1 worker, 2 workers) are timed in
interleaved rounds (order reversed every other round), so a change in the machine's load hits all
three alike; the goals use the median over rounds of the same-round ratios. CPU seconds (this
process for in-memory, the worker processes for the clusters) are printed as well: they show the
overhead independently of how busy the machine is.

``--stable-malloc`` re-runs the script with glibc settings that keep freed memory (in this process and,
since the environment wins over Dask's own ``MALLOC_TRIM_THRESHOLD_=65536``, in the workers): fewer
page faults, less noise, but not what users get by default.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

MALLOC_SETTINGS = {"MALLOC_MMAP_THRESHOLD_": str(4 * 2**30), "MALLOC_TRIM_THRESHOLD_": str(16 * 2**30)}
GOAL_SPEEDUP = 1.7
GOAL_OVERHEAD = 1.2


def gen_block(block_info=None):
    lo, hi = block_info[None]["array-location"][0]
    rng = np.random.default_rng([7, lo])
    centres = np.array([[-2.0, 0.0], [2.0, 1.0], [0.0, -2.5]])
    return centres[rng.integers(0, 3, hi - lo)] + rng.normal(size=(hi - lo, 2))


def gen_hmm_block(block_info=None):
    lo, hi = block_info[None]["array-location"][0]
    rng = np.random.default_rng([8, lo])
    z = (np.cumsum(rng.random(hi - lo) < 0.05) % 2).astype(float)
    return (2.0 * z - 1.0 + rng.normal(size=hi - lo))[:, None]


def cpu_seconds():
    """User + system CPU seconds of the calling process."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def persist_spread(client, arr):
    """Generate and keep the blocks of ``arr`` on the workers, consecutive blocks, an equal share on each."""
    import dask.array as da

    workers = sorted(client.scheduler_info()["workers"])
    n = arr.numblocks[0]
    parts = [client.persist(arr.blocks[i], workers=[workers[i * len(workers) // n]]) for i in range(n)]
    out = da.concatenate(parts, axis=0)
    client.wait_for_workers(len(workers))
    out.sum().compute()
    return out


def interleaved(fns, clients, repeats):
    """Time each callable in ``repeats`` rounds (order reversed every other round) after one warm-up each.

    Returns per-way lists of wall seconds, of CPU seconds (this process for ``clients[way]`` None,
    else the sum over that client's workers) and of the busiest worker's CPU seconds.
    """
    def cpu(way):
        c = clients[way]
        return np.array([cpu_seconds()]) if c is None else np.array(list(c.run(cpu_seconds).values()))

    for f in fns.values():
        f()
    wall = {k: [] for k in fns}
    cpus = {k: [] for k in fns}
    busiest = {k: [] for k in fns}
    for r in range(repeats):
        for way in (list(fns) if r % 2 == 0 else list(fns)[::-1]):
            c0 = cpu(way)
            t0 = time.perf_counter()
            fns[way]()
            wall[way].append(time.perf_counter() - t0)
            used = cpu(way) - c0
            cpus[way].append(used.sum())
            busiest[way].append(used.max())
    return wall, cpus, busiest


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="observations and HMM frames (default 1e7)")
    parser.add_argument("--chunk", type=int, default=None, help="rows per block (default: n / 20, 500,000)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--quick", action="store_true", help="smoke run: n = 1e6, 3 rounds")
    parser.add_argument("--no-hmm", action="store_true", help="skip the (goal-free) HMM timing")
    parser.add_argument("--stable-malloc", action="store_true",
                        help="re-run under glibc malloc settings that keep freed memory (this process and the "
                             "workers): less noisy, but not the default environment users see")
    args = parser.parse_args()
    if args.stable_malloc and "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        sys.stdout.flush()
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__), *sys.argv[1:]],
                  dict(os.environ, **MALLOC_SETTINGS))
    n = 1_000_000 if args.quick else args.n
    repeats = 3 if args.quick else args.repeats
    chunk = min(args.chunk or max(1, n // 20), n)

    import dask
    import dask.array as da
    from distributed import Client, LocalCluster

    from probspace import GaussianHMM, GaussianMixture
    from probspace.dask import expected_statistics
    from probspace.dask._em import _gmm_params, gmm_m_step, gmm_statistics
    from probspace.inference import _hmm

    print(f"load average at start (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}; "
          f"cpus: {os.cpu_count()}")
    malloc = {k: os.environ[k] for k in MALLOC_SETTINGS if k in os.environ}
    print("glibc malloc: " + (", ".join(f"{k}={v}" for k, v in malloc.items()) if malloc
                              else "default settings (workers: Dask's MALLOC_TRIM_THRESHOLD_=65536)"))
    blocks = (chunk,) * (n // chunk) + ((n % chunk,) if n % chunk else ())
    make = lambda f: da.map_blocks(f, chunks=(blocks, (2 if f is gen_block else 1,)), dtype=float,  # noqa: E731
                                   meta=np.empty((0, 1)))
    X_mem, H_mem = dask.compute(make(gen_block), make(gen_hmm_block), scheduler="synchronous")
    gm = GaussianMixture(3, random_state=0, max_iter=20).fit(X_mem[:20_000])
    hm = GaussianHMM(2, random_state=0).fit(H_mem[:20_000])
    params = _gmm_params(gm)

    kw = dict(threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=50)
    with LocalCluster(n_workers=1, **kw) as c1, LocalCluster(n_workers=2, **kw) as c2, \
            Client(c1, set_as_default=False) as cl1, Client(c2, set_as_default=False) as cl2:
        clients = {"in-memory": None, "1 worker": cl1, "2 workers": cl2}
        data = {}
        for way, cl in clients.items():
            if cl is not None:
                with cl.as_current():
                    data[way] = (persist_spread(cl, make(gen_block)),
                                 None if args.no_hmm else persist_spread(cl, make(gen_hmm_block)))
        print("blocks per worker: " + "; ".join(
            f"{way}: {sorted(len(v) for v in cl.has_what().values())}" for way, cl in clients.items() if cl))

        def on(way, f):
            """Run ``f`` with ``way``'s client as the current one."""
            def run():
                with clients[way].as_current():
                    return f(*data[way])
            return run

        tasks = {
            "marginals": {
                "in-memory": lambda: gm.posterior(X_mem).mean.sum(axis=0),
                **{w: on(w, lambda X, H: gm.posterior(X).mean.sum(axis=0).compute()) for w in clients if clients[w]}},
            "em_iteration": {
                "in-memory": lambda: gmm_m_step(gmm_statistics(X_mem, params), params, gm.reg_covar),
                **{w: on(w, lambda X, H: gmm_m_step(expected_statistics(gm, X), params, gm.reg_covar))
                   for w in clients if clients[w]}},
        }
        if not args.no_hmm:
            def fb_mem():
                return _hmm.forward_backward(hm.startprob_, hm.transmat_, hm._log_frameprob(H_mem)).marginals.sum(0)
            tasks["hmm_chunked_fb"] = {
                "in-memory": fb_mem,
                **{w: on(w, lambda X, H: hm.posterior(H).marginals.sum(axis=0).compute())
                   for w in clients if clients[w]}}
        results = {task: interleaved(fns, clients, repeats) for task, fns in tasks.items()}

    print(f"\nN = T = {n:,}, blocks of {chunk:,} rows; {repeats} interleaved rounds; "
          "wall s: best (median); CPU s: median (workers summed)")
    ways = list(clients)
    print(f"{'task':<16}" + "".join(f"{w + ' wall':>20}" for w in ways) + "".join(f"{w + ' CPU':>17}" for w in ways))
    for task, (wall, cpus, _) in results.items():
        print(f"{task:<16}" + "".join(f"{min(wall[w]):>11.2f} ({np.median(wall[w]):5.2f})" for w in ways)
              + "".join(f"{np.median(cpus[w]):>17.2f}" for w in ways))
    print("\nsame-round ratios, median over rounds [min, max]:")
    ok = True
    for task, (wall, cpus, busiest) in results.items():
        speed = np.array(wall["1 worker"]) / np.array(wall["2 workers"])
        over = np.array(wall["1 worker"]) / np.array(wall["in-memory"])
        cpu_over = np.median(cpus["1 worker"]) / np.median(cpus["in-memory"])
        goal = task != "hmm_chunked_fb"
        for name, r, good, target in (
                ("speed-up 2 vs 1 workers", speed, np.median(speed) >= GOAL_SPEEDUP, f">= {GOAL_SPEEDUP}x"),
                ("overhead 1 worker vs in-memory", over, np.median(over) <= GOAL_OVERHEAD, f"<= {GOAL_OVERHEAD}x")):
            verdict = ("PASS" if good else "FAIL") if goal else "info"
            print(f"  {verdict}  {task}: {name} {np.median(r):.2f}x [{r.min():.2f}, {r.max():.2f}]"
                  + (f" (goal {target})" if goal else ""))
            ok &= bool(good) or not goal
        cpu_speed = np.median(cpus["1 worker"]) / np.median(busiest["2 workers"])
        print(f"        {task}: CPU seconds 1 worker / in-memory {cpu_over:.2f}x; 1 worker / busiest of 2 workers "
              f"{cpu_speed:.2f}x (the speed-up on otherwise idle cores, less scheduling latency)")
    if not args.no_hmm:
        print("  (hmm_chunked_fb has no goal: it runs K + 1 passes per chunk instead of one, to be parallel)")
    print(f"load average at end (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print("ALL PASS" if ok else "SOME GOALS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
