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
coordinates); ``fit`` accepts whole missing frames.

Gibbs sampler (``sampler="gibbs"``, complete data). The scale mixture makes
the model conditionally conjugate. Each sweep draws the state path by
forward-filtering backward-sampling with the *marginal* t density (``tau``
integrated out), then, in the compiled update, each frame's precision weight
``tau_i | x_i, z_i = k ~ Gamma((nu_k + D) / 2, rate (nu_k + delta_i) / 2)``
(so ``(z, tau) | theta`` is one exact block), then ``(mu_k, Sigma_k)`` from
the weighted Normal-inverse-Wishart conditional and ``nu_k`` by random-walk
Metropolis-Hastings on ``log nu_k`` (with the Jacobian of the log transform)
given the weights. Prior (numbers in ``prior=``):
``mu_k | Sigma_k ~ N(m0, Sigma_k / kappa0)``, ``Sigma_k ~ IW(nu0, Psi0)``
(keys ``"mean"``, ``"mean_precision"``, ``"dof"``, ``"scale"``, defaults as
for Gaussian emissions) and ``nu_k ~ Gamma(a, rate b)`` truncated to
``dof_bounds`` (keys ``"dofs_shape"``, default 2, and ``"dofs_rate"``,
default 0.1). With ``fit_dof=False`` the degrees of freedom stay at their
start (``dof_init``). Held states (``fixed=`` per state, as EM holds them)
follow the same conditionals per state: a held mean drops its prior, a held
scale keeps ``mu_k | Sigma_k``, a held dof is not drawn. There is no NUTS sampler.
"""

from __future__ import annotations

import math
import warnings

import numba
import numpy as np
from scipy.optimize import brentq
from scipy.special import digamma, gammaln

from ._base import FRAMES, JIT, UPDATE, Emission, PriorReader
from ._gaussian import GaussianEmission, _hyper, _inverse_wishart, _solve_quadratic

_LOGPI = math.log(math.pi)
#: Metropolis-Hastings steps on log(nu) per sweep, and their random-walk scale.
_DOF_STEPS = 5
_DOF_STEP_SCALE = 0.5

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


@numba.njit(**JIT)
def _t_theta(theta, K, D):  # pragma: no cover - compiled
    means = theta[:K * D].reshape((K, D))
    covs = theta[K * D:K * D + K * D * D].reshape((K, D, D))
    dofs = theta[K * D + K * D * D:K * D + K * D * D + K]
    return means, covs, dofs


@numba.njit(FRAMES, **JIT)
def _t_frames(X, aux, theta, out):  # pragma: no cover - compiled
    """Complete rows: ``log t_{nu_k}(x_i; mu_k, Sigma_k)`` (the Gibbs sampler's path density); NaN rows give 0."""
    N, D = X.shape
    K = out.shape[1]
    means, covs, dofs = _t_theta(theta, K, D)
    r = np.empty(D)
    y = np.empty(D)
    for k in range(K):
        chol = np.linalg.cholesky(np.ascontiguousarray(covs[k]))
        logdet = 0.0
        for d in range(D):
            logdet += 2.0 * math.log(chol[d, d])
        nu = dofs[k]
        const = math.lgamma(0.5 * (nu + D)) - math.lgamma(0.5 * nu) - 0.5 * D * (math.log(nu) + _LOGPI) - 0.5 * logdet
        for i in range(N):
            complete = True
            for d in range(D):
                r[d] = X[i, d] - means[k, d]
                if X[i, d] != X[i, d]:
                    complete = False
            if complete:
                out[i, k] = const - 0.5 * (nu + D) * math.log1p(_solve_quadratic(chol, r, D, y) / nu)
            else:
                out[i, k] = 0.0


@numba.njit(**JIT)
def _dof_log_target(nu, n, sum_log_tau, sum_tau, a, b):  # pragma: no cover - compiled
    """``log p(nu | tau)`` up to a constant: n Gamma(tau; nu/2, rate nu/2) terms times the Gamma(a, b) prior."""
    h = 0.5 * nu
    return n * (h * math.log(h) - math.lgamma(h)) + (h - 1.0) * sum_log_tau - h * sum_tau + (a - 1.0) * math.log(
        nu) - b * nu


@numba.njit(UPDATE, **JIT)
def _t_update(X, z, K, hyper, fixed, theta):  # pragma: no cover - compiled
    """Precision weights tau | z, theta; then (mu, Sigma) | tau, z (weighted NIW); then nu | tau by MH on log nu.

    ``hyper`` = m0 (D), kappa0, nu0, Psi0 (D, D), then the Gamma shape and rate of nu, the bounds of nu and
    whether nu is sampled (1.0) or held (0.0). ``fixed`` may carry one more flag per entry of ``theta`` (means,
    covariances, dofs; True: held), read per state: each of state ``k``'s arrays held follows the whole-array
    path for that state alone (a held mean drops its prior, a held covariance keeps ``mu_k | Sigma_k``).
    """
    N, D = X.shape
    entrywise = fixed.shape[0] > 3
    means, covs, dofs = _t_theta(theta, K, D)
    m0, kappa0, nu0, psi0 = _hyper(hyper, D)
    at = D + 2 + D * D
    a, b, lo, hi, fit_dof = hyper[at], hyper[at + 1], hyper[at + 2], hyper[at + 3], hyper[at + 4] > 0.0
    tau = np.empty(N)
    r = np.empty(D)
    y = np.empty(D)
    for k in range(K):
        chol = np.linalg.cholesky(np.ascontiguousarray(covs[k]))
        nu = dofs[k]
        n, w, sum_tau, sum_log_tau = 0.0, 0.0, 0.0, 0.0
        wx = np.zeros(D)
        for i in range(N):
            if z[i] != k:
                continue
            for d in range(D):
                r[d] = X[i, d] - means[k, d]
            delta = _solve_quadratic(chol, r, D, y)
            tau[i] = np.random.gamma(0.5 * (nu + D), 2.0 / (nu + delta))
            n += 1.0
            w += tau[i]
            sum_log_tau += math.log(tau[i])
            for d in range(D):
                wx[d] += tau[i] * X[i, d]
        sum_tau = w
        hold_mean = fixed[0] or (entrywise and fixed[3 + k * D])
        hold_cov = fixed[1] or (entrywise and fixed[3 + K * D + k * D * D])
        hold_dof = fixed[2] or (entrywise and fixed[3 + K * D + K * D * D + k])
        # (mu, Sigma) | tau: the Normal-inverse-Wishart update with weights tau (nu0 + n: one |Sigma| per frame)
        if not (hold_mean and hold_cov):
            xbar = wx / w if w > 0.0 else m0.copy()
            scatter = np.zeros((D, D))
            centre = means[k].copy() if hold_mean else xbar
            for i in range(N):
                if z[i] == k:
                    for d in range(D):
                        r[d] = X[i, d] - centre[d]
                    for d in range(D):
                        for e in range(D):
                            scatter[d, e] += tau[i] * r[d] * r[e]
            if hold_mean:
                covs[k] = _inverse_wishart(nu0 + n, psi0 + scatter)
            else:
                kn = kappa0 + w
                mn = (kappa0 * m0 + w * xbar) / kn
                if not hold_cov:
                    diff = xbar - m0
                    covs[k] = _inverse_wishart(nu0 + n, psi0 + scatter + (kappa0 * w / kn) * np.outer(diff, diff))
                cn = np.linalg.cholesky(covs[k] / kn)
                eps = np.empty(D)
                for d in range(D):
                    eps[d] = np.random.standard_normal()
                means[k] = mn + cn @ eps
        # nu | tau: random walk on log nu; the target on the log scale carries the Jacobian nu
        if fit_dof and not hold_dof:
            cur = _dof_log_target(nu, n, sum_log_tau, sum_tau, a, b) + math.log(nu)
            for _ in range(_DOF_STEPS):
                prop = nu * math.exp(_DOF_STEP_SCALE * np.random.standard_normal())
                if prop < lo or prop > hi:
                    continue
                new = _dof_log_target(prop, n, sum_log_tau, sum_tau, a, b) + math.log(prop)
                if math.log(np.random.random()) < new - cur:
                    nu, cur = prop, new
            dofs[k] = nu


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
    positive = ("covars", "dofs")
    min_samples = 2
    samplers = ("gibbs",)
    #: Gibbs holds states of each array (a state's mean and scale entries are coupled; one dof per state).
    gibbs_entry_holds = gibbs_state_holds = ("means", "covars", "dofs")
    hyper_keys = {"mean": "means", "mean_precision": "means", "dof": "covars", "scale": "covars",
                  "dofs_shape": "dofs", "dofs_rate": "dofs"}

    def __init__(self, min_covar: float = 1e-3, dof_init: float = 30.0, dof_bounds: tuple = (0.5, 500.0),
                 fit_dof: bool = True) -> None:
        self.min_covar = min_covar
        self.dof_init = dof_init
        self.dof_bounds = dof_bounds
        self.fit_dof = fit_dof
        self.frames_kernel = _t_frames  # on the instance: a compiled function as a class attribute binds as a method
        self.update_kernel = _t_update

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
        self._checked(owner)
        if sampler not in self.samplers:
            raise ValueError(f"{owner} with Student-t emissions supports sampler ['gibbs'] (the Gaussian scale "
                             f"mixture is conditionally conjugate); got {sampler!r}.")

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

    # -- Gibbs -------------------------------------------------------------------------------------
    def _niw(self) -> GaussianEmission:
        return GaussianEmission("full", scale="covars", min_covar=self.min_covar)

    def number_hint(self, array):
        return {"means": "'mean' and 'mean_precision'", "covars": "'dof' and 'scale'",
                "dofs": "'dofs_shape' and 'dofs_rate'"}[array]

    def resolve_hyper(self, reader: PriorReader, X, K):
        """Return the Normal-inverse-Wishart entries (as for Gaussian emissions) and the Gamma prior of the dofs."""
        hyper = self._niw().resolve_hyper(reader, X, K)
        hyper["dofs_shape"] = reader.number("dofs_shape", 2.0, (K,))
        hyper["dofs_rate"] = reader.number("dofs_rate", 0.1, (K,))
        return hyper

    def pack_hyper(self, hyper, D):
        lo, hi = self._checked("StudentTEmission")
        shape, rate = (np.asarray(hyper[k], dtype=np.float64) for k in ("dofs_shape", "dofs_rate"))
        if np.ptp(shape) > 0 or np.ptp(rate) > 0:
            raise ValueError("prior['dofs_shape'] and prior['dofs_rate'] of the Gibbs sampler must be the same for "
                             "every state.")
        return np.concatenate([self._niw().pack_hyper(hyper, D),
                               [shape.flat[0], rate.flat[0], lo, hi, 1.0 if self.fit_dof else 0.0]])

    def log_prior(self, params, hyper, fixed=()):
        """Normal-inverse-Wishart log density plus the Gamma(a, b) log density of the dofs truncated to the bounds."""
        from scipy.special import gammainc

        out = self._niw().log_prior({"means": params["means"], "covars": params["covars"]}, hyper, fixed)
        if "dofs" not in fixed and self.fit_dof:
            lo, hi = self._checked("StudentTEmission")
            a, b = np.asarray(hyper["dofs_shape"], float), np.asarray(hyper["dofs_rate"], float)
            nu = np.asarray(params["dofs"], dtype=np.float64)
            mass = gammainc(a, b * hi) - gammainc(a, b * lo)  # the prior truncated to dof_bounds
            out = out + (a * np.log(b) - gammaln(a) + (a - 1.0) * np.log(nu) - b * nu - np.log(mass)).sum(axis=-1)
        return out

    def prepare_start(self, start, fixed, X, floor):
        self._niw().prepare_start(start, fixed, X, floor)
        if "dofs" not in fixed:
            lo, hi = self._checked("StudentTEmission")
            start["dofs"] = np.clip(start["dofs"], lo, hi)
