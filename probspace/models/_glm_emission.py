"""Categorical GLM emissions (GLM-HMM): symbol probabilities softmax-linear in the frame's covariates.

``p(x_t = c | z_t = k, y_t) = softmax_c(a[k, c] + v[k, c] . y_t)``, one
intercept ``a`` and weight vector ``v`` per state and symbol. Binary choices
(``n_symbols=2``) are the GLM-HMM of decision-making studies (a
state-dependent logistic regression of the choice on the stimulus). Only
:class:`probspace.InputDrivenHMM` uses it (``emission="glm"``): its densities
need the covariates, which the registered emissions never see. The M-step is
the same weighted multinomial logistic regression as the transitions'
(:func:`softmax_regression`), with the state responsibilities as weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.optimize import minimize
from scipy.special import log_softmax

from ..emissions import Emission
from ..emissions._base import check_counts

__all__ = ["CategoricalGLM", "softmax_regression"]


def softmax_regression(W0: np.ndarray, design: np.ndarray, targets: np.ndarray, alpha: float,
                       free: np.ndarray | None = None) -> np.ndarray:
    """Weighted multinomial logistic regressions, one per row ``r``, by L-BFGS from ``W0``; never worse than ``W0``.

    Minimises ``-sum_t sum_rc targets[t, r, c] log softmax_c(W[r] @ design[t]) + alpha / 2 |W|^2``,
    over the entries where ``free`` (same shape as ``W0``, default all) is True; the others keep their
    values in ``W0`` bit for bit.

    Parameters
    ----------
    W0 : ndarray of shape (R, C, P)
        Starting weights (intercept first in ``P`` when ``design`` has a column of ones).
    design : ndarray of shape (N, P)
        Inputs.
    targets : ndarray of shape (N, R, C)
        Non-negative weights of outcome ``c`` for row ``r`` at input ``t`` (expected counts).
    alpha : float
        L2 penalty.
    free : ndarray of bool, shape (R, C, P), optional
        Entries to optimise (held entries, False, stay at ``W0``).

    Returns
    -------
    ndarray of shape (R, C, P)
    """
    R, C, P = W0.shape
    if design.shape[0] == 0:
        return W0
    mass = targets.sum(axis=2)

    def objective(theta):
        W = theta.reshape(R, C, P)
        logp = log_softmax(np.einsum("rcp,tp->trc", W, design), axis=2)
        value = -(targets * logp).sum() + 0.5 * alpha * (theta @ theta)
        resid = np.exp(logp) * mass[:, :, None] - targets
        return value, np.einsum("trc,tp->rcp", resid, design).ravel() + alpha * theta

    theta0 = W0.ravel()
    if free is not None and not np.all(free):
        mask = np.asarray(free, dtype=bool).ravel()
        if not mask.any():
            return W0

        def restricted(u):
            theta = theta0.copy()
            theta[mask] = u
            value, grad = objective(theta)
            return value, grad[mask]

        res = minimize(restricted, theta0[mask], jac=True, method="L-BFGS-B", options={"maxiter": 200})
        best = theta0.copy()
        if np.all(np.isfinite(res.x)) and res.fun <= objective(theta0)[0]:
            best[mask] = res.x
        return best.reshape(R, C, P)
    res = minimize(objective, theta0, jac=True, method="L-BFGS-B", options={"maxiter": 200})
    best = res.x if np.all(np.isfinite(res.x)) and res.fun <= objective(theta0)[0] else theta0
    return best.reshape(R, C, P)


#: Most symbols a covariate-driven categorical emission reads from the data.
MAX_SYMBOLS = 10_000


class CategoricalGLM(Emission):
    """Symbols whose probabilities are softmax-linear in the covariates, per state (see the module docstring).

    Parameters
    ----------
    n_symbols : int, optional
        Number of symbols (read from the data as ``max(X) + 1`` when None).
    alpha : float, default=1e-2
        L2 penalty of the emission regressions.
    """

    non_negative = True
    names = ("glm_intercept", "glm_coef")

    def __init__(self, n_symbols: int | None = None, alpha: float = 1e-2) -> None:
        self.n_symbols = n_symbols
        self.alpha = alpha

    def for_data(self, X: np.ndarray) -> CategoricalGLM:
        if self.n_symbols is not None:
            return self
        values = X[~np.isnan(X)]
        n_symbols = int(values.max()) + 1 if values.size else 2
        if n_symbols > MAX_SYMBOLS:  # the logits hold one column per symbol and frame: a huge code is a mistake
            raise ValueError(f"X passed with emission='glm' holds symbol {n_symbols - 1}: the softmax regression "
                             f"would have {n_symbols} symbols 0..{n_symbols - 1} (at most {MAX_SYMBOLS}); recode "
                             "the symbols as 0..C-1.")
        return CategoricalGLM(n_symbols, self.alpha)

    def check_data(self, X: np.ndarray, owner: str) -> None:
        if X.shape[1] != 1:
            raise ValueError(f"X passed to {owner} must have one column of symbols (emission='glm'); got "
                             f"{X.shape[1]} columns.")
        check_counts(X, owner, "symbols", self.n_symbols)

    def dims(self) -> dict[str, tuple[str, ...]]:
        return {"glm_intercept": ("state", "symbol"), "glm_coef": ("state", "symbol", "covariate")}

    def init(self, X: np.ndarray, K: int, rng: np.random.Generator, M: int) -> dict[str, np.ndarray]:
        """Return intercepts at the log symbol frequencies, jittered per state, and zero weights."""
        C = self.n_symbols
        freq = np.bincount(X[~np.isnan(X)].astype(np.int64), minlength=C) + 1.0
        logf = np.log(freq / freq.sum())
        return {"glm_intercept": logf[None] + rng.normal(scale=0.5, size=(K, C)), "glm_coef": np.zeros((K, C, M))}

    def log_frames_given(self, X: np.ndarray, params: dict[str, np.ndarray], y: np.ndarray) -> np.ndarray:
        """``log p(x_t | z_t = k, y_t)`` (T, K); 0 for a missing frame."""
        logits = params["glm_intercept"][None] + np.einsum("kcm,tm->tkc", params["glm_coef"], y)
        logp = log_softmax(logits, axis=2)
        x = np.nan_to_num(X[:, 0]).astype(np.int64)
        out = np.take_along_axis(logp, x[:, None, None], axis=2)[:, :, 0]
        return np.where(np.isnan(X[:, :1]), 0.0, out)

    def m_step_given(self, X: np.ndarray, gamma: np.ndarray, params: dict[str, np.ndarray],
                     y: np.ndarray, held: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Weighted softmax regressions of the symbols on the covariates, state responsibilities as weights.

        ``held`` (optional) maps ``glm_intercept``/``glm_coef`` to arrays whose
        finite entries are held (at their values in ``params``) and NaN entries fitted.
        """
        seen = ~np.isnan(X[:, 0])
        onehot = np.eye(self.n_symbols)[X[seen, 0].astype(np.int64)]
        targets = gamma[seen, :, None] * onehot[:, None, :]
        design = np.hstack([np.ones((int(seen.sum()), 1)), y[seen]])
        W0 = np.concatenate([params["glm_intercept"][:, :, None], params["glm_coef"]], axis=2)
        free = None
        if held:
            K, C = W0.shape[:2]
            free = np.concatenate([np.isnan(held.get("glm_intercept", np.full((K, C), np.nan)))[:, :, None],
                                   np.isnan(held.get("glm_coef", np.full(W0[:, :, 1:].shape, np.nan)))], axis=2)
        W = softmax_regression(W0, design, targets, self.alpha, free)
        return {"glm_intercept": np.ascontiguousarray(W[:, :, 0]), "glm_coef": np.ascontiguousarray(W[:, :, 1:])}

    def sample_given(self, params: dict[str, np.ndarray], states: np.ndarray, rng: np.random.Generator,
                     y: np.ndarray) -> np.ndarray:
        """One symbol per frame given its state and covariates, shape (len(states), 1)."""
        logits = params["glm_intercept"][states] + np.einsum("tcm,tm->tc", params["glm_coef"][states], y)
        p = np.exp(log_softmax(logits, axis=1))
        u = rng.random(states.shape[0])[:, None]
        return np.minimum((u > np.cumsum(p, axis=1)).sum(axis=1), self.n_symbols - 1)[:, None].astype(np.float64)

    def missing_supported(self, missing: np.ndarray) -> bool:
        return True

    def penalty(self, params: dict[str, Any]) -> float:
        """Return the L2 penalty of the emission weights (part of the EM objective)."""
        return 0.5 * self.alpha * float((params["glm_intercept"] ** 2).sum() + (params["glm_coef"] ** 2).sum())
