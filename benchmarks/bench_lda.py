"""Benchmark probspace's LDA against scikit-learn (and tomotopy, gensim when installed), same run.

Corpus: ``probspace.datasets.load_docstring_corpus()`` (the docstrings of the installed
numpy, scipy and scikit-learn), vectorised with ``CountVectorizer``, split 90/10 into
training and held-out documents with a fixed seed. K = 20 topics
(see the LDA section of ``/work/shared/design/performance-anchors.md``).

1. Fit time: probspace ``LDA(20, learning_method="batch", max_iter=10)`` against
   scikit-learn's ``LatentDirichletAllocation`` with the same settings and the same integer
   seed (probspace derives the backend's seed from its generator; scikit-learn is given
   that derived seed, so both run the identical computation; checked). Repeated with A and
   B interleaved (ABBA), medians. Goal: probspace / scikit-learn <= 1.05.
2. Document-completion perplexity on the held-out documents (infer the topic mix from a
   random half of each document's tokens, score the other half; lower is better), with the
   same random split for every tool: probspace's ``completion_perplexity`` for probspace and
   the same protocol, written out below, for the others.

tomotopy (collapsed Gibbs) and gensim (online VB) run only when installed; their numbers
are for orientation (different inference), not a goal.

Usage::

    python benchmarks/bench_lda.py            # full run (about a minute or two)
    python benchmarks/bench_lda.py --quick    # 500 documents, 5 iterations

Exits with status 1 when a goal is not met.
"""

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
import sklearn  # noqa: E402
from sklearn import decomposition  # noqa: E402
from sklearn.feature_extraction.text import CountVectorizer  # noqa: E402

import probspace  # noqa: E402
from probspace import LDA  # noqa: E402
from probspace._random import as_generator, sklearn_seed  # noqa: E402
from probspace.datasets import load_docstring_corpus  # noqa: E402

GOAL_OVERHEAD = 1.05


def split_halves(X: sp.csr_matrix, seed: int) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """Each token goes to the observed or the held-out half with probability 1/2."""
    coo = X.tocoo()
    seen = np.random.default_rng(seed).binomial(coo.data.astype(np.int64), 0.5)
    held = coo.data - seen
    make = lambda v: sp.csr_matrix((v.astype(np.float64), (coo.row, coo.col)), shape=X.shape)  # noqa: E731
    return make(seen), make(held)


