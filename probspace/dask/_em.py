"""Distributed EM: sufficient statistics per block in parallel, a tree reduction, the M-step on the client.

Each iteration sends the current parameters to the workers once (one graph
node), computes the E-step's expected sufficient statistics of every block in
parallel, adds them up by a tree reduction (``split_every`` blocks per node),
and runs the M-step on the client. The M-step formulas are scikit-learn's, so
an iteration equals one of the in-memory fit from the same parameters, to
rounding. :func:`partial_fit` is the same path for one iteration.

Statistics are taken around the current means (``x - mu_old``), which keeps
the covariance update free of cancellation for data far from the origin.

The other HMM families reduce their emission's additive statistics
(``Emission.suff_stats``) and run ``Emission.m_step_from_stats`` (or
hmmlearn's M-step, for the hmmlearn-backed PoissonHMM and CategoricalHMM),
mirroring each family's in-memory EM (see :class:`_HMMFamily`).
"""

from __future__ import annotations

import numbers
import operator
from typing import Any

import dask
import numpy as np
from dask.delayed import Delayed
from dask.highlevelgraph import HighLevelGraph
from scipy import linalg
from scipy.special import digamma

from ..inference import _hmm, _mixture
from ..inference._progress import progress_bar
from ..models.hmm._adapter import _floor_covariances
from ._chunked import chunk_smooth, scan_tasks
from ._posterior import block_lengths, check_dask_rows, chunk_sequences, shared

__all__ = ["expected_statistics", "fit", "partial_fit"]


# -- Gaussian mixture ------------------------------------------------------------------------------
def _precisions_cholesky(cov: np.ndarray, covariance_type: str) -> np.ndarray:
    if covariance_type in ("diag", "spherical"):
        return 1.0 / np.sqrt(cov)
    covs = cov[None] if covariance_type == "tied" else cov
    out = np.empty_like(covs)
    for k, c in enumerate(covs):
        chol = linalg.cholesky(c, lower=True)
        out[k] = linalg.solve_triangular(chol, np.eye(c.shape[0]), lower=True).T
    return out[0] if covariance_type == "tied" else out


