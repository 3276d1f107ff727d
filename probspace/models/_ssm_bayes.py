"""The Bayesian (Gibbs) fit of ``LinearGaussianSSM``: priors, chain starts, and draws by public name."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import stats
from scipy.special import multigammaln

from ..inference import _ssm_gibbs

__all__ = ["PRIOR_KEYS", "resolve_prior", "run"]

#: Short kernel names of the public parameter names.
SHORT = {"transition_matrix": "A", "control_matrix": "B", "observation_matrix": "C", "feedthrough_matrix": "D",
         "transition_covariance": "Q", "observation_covariance": "R", "initial_mean": "m0",
         "initial_covariance": "P0"}

#: Prior entries: name -> (what it is, shape kind). ``coef``: one value per entry of ``[A B]`` / ``[C D]``
#: (a scalar broadcasts); ``vec``: per entry of ``mu0``; ``df``: a scalar; ``scale``: a scalar (times the
#: identity) or a matrix.
PRIOR_KEYS = {
    "transition_coef_mean": "coef", "transition_coef_sd": "coef",
    "observation_coef_mean": "coef", "observation_coef_sd": "coef",
    "initial_mean_mean": "vec", "initial_mean_sd": "vec",
    "transition_covariance_df": "df", "transition_covariance_scale": "scale",
    "observation_covariance_df": "df", "observation_covariance_scale": "scale",
    "initial_covariance_df": "df", "initial_covariance_scale": "scale",
}


def _defaults(X: np.ndarray, U: np.ndarray, C: np.ndarray, scale: float, state_scale: float) -> dict[str, Any]:
    """Weakly informative defaults from the data's moments (see the class docstring)."""
    p, d = C.shape
    m = U.shape[1]
    with np.errstate(invalid="ignore"):
        var = np.nan_to_num(np.nanvar(X, axis=0))
        square = float(np.nanmean(X**2)) if np.isfinite(X).any() else 1.0
    u_sd = np.where(U.std(axis=0) > 0, U.std(axis=0), 1.0) if m else np.ones(0)
    ratio = np.sqrt(scale / state_scale)
    level = np.sqrt(max(square, scale) / (scale / state_scale)) if scale > 0 else 1.0
    return {
        "transition_coef_mean": np.hstack([np.eye(d), np.zeros((d, m))]),
        "transition_coef_sd": np.hstack([np.ones((d, d)), np.tile(10 * np.sqrt(state_scale) / u_sd, (d, 1))]),
        "observation_coef_mean": np.zeros((p, d + m)),
        "observation_coef_sd": np.hstack([np.full((p, d), 10 * ratio), np.tile(10 * np.sqrt(scale) / u_sd, (p, 1))]),
        "initial_mean_mean": np.zeros(d),
        "initial_mean_sd": np.full(d, 10 * level),
        "transition_covariance_df": d + 2.0,
        "transition_covariance_scale": 0.1 * state_scale * np.eye(d),
        "observation_covariance_df": p + 2.0,
        "observation_covariance_scale": np.diag(np.maximum(0.5 * var, 1e-3 * scale)),
        "initial_covariance_df": d + 2.0,
        "initial_covariance_scale": state_scale * np.eye(d),
    }


def resolve_prior(prior: dict | None, X: np.ndarray, U: np.ndarray, C: np.ndarray, scale: float,
                  state_scale: float, owner: str) -> dict[str, Any]:
    """Fill in the defaults and check the user's entries (names, shapes, positivity)."""
    out = _defaults(X, U, C, scale, state_scale)
    for key, value in (prior or {}).items():
        if key not in PRIOR_KEYS:
            raise ValueError(f"{owner}: unknown prior entry {key!r}; expected names among {', '.join(PRIOR_KEYS)}.")
        kind = PRIOR_KEYS[key]
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{owner}: prior[{key!r}] must be numeric; got {type(value).__name__}.") from err
        if not np.all(np.isfinite(arr)):
            raise ValueError(f"{owner}: prior[{key!r}] must be finite.")
        default = np.asarray(out[key])
        if kind == "df":
            k = (X.shape[1] if key.startswith("observation") else C.shape[1])
            if arr.ndim or arr <= k - 1:
                raise ValueError(f"{owner}: prior[{key!r}] must be a number above {k - 1} (the dimension - 1); "
                                 f"got {value!r}.")
            out[key] = float(arr)
            continue
        if kind == "scale" and arr.ndim == 0:
            arr = arr * np.eye(default.shape[0])
        elif arr.ndim == 0:
            arr = np.full(default.shape, float(arr))
        if arr.shape != default.shape:
            raise ValueError(f"{owner}: prior[{key!r}] must be a scalar or an array of shape {default.shape}; got "
                             f"shape {arr.shape}.")
        if kind == "scale" and (not np.allclose(arr, arr.T) or np.linalg.eigvalsh(arr)[0] <= 0):
            raise ValueError(f"{owner}: prior[{key!r}] must be symmetric positive definite.")
        if key.endswith("_sd") and np.any(arr <= 0):
            raise ValueError(f"{owner}: prior[{key!r}] must be positive.")
        out[key] = arr
    return out


