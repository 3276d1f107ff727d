"""Student-t emissions: ``x | z = k ~ t_{nu_k}(mu_k, Sigma_k)``, robust to outlying frames.

Parameters (public names): ``means`` (K, D), ``covars`` (K, D, D) (the
scale matrices; the covariance is ``nu / (nu - 2) Sigma`` for ``nu > 2``) and
``dofs`` (K,). The density is the Gaussian scale mixture
``x | z = k, tau ~ N(mu_k, Sigma_k / tau)``, ``tau ~ Gamma(nu_k / 2, nu_k / 2)``,
which is how EM fits it: the E-step adds the expected precision weight
``E[tau] = (nu + D) / (nu + delta)`` of each frame (``delta`` its squared
Mahalanobis distance) and ``E[log tau]``; the M-step is a weighted Gaussian
fit of ``mu`` and ``Sigma`` and a one-dimensional root of the degrees-of-freedom
equation (Brent's method, within ``dof_bounds``). Frames far from a state get
small weights, so they pull its mean and scale less than under Gaussian
emissions.

Missing values are summed out of the density (the t of the observed
coordinates); ``fit`` accepts whole missing frames. There is no conjugate
prior, so no Gibbs or NUTS sampler: ``HMM(emission="studentt", sampler=...)``
raises a ``ValueError`` saying so.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

from ._base import Emission

__all__ = ["StudentTEmission", "student_t_log_density"]


def student_t_log_density(X: np.ndarray, means: np.ndarray, covars: np.ndarray, dofs: np.ndarray) -> np.ndarray:
    """``log t_{nu_k}(x_i; mu_k, Sigma_k)`` (N, K) of complete rows ``X`` (N, D).

    Parameters
    ----------
    X : ndarray of shape (N, D)
        Observations (no NaN).
    means : ndarray of shape (K, D)
    covars : ndarray of shape (K, D, D)
        Scale matrices.
    dofs : ndarray of shape (K,)
        Degrees of freedom.

    Returns
    -------
    ndarray of shape (N, K)
    """
    N, D = X.shape
    delta = mahalanobis(X, means, covars)
    chol = np.linalg.cholesky(covars)
    logdet = 2.0 * np.log(np.diagonal(chol, axis1=-2, axis2=-1)).sum(axis=-1)
    nu = np.asarray(dofs, dtype=np.float64)
    const = gammaln(0.5 * (nu + D)) - gammaln(0.5 * nu) - 0.5 * D * np.log(nu * np.pi) - 0.5 * logdet
    return const[None, :] - 0.5 * (nu + D)[None, :] * np.log1p(delta / nu[None, :])


def mahalanobis(X: np.ndarray, means: np.ndarray, covars: np.ndarray) -> np.ndarray:
    """Squared Mahalanobis distances (N, K) of the rows of ``X`` to each ``means[k]`` under ``covars[k]``."""
    chol = np.linalg.cholesky(covars)
    out = np.empty((X.shape[0], means.shape[0]))
    for k in range(means.shape[0]):
        y = np.linalg.solve(chol[k], (X - means[k]).T)  # triangular, D x N
        out[:, k] = (y * y).sum(axis=0)
    return out


class StudentTEmission(Emission):
    """Multivariate Student-t emissions (see the module docstring).

    Parameters
    ----------
    min_covar : float, default=1e-3
        Added to the diagonal of each fitted scale matrix.
    dof_init : float, default=30.0
        Degrees of freedom every state starts EM with. A nearly Gaussian
        start lets EM find states that differ in scale (volatility regimes)
        before the tails get heavy; a small start tends to explain scale
        differences by heavy tails in non-persistent states.
    dof_bounds : tuple of float, default=(0.5, 500.0)
        The range the degrees-of-freedom update searches (its upper end
        stands in for the Gaussian limit).
    fit_dof : bool, default=True
        Whether EM updates the degrees of freedom (False: fixed at ``dof_init``).
    """

    name = "studentt"
    names = ("means", "covars", "dofs")
    key = "means"
    positive = ("dofs",)
    min_samples = 2

    def __init__(self, min_covar: float = 1e-3, dof_init: float = 30.0, dof_bounds: tuple = (0.5, 500.0),
                 fit_dof: bool = True) -> None:
        self.min_covar = min_covar
        self.dof_init = dof_init
        self.dof_bounds = dof_bounds
        self.fit_dof = fit_dof

    def _checked(self, owner: str) -> tuple[float, float]:
        try:
            lo, hi = (float(v) for v in self.dof_bounds)
            ok = 0 < lo <= float(self.dof_init) <= hi < np.inf and float(self.min_covar) >= 0
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(f"{owner}: emission_params need 0 < dof_bounds[0] <= dof_init <= dof_bounds[1] < inf "
                             f"and min_covar >= 0; got dof_bounds={self.dof_bounds!r}, dof_init={self.dof_init!r}, "
                             f"min_covar={self.min_covar!r}.")
        return lo, hi

    def check_data(self, X, owner):
        self._checked(owner)

    def check_sampler(self, sampler, X, owner):
        raise ValueError(f"{owner} has no MCMC sampler: Student-t emissions have no conjugate prior here, so "
                         f"sampler={sampler!r} is not supported. Fit with sampler=None (EM via the Gaussian "
                         "scale mixture).")

    @staticmethod
    def conformance_data(states, rng):
        means = np.array([[-3.0, 0.0], [3.0, 1.0]])
        tau = rng.gamma(2.5, 1.0 / 2.5, size=len(states))  # t with 5 degrees of freedom
        return means[states] + rng.normal(size=(len(states), 2)) / np.sqrt(tau)[:, None]

    def shapes(self, K, D):
        return {"means": (K, D), "covars": (K, D, D), "dofs": (K,)}

    def dims(self):
        return {"means": ("state", "feature"), "covars": ("state", "feature", "feature_bis"), "dofs": ("state",)}

    def log_frames(self, X, params):
        """``log p(x_i | z_i = k)`` (N, K); NaN coordinates are marginalised (0 for a wholly missing frame)."""
        X = np.asarray(X, dtype=np.float64)
        means, covs, dofs = (np.asarray(params[n], dtype=np.float64) for n in self.names)
        out = np.zeros((X.shape[0], means.shape[0]))
        missing = np.isnan(X)
        patterns, inverse = np.unique(missing, axis=0, return_inverse=True)
        for j, pattern in enumerate(patterns):
            rows = inverse.ravel() == j
            obs = ~pattern
            if obs.any():
                out[rows] = student_t_log_density(X[np.ix_(rows, obs)], means[:, obs],
                                                  covs[:, obs][:, :, obs], dofs)
        return out

    def sample(self, params, states, rng):
        means, covs, dofs = (np.asarray(params[n], dtype=np.float64) for n in self.names)
        nu = dofs[states]
        tau = rng.gamma(0.5 * nu, 2.0 / nu)
        chol = np.linalg.cholesky(covs)[states]
        z = rng.standard_normal(means[states].shape)
        return means[states] + np.einsum("nde,ne->nd", chol, z) / np.sqrt(tau)[:, None]

    # -- EM ---------------------------------------------------------------------------------------
    def init(self, X, K, rng):
        """Start from the full-covariance Gaussian start (k-means) on ``X`` winsorised, ``dof_init`` for every state.

        Each feature is clipped to its 5% and 95% quantiles first, so that a
        few gross outliers cannot claim a state of their own at the start;
        the states' scale matrices start a factor of 4 apart.
        """
        from ._gaussian import GaussianEmission

        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns
            lo, hi = np.nanquantile(X, [0.05, 0.95], axis=0)
        Xw = np.where(np.isnan(X), X, np.clip(X, np.nan_to_num(lo), np.nan_to_num(hi)))
        start = GaussianEmission("full", min_covar=self.min_covar).init(Xw, K, rng)
        # scales spread by a factor of 4 from the first state to the last, so that states which differ in scale
        # (volatility regimes) and not in location separate too
        spread = 2.0 ** np.linspace(-1.0, 1.0, K) if K > 1 else np.ones(1)
        return {"means": start["means"], "covars": start["covars"] * spread[:, None, None],
                "dofs": np.full(K, float(self.dof_init))}

    def precision_weights(self, X: np.ndarray, params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """E-step of the scale mixture on complete rows: ``E[tau | x, z = k]`` and ``E[log tau | x, z = k]`` (N, K)."""
        means, covs, dofs = (np.asarray(params[n], dtype=np.float64) for n in self.names)
        D = X.shape[1]
        delta = mahalanobis(X, means, covs)
        a = 0.5 * (dofs + D)
        b = 0.5 * (dofs[None, :] + delta)
        return a / b, digamma(a)[None, :] - np.log(b)

    def m_step(self, X, gamma, params):
        """Weighted Gaussian updates with the precision weights, then the degrees of freedom by root finding.

        Maximises the expected complete-data log-likelihood given ``gamma`` and
        the precision weights of the current parameters (an exact EM step).
        """
        lo, hi = self._checked("StudentTEmission")
        rows = ~np.isnan(X).any(axis=1)  # only whole frames are missing here
        Xo, go = X[rows], gamma[rows]
        u, log_u = self.precision_weights(Xo, params)
        means, covs, dofs = (np.array(params[n], dtype=np.float64) for n in self.names)
        K, D = means.shape
        for k in range(K):
            n_k = go[:, k].sum()
            w = go[:, k] * u[:, k]
            if n_k <= 1e-10 or w.sum() <= 0:
                continue
            means[k] = w @ Xo / w.sum()
            diff = Xo - means[k]
            covs[k] = (w[:, None] * diff).T @ diff / n_k + self.min_covar * np.eye(D)
            if self.fit_dof:
                c = 1.0 + (go[:, k] @ (log_u[:, k] - u[:, k])) / n_k

                def score(nu, c=c):
                    return np.log(0.5 * nu) - digamma(0.5 * nu) + c

                if score(hi) >= 0:
                    dofs[k] = hi
                elif score(lo) <= 0:
                    dofs[k] = lo
                else:
                    dofs[k] = brentq(score, lo, hi, xtol=1e-10, rtol=1e-12)
        return {"means": means, "covars": covs, "dofs": dofs}
