"""SemiMarkovHMM: a hidden semi-Markov model with explicit duration distributions, over any registered emission."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize, minimize_scalar
from scipy.special import expit, gammaln, logsumexp, xlogy

from .. import _bayes
from .._docstrings import fill
from .._random import child_generator
from .._validation import Interval, Options
from ..emissions._base import PriorReader, is_distribution
from ..inference import _hsmm, _hsmm_gibbs
from ..inference._progress import progress_bar
from ..posteriors import SemiMarkovChain
from ..posteriors._mixture import FiniteMixture
from ._emission_chain import CHAIN_CONSTRAINTS, EmissionChain
from .hmm._constraints import Constraints, constrained_emission_m_step, label_mask, whole_state_arrays
from .hmm._generic import _ConformanceData

__all__ = ["SemiMarkovHMM", "duration_pmf"]

DURATIONS = ("nonparametric", "poisson", "negative_binomial")


def duration_pmf(kind: str, params: dict[str, np.ndarray], max_duration: int) -> np.ndarray:
    """Duration pmf over ``1..max_duration`` (rows per state) of a parametric family, truncated and renormalised.

    ``"poisson"``: ``d - 1 ~ Poisson(rate)``; ``"negative_binomial"``: ``d - 1 ~ NB(n, p)`` (scipy's
    parameterisation, mean ``n (1 - p) / p``).
    """
    d = np.arange(max_duration, dtype=np.float64)[None, :]
    if kind == "poisson":
        rate = np.asarray(params["rate"], dtype=np.float64)[:, None]
        logp = xlogy(d, rate) - rate - gammaln(d + 1.0)
    else:
        n = np.asarray(params["n"], dtype=np.float64)[:, None]
        p = np.asarray(params["p"], dtype=np.float64)[:, None]
        logp = gammaln(d + n) - gammaln(n) - gammaln(d + 1.0) + n * np.log(p) + xlogy(d, 1.0 - p)
    return np.exp(logp - logsumexp(logp, axis=1, keepdims=True))


def augmented_counts(completed: np.ndarray, censored: np.ndarray, pmf: np.ndarray) -> np.ndarray:
    """Return the expected complete-data duration counts (K, D).

    A censored segment seen for ``d`` frames lasts ``d' >= d`` frames with
    probability ``pmf[d'] / P(duration >= d)``: its unseen rest is part of the E-step.
    """
    surv = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(censored > 0, censored / np.where(surv > 0, surv, 1.0), 0.0)
    return completed + np.cumsum(ratio, axis=1) * pmf


class SemiMarkovHMM(EmissionChain):
    r"""Hidden semi-Markov model (HSMM): explicit state durations, any registered emission.

    A sequence is a run of *segments*. The first segment's state is drawn
    from ``startprob_``; a segment in state :math:`k` lasts :math:`d` frames
    with probability ``duration_pmf_[k, d - 1]`` (:math:`1 \le d \le D`,
    ``D = max_duration``); the next segment's state is drawn from row
    :math:`k` of ``transmat_`` (zero diagonal); every frame of a segment emits
    from the emission registered under ``emission`` with the state's
    parameters. An ordinary HMM is the special case of geometric durations,
    so an HSMM can express what an HMM cannot: a minimum stay, a typical
    length, a state visited for exactly one frame. The last segment of each
    sequence is right-censored (it may continue past the data).

    Durations are ``"nonparametric"`` (a free pmf over ``1..D``),
    ``"poisson"`` (``d - 1 ~ Poisson(rate)``) or ``"negative_binomial"``
    (``d - 1 ~ NB(n, p)``, overdispersed), the parametric ones truncated to
    ``1..D`` and renormalised.

    Given the parameters the posterior over segmentations is exact (a
    :class:`~probspace.posteriors.SemiMarkovChain`: forward-backward over
    segments in :math:`O(T K D + T K^2)` compiled time, marginals, Viterbi
    segmentation, exact joint draws of whole segmentations), as is the
    log-likelihood. EM fits it: the E-step is that forward-backward; the
    M-step updates ``startprob_``, ``transmat_`` and the emission in closed
    form and the durations from the expected segment counts (the unseen rest
    of each censored last segment is part of the E-step; parametric durations
    by a one- or two-parameter numerical maximisation, never worse than the
    current value), so the log-likelihood never decreases.

    ``sampler="gibbs"`` fits it fully Bayesian by blocked Gibbs sampling:
    each sweep draws every sequence's whole segmentation jointly and exactly
    given the parameters (the sampler behind ``posterior(X).sample``), then
    the parameters from their conditionals given it (see Notes). ``posterior``
    is then the equal-weight mixture, over all kept draws of all chains, of
    the exact segmentation posteriors given each draw
    (:class:`~probspace.posteriors.FiniteMixture`); ``log_likelihood`` the log
    posterior predictive density ``log mean_s p(x | theta_s)``; ``to_arviz``
    keeps the chains, so ``arviz.rhat``, ``ess`` and ``loo`` work (the
    pointwise terms are the one-step-ahead ``log p(x_t | x_<t, theta_s)``).

    Known states (``labels=``, one int per frame, ``-1`` unknown) work as
    for :class:`probspace.HMM`, in ``fit`` (EM and Gibbs), ``posterior``,
    ``log_likelihood``, ``score``, ``predict`` and ``to_arviz``: a segment in
    state ``j`` covering a frame labelled ``k != j`` gets probability 0, so
    the posterior is exactly ``p(z | x, known states)`` and the likelihood
    ``p(x, known states)``, and the fit is semi-supervised (states named by
    the labels, Gibbs draws not relabelled).

    Parameters
    ----------
    n_components : int, default=2
        Number of hidden states (at least 2: a segment is followed by another state).
    emission : str, default="gaussian"
        Name of a registered emission (:func:`probspace.emissions.emission_names`).
    emission_params : dict, optional
        The emission's settings.
    duration : {"nonparametric", "poisson", "negative_binomial"}, default="nonparametric"
        Family of the duration distributions.
    max_duration : int, default=50
        Longest possible segment ``D`` (cost grows linearly with it).
    duration_init : array-like of shape (max_duration,) or (n_components, max_duration), optional
        Starting duration pmf (nonparametric), one row for all states or one per state; by default a
        geometric pmf whose mean is a fraction of the average sequence length.
    fixed : dict, optional
        Parameters held during fitting (EM and Gibbs), by name without the
        trailing underscore: ``"startprob"``, ``"transmat"``, the duration
        parameters (``"duration_pmf"`` for nonparametric durations,
        ``"rate"`` for Poisson, ``"n"`` and ``"p"`` for negative binomial) and
        the emission's arrays. Each is an array of the parameter's shape whose
        finite entries are held at that value and whose NaN entries are
        estimated; a held 0 of a probability row is a structural zero. The
        diagonal of ``transmat`` is a structural zero already (give 0 or
        NaN there). EM's M-step is exact under the holds (the free entries of
        a probability row share the mass the held ones leave, in proportion to
        their expected counts), so the log-likelihood never decreases; the
        Gibbs sampler keeps held values in every draw and draws the free
        entries of a row from their Dirichlet conditional scaled to the mass
        left. Coupled emission arrays (full or tied covariances, or more than
        two arrays) are held per state; Gibbs holds single entries only of the
        emission's ``gibbs_entry_holds`` (diagonal Gaussian means) and whole
        arrays otherwise. With held entries (or known ``labels``) the states
        keep their order (no relabelling of the draws).
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-4
        Convergence threshold on the total log-likelihood gain.
    sampler : {None, "gibbs"}, default=None
        ``None``: EM (a point fit). ``"gibbs"``: blocked Gibbs sampling with
        conjugate priors (durations ``"nonparametric"`` or ``"poisson"``, an
        emission with a conjugate update; complete data).
    n_chains : int, default=4
        Gibbs chains, each started from its own EM fit.
    n_draws : int, default=1000
        Draws kept per chain.
    n_warmup : int, default=1000
        Sweeps discarded per chain.
    prior : dict, optional
        Gibbs only: numbers of the conjugate prior. ``"startprob"`` and
        ``"transmat"``: Dirichlet concentrations (default 1; the diagonal of
        ``transmat`` is ignored); ``"duration_pmf"``: Dirichlet concentration
        over ``1..max_duration`` (nonparametric, default 1);
        ``"rate_shape"``, ``"rate_rate"``: Gamma prior of the Poisson rates of
        ``d - 1`` (default shape 1, rate ``2 / max_duration``); and the
        emission's hyper-parameters as for :class:`probspace.HMM` (e.g.
        ``"mean"``, ``"mean_precision"``, ``"dof"``, ``"scale"`` for
        ``"gaussian"``). Per-state values refer to the sorted state order.
    {random_state}
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        State probabilities of the first segment.
    transmat_ : ndarray of shape (n_components, n_components)
        Segment transition probabilities (zero diagonal).
    duration_pmf_ : ndarray of shape (n_components, max_duration)
        ``duration_pmf_[k, d - 1] = p(duration = d | state k)``.
    duration_params_ : dict of str to ndarray
        Parameters of a parametric duration family (``{"rate"}`` for
        ``"poisson"``, ``{"n", "p"}`` for ``"negative_binomial"``; empty for
        ``"nonparametric"``).
    emission_settings_ : dict
        The emission's settings used by the fit.
    emission_arrays_ : dict of str to ndarray
        The fitted emission parameters; each is also an attribute with a
        trailing underscore (``means_`` and ``covars_`` for ``"gaussian"``...).
        For a Gibbs fit, every fitted array is its posterior mean.
    draws_ : dict of str to ndarray or None
        Gibbs fits: the parameter draws, each ``(n_chains, n_draws, ...)``
        (``startprob``, ``transmat``, ``duration_pmf``, ``rate`` for Poisson
        durations, the emission arrays), states sorted (see Notes); ``None``
        otherwise.
    sample_stats_ : dict of str to ndarray or None
        Gibbs fits: ``total_log_likelihood`` (``log p(X | draw)``), ``lp``
        (plus the log prior density) and, for Poisson durations,
        ``duration_acceptance`` (share of accepted rate proposals), each
        ``(n_chains, n_draws)``; ``None`` otherwise.
    prior_ : dict or None
        Gibbs fits: the prior used (defaults filled in); ``None`` otherwise.
    {common_attributes}

    See Also
    --------
    probspace.HMM : Geometric durations (an ordinary Markov chain).
    probspace.InputDrivenHMM : Transitions driven by covariates.

    Notes
    -----
    The Gibbs conditionals given a segmentation. ``startprob`` and each
    transition row (off the diagonal) are Dirichlet. The last segment of a
    sequence is right-censored, so its full length is a latent variable:
    each sweep first draws it from ``pmf[d'] / P(duration >= d)``
    (``d' >= d`` frames seen) under the current durations, which makes every
    segment complete (data augmentation, exact). Nonparametric durations are
    then Dirichlet. Poisson durations are truncated to ``1..max_duration``,
    which the Gamma prior is not conjugate to: the rate is drawn by an
    independence Metropolis-Hastings step whose proposal is the untruncated
    Gamma conditional and whose acceptance ratio carries the truncation
    (``sample_stats_["duration_acceptance"]``; 1 when the truncation is
    negligible), so the chain targets the exact posterior. The emission
    parameters come from the same compiled conjugate update as the other
    Gibbs HMMs (Gaussian normal-inverse-Wishart, Poisson Gamma, categorical
    Dirichlet...). Negative binomial durations have no conjugate shape prior
    and ``sampler="gibbs"`` rejects them.

    Label switching: every draw's states are sorted by the emission's scalar
    key (the first feature of the mean for ``"gaussian"``, the first rate for
    ``"poisson"``, the mean symbol for ``"categorical"``), all arrays
    permuted together; under an exchangeable prior these are exact draws
    from the posterior under that ordering constraint (no sorting when held
    entries or known ``labels`` name the states).

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import SemiMarkovHMM
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(5 * (i % 2), 1, size=(8, 1)) for i in range(10)])
    >>> model = SemiMarkovHMM(2, max_duration=15, random_state=0).fit(X)
    >>> model.posterior(X).map()[:10]
    array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    >>> int(np.argmax(model.duration_pmf_[0])) + 1
    8

    Fully Bayesian, by blocked Gibbs sampling (chains of parameter draws):

    >>> bayes = SemiMarkovHMM(2, max_duration=15, sampler="gibbs", n_chains=2, n_draws=50, n_warmup=20,
    ...                       random_state=0).fit(X)
    >>> bayes.draws_["duration_pmf"].shape
    (2, 50, 2, 15)
    >>> int(np.argmax(bayes.duration_pmf_[0])) + 1
    8
    """

    _parameter_constraints = {
        **CHAIN_CONSTRAINTS,
        "n_components": [Interval("int", 2, None)],
        "duration": [Options(*DURATIONS)],
        "max_duration": [Interval("int", 1, None)],
        "duration_init": [None, "array-like"],
        "fixed": [None, dict],
        "sampler": [None, Options("gibbs")],
        "n_chains": _bayes.MCMC_CONSTRAINTS["n_chains"],
        "n_draws": _bayes.MCMC_CONSTRAINTS["n_draws"],
        "n_warmup": _bayes.MCMC_CONSTRAINTS["n_warmup"],
        "prior": [None, dict],
    }
    _chain_parameter_names = ("startprob_", "transmat_", "duration_pmf_")
    _conformance_params = {"n_components": 2, "max_iter": 30, "max_duration": 30}
    _conformance_alt_params = {"duration": "poisson"}

    def __init__(self, n_components: int = 2, *, emission: str = "gaussian", emission_params: dict | None = None,
                 duration: str = "nonparametric", max_duration: int = 50, duration_init: Any = None,
                 fixed: dict | None = None, max_iter: int = 100, tol: float = 1e-4, sampler: str | None = None,
                 n_chains: int = 4, n_draws: int = 1000, n_warmup: int = 1000, prior: dict | None = None,
                 random_state: Any = None, progress: bool = False) -> None:
        self.n_components = n_components
        self.emission = emission
        self.emission_params = emission_params
        self.duration = duration
        self.max_duration = max_duration
        self.duration_init = duration_init
        self.fixed = fixed
        self.max_iter = max_iter
        self.tol = tol
        self.sampler = sampler
        self.n_chains = n_chains
        self.n_draws = n_draws
        self.n_warmup = n_warmup
        self.prior = prior
        self.random_state = random_state
        self.progress = progress

    _conformance_emission = "gaussian"
    _conformance_data = _ConformanceData()

    # -- durations ------------------------------------------------------------------------------
    def _initial_durations(self, lengths: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        K, D = self.n_components, self.max_duration
        if self.duration_init is not None:
            init = np.asarray(self.duration_init, dtype=np.float64)
            if init.ndim == 1:
                init = np.broadcast_to(init, (K, init.shape[0]))
            if init.ndim != 2 or init.shape != (K, D):
                raise ValueError(f"duration_init must have shape (max_duration,) = ({D},) or (n_components, "
                                 f"max_duration) = ({K}, {D}): durations run from 1 to max_duration={D}; got shape "
                                 f"{np.shape(self.duration_init)}.")
            if not np.all(np.isfinite(init)) or np.any(init < 0) or np.any(init.sum(axis=1) <= 0):
                raise ValueError("duration_init must hold finite non-negative probabilities with positive row sums.")
            pmf = init / init.sum(axis=1, keepdims=True)
            if self.duration == "nonparametric":
                return pmf, {}
            params = self._fit_parametric(pmf, {})
            return duration_pmf(self.duration, params, D), params
        mean = float(np.clip(np.mean(lengths) / (4.0 * K), 2.0, max(2.0, D / 2.0)))
        if self.duration == "poisson":
            params = {"rate": np.full(K, mean - 1.0)}
        elif self.duration == "negative_binomial":
            params = {"n": np.full(K, 2.0), "p": np.full(K, 2.0 / (2.0 + mean - 1.0))}
        else:
            q = 1.0 - 1.0 / mean
            pmf = np.tile(q ** np.arange(D), (K, 1))
            return pmf / pmf.sum(axis=1, keepdims=True), {}
        return duration_pmf(self.duration, params, D), params

    def _fit_parametric(self, counts: np.ndarray, params_now: dict,
                        held: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Maximise ``sum_d counts[k, d] log pmf_theta(d)`` per state (from the current value, never worse).

        ``held`` (``fixed`` entries, NaN free): a state whose parameters are
        all held is skipped; a negative binomial state with one of ``n``,
        ``p`` held maximises over the other alone.
        """
        K, D = counts.shape
        kind = self.duration
        out = {k: np.array(v, dtype=np.float64, copy=True) for k, v in params_now.items()}
        held = held or {}
        hold = {n: ~np.isnan(held[n]) if n in held else np.zeros(K, dtype=bool) for n in ("rate", "n", "p")}
        for k in range(K):
            c = counts[k]
            if c.sum() <= 0 or hold["rate"][k] or (hold["n"][k] and hold["p"][k]):
                continue
            if hold["n"][k] or hold["p"][k]:
                self._fit_nb_one(c, out, held, k, "p" if hold["n"][k] else "n")
                continue
            if kind == "poisson":
                def nll(u, c=c):
                    return -(c * np.log(duration_pmf("poisson", {"rate": [np.exp(u)]}, D)[0] + 1e-300)).sum()
                mean = float((c * np.arange(D)).sum() / c.sum())
                res = minimize_scalar(nll, bounds=(np.log(1e-6), np.log(10.0 * D)), method="bounded",
                                      options={"xatol": 1e-10})
                cand = [np.exp(res.x), max(mean, 1e-6)] + ([out["rate"][k]] if "rate" in out else [])
                best = min(cand, key=lambda r: nll(np.log(r)))
                out.setdefault("rate", np.ones(K))[k] = best
            else:
                def nll(v, c=c):
                    pmf = duration_pmf("negative_binomial", {"n": [np.exp(v[0])], "p": [expit(v[1])]}, D)[0]
                    return -(c * np.log(pmf + 1e-300)).sum()
                if "n" in out:  # warm start from the current value, kept if nothing better is found
                    now = np.array([np.log(out["n"][k]), np.log(out["p"][k] / (1.0 - out["p"][k]))])
                    starts = [now]
                else:
                    starts = [np.array([np.log(2.0), 0.0])]
                cands = [minimize(nll, s, method="L-BFGS-B", bounds=[(-5, 8), (-12, 12)]).x for s in starts]
                best = min(cands + starts, key=nll)
                out.setdefault("n", np.full(K, 2.0))[k] = np.exp(best[0])
                out.setdefault("p", np.full(K, 0.5))[k] = expit(best[1])
        return out

    def _fit_nb_one(self, c: np.ndarray, out: dict, held: dict, k: int, free: str) -> None:
        """Negative binomial state ``k`` with one parameter held: maximise over ``free`` (never worse)."""
        D = c.shape[0]
        fixed_n = held["n"][k] if free == "p" else None
        fixed_p = held["p"][k] if free == "n" else None

        def nll(u):
            n = fixed_n if fixed_n is not None else np.exp(u)
            p = fixed_p if fixed_p is not None else expit(u)
            return -(c * np.log(duration_pmf("negative_binomial", {"n": [n], "p": [p]}, D)[0] + 1e-300)).sum()

        bounds = (-5.0, 8.0) if free == "n" else (-12.0, 12.0)
        res = minimize_scalar(nll, bounds=bounds, method="bounded", options={"xatol": 1e-10})
        now = out[free][k]
        now_u = np.log(now) if free == "n" else np.log(now / (1.0 - now))
        best = min([res.x, now_u], key=nll)
        out[free][k] = np.exp(best) if free == "n" else expit(best)

    def _m_step_durations(self, fb: _hsmm.SemiMarkovFB, held: dict | None = None) -> None:
        counts = augmented_counts(fb.duration_counts, fb.censored_counts, self.duration_pmf_)
        if self.duration == "nonparametric":
            rows = counts.sum(axis=1, keepdims=True)
            self.duration_pmf_ = np.where(rows > 0, counts / np.where(rows > 0, rows, 1.0), self.duration_pmf_)
            return
        self.duration_params_ = self._fit_parametric(counts, self.duration_params_, held)
        self.duration_pmf_ = duration_pmf(self.duration, self.duration_params_, self.max_duration)

    # -- held entries (fixed) ----------------------------------------------------------------------
    def _constraints(self, emission, n_features: int) -> Constraints:
        """Return the held entries of ``fixed`` checked against the parameter shapes (empty without ``fixed``)."""
        if not self.fixed:
            return Constraints({}, ())
        K, owner = self.n_components, type(self).__name__
        fixed = dict(self.fixed)
        if "transmat" in fixed:
            try:
                A = np.array(fixed["transmat"], dtype=np.float64)
            except (TypeError, ValueError):
                A = None  # reported by Constraints.build
            if A is not None and A.shape == (K, K):
                diag = np.diagonal(A)
                if not np.all(np.isnan(diag) | (diag == 0)):
                    raise ValueError(f"fixed['transmat'] of {owner} must have 0 or NaN on its diagonal (a segment is "
                                     f"followed by another state: a structural zero); got diagonal {diag}.")
                A[np.diag_indices(K)] = 0.0
                fixed["transmat"] = A
        durations = {"nonparametric": {"duration_pmf": (K, self.max_duration)}, "poisson": {"rate": (K,)},
                     "negative_binomial": {"n": (K,), "p": (K,)}}[self.duration]
        shapes = {"startprob": (K,), "transmat": (K, K), **durations, **emission.shapes(K, n_features)}
        simplex = ("startprob", "transmat", "duration_pmf", *emission.simplex)
        cons = Constraints.build(fixed, None, None, shapes, simplex, ("rate", "n", *emission.positive), owner,
                                 whole_state_arrays(emission), emission.held_support(K, n_features))
        p = cons.held.get("p")
        if p is not None and ((p[~np.isnan(p)] <= 0) | (p[~np.isnan(p)] >= 1)).any():
            raise ValueError(f"fixed['p'] of {owner} holds negative binomial probabilities, which must lie in (0, 1).")
        return cons

    def _project(self, cons: Constraints) -> None:
        """Write the held entries into the fitted arrays (free simplex entries rescaled: ``Constraints.project``)."""
        point = cons.project({"startprob": self.startprob_, "transmat": self.transmat_,
                              "duration_pmf": self.duration_pmf_, **self.duration_params_, **self.emission_arrays_})
        self.startprob_, self.transmat_ = point["startprob"], point["transmat"]
        self.emission_arrays_ = {k: point[k] for k in self.emission_arrays_}
        if self.duration == "nonparametric":
            self.duration_pmf_ = point["duration_pmf"]
        elif any(k in cons.held for k in self.duration_params_):
            self.duration_params_ = {k: point[k] for k in self.duration_params_}
            self.duration_pmf_ = duration_pmf(self.duration, self.duration_params_, self.max_duration)

    # -- fitting ----------------------------------------------------------------------------------
    def _fit(self, X, lengths, rng):
        self.draws_, self.sample_stats_, self.prior_ = None, None, None
        labels = self._fit_labels(X.shape[0])
        if self.sampler is None:
            if self.prior is not None:
                raise ValueError(f"prior={self.prior!r} applies only to MCMC fits; set sampler='gibbs'.")
            self._fit_em(X, lengths, rng, labels)
            return
        alpha, hyper = self._check_gibbs(X)
        cons = self._constraints(self._emission(X), X.shape[1])
        # held entries and known states name the states: no relabelling of the draws
        named = bool(cons) or (labels is not None and bool((labels >= 0).any()))
        starts = []
        for _ in range(self.n_chains):  # each chain starts from its own EM fit, states in the reported order
            self._fit_em(X, lengths, child_generator(rng), labels)
            # held values back after moving off the boundary
            point = self._chain_point()
            starts.append(cons.project(point) if cons else point if named else self._relabel(point))
        emission = self._emission()
        packed = emission.pack_hyper(hyper, X.shape[1])
        chains = []
        with progress_bar(self.progress, self.n_chains * (self.n_warmup + self.n_draws), "Gibbs (semi-Markov HMM)",
                          "sweep") as bar:
            for start in starts:
                chains.append(_hsmm_gibbs.run_chain(emission, X, lengths, start, alpha, packed, self.duration,
                                                    self.n_warmup, self.n_draws, int(rng.integers(0, 2**31 - 1)),
                                                    bar, held=cons.held if cons else None,
                                                    log_mask=label_mask(labels, self.n_components)))
        draws = {k: np.stack([c[0][k] for c in chains]) for k in chains[0][0]}
        draws = draws if named else self._relabel(draws)
        stats = {k: np.stack([c[1][k] for c in chains]) for k in chains[0][1]}
        flat = {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}
        lp = _hsmm_gibbs.log_prior(flat, alpha, self.duration, emission, hyper, held=cons.held if cons else None)
        stats["lp"] = stats["total_log_likelihood"] + lp.reshape(stats["total_log_likelihood"].shape)
        self.draws_, self.sample_stats_ = draws, stats
        self.prior_ = {**alpha, **{k: np.asarray(v, dtype=np.float64) for k, v in hyper.items()}}
        mean = {k: v.mean(axis=(0, 1)) for k, v in draws.items()}
        self.startprob_, self.transmat_, self.duration_pmf_ = mean["startprob"], mean["transmat"], mean["duration_pmf"]
        self.duration_params_ = {"rate": mean["rate"]} if "rate" in mean else {}
        self.emission_arrays_ = {k: mean[k] for k in emission.names}

    def _check_gibbs(self, X):
        """Check a Gibbs request; return the duration/chain concentrations and the emission's hyper-parameters."""
        owner = self._owner()
        if self.duration == "negative_binomial":
            raise ValueError(f"{type(self).__name__}(sampler='gibbs') samples duration='nonparametric' (Dirichlet) "
                             "or 'poisson' (Gamma, with an exact Metropolis-Hastings correction for the truncation "
                             "at max_duration); the negative binomial shape has no conjugate prior. Use one of "
                             "those, or sampler=None (EM).")
        if np.isnan(X).any():
            raise ValueError(f"{owner}(sampler='gibbs').fit needs complete data; X has missing values (NaN). Fit "
                             "with sampler=None (EM marginalises them).")
        emission = self._emission(X)
        emission.check_sampler("gibbs", X, owner)
        cons = self._constraints(emission, X.shape[1])
        partial = [k for k in cons.names() if k in emission.names and k not in cons.whole()
                   and k not in emission.gibbs_entry_holds]
        if partial:
            raise ValueError(f"fixed of {owner}(sampler='gibbs') holds single entries of "
                             f"{list(emission.gibbs_entry_holds)} only for this emission; fixed{partial} have NaN "
                             "entries. Hold the whole array, or fit by EM (sampler=None).")
        K, D = self.n_components, self.max_duration
        user = dict(self.prior or {})
        keys = ("startprob", "transmat", "duration_pmf") if self.duration == "nonparametric" else (
            "startprob", "transmat", "rate_shape", "rate_rate")
        allowed = keys + tuple(emission.simplex) + tuple(emission.hyper_keys)
        unknown = sorted(repr(k) for k in user if k not in allowed)
        if unknown:
            raise ValueError(f"prior of {owner}(sampler='gibbs', duration={self.duration!r}) has unknown entries "
                             f"[{', '.join(unknown)}]; allowed (numbers of the conjugate prior): {list(allowed)}.")
        for key, value in user.items():
            if is_distribution(value):
                raise ValueError(f"prior['{key}'] of {owner} is a distribution; SemiMarkovHMM's Gibbs sampler takes "
                                 "numbers (Dirichlet concentrations, Gamma shape/rate, the emission's conjugate "
                                 "hyper-parameters).")
        reader = PriorReader(user, owner)
        alpha = {"startprob": reader.number("startprob", 1.0, (K,)), "transmat": reader.number("transmat", 1.0, (K, K))}
        if self.duration == "nonparametric":
            alpha["duration_pmf"] = reader.number("duration_pmf", 1.0, (K, D))
        else:
            alpha["rate_shape"] = reader.number("rate_shape", 1.0, (K,))
            alpha["rate_rate"] = reader.number("rate_rate", 2.0 / D, (K,))
        return alpha, emission.resolve_hyper(reader, X, K)

    def _chain_point(self) -> dict[str, np.ndarray]:
        point = {"startprob": self.startprob_, "transmat": self.transmat_, "duration_pmf": self.duration_pmf_,
                 **self.duration_params_, **self.emission_arrays_}
        point = {k: np.array(v, dtype=np.float64) for k, v in point.items()}
        for k in ("startprob", "transmat", "duration_pmf"):  # off the simplex boundary (zeros stay on the diagonal)
            mix = 1e-3 * (np.ones_like(point[k]) - (np.eye(self.n_components) if k == "transmat" else 0.0))
            point[k] = (1.0 - 1e-3) * point[k] + 1e-3 * mix / mix.sum(axis=-1, keepdims=True)
        return point

    def _relabel(self, params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Sort the states of every draw by the emission's ordering key (see Notes: label switching)."""
        return _bayes.permute(params, np.argsort(self._emission().order_key(params), axis=-1, kind="stable"))

    # -- fitting ----------------------------------------------------------------------------------
    def _fit_em(self, X, lengths, rng, labels=None):
        emission = self._start_emission(X, rng)
        cons = self._constraints(emission, X.shape[1])
        K = self.n_components
        self.startprob_ = np.full(K, 1.0 / K)
        self.transmat_ = (np.ones((K, K)) - np.eye(K)) / (K - 1)
        self.duration_pmf_, self.duration_params_ = self._initial_durations(lengths)
        self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in emission.init(X, K, rng).items()}
        if cons:
            self._project(cons)
        self._start_from_labels(
            labels, lambda arrays: emission.log_frames(X, arrays),
            lambda gamma, arrays: (constrained_emission_m_step(emission, X, gamma, arrays, cons.held) if cons
                                   else emission.m_step(X, gamma, arrays)), bool(cons))
        if cons:
            self._project(cons)
        trace, converged = [], False
        with progress_bar(self.progress, self.max_iter, "EM (semi-Markov HMM)", "iter") as bar:
            for _ in range(self.max_iter):
                fb = self._forward_backward(X, lengths, labels)
                total = float(fb.log_likelihood.sum())
                if not np.isfinite(total):
                    why = ", or held entries of fixed that rule out every segmentation" if cons else ""
                    why += ", or labels whose runs of a state exceed it" if labels is not None else ""
                    raise ValueError(f"{type(self).__name__}.fit: the data have zero probability under the current "
                                     f"parameters (max_duration={self.max_duration} too short{why}?).")
                trace.append(total)
                bar.set_postfix(loglik_per_frame=f"{total / X.shape[0]:.4f}")
                bar.update(1)
                if len(trace) > 1 and trace[-1] - trace[-2] < self.tol:
                    converged = True
                    break
                self.startprob_ = fb.start_counts / fb.start_counts.sum()
                rows = fb.transition_counts.sum(axis=1, keepdims=True)
                self.transmat_ = np.where(rows > 0, fb.transition_counts / np.where(rows > 0, rows, 1.0),
                                          self.transmat_)
                self._m_step_durations(fb, cons.held if cons else None)
                if cons:  # the exact maximiser over the free entries: constrained M-step, then the holds
                    new = constrained_emission_m_step(emission, X, fb.marginals, self.emission_arrays_, cons.held)
                    self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in new.items()}
                    self._project(cons)
                else:
                    self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in
                                             emission.m_step(X, fb.marginals, self.emission_arrays_).items()}
        self._finish_fit(trace, converged, X.shape[0], "log-likelihood")

    def _forward_backward(self, X, lengths, labels=None):
        return _hsmm.forward_backward(self.startprob_, self.transmat_, self.duration_pmf_,
                                      self._masked(self._log_frameprob(X), labels), lengths)

    # -- answers -------------------------------------------------------------------------------------
    def _model_tags(self):
        tags = super()._model_tags()
        if self.sampler is None:
            return tags
        from dataclasses import replace

        return replace(tags, exact_posterior=False, exact_log_likelihood=False, parameter_posterior=True)

    def _draw_list(self) -> dict[str, np.ndarray] | None:
        draws = self.__dict__.get("draws_")
        return None if draws is None else {k: v.reshape((-1,) + v.shape[2:]) for k, v in draws.items()}

    def _chain_at(self, p: dict[str, np.ndarray], X, lengths, labels=None) -> SemiMarkovChain:
        return SemiMarkovChain(p["startprob"], p["transmat"], p["duration_pmf"],
                               self._masked(self._log_frameprob(X, {k: p[k] for k in self.emission_arrays_}), labels),
                               lengths)

    def _point_posterior(self, X, lengths, labels=None):
        return SemiMarkovChain(self.startprob_, self.transmat_, self.duration_pmf_,
                               self._masked(self._log_frameprob(X), labels), lengths)

    def _posterior(self, X, lengths, labels=None):
        flat = self._draw_list()
        if flat is None:
            return self._point_posterior(X, lengths, labels)
        n = flat["startprob"].shape[0]
        return FiniteMixture(lambda s: self._chain_at({k: v[s] for k, v in flat.items()}, X, lengths, labels), n)

    def _log_likelihood(self, X, lengths, labels=None):
        flat = self._draw_list()
        if flat is None:
            return self._forward_backward(X, lengths, labels).log_likelihood
        n = flat["startprob"].shape[0]
        per = np.array([self._chain_at({k: v[s] for k, v in flat.items()}, X, lengths, labels).log_likelihood
                        for s in range(n)])
        return logsumexp(per, axis=0) - np.log(n)

    def _sample_parameters(self, n_samples, rng):
        flat = self._draw_list()
        idx = rng.integers(0, flat["startprob"].shape[0], size=n_samples)
        return {k: v[idx] for k, v in flat.items()}

    def _pointwise_log_likelihood(self, X, lengths, params, labels=None):
        # with labels: the terms log p(x_t, known z_t | the past), summing to log p(x, known states)
        if params is None:
            return self._log_likelihood(X, lengths, labels)
        emission = self._emission()
        n = params["startprob"].shape[0]
        return np.stack([_hsmm_gibbs.pointwise_log_likelihood(
            params["startprob"][s], params["transmat"][s], params["duration_pmf"][s],
            self._masked(emission.log_frames(X, {k: params[k][s] for k in emission.names}), labels), lengths)
            for s in range(n)])

    def _posterior_predictive(self, X, latents, params, rng, labels=None):
        # the latent draws already keep the known states
        if params is None:
            return super()._posterior_predictive(X, latents, params, rng)
        emission = self._emission()
        return np.stack([emission.sample({k: params[k][s] for k in emission.names},
                                         np.asarray(latents[s]).astype(np.int64), rng) for s in range(len(latents))])

    def _sample(self, n_samples, rng):
        flat = self._draw_list()
        if flat is None:
            pi, A, pmf, arrays = self.startprob_, self.transmat_, self.duration_pmf_, self.emission_arrays_
        else:  # the posterior predictive: one parameter draw picked at random
            s = int(rng.integers(0, flat["startprob"].shape[0]))
            pi, A, pmf = flat["startprob"][s], flat["transmat"][s], flat["duration_pmf"][s]
            arrays = {k: flat[k][s] for k in self.emission_arrays_}
        K, D = pmf.shape
        z = np.empty(n_samples, dtype=np.int64)
        t, k = 0, rng.choice(K, p=pi)
        while t < n_samples:
            d = 1 + rng.choice(D, p=pmf[k])
            z[t:t + d] = k
            t += d
            k = rng.choice(K, p=A[k])
        return self._emission().sample(arrays, z, rng), z

    def _arviz_dims(self):
        return {**super()._arviz_dims(), "startprob": ("state",), "transmat": ("state", "state_to"),
                "duration_pmf": ("state", "duration"), "rate": ("state",)}


SemiMarkovHMM.__doc__ = fill(SemiMarkovHMM.__doc__)