def run(X: np.ndarray, U: np.ndarray | None, lengths: np.ndarray, params: dict[str, np.ndarray],
        held: dict[str, np.ndarray], prior: dict[str, Any], patterns: list, *, n_chains: int, n_draws: int,
        n_warmup: int, rng: np.random.Generator, progress: bool, owner: str):
    """Run the chains from the EM fit ``params``; return ``(draws, sample_stats)`` by public name.

    Chain 0 starts at the EM fit; the others at the EM fit with each free
    covariance scaled by ``exp(N(0, 0.5^2))`` (overdispersed starts, so that
    R-hat can detect chains that have not mixed). ``draws`` holds only the
    arrays that are sampled (not those held whole), each ``(n_chains,
    n_draws, ...)``.
    """
    U = np.zeros((X.shape[0], 0)) if U is None else U
    short = {SHORT[k]: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    h = {"AB": np.hstack([held["transition_matrix"], held["control_matrix"]]),
         "CD": np.hstack([held["observation_matrix"], held["feedthrough_matrix"]]),
         "Q": held["transition_covariance"], "R": held["observation_covariance"],
         "m0": held["initial_mean"], "P0": held["initial_covariance"]}
    starts = []
    for c in range(n_chains):
        start = dict(short)
        if c:
            for k in ("Q", "R", "P0"):
                if not h[k].all():
                    start[k] = start[k] * np.exp(rng.normal(scale=0.5))
        starts.append(start)
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    chains, loglik = _ssm_gibbs.run_chains(X, U, bounds, starts, h, prior, patterns, n_warmup, n_draws, rng,
                                           progress, f"{owner} Gibbs")
    sampled = [name for name in SHORT if not held[name].all() and held[name].size]
    draws = {name: np.array([[draw[SHORT[name]] for draw in chain] for chain in chains]) for name in sampled}
    return draws, {"total_log_likelihood": loglik, "lp": loglik + log_prior(draws, held, prior)}


#: Coefficient arrays: (prior entry prefix, columns of that block's ``[W V]`` they occupy: "state" or "input").
_COEF = {"transition_matrix": ("transition_coef", "state"), "control_matrix": ("transition_coef", "input"),
         "observation_matrix": ("observation_coef", "state"), "feedthrough_matrix": ("observation_coef", "input")}


def _inverse_wishart_logpdf(S: np.ndarray, df: float, scale: np.ndarray) -> np.ndarray:
    """Log density of ``IW(df, scale)`` at a stack of matrices ``S (..., k, k)``."""
    k = scale.shape[0]
    logdet_S = np.linalg.slogdet(S)[1]
    trace = np.einsum("ij,...ji->...", scale, np.linalg.inv(S))
    return (0.5 * df * np.linalg.slogdet(scale)[1] - 0.5 * df * k * np.log(2.0) - multigammaln(0.5 * df, k)
            - 0.5 * (df + k + 1) * logdet_S - 0.5 * trace)


def log_prior(draws: dict[str, np.ndarray], held: dict[str, np.ndarray], prior: dict[str, Any]) -> np.ndarray:
    """``log p(draw)`` under the prior used, for each draw ``(n_chains, n_draws)``: free entries only.

    Held entries and arrays are constants (point masses) and add nothing;
    a diagonal covariance has its independent inverse-gamma entries.
    """
    total = 0.0
    for name, arr in draws.items():
        free = ~held[name]
        if name in _COEF:
            prefix, part = _COEF[name]
            k = arr.shape[-1]  # the state columns come first in [A B] / [C D], the input columns last
            cols = slice(0, k) if part == "state" else slice(prior[prefix + "_mean"].shape[1] - k, None)
            mean, sd = prior[prefix + "_mean"][:, cols], prior[prefix + "_sd"][:, cols]
            total = total + np.sum(np.where(free, stats.norm.logpdf(arr, mean, sd), 0.0), axis=(-2, -1))
        elif name == "initial_mean":
            logpdf = stats.norm.logpdf(arr, prior["initial_mean_mean"], prior["initial_mean_sd"])
            total = total + np.sum(np.where(free, logpdf, 0.0), axis=-1)
        else:  # a covariance: full, or diagonal (off-diagonal held)
            df, scale = prior[name + "_df"], prior[name + "_scale"]
            if free.all():
                total = total + _inverse_wishart_logpdf(arr, df, scale)
            else:
                diag = np.diagonal(arr, axis1=-2, axis2=-1)
                total = total + np.sum(stats.invgamma.logpdf(diag, 0.5 * df, scale=0.5 * np.diag(scale)), axis=-1)
    return np.broadcast_to(total, next(iter(draws.values())).shape[:2]).copy()
