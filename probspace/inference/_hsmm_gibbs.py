"""Blocked Gibbs sampler of hidden semi-Markov models (explicit durations) with conjugate priors.

One sweep draws every sequence's whole segmentation jointly and exactly given
the parameters (:func:`probspace.inference._hsmm.sample_paths`, backward
sampling over segments), then the parameters given the segmentation:

* ``startprob ~ Dirichlet(alpha_start + first-segment counts)``;
* each transition row ``transmat[j, -j] ~ Dirichlet(alpha_trans[j, -j] + segment transition counts)`` (the
  diagonal stays zero);
* the durations. The last segment of a sequence is right-censored (seen for
  ``d`` frames, it lasts ``d' >= d``): its full length ``d'`` is drawn first
  from ``pmf[d'] / P(duration >= d)`` under the current durations (data
  augmentation: the chain then targets the exact joint posterior), after
  which every segment has a completed length. Nonparametric durations:
  ``duration_pmf[k] ~ Dirichlet(alpha_duration + completed length counts)``.
  Poisson durations (``d - 1 ~ Poisson(rate)`` truncated to ``1..D``): the
  Gamma prior is conjugate to the untruncated Poisson only, so the rate is
  drawn by an independence Metropolis-Hastings step whose proposal is that
  untruncated Gamma conditional ``Gamma(a + sum(d - 1), b + n)``; the
  truncation enters through the acceptance ratio
  ``(F(D - 1; rate) / F(D - 1; rate*))^n`` (``F`` the Poisson cdf), which is 1
  when the truncation is negligible. The chain is exact either way;
* the emission parameters by the emission's compiled conjugate update (the one
  the mixture and HMM Gibbs samplers use, :mod:`probspace.inference._gibbs`).

Negative binomial durations have no conjugate prior for their shape and are
not sampled here.

Known states (labels) enter as a ``-inf`` mask on the emission
log-likelihoods: each segmentation is then drawn from ``p(z | x, theta, known
states)``, and the chain targets the posterior given the data and the labels.

Held entries (a model's ``fixed``, NaN free) keep their values in every draw:
a probability row (``startprob``, a transition row, a nonparametric duration
row) with held entries draws its free entries from ``Dirichlet(alpha + counts)``
over the free entries alone, scaled to the mass the held ones leave (the exact
conditional of the free entries given the held ones); a held Poisson rate is
not updated; held emission arrays (and held entries of the emission's
``gibbs_entry_holds``) are passed to its update kernel as fixed.
"""

from __future__ import annotations

import numba
import numpy as np
from scipy.special import gammaln, logsumexp
from scipy.stats import poisson

from ..emissions._base import JIT, dirichlet_log_density
from . import _hsmm
from ._hmm import sequence_bounds

__all__ = ["pointwise_log_likelihood", "run_chain", "segments_of"]


@numba.njit(**JIT)
def _seed(seed):  # pragma: no cover - compiled
    np.random.seed(seed)


