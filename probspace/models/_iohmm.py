"""InputDrivenHMM: an HMM whose transition probabilities are softmax-linear in per-frame covariates (IOHMM)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax, softmax

from .._docstrings import fill
from .._validation import Interval
from ..inference import _iohmm
from ..inference._progress import progress_bar
from ..posteriors import TimeVaryingMarkovChain
from ._emission_chain import CHAIN_CONSTRAINTS, EmissionChain, sequence_starts
from .hmm._generic import _ConformanceData

__all__ = ["InputDrivenHMM"]


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
    never decreases.

    Parameters
    ----------
    n_components : int, default=2
        Number of hidden states.
    emission : str, default="gaussian"
        Name of a registered emission (:func:`probspace.emissions.emission_names`).
    emission_params : dict, optional
        The emission's settings (for example ``{"covariance_type": "full"}``).
    alpha : float, default=1e-2
        L2 penalty ``alpha / 2 * (|b|^2 + |w|^2)`` on the transition intercepts
        and weights (in units of frames; keeps unseen transitions finite).
        Scale the covariates to comparable ranges: the penalty is not scale-free.
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

    _parameter_constraints = {**CHAIN_CONSTRAINTS, "alpha": [Interval("real", 0, None)]}
    _conditional = True
    _chain_parameter_names = ("startprob_", "transition_intercept_", "transition_coef_")
    _conformance_alt_params = {"alpha": 1.0}

    def __init__(self, n_components: int = 2, *, emission: str = "gaussian", emission_params: dict | None = None,
                 alpha: float = 1e-2, max_iter: int = 100, tol: float = 1e-4, random_state: Any = None,
                 progress: bool = False) -> None:
        self.n_components = n_components
        self.emission = emission
        self.emission_params = emission_params
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.progress = progress

    _conformance_emission = "gaussian"
    _conformance_data = _ConformanceData()

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
        K, M = self.n_components, cond.shape[1]
        self.n_covariates_ = M
        self.startprob_ = np.full(K, 1.0 / K)
        self.transition_intercept_ = np.zeros((K, K))
        self.transition_coef_ = np.zeros((K, K, M))
        self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in emission.init(X, K, rng).items()}
        starts = sequence_starts(lengths)
        inner = np.ones(X.shape[0], dtype=bool)
        inner[starts] = False
        design = np.hstack([np.ones((X.shape[0], 1)), cond])[inner]
        trace, converged = [], False
        with progress_bar(self.progress, self.max_iter, "EM (input-driven HMM)", "iter") as bar:
            for _ in range(self.max_iter):
                fb = _iohmm.forward_backward(self.startprob_, self._transmats(cond), self._log_frameprob(X), lengths)
                total = float(fb.log_likelihood.sum()) - self._penalty()
                if not np.isfinite(total):
                    raise ValueError(f"{type(self).__name__}.fit: the data have zero probability under the current "
                                     "parameters (degenerate data?).")
                trace.append(total)
                bar.set_postfix(objective_per_frame=f"{total / X.shape[0]:.4f}")
                bar.update(1)
                if len(trace) > 1 and trace[-1] - trace[-2] < self.tol:
                    converged = True
                    break
                start = fb.marginals[starts].sum(axis=0)
                self.startprob_ = start / start.sum()
                self._m_step_transitions(design, fb.pairwise[inner])
                self.emission_arrays_ = {k: np.asarray(v, dtype=np.float64) for k, v in
                                         emission.m_step(X, fb.marginals, self.emission_arrays_).items()}
        self._finish_fit(trace, converged, X.shape[0], "objective")

    def _penalty(self) -> float:
        return 0.5 * self.alpha * float((self.transition_intercept_ ** 2).sum() + (self.transition_coef_ ** 2).sum())

    def _m_step_transitions(self, design: np.ndarray, xi: np.ndarray) -> None:
        """Weighted multinomial logistic regression of the expected transitions ``xi`` (T', K, K) on ``design``.

        Minimises ``-sum_t sum_ij xi[t, i, j] log softmax_j(W_i design_t) + alpha/2 |W|^2`` by L-BFGS from
        the current weights (so the EM objective cannot decrease).
        """
        K, P = self.n_components, design.shape[1]
        if xi.shape[0] == 0:
            return
        row_mass = xi.sum(axis=2)  # (T', K)
        alpha = self.alpha

        def objective(theta):
            W = theta.reshape(K, K, P)
            logits = np.einsum("ijp,tp->tij", W, design)
            logp = log_softmax(logits, axis=2)
            value = -(xi * logp).sum() + 0.5 * alpha * (theta @ theta)
            resid = np.exp(logp) * row_mass[:, :, None] - xi
            grad = np.einsum("tij,tp->ijp", resid, design).ravel() + alpha * theta
            return value, grad

        W0 = np.concatenate([self.transition_intercept_[:, :, None], self.transition_coef_], axis=2).ravel()
        res = minimize(objective, W0, jac=True, method="L-BFGS-B", options={"maxiter": 200})
        W = res.x if res.fun <= objective(W0)[0] else W0
        W = W.reshape(K, K, P)
        self.transition_intercept_ = np.ascontiguousarray(W[:, :, 0])
        self.transition_coef_ = np.ascontiguousarray(W[:, :, 1:])

    # -- answers -------------------------------------------------------------------------------------
    def _posterior(self, X, lengths, cond):
        return TimeVaryingMarkovChain(self.startprob_, self._transmats(cond), self._log_frameprob(X), lengths)

    def _log_likelihood(self, X, lengths, cond):
        return _iohmm.forward_backward(self.startprob_, self._transmats(cond), self._log_frameprob(X),
                                       lengths).log_likelihood

    def _pointwise_log_likelihood(self, X, lengths, params, cond):
        return _iohmm.forward_backward(self.startprob_, self._transmats(cond), self._log_frameprob(X),
                                       lengths).log_predictive

    def _sample(self, n_samples, rng, cond):
        A = self._transmats(cond)
        z = np.empty(n_samples, dtype=np.int64)
        z[0] = rng.choice(self.n_components, p=self.startprob_)
        for t in range(1, n_samples):
            z[t] = rng.choice(self.n_components, p=A[t, z[t - 1]])
        return self._emission().sample(self.emission_arrays_, z, rng), z

    def _posterior_predictive(self, X, latents, params, rng, cond=None):
        return super()._posterior_predictive(X, latents, params, rng)

    def _arviz_dims(self):
        return {**super()._arviz_dims(), "transition_intercept": ("state", "state_to"),
                "transition_coef": ("state", "state_to", "covariate")}


InputDrivenHMM.__doc__ = fill(InputDrivenHMM.__doc__)