def completion_perplexity(theta: np.ndarray, beta: np.ndarray, held: sp.csr_matrix) -> float:
    coo = held.tocoo()
    keep = coo.data > 0
    p = np.einsum("ik,ki->i", theta[coo.row[keep]], beta[:, coo.col[keep]])
    return float(np.exp(-(coo.data[keep] * np.log(p)).sum() / coo.data[keep].sum()))


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 documents, 5 iterations")
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--max-iter", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    max_iter = 5 if args.quick else args.max_iter

    print("probspace LDA benchmark")
    print(f"python {platform.python_version()}, numpy {np.__version__}, scikit-learn {sklearn.__version__}, "
          f"probspace {probspace.__version__}; {os.cpu_count()} cpus; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']}")
    print(f"load average at start: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    t_build, corpus = timed(load_docstring_corpus)
    docs = corpus.data[:500] if args.quick else corpus.data
    vec = CountVectorizer(stop_words="english", token_pattern=r"(?u)\b[a-zA-Z][a-zA-Z]{2,}\b", min_df=3, max_df=0.5)
    X = vec.fit_transform(docs).astype(np.float64).tocsr()
    order = np.random.default_rng(args.seed).permutation(X.shape[0])
    n_test = max(1, X.shape[0] // 10)
    X_train, X_test = X[order[n_test:]], X[order[:n_test]]
    print(f"corpus: {len(docs)} documents built in {t_build:.1f} s; V={X.shape[1]}; "
          f"train {X_train.shape[0]} docs / {int(X_train.sum())} tokens; held-out {X_test.shape[0]} docs")
    seen, held = split_halves(X_test, args.seed + 1)

    settings = dict(learning_method="batch", max_iter=max_iter, evaluate_every=-1)  # fixed passes, as sklearn
    seed = sklearn_seed(as_generator(args.seed))
    ours, theirs = [], []
    for r in range(args.repeats):
        pair = [("ours", lambda: LDA(args.k, random_state=args.seed, **settings).fit(X_train)),
                ("sklearn", lambda: decomposition.LatentDirichletAllocation(
                    args.k, random_state=seed, **settings).fit(X_train))]
        if r % 2:
            pair.reverse()
        for name, fn in pair:
            t, model = timed(fn)
            (ours if name == "ours" else theirs).append((t, model))
    t_ours = statistics.median(t for t, _ in ours)
    t_theirs = statistics.median(t for t, _ in theirs)
    lda, sk = ours[0][1], theirs[0][1]
    same = np.allclose(lda.components_, sk.components_)
    beta_sk = sk.components_ / sk.components_.sum(axis=1, keepdims=True)
    perp_sk = completion_perplexity(sk.transform(seen), beta_sk, held)
    # probspace's own method, with the split it draws from the same seed.
    perp_ours = lda.completion_perplexity(X_test, random_state=np.random.default_rng(args.seed + 1))
    rows = [("probspace LDA (batch VB)", t_ours, perp_ours), ("scikit-learn LDA (batch VB)", t_theirs, perp_sk)]

    if importlib.util.find_spec("tomotopy"):
        import tomotopy as tp

        vocab = vec.get_feature_names_out()
        mdl = tp.LDAModel(k=args.k, seed=args.seed)
        coo = X_train.tocoo()
        for d in range(X_train.shape[0]):
            row = X_train[d]
            words = [vocab[j] for j, c in zip(row.indices, row.data, strict=True) for _ in range(int(c))]
            if words:
                mdl.add_doc(words)
        t, _ = timed(lambda: mdl.train(250))
        theta = np.array([mdl.infer(mdl.make_doc([vocab[j] for j, c in zip(seen[d].indices, seen[d].data, strict=True)
                                                  for _ in range(int(c))]))[0] for d in range(seen.shape[0])])
        beta = np.array([mdl.get_topic_word_dist(k) for k in range(args.k)])
        index = {w: i for i, w in enumerate(mdl.used_vocabs)}
        beta_v = np.full((args.k, len(vocab)), 1e-12)
        for w, i in index.items():
            beta_v[:, list(vocab).index(w)] = beta[:, i]
        rows.append(("tomotopy collapsed Gibbs, 250 sweeps", t, completion_perplexity(theta, beta_v, held)))
        del coo
    else:
        print("tomotopy: not installed (skipped)")
    if importlib.util.find_spec("gensim"):
        from gensim.models import LdaModel

        bows = [list(zip(X_train[d].indices.tolist(), X_train[d].data.astype(int).tolist(), strict=True))
                for d in range(X_train.shape[0])]
        t, gm = timed(lambda: LdaModel(bows, num_topics=args.k, passes=10, chunksize=2000, random_state=args.seed))
        theta = np.zeros((seen.shape[0], args.k))
        for d in range(seen.shape[0]):
            bow = list(zip(seen[d].indices.tolist(), seen[d].data.astype(int).tolist(), strict=True))
            for k, p in gm.get_document_topics(bow, minimum_probability=0.0):
                theta[d, k] = p
        beta = gm.get_topics()
        rows.append(("gensim LdaModel, 10 passes", t, completion_perplexity(theta, beta, held)))
    else:
        print("gensim: not installed (skipped)")

    print(f"\nK={args.k}, batch VB max_iter={max_iter}, {args.repeats} interleaved fits (ABBA), medians")
    print(f"{'tool':40s} {'fit s':>8s} {'completion perplexity':>22s}")
    for name, t, perp in rows:
        print(f"{name:40s} {t:8.2f} {perp:22.1f}")
    print(f"fits per run: probspace {' '.join(f'{t:.2f}' for t, _ in ours)} | "
          f"scikit-learn {' '.join(f'{t:.2f}' for t, _ in theirs)}; identical topics: {'yes' if same else 'NO'}")
    ratio = t_ours / t_theirs
    print(f"load average at end: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    ok = ratio <= GOAL_OVERHEAD and same
    print(f"GOAL fit time probspace / scikit-learn <= {GOAL_OVERHEAD}: {ratio:.3f} ({(ratio - 1) * 100:+.1f}%) ... "
          f"{'PASS' if ok else 'FAIL'}")
    print(f"completion perplexity probspace {perp_ours:.1f} vs scikit-learn {perp_sk:.1f} "
          f"(same model and split: these should agree)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
