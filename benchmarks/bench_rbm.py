"""Benchmark probspace's RBM against scikit-learn's BernoulliRBM, same run, on binarised digits.

probspace's ``RBM`` trains with scikit-learn's ``BernoulliRBM`` (persistent contrastive
divergence), so training per epoch is the backend's plus probspace's overhead: input
validation, the binary check and, once per fit, the exact log partition function. Reported:

1. Fit time per epoch, probspace ``RBM(H).fit`` (log partition function included) against
   ``BernoulliRBM(H).fit``, ABBA-interleaved medians. The goal (<= 1.1) is on training alone
   (probspace's fit with the log partition function by a negligible 2-step AIS): the
   wrapper's overhead. The ratio including the exact log Z (about 1 s, once per fit) is printed too.
2. Exact log-likelihood for H = 20 on the 1,797 digits: the log partition function
   (2^20 hidden configurations) and ``log_likelihood(X)``, in seconds.

Usage::

    python benchmarks/bench_rbm.py            # 20 epochs
    python benchmarks/bench_rbm.py --quick    # 5 epochs

Exits with status 1 when the overhead goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from sklearn import neural_network  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import probspace  # noqa: E402
from probspace.inference._rbm import log_partition_exact  # noqa: E402


def _time(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    epochs = 5 if args.quick else 20
    X = (load_digits().data >= 8).astype(float)
    H = 20
    ours, train, theirs = [], [], []
    # training alone: log Z by a 2-step, 2-chain AIS (negligible), so the ratio is the wrapper's overhead
    cheap = {"max_exact_units": 0, "n_ais_chains": 2, "n_ais_betas": 2}
    for _ in range(args.repeats):  # ABBA
        for order in ((0, 1, 2), (2, 1, 0)):
            for side in order:
                if side == 0:
                    ours.append(_time(lambda: probspace.RBM(H, n_iter=epochs, random_state=0).fit(X)))
                elif side == 1:
                    train.append(_time(lambda: probspace.RBM(H, n_iter=epochs, random_state=0, **cheap).fit(X)))
                else:
                    theirs.append(_time(lambda: neural_network.BernoulliRBM(H, n_iter=epochs, random_state=0).fit(X)))
    rbm = probspace.RBM(H, n_iter=epochs, random_state=0).fit(X)
    W, b, c = rbm.components_, rbm.intercept_hidden_, rbm.intercept_visible_
    t_logz = statistics.median(_time(lambda: log_partition_exact(W, b, c)) for _ in range(3))
    t_ll = statistics.median(_time(lambda: rbm.log_likelihood(X)) for _ in range(3))
    a, s = statistics.median(ours), statistics.median(theirs)
    ratio_all = a / s
    ratio_train = statistics.median(train) / s
    print(f"digits binarised: N={X.shape[0]}, D={X.shape[1]}, H={H}, {epochs} epochs, batch 10")
    print(f"fit per epoch: probspace {a / epochs * 1e3:.1f} ms (incl. exact log Z), "
          f"scikit-learn {s / epochs * 1e3:.1f} ms")
    print(f"ratio probspace/scikit-learn: {ratio_all:.3f} including the exact log Z once per fit, "
          f"{ratio_train:.3f} training alone (goal <= 1.1)")
    print(f"exact log Z for H=20 (2^20 configurations): {t_logz:.2f} s; "
          f"log_likelihood(X) after it: {t_ll * 1e3:.1f} ms")
    return 0 if ratio_train <= 1.1 else 1


if __name__ == "__main__":
    sys.exit(main())