def segments_of(path: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split state paths into segments (runs: a segment never continues in its own state).

    Returns ``(state, length, first, last)`` per segment: its state, its number
    of frames, whether it opens its sequence and whether it closes it (the
    right-censored one).
    """
    states, lens, first, last = [], [], [], []
    for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
        z = path[lo:hi]
        cut = np.flatnonzero(np.diff(z)) + 1
        starts = np.concatenate([[0], cut])
        ends = np.concatenate([cut, [z.size]])
        states.append(z[starts])
        lens.append(ends - starts)
        f = np.zeros(starts.size, dtype=bool)
        f[0] = True
        la = np.zeros(starts.size, dtype=bool)
        la[-1] = True
        first.append(f)
        last.append(la)
    return (np.concatenate(states), np.concatenate(lens), np.concatenate(first), np.concatenate(last))


def _complete(state, length, last, pmf, rng):
    """Full lengths of the censored last segments, drawn from ``pmf[d'] / P(duration >= d)``, ``d' >= d``."""
    full = length.copy()
    for i in np.flatnonzero(last):
        w = pmf[state[i], length[i] - 1:]
        full[i] = length[i] + rng.choice(w.size, p=w / w.sum())
    return full


def _dirichlet_free(rng, alpha, counts, current, free):
    """Draw a probability row: free entries ``Dirichlet(alpha + counts)`` scaled to the mass the others leave."""
    if free.all():  # the unconstrained draw (also for a single entry: the same random stream as without holds)
        return rng.dirichlet(alpha + counts)
    out = np.array(current, dtype=np.float64, copy=True)
    if free.any():
        left = max(1.0 - float(out[~free].sum()), 0.0)
        out[free] = left * rng.dirichlet(alpha[free] + counts[free]) if free.sum() > 1 else left
    return out


def _poisson_rate(rate, a, b, dur, D, rng):
    """Independence MH step for a truncated-Poisson rate (see the module docstring); returns (rate, accepted)."""
    n = dur.size
    prop = rng.gamma(a + float((dur - 1).sum()), 1.0 / (b + n))
    log_ratio = n * (poisson.logcdf(D - 1, rate) - poisson.logcdf(D - 1, prop))
    if np.log(rng.random()) < log_ratio:
        return prop, True
    return rate, False


def run_chain(emission, X, lengths, start, alpha, hyper, duration, n_warmup, n_draws, seed, bar=None, held=None,
              log_mask=None):
    """Run one chain: ``n_warmup`` discarded and ``n_draws`` kept sweeps from ``start``.

    Parameters
    ----------
    emission : probspace.emissions.Emission
        Supplies ``log_frames``, ``pack``/``unpack`` and the compiled conjugate ``update_kernel``.
    X : ndarray of shape (T, F)
        Complete data.
    lengths : ndarray of int or None
        Sequence lengths.
    start : dict
        Starting ``startprob``, ``transmat``, ``duration_pmf`` (and ``rate`` for Poisson durations) and the
        emission arrays.
    alpha : dict
        Dirichlet concentrations ``startprob`` (K,), ``transmat`` (K, K), ``duration_pmf`` (K, D) and the Gamma
        ``rate_shape``, ``rate_rate`` (K,) of the Poisson rates.
    hyper : ndarray
        The emission's packed hyper-parameters.
    duration : {"nonparametric", "poisson"}
    n_warmup, n_draws : int
    seed : int
        Seeds numpy's and numba's generators of this chain.
    bar : progress bar, optional
    held : dict of str to ndarray, optional
        Held entries (finite) per array, NaN where drawn (see the module
        docstring); ``start`` must already carry the held values.
    log_mask : ndarray of shape (T, K), optional
        Added to the emission log-likelihoods: ``-inf`` for the states that
        known labels rule out (``label_mask``), so every segmentation drawn
        keeps the known states and the chain targets ``p(theta | x, known states)``.

    Returns
    -------
    draws : dict of str to ndarray
        Each ``(n_draws, ...)``.
    stats : dict of str to ndarray
        ``total_log_likelihood`` (``log p(X | draw)``), ``lp`` (plus the log prior density) and, for Poisson
        durations, ``duration_acceptance`` (share of the states whose rate proposal was accepted), each
        ``(n_draws,)``.
    """
    rng = np.random.default_rng(seed)
    _seed(int(rng.integers(0, 2**31 - 1)))
    X = np.ascontiguousarray(X, dtype=np.float64)
    T, F = X.shape
    bounds = sequence_bounds(lengths, T)
    K, D = start["duration_pmf"].shape
    names = tuple(emission.names)
    p = {k: np.array(v, dtype=np.float64) for k, v in start.items()}
    theta = np.ascontiguousarray(emission.pack(p), dtype=np.float64)
    held = held or {}
    free = {k: np.isnan(held[k]) if k in held else np.ones(np.shape(p[k]), dtype=bool)
            for k in ("startprob", "transmat", "duration_pmf", "rate") if k in p}
    fix = np.array([k in held and not np.isnan(held[k]).any() for k in names], dtype=np.bool_)
    entries = {k: np.isnan(held[k]) for k in names if k in held and np.isnan(held[k]).any()}
    if entries:  # held entries of emission arrays: one flag per entry of theta after the arrays' flags
        shapes = emission.shapes(K, F)
        masks = {n: ~entries[n] if n in entries else np.zeros(shp, dtype=bool) for n, shp in shapes.items()}
        fix = np.concatenate([fix, emission.pack(masks) > 0])
    n_total = n_warmup + n_draws
    out = {k: np.empty((n_draws,) + v.shape) for k, v in p.items()}
    ll_out, acc_out = np.empty(n_draws), np.empty(n_draws)
    off = ~np.eye(K, dtype=bool)
    for sweep in range(n_total + 1):
        logb = emission.log_frames(X, p)
        if log_mask is not None:
            logb = logb + log_mask
        fb = _hsmm.forward_backward(p["startprob"], p["transmat"], p["duration_pmf"], logb, lengths)
        ll = float(fb.log_likelihood.sum())
        if sweep > n_warmup:
            ll_out[sweep - 1 - n_warmup] = ll
        if sweep == n_total:
            break
        path = _hsmm.sample_paths(fb, p["transmat"], p["duration_pmf"], logb, lengths, 1, rng)[0]
        state, length, first, last = segments_of(path, bounds)
        # chain
        p["startprob"] = _dirichlet_free(rng, alpha["startprob"], np.bincount(state[first], minlength=K),
                                         p["startprob"], free["startprob"])
        nxt = ~last
        trans = np.zeros((K, K))
        np.add.at(trans, (state[:-1][nxt[:-1]], state[1:][nxt[:-1]]), 1.0)
        A = np.zeros((K, K))
        for j in range(K):
            A[j, off[j]] = _dirichlet_free(rng, alpha["transmat"][j, off[j]], trans[j, off[j]],
                                           p["transmat"][j, off[j]], free["transmat"][j, off[j]])
        p["transmat"] = A
        # durations, the censored last segments completed first
        full = _complete(state, length, last, p["duration_pmf"], rng)
        if duration == "nonparametric":
            counts = np.zeros((K, D))
            np.add.at(counts, (state, full - 1), 1.0)
            p["duration_pmf"] = np.stack([_dirichlet_free(rng, alpha["duration_pmf"][k], counts[k],
                                                          p["duration_pmf"][k], free["duration_pmf"][k])
                                          for k in range(K)])
            accepted = 1.0
        else:
            rate, hits = p["rate"].copy(), 0
            for k in range(K):
                if not free["rate"][k]:
                    hits += 1
                    continue
                rate[k], ok = _poisson_rate(rate[k], alpha["rate_shape"][k], alpha["rate_rate"][k],
                                            full[state == k], D, rng)
                hits += ok
            p["rate"] = rate
            p["duration_pmf"] = _poisson_pmf(rate, D)
            accepted = hits / K
        # emission
        z = np.ascontiguousarray(path, dtype=np.int64)
        emission.update_kernel(X, z, K, hyper, fix, theta)
        p.update(emission.unpack(theta.copy(), K, F))
        if sweep >= n_warmup:
            r = sweep - n_warmup
            for k, v in p.items():
                out[k][r] = v
            acc_out[r] = accepted
        if bar is not None:
            bar.update(1)
    stats = {"total_log_likelihood": ll_out}
    if duration == "poisson":
        stats["duration_acceptance"] = acc_out
    return out, stats


def _poisson_pmf(rate: np.ndarray, D: int) -> np.ndarray:
    d = np.arange(D, dtype=np.float64)[None, :]
    r = np.asarray(rate, dtype=np.float64)[..., None]
    logp = d * np.log(r) - r - gammaln(d + 1.0)
    return np.exp(logp - logsumexp(logp, axis=-1, keepdims=True))


def _row_log_density(x, alpha, free):
    """Log density of a row's free entries (Dirichlet over the free part, scaled to its mass); 0 if none is free."""
    n = int(free.sum())
    if n == x.shape[-1]:
        return dirichlet_log_density(x, alpha)
    if n < 2:
        return np.zeros(x.shape[:-1])
    part = x[..., free]
    left = part.sum(axis=-1, keepdims=True)
    return dirichlet_log_density(part / left, alpha[free]) - (n - 1) * np.log(left[..., 0])


def log_prior(draws: dict, alpha: dict, duration: str, emission, hyper_public: dict, held: dict | None = None
              ) -> np.ndarray:
    """Log prior density of each draw (leading axes kept): Dirichlets, Gamma rates and the emission's prior.

    With ``held`` entries, only the free entries carry a density (held arrays and entries are constants).
    """
    held = held or {}
    K = draws["startprob"].shape[-1]

    def free(name, shape):
        return np.isnan(held[name]) if name in held else np.ones(shape, dtype=bool)

    lp = _row_log_density(draws["startprob"], alpha["startprob"], free("startprob", (K,)))
    off = ~np.eye(K, dtype=bool)
    fA = free("transmat", (K, K))
    for j in range(K):
        lp = lp + _row_log_density(draws["transmat"][..., j, off[j]], alpha["transmat"][j, off[j]], fA[j, off[j]])
    if duration == "nonparametric":
        fD = free("duration_pmf", draws["duration_pmf"].shape[-2:])
        for k in range(K):
            lp = lp + _row_log_density(draws["duration_pmf"][..., k, :], alpha["duration_pmf"][k], fD[k])
    else:
        a, b, r = alpha["rate_shape"], alpha["rate_rate"], draws["rate"]
        lp = lp + ((a * np.log(b) - gammaln(a) + (a - 1.0) * np.log(r) - b * r) * free("rate", (K,))).sum(axis=-1)
    whole = tuple(k for k in emission.names if k in held and not np.isnan(held[k]).any())
    return lp + emission.log_prior({k: draws[k] for k in emission.names}, hyper_public, whole)


def pointwise_log_likelihood(startprob, transmat, duration_pmf, log_frameprob, lengths) -> np.ndarray:
    """One-step-ahead ``log p(x_t | x_<t)`` of every frame (they sum to each sequence's log-likelihood).

    ``log p(x_lo..x_t)`` is the forward mass of every segment still open at
    ``t`` (censored there): ``sum_{k,d} start[t-d+1, k] P(duration >= d) prod emissions``.
    """
    logb = np.ascontiguousarray(log_frameprob, dtype=np.float64)
    T, K = logb.shape
    D = duration_pmf.shape[1]
    fb = _hsmm.forward_backward(startprob, transmat, duration_pmf, logb, lengths)
    _, log_surv = _hsmm.duration_logs(duration_pmf)
    bounds = sequence_bounds(lengths, T)
    lo = np.repeat(bounds[:-1], np.diff(bounds))
    t = np.arange(T)
    emit = np.zeros((T, K))
    prefix = np.full((T, K), -np.inf)
    for d in range(1, D + 1):
        s = t - d + 1
        ok = s >= lo
        if not ok.any():
            break
        emit[ok] += logb[s[ok]]
        term = np.where(ok[:, None], fb.start[np.maximum(s, 0)] + log_surv[None, :, d - 1] + emit, -np.inf)
        prefix = np.logaddexp(prefix, term)
    total = logsumexp(prefix, axis=1)
    before = np.where(t == lo, 0.0, np.concatenate([[0.0], total[:-1]]))
    return total - before
