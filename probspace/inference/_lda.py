r"""Kernels of collapsed Gibbs sampling for latent Dirichlet allocation.

The state is the topic ``z[i]`` of every word token, with the topic
proportions and the topics integrated out. Each update draws one token's
topic from its exact full conditional

.. math::

    p(z_i = k \mid z_{-i}, w) \propto (\alpha_k + n_{dk}^{-i})
    \frac{\beta + n_{kw}^{-i}}{V\beta + n_k^{-i}},

where the counts leave token ``i`` out. Two kernels compute the same update:

- :func:`sweep_dense` forms all ``K`` terms per token (fastest for a few
  dozen topics, where the loop is short and vectorised);
- :func:`sweep_sparse` splits the mass into SparseLDA's three buckets (Yao,
  Mimno and McCallum, KDD 2009): the smoothing bucket
  :math:`s = \sum_k \alpha_k\beta / (V\beta + n_k)`, the document bucket
  :math:`r = \sum_{k: n_{dk}>0} n_{dk}\beta / (V\beta + n_k)` and the word
  bucket :math:`q = \sum_{k: n_{kw}>0} (\alpha_k + n_{dk}) n_{kw} / (V\beta + n_k)`,
  kept up to date incrementally, with the topics of each word and of the
  current document in unordered sparse lists, so a token costs the number of
  topics its word and document hold rather than ``K``.

Tokens are laid out document by document (``doc_ptr`` gives each document's
slice), counts are int32 with the topic axis last (``n_dk`` ``(D, K)``,
``n_wk`` ``(V, K)``), and each call reseeds numba's generator with ``seed``
so a run is reproducible from a numpy ``Generator``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

__all__ = ["count_topics", "fold_in", "log_joint", "sweep_dense", "sweep_sparse"]

_JIT = {"cache": True, "nogil": True}


@numba.njit(**_JIT)
def count_topics(doc_ptr, word, z, n_dk, n_wk, n_k):
    """Fill the count arrays (zeroed first) from the assignments ``z``."""
    n_dk[:] = 0
    n_wk[:] = 0
    n_k[:] = 0
    for d in range(doc_ptr.size - 1):
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            k = z[i]
            n_dk[d, k] += 1
            n_wk[word[i], k] += 1
            n_k[k] += 1


@numba.njit(**_JIT)
def _pick(cum, n, u):
    """Index of the first entry of the increasing ``cum[:n]`` above ``u`` (the last one on round-off)."""
    for j in range(n - 1):
        if u < cum[j]:
            return j
    return n - 1


@numba.njit(**_JIT)
def sweep_dense(doc_ptr, word, z, n_dk, n_wk, n_k, alpha, beta, n_sweeps, seed):
    """Run ``n_sweeps`` full sweeps of the collapsed Gibbs sampler, updating ``z`` and the counts in place."""
    np.random.seed(seed)
    K = n_k.size
    vbeta = n_wk.shape[0] * beta
    inv = np.empty(K)
    cum = np.empty(K)
    for k in range(K):
        inv[k] = 1.0 / (vbeta + n_k[k])
    for _ in range(n_sweeps):
        for d in range(doc_ptr.size - 1):
            for i in range(doc_ptr[d], doc_ptr[d + 1]):
                w = word[i]
                t = z[i]
                n_dk[d, t] -= 1
                n_wk[w, t] -= 1
                n_k[t] -= 1
                inv[t] = 1.0 / (vbeta + n_k[t])
                total = 0.0
                for k in range(K):
                    total += (alpha[k] + n_dk[d, k]) * (beta + n_wk[w, k]) * inv[k]
                    cum[k] = total
                t = _pick(cum, K, np.random.random() * total)
                z[i] = t
                n_dk[d, t] += 1
                n_wk[w, t] += 1
                n_k[t] += 1
                inv[t] = 1.0 / (vbeta + n_k[t])


@numba.njit(**_JIT)
def _word_lists(n_wk):
    """Unordered lists of the topics each word holds, with each topic's position in its word's list."""
    V, K = n_wk.shape
    lists = np.empty((V, K), dtype=np.int32)
    pos = np.full((V, K), -1, dtype=np.int32)
    size = np.zeros(V, dtype=np.int32)
    for w in range(V):
        for k in range(K):
            if n_wk[w, k] > 0:
                lists[w, size[w]] = k
                pos[w, k] = size[w]
                size[w] += 1
    return lists, pos, size


@numba.njit(**_JIT)
def _drop(lists, pos, size, row, k):
    """Remove topic ``k`` from list ``row`` (swap with the last entry)."""
    j = pos[row, k]
    last = size[row] - 1
    moved = lists[row, last]
    lists[row, j] = moved
    pos[row, moved] = j
    pos[row, k] = -1
    size[row] = last


@numba.njit(**_JIT)
def _add(lists, pos, size, row, k):
    """Append topic ``k`` to list ``row``."""
    lists[row, size[row]] = k
    pos[row, k] = size[row]
    size[row] += 1


@numba.njit(**_JIT)
def sweep_sparse(doc_ptr, word, z, n_dk, n_wk, n_k, alpha, beta, n_sweeps, seed):
    """SparseLDA version of :func:`sweep_dense`: the same full conditionals, drawn through the s/r/q buckets."""
    np.random.seed(seed)
    V, K = n_wk.shape
    vbeta = V * beta
    inv = np.empty(K)
    coef = np.empty(K)
    qv = np.empty(K)
    wl, wpos, wsize = _word_lists(n_wk)
    dl = np.empty((1, K), dtype=np.int32)
    dpos = np.full((1, K), -1, dtype=np.int32)
    dsize = np.zeros(1, dtype=np.int32)
    for _ in range(n_sweeps):
        for k in range(K):
            inv[k] = 1.0 / (vbeta + n_k[k])
        for d in range(doc_ptr.size - 1):
            s = 0.0
            r = 0.0
            dsize[0] = 0
            for k in range(K):
                s += alpha[k] * beta * inv[k]
                c = n_dk[d, k]
                dpos[0, k] = -1
                if c > 0:
                    _add(dl, dpos, dsize, 0, k)
                    r += c * beta * inv[k]
                coef[k] = (alpha[k] + c) * inv[k]
            for i in range(doc_ptr[d], doc_ptr[d + 1]):
                w = word[i]
                t = z[i]
                # take token i out of the counts and the buckets
                s -= alpha[t] * beta * inv[t]
                r -= n_dk[d, t] * beta * inv[t]
                n_dk[d, t] -= 1
                n_wk[w, t] -= 1
                n_k[t] -= 1
                inv[t] = 1.0 / (vbeta + n_k[t])
                s += alpha[t] * beta * inv[t]
                r += n_dk[d, t] * beta * inv[t]
                coef[t] = (alpha[t] + n_dk[d, t]) * inv[t]
                if n_dk[d, t] == 0:
                    _drop(dl, dpos, dsize, 0, t)
                if n_wk[w, t] == 0:
                    _drop(wl, wpos, wsize, w, t)
                # word bucket
                q = 0.0
                nw = wsize[w]
                for j in range(nw):
                    k = wl[w, j]
                    q += coef[k] * n_wk[w, k]
                    qv[j] = q
                u = np.random.random() * (s + r + q)
                if u < q:
                    t = wl[w, _pick(qv, nw, u)]
                else:
                    u -= q
                    if u < r:
                        acc = 0.0
                        t = dl[0, dsize[0] - 1]
                        for j in range(dsize[0]):
                            k = dl[0, j]
                            acc += n_dk[d, k] * beta * inv[k]
                            if u < acc:
                                t = k
                                break
                    else:
                        u -= r
                        acc = 0.0
                        t = K - 1
                        for k in range(K):
                            acc += alpha[k] * beta * inv[k]
                            if u < acc:
                                t = k
                                break
                # put it back under topic t
                z[i] = t
                s -= alpha[t] * beta * inv[t]
                r -= n_dk[d, t] * beta * inv[t]
                if n_dk[d, t] == 0:
                    _add(dl, dpos, dsize, 0, t)
                if n_wk[w, t] == 0:
                    _add(wl, wpos, wsize, w, t)
                n_dk[d, t] += 1
                n_wk[w, t] += 1
                n_k[t] += 1
                inv[t] = 1.0 / (vbeta + n_k[t])
                s += alpha[t] * beta * inv[t]
                r += n_dk[d, t] * beta * inv[t]
                coef[t] = (alpha[t] + n_dk[d, t]) * inv[t]


@numba.njit(**_JIT)
def fold_in(doc_ptr, word, z, phi_wk, alpha, n_warmup, thin, out, z_out, seed):
    r"""Gibbs sampling of new documents' topics with the topics fixed at ``phi_wk`` ``(V, K)``.

    The full conditional is :math:`p(z_i = k) \propto (\alpha_k + n_{dk}^{-i})\,\phi_{kw}`
    (the document's proportions integrated out). ``z`` holds the starting
    assignments; after ``n_warmup`` sweeps, every ``thin``-th sweep writes the
    document-topic counts to ``out[s]`` (``out`` is ``(S, D, K)``) and, when
    ``z_out`` has ``S`` rows, the assignments of every token to ``z_out[s]``.
    """
    np.random.seed(seed)
    D = doc_ptr.size - 1
    K = phi_wk.shape[1]
    S = out.shape[0]
    n_dk = np.zeros(K, dtype=np.int64)
    cum = np.empty(K)
    for d in range(D):
        n_dk[:] = 0
        for i in range(doc_ptr[d], doc_ptr[d + 1]):
            n_dk[z[i]] += 1
        for sweep in range(n_warmup + S * thin):
            for i in range(doc_ptr[d], doc_ptr[d + 1]):
                w = word[i]
                n_dk[z[i]] -= 1
                total = 0.0
                for k in range(K):
                    total += (alpha[k] + n_dk[k]) * phi_wk[w, k]
                    cum[k] = total
                t = _pick(cum, K, np.random.random() * total)
                z[i] = t
                n_dk[t] += 1
            kept = sweep - n_warmup
            if kept >= 0 and (kept + 1) % thin == 0:
                for k in range(K):
                    out[kept // thin, d, k] = n_dk[k]
                if z_out.shape[0] == S:
                    for i in range(doc_ptr[d], doc_ptr[d + 1]):
                        z_out[kept // thin, i] = z[i]


@numba.njit(**_JIT)
def log_joint(n_dk, n_wk, n_k, alpha, beta):
    r"""Collapsed log densities of a state: ``(log p(z), log p(w | z))``.

    :math:`\log p(z) = \sum_d [\log\Gamma(A) - \log\Gamma(A + N_d) + \sum_k
    \log\Gamma(\alpha_k + n_{dk}) - \log\Gamma(\alpha_k)]` with :math:`A = \sum_k \alpha_k`, and
    :math:`\log p(w \mid z) = \sum_k [\log\Gamma(V\beta) - \log\Gamma(V\beta + n_k) + \sum_w
    \log\Gamma(\beta + n_{kw}) - \log\Gamma(\beta)]`; their sum is the log joint.
    """
    D, K = n_dk.shape
    V = n_wk.shape[0]
    a_sum = 0.0
    for k in range(K):
        a_sum += alpha[k]
    lg_a = np.empty(K)
    for k in range(K):
        lg_a[k] = math.lgamma(alpha[k])
    lz = 0.0
    for d in range(D):
        n_d = 0
        for k in range(K):
            c = n_dk[d, k]
            if c > 0:
                lz += math.lgamma(alpha[k] + c) - lg_a[k]
                n_d += c
        lz += math.lgamma(a_sum) - math.lgamma(a_sum + n_d)
    lg_b = math.lgamma(beta)
    lw = 0.0
    for w in range(V):
        for k in range(K):
            c = n_wk[w, k]
            if c > 0:
                lw += math.lgamma(beta + c) - lg_b
    for k in range(K):
        lw += math.lgamma(V * beta) - math.lgamma(V * beta + n_k[k])
    return lz, lw

