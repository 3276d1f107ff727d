import os

# One BLAS thread per process: on a 2-core machine running tests in parallel, multi-threaded BLAS
# spins on tiny matrices (seen: 7 ms per 2x2 triangular solve).
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import matplotlib  # noqa: E402

matplotlib.use("Agg")
os.environ.setdefault("PROBSPACE_EXAMPLES_FAST", "1")
