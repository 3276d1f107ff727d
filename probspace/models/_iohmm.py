"""InputDrivenHMM: an HMM whose transition probabilities are softmax-linear in per-frame covariates (IOHMM)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import softmax

from .._docstrings import fill
from .._validation import Interval
from ..emissions import registered_emission
from ..inference import _iohmm
from ..inference._progress import progress_bar
from ..posteriors import TimeVaryingMarkovChain
from ._emission_chain import CHAIN_CONSTRAINTS, EmissionChain, sequence_starts
from ._glm_emission import CategoricalGLM, softmax_regression
from .hmm._base import two_state_data
from .hmm._constraints import Constraints, constrained_emission_m_step, whole_state_arrays
from .hmm._generic import _ConformanceData

__all__ = ["InputDrivenHMM"]


class _CovariateConformanceData(_ConformanceData):
    """The emission's conformance data; one column of categorical symbols for ``emission="glm"``."""

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is not None and instance.emission == "glm":
            return lambda rng: two_state_data(rng, registered_emission("categorical").conformance_data)
        return super().__get__(instance, owner)


class InputDrivenHMM(EmissionChain):
    r"""Input-output HMM (GLM-HMM): transitions driven by per-frame covariates, any registered emission.

    The model, for covariates :math:`y_t \in \mathbb{R}^M` given with each frame:

    .. math::

        z_1 \sim \pi, \qquad
        p(z_t = j \mid z_{t-1} = i, y_t) = \operatorname{softmax}_j\bigl(b_{ij} + w_{ij}^\top y_t\bigr), \qquad
        x_t \mid z_t = k \sim \text{emission}_k,

    with intercepts :math:`b` (``transition_intercept_``), weights :math:`w`
    (``transition_coef_``) and the emission registered under ``emission``
    (Gaussian, categorical, Poisson, Bernoulli, GMM or one of the user's, as in
    :class:`probspace.HMM`). Covariates are the *condition* ``y``:
    ``fit(X, y, lengths=...)``, ``posterior(X, y)``, ``log_likelihood(X, y)``,
    ``sample(n, y=...)``, one row of ``y`` per row of ``X``; the covariate of a
    sequence's first frame is not used (its state is drawn from
    ``startprob_``). Without ``y`` (zero covariates) the model is an ordinary
    HMM with ``transmat = softmax(transition_intercept_)`` row by row.

    Given the parameters the posterior over state paths is exact (a
    :class:`~probspace.posteriors.TimeVaryingMarkovChain`: forward-backward
    with one transition matrix per frame, Viterbi, joint path draws), as is
    the log-likelihood. EM fits the model: the E-step is that
    forward-backward; the M-step updates ``startprob_`` and the emission in
    closed form, and the transition weights by a weighted multinomial logistic
    regression of the expected transitions on the covariates (L-BFGS from the
    current weights, L2 penalty ``alpha``), so the penalised log-likelihood
    never decreases (``history_`` records it, per frame).

    ``emission="glm"`` makes the emissions covariate-driven too (the GLM-HMM
    of decision-making studies): ``X`` is one column of integer symbols (0/1
    choices, say) and :math:`p(x_t = c \mid z_t = k, y_t) =
    \operatorname{softmax}_c(a_{kc} + v_{kc}^\top y_t)`, a state-dependent
    multinomial logistic regression (``glm_intercept_`` (K, C), ``glm_coef_``
    (K, C, M)), re-estimated by the same weighted logistic M-step with the
    state responsibilities as weights. Its ``emission_params`` are
    ``n_symbols`` (read from the data by default) and ``alpha`` (its L2
    penalty, default 1e-2).

    Known states (``labels=``, one int per frame, ``-1`` unknown) work as
    for :class:`probspace.HMM`, in ``fit``, ``posterior``,
    ``log_likelihood``, ``score``, ``predict`` and ``to_arviz`` (with the
    covariates as usual): the emission log-likelihood of every other state is
    ``-inf`` at a labelled frame, so the posterior is exactly
    ``p(z | x, y, known states)``, the likelihood ``p(x, known states | y)``,
    and EM fits semi-supervised (states named by the labels).

    Parameters
    ----------
    n_components : int, default=2
        Number of hidden states.
    emission : str, default="gaussian"
        Name of a registered emission (:func:`probspace.emissions.emission_names`),
        or ``"glm"`` for categorical emissions driven by the covariates.
    emission_params : dict, optional
        The emission's settings (for example ``{"covariance_type": "full"}``).
    alpha : float, default=1e-2
        L2 penalty ``alpha / 2 * (|b|^2 + |w|^2)`` on the transition intercepts
        and weights (in units of frames; keeps unseen transitions finite).
        Scale the covariates to comparable ranges: the penalty is not scale-free.
    fixed : dict, optional
        Parameters held during the EM fit, by name without the trailing
        underscore: ``"startprob"``, ``"transition_intercept"``,
        ``"transition_coef"`` (shape ``(n_components, n_components,
        n_covariates)``) and the emission's arrays (``"glm_intercept"``,
        ``"glm_coef"`` for ``emission="glm"``). Each is an array of the
        parameter's shape whose finite entries are held at that value and
        whose NaN entries are estimated (a held 0 of ``startprob`` is a
        structural zero). The L-BFGS M-step of the transition (and GLM
        emission) weights optimises the free entries only, and the held ones
        stay bit for bit; held entries still count in the L2 penalty (a
        constant). Coupled emission arrays (full or tied covariances, or more
        than two arrays) are held per state.
    max_iter : int, default=100
        EM iterations.
    tol : float, default=1e-4
        Convergence threshold on the gain of the penalised log-likelihood (total over frames).
    {random_state}
    progress : bool, default=False
        Show a progress bar during the fit.

    Attributes
    ----------
    startprob_ : ndarray of shape (n_components,)
        Initial state probabilities.
    transition_intercept_ : ndarray of shape (n_components, n_components)
        Intercepts ``b[i, j]`` of the transition logits from state ``i`` to ``j``.
    transition_coef_ : ndarray of shape (n_components, n_components, n_covariates)
        Covariate weights ``w[i, j]`` of the transition logits.
    n_covariates_ : int
        Number of covariates ``M`` seen in ``fit`` (0 when fitted without ``y``).
    emission_settings_ : dict
        The emission's settings used by the fit (those read from the data filled in).
    emission_arrays_ : dict of str to ndarray
        The fitted emission parameters; each is also an attribute with a
        trailing underscore (``means_`` and ``covars_`` for ``"gaussian"``...).
    {common_attributes}

    See Also
    --------
    probspace.HMM : The same emissions with a fixed transition matrix.
    probspace.SemiMarkovHMM : Explicit state durations.

    Examples
    --------
    >>> import numpy as np
    >>> from probspace import InputDrivenHMM
    >>> rng = np.random.default_rng(0)
    >>> y = rng.normal(size=(200, 1))
    >>> X = rng.normal(size=(200, 1)) + 4 * (y > 0.5)
    >>> model = InputDrivenHMM(2, random_state=0).fit(X, y)
    >>> model.posterior(X, y).marginals.shape
    (200, 2)
    >>> model.transition_matrices(y[:3]).shape
    (3, 2, 2)
    """

    _parameter_constraints = {**CHAIN_CONSTRAINTS, "alpha": [Interval("real", 0, None)], "fixed": [None, dict]}
    _conditional = True
    _chain_parameter_names = ("startprob_", "transition_intercept_", "transition_coef_")
    _conformance_alt_params = {"alpha": 1.0}

    def __init__(self, n_components: int = 2, *, emission: str = "gaussian", emission_params: dict | None = None,
                 alpha: float = 1e-2, fixed: dict | None = None, max_iter: int = 100, tol: float = 1e-4,
                 random_state: Any = None, progress: bool = False) -> None:
        self.n_components = n_components
        self.emission = emission
        self.emission_params = emission_params
        self.alpha = alpha
        self.fixed = fixed
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.progress = progress

    _conformance_emission = "gaussian"
    _conformance_data = _CovariateConformanceData()

    def _conformance_condition(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Two covariates per frame: the suite runs every call through the covariate path."""
        return rng.normal(size=(n, 2))

    # -- covariates --------------------------------------------------------------------------
    def _check_condition(self, y, n, *, fitting, generating=False):
        M = None if fitting else self.n_covariates_
        if y is None:
            if M:
                raise ValueError(f"{type(self).__name__} was fitted with {M} covariates: pass y of shape ({n}, {M}).")
            return np.zeros((n, 0))
        y = np.asarray(y)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"y (the covariates) must be numeric; got dtype {y.dtype}.")
        if y.ndim not in (1, 2):
            raise ValueError(f"y (the covariates) must be 1-D or 2-D (n_samples, n_covariates); got shape {y.shape}.")
        y = y.reshape(y.shape[0], -1).astype(np.float64)
        if y.shape[0] != n:
            what = "the requested n_samples" if generating else "X"
            raise ValueError(f"y (the covariates) has {y.shape[0]} rows but {what} has {n}: one row per frame.")
        if not np.all(np.isfinite(y)):
            raise ValueError("y (the covariates) must be finite: it holds NaN or inf (covariates cannot be missing).")
        if M is not None and y.shape[1] != M:
            raise ValueError(f"y has {y.shape[1]} covariates but {type(self).__name__} was fitted with {M}.")
        return y

    def _logits(self, y: np.ndarray, intercept=None, coef=None) -> np.ndarray:
        b = self.transition_intercept_ if intercept is None else intercept
        w = self.transition_coef_ if coef is None else coef
        return b[None] + np.einsum("ijm,tm->tij", w, y)

    def _transmats(self, y: np.ndarray, intercept=None, coef=None) -> np.ndarray:
        return softmax(self._logits(y, intercept, coef), axis=2)

    def transition_matrices(self, y: Any) -> np.ndarray:
        """Transition matrix at each row of covariates ``y``: ``p(z_t = j | z_{t-1} = i, y_t)``.

        Parameters
        ----------
        y : array-like of shape (n, n_covariates)
            Covariates (1-D for one covariate).

        Returns
        -------
        ndarray of shape (n, n_components, n_components)
        """
        self._check_fitted()
        n = np.shape(y)[0] if np.ndim(y) else 0
        return self._transmats(self._check_condition(y, n, fitting=False))

    # -- fitting ----------------------------------------------------------------------------------
    def _fit(self, X, lengths, rng, cond):
        emission = self._start_emission(X, rng)
        labels = self._fit_labels(X.shape[0])
        K, M = self.n_components, cond.shape[1]
        self.n_covariates_ = M
        self.startprob_ = np.full(K, 1.0 / K)
        self.transition_intercept_ = np.zeros((K, K))
        self.transition_coef_ = np.zeros((K, K, M))
        glm = self._glm()
        start = emission.init(X, K, rng, M) if glm else emission.init(X, K, rng)
        self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in start.items()}
        cons = self._constraints(emission, X.shape[1], M)
        if cons:
            self._project(cons)
        if glm:
            frames = lambda arrays: emission.log_frames_given(X, arrays, cond)
            m_step = lambda gamma, arrays: emission.m_step_given(X, gamma, arrays, cond, cons.held)
        else:
            frames = lambda arrays: emission.log_frames(X, arrays)
            m_step = lambda gamma, arrays: (constrained_emission_m_step(emission, X, gamma, arrays, cons.held) if cons
                                            else emission.m_step(X, gamma, arrays))
        self._start_from_labels(labels, frames, m_step, bool(cons))
        if cons:
            self._project(cons)
        starts = sequence_starts(lengths)
        inner = np.ones(X.shape[0], dtype=bool)
        inner[starts] = False
        design = np.hstack([np.ones((X.shape[0], 1)), cond])[inner]
        trace, converged = [], False
        with progress_bar(self.progress, self.max_iter, "EM (input-driven HMM)", "iter") as bar:
            for _ in range(self.max_iter):
                fb = _iohmm.forward_backward(self.startprob_, self._transmats(cond), self._frames(X, cond, labels),
                                             lengths)
                total = float(fb.log_likelihood.sum()) - self._penalty()
                if glm:
                    total -= emission.penalty(self.emission_arrays_)
                if not np.isfinite(total):
                    raise ValueError(f"{type(self).__name__}.fit: the data have zero probability under the current "
                                     "parameters (degenerate data, or labels that held entries of fixed rule out?).")
                trace.append(total)
                bar.set_postfix(objective_per_frame=f"{total / X.shape[0]:.4f}")
                bar.update(1)
                if len(trace) > 1 and trace[-1] - trace[-2] < self.tol:
                    converged = True
                    break
                start = fb.marginals[starts].sum(axis=0)
                self.startprob_ = start / start.sum()
                self._m_step_transitions(design, fb.pairwise[inner], cons)
                if glm:
                    new = emission.m_step_given(X, fb.marginals, self.emission_arrays_, cond, cons.held)
                elif cons:
                    new = constrained_emission_m_step(emission, X, fb.marginals, self.emission_arrays_, cons.held)
                else:
                    new = emission.m_step(X, fb.marginals, self.emission_arrays_)
                self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in new.items()}
                if cons:  # the free entries' maximiser, then the held entries bit for bit
                    self._project(cons)
        self._finish_fit(trace, converged, X.shape[0], "objective")

    def _penalty(self) -> float:
        return 0.5 * self.alpha * float((self.transition_intercept_ ** 2).sum() + (self.transition_coef_ ** 2).sum())

    def _m_step_transitions(self, design: np.ndarray, xi: np.ndarray, cons: Constraints | None = None) -> None:
        """Weighted multinomial logistic regression of the expected transitions ``xi`` (T', K, K) on ``design``.

        Held entries (``fixed``) stay at their values; L-BFGS optimises the others.
        """
        W0 = np.concatenate([self.transition_intercept_[:, :, None], self.transition_coef_], axis=2)
        free = None
        if cons and ("transition_intercept" in cons.held or "transition_coef" in cons.held):
            K = W0.shape[0]
            free = np.concatenate([
                np.isnan(cons.held.get("transition_intercept", np.full((K, K), np.nan)))[:, :, None],
                np.isnan(cons.held.get("transition_coef", np.full(self.transition_coef_.shape, np.nan)))], axis=2)
        W = softmax_regression(W0, design, xi, self.alpha, free)
        self.transition_intercept_ = np.ascontiguousarray(W[:, :, 0])
        self.transition_coef_ = np.ascontiguousarray(W[:, :, 1:])

    def _constraints(self, emission, n_features: int, n_covariates: int) -> Constraints:
        """Return the held entries of ``fixed`` checked against the parameter shapes (empty without ``fixed``)."""
        if not self.fixed:
            return Constraints({}, ())
        K = self.n_components
        shapes = {"startprob": (K,), "transition_intercept": (K, K), "transition_coef": (K, K, n_covariates)}
        if self._glm():
            C = emission.n_symbols
            shapes.update({"glm_intercept": (K, C), "glm_coef": (K, C, n_covariates)})
        else:
            shapes.update(emission.shapes(K, n_features))
        return Constraints.build(self.fixed, None, None, shapes, ("startprob", *emission.simplex),
                                 tuple(emission.positive), type(self).__name__,
                                 {} if self._glm() else whole_state_arrays(emission),
                                 {} if self._glm() else emission.held_support(K, n_features))

    def _project(self, cons: Constraints) -> None:
        """Write the held entries into the fitted arrays (free ``startprob`` entries share the mass left)."""
        point = cons.project({"startprob": self.startprob_, "transition_intercept": self.transition_intercept_,
                              "transition_coef": self.transition_coef_, **self.emission_arrays_})
        self.startprob_ = point["startprob"]
        self.transition_intercept_ = point["transition_intercept"]
        self.transition_coef_ = point["transition_coef"]
        self.emission_arrays_ = {k: point[k] for k in self.emission_arrays_}

    # -- the emission (registered, or the covariate-driven GLM) ----------------------------------------
    def _glm(self) -> bool:
        return self.emission == "glm"

    def _emission_class(self):
        return CategoricalGLM if self._glm() else super()._emission_class()

    def _emission(self, X=None):
        if not self._glm():
            return super()._emission(X)
        if X is None:
            return CategoricalGLM(**self.emission_settings_)
        try:
            return CategoricalGLM(**(self.emission_params or {})).for_data(X)
        except TypeError as err:
            raise ValueError(f"emission_params={self.emission_params!r} do not fit the GLM emission: {err}.") from None

    def _frames(self, X: np.ndarray, cond: np.ndarray, labels: np.ndarray | None = None) -> np.ndarray:
        """Emission log-likelihoods (T, K), with ``-inf`` for the states that known ``labels`` rule out."""
        if self._glm():
            return self._masked(self._emission().log_frames_given(X, self.emission_arrays_, cond), labels)
        return self._masked(self._log_frameprob(X), labels)

    def _emit(self, states: np.ndarray, rng: np.random.Generator, cond: np.ndarray) -> np.ndarray:
        emission = self._emission()
        if self._glm():
            return emission.sample_given(self.emission_arrays_, states, rng, cond)
        return emission.sample(self.emission_arrays_, states, rng)

    # -- answers -------------------------------------------------------------------------------------
    def _posterior(self, X, lengths, cond, labels=None):
        return TimeVaryingMarkovChain(self.startprob_, self._transmats(cond), self._frames(X, cond, labels), lengths)

    def _log_likelihood(self, X, lengths, cond, labels=None):
        return _iohmm.forward_backward(self.startprob_, self._transmats(cond), self._frames(X, cond, labels),
                                       lengths).log_likelihood

    def _pointwise_log_likelihood(self, X, lengths, params, cond, labels=None):
        # with labels: log p(x_t, known z_t | the past), summing to log p(x, known states)
        return _iohmm.forward_backward(self.startprob_, self._transmats(cond), self._frames(X, cond, labels),
                                       lengths).log_predictive

    def _sample(self, n_samples, rng, cond):
        A = self._transmats(cond)
        z = np.empty(n_samples, dtype=np.int64)
        z[0] = rng.choice(self.n_components, p=self.startprob_)
        for t in range(1, n_samples):
            z[t] = rng.choice(self.n_components, p=A[t, z[t - 1]])
        return self._emit(z, rng, cond), z

    def _posterior_predictive(self, X, latents, params, rng, cond=None, labels=None):
        latents = np.asarray(latents).astype(np.int64)
        return np.stack([self._emit(row, rng, cond) for row in latents])

    def _arviz_dims(self):
        return {**super()._arviz_dims(), "transition_intercept": ("state", "state_to"),
                "transition_coef": ("state", "state_to", "covariate")}


InputDrivenHMM.__doc__ = fill(InputDrivenHMM.__doc__)