def gmm_statistics(X: np.ndarray, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """E-step statistics of one block: counts, first and second moments around the current means, log-likelihood.

    Parameters
    ----------
    X : ndarray of shape (N, D)
        One block of rows.
    params : dict
        ``weights``, ``means``, ``precisions_cholesky`` and ``covariance_type``.

    Returns
    -------
    dict of str to ndarray
        ``n`` (K,), ``s1`` (K, D), ``s2`` (K, D, D) or (K, D), ``loglik`` (), ``rows`` ().
    """
    return _mixture.statistics(X, _mixture.layout(params["weights"], params["means"], params["precisions_cholesky"],
                                                  params["covariance_type"]))


def gmm_m_step(stats: dict[str, np.ndarray], params: dict[str, Any], reg_covar: float) -> dict[str, Any]:
    """Return new parameters from reduced statistics (scikit-learn's M-step, moments around the old means)."""
    ct = params["covariance_type"]
    nk = stats["n"] + 10 * np.finfo(np.float64).eps
    d = stats["s1"] / nk[:, None]
    means = params["means"] + d
    K, D = means.shape
    if ct in ("full", "tied"):
        cov = stats["s2"] / nk[:, None, None] - d[:, :, None] * d[:, None, :]
        if ct == "tied":
            cov = (cov * nk[:, None, None]).sum(axis=0) / nk.sum()
            cov.flat[:: D + 1] += reg_covar
        else:
            cov[:, np.arange(D), np.arange(D)] += reg_covar
    else:
        cov = stats["s2"] / nk[:, None] - d * d + reg_covar
        if ct == "spherical":
            cov = cov.mean(axis=1)
    return {"weights": nk / nk.sum(), "means": means, "covariances": cov,
            "precisions_cholesky": _precisions_cholesky(cov, ct), "covariance_type": ct}


def _gmm_params(model) -> dict[str, Any]:
    b = model.backend_
    return {"weights": b.weights_, "means": b.means_, "precisions_cholesky": b.precisions_cholesky_,
            "covariance_type": model.covariance_type}


def _gmm_write(model, params) -> None:
    b = model.backend_
    ct = params["covariance_type"]
    b.weights_, b.means_, b.covariances_ = params["weights"], params["means"], params["covariances"]
    pc = params["precisions_cholesky"]
    b.precisions_cholesky_ = pc
    if ct in ("diag", "spherical"):
        b.precisions_ = pc**2
    elif ct == "tied":
        b.precisions_ = pc @ pc.T
    else:
        b.precisions_ = pc @ np.swapaxes(pc, -1, -2)


# -- Gaussian HMM -----------------------------------------------------------------------------------
def _moments(X, gamma, means, full):
    """Return counts and first/second moments of ``X - means[k]`` weighted by ``gamma``."""
    K, D = means.shape
    s1 = np.empty((K, D))
    s2 = np.empty((K, D, D) if full else (K, D))
    for k in range(K):
        diff = X - means[k]
        r = gamma[:, k]
        s1[k] = r @ diff
        s2[k] = (r[:, None] * diff).T @ diff if full else r @ (diff * diff)
    return gamma.sum(axis=0), s1, s2


def hmm_statistics(model, X, lengths, params) -> dict[str, np.ndarray]:
    """E-step statistics of one block of whole sequences: initial states, transitions, the emission's statistics.

    Parameters
    ----------
    model : HMM family
        The model (for its emission density and statistics).
    X : ndarray of shape (T, D)
        Whole sequences, concatenated.
    lengths : ndarray of int
        Their lengths.
    params : dict
        ``startprob``, ``transmat`` and the emission arrays (emission layout).

    Returns
    -------
    dict of str to ndarray
        ``start``, ``trans``, ``loglik``, ``rows`` and the emission's
        statistics (GaussianHMM: ``n``, ``s1``, ``s2``, moments around the
        current means, as hmmlearn's; other families: the emission's
        :meth:`~probspace.emissions.Emission.suff_stats`).
    """
    fam = _family(model)
    fam._setup()
    return fam.statistics(X, lengths, params)


def hmm_m_step(stats: dict[str, np.ndarray], params: dict[str, Any], model: Any) -> dict[str, Any]:
    """Return new parameters from reduced statistics: hmmlearn's MAP M-step with the model's priors.

    The priors act in the units of ``X``, as in hmmlearn's own fit on ``X``.
    """
    start = np.maximum(np.asarray(model.startprob_prior) - 1 + stats["start"], 0)
    start = np.where(params["startprob"] == 0, 0, start)
    trans = np.maximum(np.asarray(model.transmat_prior) - 1 + stats["trans"], 0)
    trans = np.where(params["transmat"] == 0, 0, trans)
    rows = trans.sum(axis=1, keepdims=True)
    mw, mp = np.asarray(model.means_weight, dtype=float), np.asarray(model.means_prior, dtype=float)
    denom = stats["n"][:, None]
    old = params["means"]
    means = (mw * mp + stats["s1"] + old * denom) / (mw + denom)
    e = means - old  # the shift from the centre of the moments
    md = means - mp
    cp, cw = np.asarray(model.covars_prior, dtype=float), float(np.max(model.covars_weight))
    ct = model.covariance_type
    if ct in ("full", "tied"):
        D = means.shape[1]
        c_n = (mw[..., None, None] if mw.ndim else mw) * md[:, :, None] * md[:, None, :] + stats["s2"] \
            - stats["s1"][:, :, None] * e[:, None, :] - e[:, :, None] * stats["s1"][:, None, :] \
            + stats["n"][:, None, None] * e[:, :, None] * e[:, None, :]
        if ct == "full":
            covars = (cp + c_n) / (max(cw - D, 0) + stats["n"][:, None, None])
        else:
            covars = (cp + c_n.sum(axis=0)) / (max(cw - D, 0) + stats["n"].sum())
    else:
        c_n = mw * md**2 + stats["s2"] - 2 * e * stats["s1"] + e**2 * denom
        covars = (cp + c_n) / np.maximum(max(cw - 1, 0) + denom, 1e-5)
        if ct == "spherical":
            covars = covars.mean(axis=1)
    # as the in-memory backend (_adapter.KernelEStepGaussianHMM): a state without weight keeps its mean and
    # covariance, and variances are floored at min_covar after each M-step (min_covar in the units of X)
    per_state = ct != "tied"
    kept = ~np.isfinite(means).all(axis=1)
    if per_state:
        kept |= ~np.isfinite(covars.reshape(len(covars), -1)).all(axis=1)
        covars = np.where(kept.reshape((-1,) + (1,) * (covars.ndim - 1)), params["covars"], covars)
    elif not np.all(np.isfinite(covars)):
        covars = params["covars"]
    means = np.where(kept[:, None], old, means)
    covars = _floor_covariances(covars, model.min_covar, ct)
    return {"startprob": start / start.sum(), "transmat": np.where(rows > 0, trans / np.where(rows > 0, rows, 1), 0),
            "means": means, "covars": covars}


# -- LDA (batch variational Bayes) ---------------------------------------------------------------------
_EPS = np.finfo(np.float64).eps


def _exp_dirichlet_expectation(alpha: np.ndarray) -> np.ndarray:
    return np.exp(digamma(alpha) - digamma(alpha.sum(axis=-1, keepdims=True)))


def lda_statistics(X: np.ndarray, params: dict[str, Any]) -> dict[str, np.ndarray]:
    """Variational E-step of one block of documents: topic-word statistics and each document's concentration.

    Each document's variational Dirichlet ``gamma_d`` starts at ones and is
    updated by the usual fixed point (Blei, Ng and Jordan 2003; Hoffman, Blei
    and Bach 2010), ``gamma_d = alpha + E[theta_d] * (B_d (n_d / phi_d))``,
    until its mean absolute change falls below ``mean_change_tol`` (at most
    ``max_doc_update_iter`` sweeps), as scikit-learn's ``transform``.

    Parameters
    ----------
    X : ndarray of shape (D, V)
        Word counts of a block of documents.
    params : dict
        ``components`` (K, V), ``doc_topic_prior``, ``max_doc_update_iter``, ``mean_change_tol``.

    Returns
    -------
    dict of str to ndarray
        ``sstats`` (K, V), the expected topic-word counts; ``docs`` ().
    """
    X = np.asarray(X, dtype=np.float64)
    if not np.all(np.isfinite(X)) or np.any(X < 0):
        raise ValueError("LDA needs finite, non-negative word counts in X.")
    expB = params["exp_topic_word"]
    alpha = params["doc_topic_prior"]
    K = expB.shape[0]
    sstats = np.zeros_like(expB)
    for row in X:
        ids = np.flatnonzero(row)
        cnt, B = row[ids], expB[:, ids]
        gamma = np.ones(K)
        e_theta = _exp_dirichlet_expectation(gamma)
        for _ in range(params["max_doc_update_iter"]):
            last = gamma
            gamma = alpha + e_theta * (B @ (cnt / (e_theta @ B + _EPS)))
            e_theta = _exp_dirichlet_expectation(gamma)
            if np.mean(np.abs(gamma - last)) < params["mean_change_tol"]:
                break
        sstats[:, ids] += np.outer(e_theta, cnt / (e_theta @ B + _EPS))
    return {"sstats": sstats * expB, "docs": np.array(X.shape[0])}


class _LDA:
    """Distributed batch variational Bayes of LDA: the topic-word update from all blocks' statistics."""

    def __init__(self, model):
        self.model = model

    def prepare(self, X, lengths):
        return _Mixture.prepare(self, X, lengths)

    def params(self):
        m = self.model
        return {"components": m.components_, "exp_topic_word": _exp_dirichlet_expectation(m.components_),
                "doc_topic_prior": float(m.doc_topic_prior_), "max_doc_update_iter": int(m.max_doc_update_iter),
                "mean_change_tol": float(m.mean_change_tol)}

    def graph(self, X, layout, params, split):
        p = shared(params)
        return _tree_sum([dask.delayed(lda_statistics)(b, p) for b in X.to_delayed()[:, 0]], split)

    def m_step(self, stats, params):
        new = dict(params)
        new["components"] = self.model.topic_word_prior_ + stats["sstats"]
        new["exp_topic_word"] = _exp_dirichlet_expectation(new["components"])
        return new

    def trace(self, stats, old, new):
        """Mean absolute change of the topic-word pseudo-counts (the convergence measure)."""
        return float(np.mean(np.abs(new["components"] - old["components"])))

    def write(self, params):
        b = self.model.backend_
        b.components_ = params["components"]
        b.exp_dirichlet_component_ = params["exp_topic_word"]

    def init_rows(self, X, layout, init_size):
        return _Mixture.init_rows(self, X, layout, init_size)


# -- families ----------------------------------------------------------------------------------------
class _Mixture:
    """Distributed EM of a maximum-likelihood GaussianMixture."""

    def __init__(self, model):
        self.model = model

    def prepare(self, X, lengths):
        if lengths is not None:
            raise ValueError(f"lengths applies only to sequential families, not {type(self.model).__name__}.")
        return X, None

    def params(self):
        return _gmm_params(self.model)

    def graph(self, X, layout, params, split):
        p = shared(params)
        return _tree_sum([dask.delayed(gmm_statistics)(b, p) for b in X.to_delayed()[:, 0]], split)

    def m_step(self, stats, params):
        return gmm_m_step(stats, params, self.model.reg_covar)

    def write(self, params):
        _gmm_write(self.model, params)

    def init_rows(self, X, layout, init_size):
        n_blocks = X.numblocks[0]
        per = max(1, init_size // n_blocks)
        parts = [X.blocks[i][: min(per, X.chunks[0][i])] for i in range(n_blocks)]
        return np.concatenate(dask.compute(*parts), axis=0), None


class _HMMFamily(_Mixture):
    """Distributed EM of an HMM: blocks of whole sequences, or one long sequence over chunks.

    The E-step statistics are the expected initial states and transitions and
    the emission's additive statistics (:meth:`Emission.suff_stats`). The
    M-step mirrors the model's own EM: hmmlearn's (structural zeros kept, a
    state left without weight keeps its parameters, as ``_adapter``'s guarded
    M-step) for hmmlearn-backed families, probspace's EM loop
    (``_HMM._em_loop``: Dirichlet MAP updates, the emission's M-step, held
    entries projected by ``Constraints.project``) for native families and
    for every constrained fit.
    """

    def __init__(self, model):
        self.model = model

    def prepare(self, X, lengths):
        lengths = np.array([X.shape[0]]) if lengths is None else np.asarray(lengths, dtype=np.int64)
        if lengths.sum() != X.shape[0] or np.any(lengths <= 0):
            raise ValueError(f"'lengths' must be positive and add up to the number of rows of X ({X.shape[0]}).")
        if len(lengths) == 1:
            return X, None  # one sequence: chunked exact forward-backward
        per = block_lengths(X.chunks[0], lengths)
        if per is None:
            X = chunk_sequences(X, lengths, int(max(X.chunks[0])))
            per = block_lengths(X.chunks[0], lengths)
        return X, per

    def _setup(self):
        """Read the fitted model's emission and constraints (after an in-memory initialisation, if any)."""
        m = self.model
        self.emission = m._emission()
        self.cons = m._constraints()
        self.native = bool(m._native_backend or self.cons)
        self.stop_before_m_step = self.native  # as _HMM._em_loop (hmmlearn runs the M-step, then stops)
        self.priors = (np.asarray(m.backend_.startprob_prior, dtype=np.float64),
                       np.asarray(m.backend_.transmat_prior, dtype=np.float64))

    def params(self):
        self._setup()
        p = self.model._point()
        return self.cons.project(p) if self.cons else p  # as the in-memory EM loop starts

    # -- E-step (on the workers) ------------------------------------------------------------
    def log_frames(self, X, params):
        X = np.asarray(X, dtype=np.float64)
        missing = np.isnan(X)
        if np.isinf(X).any() or (missing.any() and not (self.native and self.emission.missing_supported(missing))):
            raise ValueError(f"Distributed EM of {type(self.model).__name__} needs finite X (no inf; NaN only where "
                             "the family's in-memory EM marginalises it); fit data with missing values in memory.")
        self.model._check_frame(X)
        return self.emission.log_frames(X, {n: params[n] for n in self.emission.names})

    def emission_stats(self, X, gamma, params):
        return self.emission.suff_stats(X, gamma, params)

    def statistics(self, X, lengths, params):
        X = np.asarray(X, dtype=np.float64)
        fb = _hmm.forward_backward(params["startprob"], params["transmat"], self.log_frames(X, params), lengths)
        bounds = _hmm.sequence_bounds(lengths, X.shape[0])
        return {"start": fb.marginals[bounds[:-1]].sum(axis=0), "trans": fb.transition_counts.sum(axis=0),
                **self.emission_stats(X, fb.marginals, params), "loglik": np.array(fb.log_likelihood.sum()),
                "rows": np.array(X.shape[0])}

    def chunk_statistics(self, X, params, logb, scan, c):
        marginals, _, _, counts, _ = chunk_smooth(params["startprob"], params["transmat"], logb, scan, c)
        K = marginals.shape[1]
        return {"start": marginals[0] if c == 0 else np.zeros(K), "trans": counts,
                **self.emission_stats(np.asarray(X, dtype=np.float64), marginals, params),
                "loglik": np.array(scan[2] if c == 0 else 0.0), "rows": np.array(X.shape[0])}

    def graph(self, X, layout, params, split):
        if layout is not None:
            p, fam = shared(params), shared(self)
            blocks = X.to_delayed()[:, 0]
            return _tree_sum([dask.delayed(_block_statistics)(fam, b, L, p) for b, L in zip(blocks, layout,
                                                                                            strict=True)], split)
        p = dask.delayed(params, pure=True, traverse=False)
        fam = dask.delayed(self, pure=True, traverse=False)
        # one sequence: one flat graph layer (see scan_tasks)
        frames = [k for (k,) in X.__dask_keys__()]
        token = dask.base.tokenize(X, p.key, fam.key)
        lf, cs = f"log-frames-{token}", f"chunk-stats-{token}"
        start, trans = (operator.getitem, p.key, "startprob"), (operator.getitem, p.key, "transmat")
        dsk, sc = scan_tasks(token, start, trans, [(lf, c) for c in range(len(frames))])
        for c, x in enumerate(frames):
            dsk[(lf, c)] = (_log_frames, fam.key, x, p.key)
            dsk[(cs, c)] = (_chunk_statistics, fam.key, x, p.key, (lf, c), sc, c)
        graph = HighLevelGraph.from_collections(cs, dsk, dependencies=[X, p, fam])
        return _tree_sum([Delayed((cs, c), graph, layer=cs) for c in range(len(frames))], split)

    # -- M-step (on the client) -------------------------------------------------------------
    def transitions_m_step(self, stats, params):
        """Dirichlet MAP updates of the initial and transition probabilities, as the model's in-memory EM."""
        start = np.maximum(self.priors[0] - 1.0 + stats["start"], 0.0)
        trans = np.maximum(self.priors[1] - 1.0 + stats["trans"], 0.0)
        if self.native:  # _HMM._em_loop
            new_start = start / start.sum()
        else:  # hmmlearn: structural zeros kept; an all-zero update keeps the old values (_guarded_mstep)
            start = np.where(params["startprob"] == 0, 0.0, start)
            trans = np.where(params["transmat"] == 0, 0.0, trans)
            total = start.sum()
            new_start = start / total if total > 0 else params["startprob"]
        rows = trans.sum(axis=1, keepdims=True)
        return new_start, np.where(rows > 0, trans / np.where(rows > 0, rows, 1.0), params["transmat"])

    def emission_m_step(self, stats, params):
        if self.native:
            held = self.cons.held if self.cons else {}
            if "means" in held and self.emission.name in ("gaussian", "gmm"):
                return self.emission.m_step_from_stats(stats, params, means=held["means"])
            return self.emission.m_step_from_stats(stats, params)
        return _HMMLEARN_M_STEPS[self.emission.name](self.model, stats, params)

    def m_step(self, stats, params):
        if self.cons and not np.isfinite(stats["loglik"]):
            raise ValueError(f"{type(self.model).__name__}: a sequence has zero probability under the constraints "
                             "(fixed entries or topology rule out every path).")
        start, trans = self.transitions_m_step(stats, params)
        new = {"startprob": start, "transmat": trans, **self.emission_m_step(stats, params)}
        return self.cons.project(new) if self.cons else new

    def write(self, params):
        self.model._set_point(params)

    def init_rows(self, X, layout, init_size):
        if layout is None:
            rows = min(init_size, X.shape[0])
            return np.asarray(X[:rows].compute()), None
        lengths = np.concatenate(layout)
        n_seq = max(1, int(np.searchsorted(np.cumsum(lengths), init_size, side="right")))
        rows = int(lengths[:n_seq].sum())
        return np.asarray(X[:rows].compute()), lengths[:n_seq]


def _log_frames(fam, X, params):
    return fam.log_frames(X, params)


def _block_statistics(fam, X, lengths, params):
    return fam.statistics(X, lengths, params)


def _chunk_statistics(fam, X, params, logb, scan, c):
    return fam.chunk_statistics(X, params, logb, scan, c)


def _poisson_hmmlearn(model, stats, params):
    """Return hmmlearn's PoissonHMM M-step (its prior weighs every state by the total count), guarded."""
    post = stats["den"][:, 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        y_bar = stats["num"] / post[:, None]
        n = post.sum()
        lam = (model.lambdas_prior + n * y_bar) / (model.lambdas_weight + n)
    bad = ~np.isfinite(lam).all(axis=1, keepdims=True)
    return {"lambdas": np.where(bad, params["lambdas"], lam)}


def _categorical_hmmlearn(model, stats, params):
    """Return hmmlearn's CategoricalHMM M-step: ``max(prior - 1 + counts, 0)`` over normalised rows."""
    B = np.maximum(np.asarray(model.emissionprob_prior, dtype=np.float64) - 1.0 + stats["counts"], 0.0)
    rows = B.sum(axis=1, keepdims=True)
    return {"emissionprob": B / np.where(rows == 0, 1.0, rows)}


#: Emission M-steps of the hmmlearn backends, by emission name (the hmmlearn-backed families fitted distributed).
_HMMLEARN_M_STEPS = {"poisson": _poisson_hmmlearn, "categorical": _categorical_hmmlearn}


class _GaussianHMM(_HMMFamily):
    """GaussianHMM: hmmlearn's statistics (moments around the current means) and M-step."""

    def params(self):
        self._setup()
        m = self.model
        return {"startprob": m.startprob_, "transmat": m.transmat_, **m._emission_point()}

    def log_frames(self, X, params):
        X = np.asarray(X, dtype=np.float64)
        if not np.all(np.isfinite(X)):
            raise ValueError("Distributed EM needs finite X (no NaN or inf); fit data with missing values in memory.")
        return self.emission.log_frames(X, {"means": params["means"], "covars": params["covars"]})

    def emission_stats(self, X, gamma, params):
        n, s1, s2 = _moments(X, gamma, params["means"], self.model.covariance_type in ("full", "tied"))
        return {"n": n, "s1": s1, "s2": s2}

    def m_step(self, stats, params):
        with np.errstate(divide="ignore", invalid="ignore"):  # states without weight: kept by hmm_m_step
            return hmm_m_step(stats, params, self.model)

    def write(self, params):
        b = self.model.backend_
        b.startprob_, b.transmat_, b.means_ = params["startprob"], params["transmat"], params["means"]
        b.covars_ = params["covars"]


#: What distributed EM fits, for error messages.
_SUPPORTED = ("GaussianMixture, LDA, GaussianHMM, PoissonHMM, CategoricalHMM, BernoulliHMM "
              "and HMM(emission=...) with an emission that has additive sufficient statistics "
              "(Emission.suff_stats: gaussian, poisson, categorical, bernoulli)")


def _hmm_family(model):
    from ..models import GaussianHMM
    from ..models.hmm import HMM

    name = type(model).__name__
    if model.bayesian or getattr(model, "sampler", None) is not None:
        raise NotImplementedError(f"Distributed EM fits {name} by maximum likelihood (bayesian=False, sampler=None).")
    if isinstance(model, GaussianHMM):
        if model.fixed or model.topology not in (None, "ergodic"):
            raise ValueError("Distributed EM of GaussianHMM does not hold fixed or topology entries (its in-memory "
                             "constrained EM runs in standardised units); use HMM(emission='gaussian', fixed=...), "
                             "or fit in memory.")
        return _GaussianHMM(model)
    if model._native_backend:
        if isinstance(model, HMM):
            cls = model._emission_class()
        else:
            cls = type(model._emission())
        if not cls.has_suff_stats():
            raise ValueError(f"distributed EM supports {_SUPPORTED}; {getattr(model, 'emission', name)!r} "
                             f"({cls.__name__}) has no suff_stats/m_step_from_stats. Fit it in memory.")
        return _HMMFamily(model)
    from ..models import CategoricalHMM, PoissonHMM

    if not isinstance(model, (PoissonHMM, CategoricalHMM)):  # the hmmlearn M-steps of _HMMLEARN_M_STEPS
        raise ValueError(f"distributed EM supports {_SUPPORTED}; got {name}. Fit it in memory or on a subsample.")
    return _HMMFamily(model)


def _family(model):
    from ..models import LDA, GaussianMixture
    from ..models.hmm._base import _HMM

    if isinstance(model, GaussianMixture):
        if model.bayesian or model.sampler is not None:
            raise NotImplementedError("Distributed EM fits maximum-likelihood GaussianMixture (bayesian=False, "
                                      "sampler=None).")
        return _Mixture(model)
    if isinstance(model, _HMM):
        return _hmm_family(model)
    if isinstance(model, LDA):
        return _LDA(model)
    raise NotImplementedError(f"Distributed EM supports {_SUPPORTED}; got {type(model).__name__}. Fit other "
                              "families in memory or on a subsample.")


# -- the distributed loop --------------------------------------------------------------------------
def _add(*parts: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = dict(parts[0])
    for p in parts[1:]:
        for k in out:
            out[k] = out[k] + p[k]
    return out


def _tree_sum(parts: list, split_every: int):
    while len(parts) > 1:
        parts = [dask.delayed(_add)(*parts[i:i + split_every]) for i in range(0, len(parts), split_every)]
    return parts[0]


def _split(split_every: Any) -> int:
    if isinstance(split_every, bool) or not isinstance(split_every, numbers.Integral) or split_every < 2:
        raise ValueError(f"'split_every' must be an int >= 2; got {split_every!r}.")
    return int(split_every)


def _rows(model, X):
    if hasattr(model, "backend_"):
        return check_dask_rows(model, X)
    if not hasattr(X, "to_delayed") or X.ndim != 2:
        raise ValueError(f"X must be a 2-D dask array; got {type(X).__name__}.")
    return X.rechunk({1: -1})


def expected_statistics(model: Any, X: Any, *, lengths: Any = None, split_every: int = 8,
                        **compute_kwargs: Any) -> dict[str, np.ndarray]:
    """E-step sufficient statistics of ``X`` under the model's current parameters, computed per block and reduced.

    Parameters
    ----------
    model : GaussianMixture, LDA or an HMM family
        A fitted model (the parameters of the E-step): GaussianHMM (every
        ``covariance_type``), PoissonHMM, CategoricalHMM, BernoulliHMM, or HMM with an
        emission that has :meth:`~probspace.emissions.Emission.suff_stats`.
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked along rows.
    lengths : array-like of int, optional
        Sequence lengths (HMMs). One sequence over several chunks is
        handled by the chunked forward-backward.
    split_every : int, default=8
        Blocks added per node of the reduction tree.
    **compute_kwargs
        Passed to :func:`dask.compute`.

    Returns
    -------
    dict of str to ndarray
        ``n`` (expected counts per component or state), ``s1`` and ``s2``
        (first and second moments around the current means), ``loglik``
        (total log-likelihood), ``rows``; HMMs add ``start`` and ``trans``
        (expected initial states and transitions). Other HMM families:
        ``start``, ``trans``, ``loglik``, ``rows`` and the emission's
        :meth:`~probspace.emissions.Emission.suff_stats` (for example
        ``num`` and ``den`` for Poisson, ``counts`` for categorical
        emissions). LDA: ``sstats``, the expected topic-word counts, and
        ``docs``.
    """
    fam = _family(model)
    X, layout = fam.prepare(check_dask_rows(model, X), lengths)
    (stats,) = dask.compute(fam.graph(X, layout, fam.params(), _split(split_every)), **compute_kwargs)
    return stats


def fit(model: Any, X: Any, *, lengths: Any = None, max_iter: int | None = None, tol: float | None = None,
        init_size: int = 10_000, split_every: int = 8, progress: bool = False, **compute_kwargs: Any) -> Any:
    """Fit a model by EM over a dask array: E-step per block in parallel, tree reduction, M-step on the client.

    An unfitted model is first fitted in memory on about ``init_size`` rows
    (a mixture: rows from every block; an HMM: the first sequences, or the
    start of one long sequence), with its own initialisation and seeding; a
    fitted model continues from its parameters (warm start). Then up to
    ``max_iter`` distributed iterations run until the gain in mean
    log-likelihood per row falls below ``tol`` (mixtures, as scikit-learn)
    or the gain in total log-likelihood does (HMMs, as hmmlearn; native
    and constrained HMM fits stop before that iteration's M-step, as
    probspace's in-memory EM loop).

    Parameters
    ----------
    model : GaussianMixture, LDA or an HMM family
        Maximum-likelihood model (LDA: batch variational Bayes over the
        blocks, whatever its ``learning_method``), fitted or not, fitted in
        place. GaussianHMM (every ``covariance_type``; ``min_covar`` floors
        the variances after each M-step, as in memory): the priors act in the
        units of ``X``, as in hmmlearn's own fit. PoissonHMM, CategoricalHMM
        (hmmlearn's M-step), BernoulliHMM and HMM (probspace's EM loop) with
        an emission that has additive sufficient statistics
        (:meth:`~probspace.emissions.Emission.suff_stats`: gaussian, poisson,
        categorical, bernoulli); held entries of ``fixed=``/``topology=``
        are kept as in the in-memory EM. Others raise ``ValueError``.
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked along rows. ``persist()`` it first when it fits in the
        cluster's memory, else every iteration recomputes it.
    lengths : array-like of int, optional
        Sequence lengths (HMMs). Several sequences: blocks are moved to
        sequence boundaries; one sequence over several chunks: each
        iteration runs the chunked exact forward-backward.
    max_iter, tol : optional
        Default to the model's own (LDA: ``max_iter`` and ``mean_change_tol``,
        compared with the mean absolute change of ``components_``).
    init_size : int, default=10_000
        Rows for the in-memory initialisation of an unfitted model.
    split_every : int, default=8
        Blocks added per node of the reduction tree.
    progress : bool, default=False
        Show a progress bar over iterations (with a distributed client,
        ``dask.distributed.progress`` and the dashboard show the tasks).
    **compute_kwargs
        Passed to :func:`dask.compute` (``scheduler=`` ...).

    Returns
    -------
    model
        The fitted model: parameters, ``n_iter_``, ``converged_`` and
        ``history_`` (mean log-likelihood per row before each M-step; LDA:
        the mean absolute change of ``components_`` at each iteration).

    Examples
    --------
    >>> import dask.array as da
    >>> import numpy as np
    >>> from probspace import GaussianMixture
    >>> from probspace.dask import fit
    >>> rng = np.random.default_rng(0)
    >>> X = da.from_array(np.r_[rng.normal(-3, 1, (500, 1)), rng.normal(3, 1, (500, 1))], chunks=(250, 1))
    >>> gm = fit(GaussianMixture(2, random_state=0), X, scheduler="synchronous")
    >>> [round(float(m), 1) for m in np.sort(gm.means_.ravel())]
    [-3.0, 2.9]
    """
    fam = _family(model)
    X, layout = fam.prepare(_rows(model, X), lengths)
    split = _split(split_every)
    if not hasattr(model, "backend_"):
        rows, init_lengths = fam.init_rows(X, layout, init_size)
        model.fit(rows, **({} if init_lengths is None else {"lengths": init_lengths}))
    max_iter = model.max_iter if max_iter is None else max_iter
    if tol is None:
        tol = model.mean_change_tol if isinstance(fam, _LDA) else model.tol
    params = fam.params()
    trace, converged = [], False
    with progress_bar(progress, max_iter, "distributed EM", "iter") as bar:
        for _ in range(max_iter):
            (stats,) = dask.compute(fam.graph(X, layout, params, split), **compute_kwargs)
            bar.update(1)
            if isinstance(fam, _LDA):
                old, params = params, fam.m_step(stats, params)
                trace.append(fam.trace(stats, old, params))
                if trace[-1] < tol:
                    converged = True
                    break
                continue
            trace.append(float(stats["loglik"]) / float(stats["rows"]))
            if isinstance(fam, _HMMFamily):  # hmmlearn's and probspace's rule: the gain in total log-likelihood
                converged = len(trace) > 1 and (trace[-1] - trace[-2]) * float(stats["rows"]) < tol
            else:  # scikit-learn's: the change in mean log-likelihood
                converged = len(trace) > 1 and abs(trace[-1] - trace[-2]) < tol
            if converged and getattr(fam, "stop_before_m_step", False):
                break  # probspace's EM loop stops before the M-step of a converged iteration
            params = fam.m_step(stats, params)
            if converged:
                break
    fam.write(params)
    model.n_iter_ = len(trace)
    model.converged_ = converged
    model.history_ = np.asarray(trace)
    model._check_fitted_parameters()
    return model


def partial_fit(model: Any, X: Any, **kwargs: Any) -> Any:
    """Run one distributed EM iteration on ``X`` from the model's current parameters (fitting it first if needed).

    The same path as :func:`fit` with ``max_iter=1``: the E-step of ``X``
    under the current parameters, reduced over its blocks, then the M-step.
    The new parameters are determined by the statistics of ``X`` (the data
    of this call), started from the current ones; earlier calls' data enter
    only through that starting point, so pass data that represent the
    population (or all of it), not a small batch.

    Parameters
    ----------
    model : GaussianMixture, LDA or an HMM family
        The model, updated in place (the families of :func:`fit`).
    X : dask.array.Array of shape (n_samples, n_features)
        Data chunked along rows.
    **kwargs
        Passed to :func:`fit` (``lengths``, ``split_every``, ``scheduler`` ...).

    Returns
    -------
    model
    """
    return fit(model, X, max_iter=1, **kwargs)
