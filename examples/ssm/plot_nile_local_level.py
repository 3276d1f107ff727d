"""
The Nile as a drifting level: Kalman smoothing, joint path draws and the change-point view
==========================================================================================

The annual flow of the Nile at Aswan (1871-1970) is the textbook series of
Durbin and Koopman's *Time Series Analysis by State Space Methods*. Their
first model is the **local level model**: the flow is a level plus noise,
and the level itself drifts as a random walk,

.. math::

    x_t = x_{t-1} + w_t,\\ w_t \\sim \\mathcal{N}(0, \\sigma^2_\\eta), \\qquad
    y_t = x_t + v_t,\\ v_t \\sim \\mathcal{N}(0, \\sigma^2_\\varepsilon).

It is a :class:`~probspace.LinearGaussianSSM` with one state and the
transition and observation matrices fixed at 1. ``model.posterior(y)`` is
the exact posterior over the *whole path* of the level, a
:class:`~probspace.posteriors.GaussMarkovChain`: smoothed means and
variances year by year, and joint draws of entire paths. This example fits
the two variances by EM, draws the level with its uncertainty band, asks
questions about whole paths, fills in missing years, forecasts, and
contrasts the drifting level with the hidden Markov model's two regimes
(:ref:`sphx_glr_auto_examples_hmm_plot_nile_change_point.py`); a Gibbs fit
then adds the uncertainty about the two variances.
"""

# %%
# Fit the local level model by EM
# --------------------------------
# ``fixed`` keeps the transition and observation matrices at 1, and the
# distribution of the first level at a wide known prior (mean 1000, standard
# deviation 316), so EM fits only the two variances. Every EM iteration
# raises the log-likelihood (``history_``, per year). Durbin and Koopman
# report the maximum likelihood estimates
# :math:`\sigma^2_\varepsilon = 15099` and :math:`\sigma^2_\eta = 1469.1`
# (with a diffuse first level, so ours differ a little).
import os

import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_nile

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_PATHS = 2000 if FAST else 20000
N_ARVIZ_DRAWS = 200 if FAST else 2000

nile = load_nile()
y, year = nile.data, nile.year
one = np.eye(1)
model = probspace.LinearGaussianSSM(
    1, transition_matrix=one, observation_matrix=one, initial_mean=[1000.0], initial_covariance=[[1e5]],
    fixed=["transition_matrix", "observation_matrix", "initial_mean", "initial_covariance"],
    max_iter=2000, tol=1e-8, random_state=0,
).fit(y)
sigma2_eps, sigma2_eta = model.observation_covariance_[0, 0], model.transition_covariance_[0, 0]
print(f"EM: {model.n_iter_} iterations, log-likelihood {model.log_likelihood(y)[0]:.3f}")
print(f"observation noise variance {sigma2_eps:.0f} (sd {np.sqrt(sigma2_eps):.0f}), "
      f"level disturbance variance {sigma2_eta:.0f} (sd {np.sqrt(sigma2_eta):.0f})")
print(f"log-likelihood never decreased: {bool(np.all(np.diff(model.history_) >= 0))}")

# %%
# The smoothed level and its uncertainty
# --------------------------------------
# ``post.mean`` and ``post.variance`` are the smoothed level
# :math:`E[x_t \mid y_{1:100}]` and its variance, from the RTS smoother;
# ``post.filtered`` holds the filtered level :math:`E[x_t \mid y_{1:t}]`,
# which only sees the past and so lags behind the drop. ``credible_interval``
# gives the exact 95% band of each year's level. Five joint draws of the
# whole path show what the band does not: paths are smooth and wander
# together, not independently year by year.
post = model.posterior(y)
level, sd = post.mean[:, 0], np.sqrt(post.variance[:, 0])
lower, upper = post.credible_interval(0.95)
paths = post.sample(N_PATHS, random_state=1)[:, :, 0]  # shape (N_PATHS, 100): whole level paths
print(post)
print(f"smoothed level: {level[0]:.0f} in 1871, {level[-1]:.0f} in 1970; sd {sd.min():.0f} to {sd.max():.0f}")

fig, ax = plt.subplots(figsize=(9, 4.5))
ax.plot(year, y[:, 0], "o", color="0.5", markersize=3, label="annual flow")
ax.fill_between(year, lower[:, 0], upper[:, 0], color="tab:blue", alpha=0.2, label="95% band (smoothed)")
ax.plot(year, level, color="tab:blue", label="smoothed level")
ax.plot(year, post.filtered.mean[:, 0], color="tab:orange", linestyle="--", label="filtered level")
for i in range(5):
    ax.plot(year, paths[i], color="tab:blue", linewidth=0.6, alpha=0.5)
ax.plot([], [], color="tab:blue", linewidth=0.6, alpha=0.5, label="joint path draws")
ax.set_xlabel("year")
ax.set_ylabel("flow ($10^8$ m³)")
ax.set_title("Nile: local level model, exact posterior of the level")
ax.legend(loc="upper right", ncol=2)
fig.tight_layout()

# %%
# The draws are exact: their mean and variance match the smoother's up to
# Monte Carlo error, and ``post.log_prob`` is the exact log density of whole
# paths (here of the smoothed mean, the posterior mode, against a draw).
mc_gap = np.max(np.abs(paths.mean(axis=0) - level) / (sd / np.sqrt(N_PATHS)))
print(f"largest gap between draw mean and smoothed mean over the 100 years: {mc_gap:.2f} Monte Carlo standard "
      "errors (the largest of 100 normal |z| values is typically 2-3.5)")
print(f"log density of the mode path {post.log_prob(post.mode):.2f}, of one draw "
      f"{post.log_prob(paths[:1, :, None])[0]:.2f}; entropy {post.entropy():.2f} nats")

# %%
# Questions about whole paths
# ---------------------------
# How far did the level fall from the 1870s to the 1920s, and in which year
# did it fall fastest? Both are functions of the whole path. The first is a
# linear function, whose exact variance would need the smoothed
# covariances *between* years, which the marginals do not contain; the
# second is not linear at all. Path draws answer both, with Monte Carlo
# error only.
early, late = (year >= 1871) & (year <= 1880), (year >= 1921) & (year <= 1930)
drop = paths[:, early].mean(axis=1) - paths[:, late].mean(axis=1)
steepest = year[1:][np.argmax(paths[:, :-1] - paths[:, 1:], axis=1)]
naive_sd = np.sqrt(post.variance[early, 0].sum() / early.sum() ** 2 + post.variance[late, 0].sum() / late.sum() ** 2)
print(f"drop of the mean level, 1871-80 to 1921-30: {drop.mean():.0f}, 95% interval "
      f"{np.quantile(drop, 0.025):.0f} to {np.quantile(drop, 0.975):.0f}")
print(f"  its sd from the path draws {drop.std():.1f}; treating years as independent would say {naive_sd:.1f}")
years_seen, counts = np.unique(steepest, return_counts=True)
top = np.argsort(counts)[::-1][:4]
print("year of the steepest fall of the level:",
      ", ".join(f"{years_seen[i]} ({counts[i] / N_PATHS:.2f})" for i in top))

# %%
# Missing years
# -------------
# Durbin and Koopman remove 1891-1910 and 1931-1950 to show how the smoother
# bridges gaps. NaN rows are marginalised exactly: the band widens inside
# the gaps (the level there is only tied to the years around them), and the
# fit and the log-likelihood use the observed years only.
y_gaps = y.copy()
gaps = ((year >= 1891) & (year <= 1910)) | ((year >= 1931) & (year <= 1950))
y_gaps[gaps] = np.nan
post_gaps = model.posterior(y_gaps)
lo_g, hi_g = post_gaps.credible_interval(0.95)
print(f"sd of the level in 1900: {sd[year == 1900][0]:.0f} with all data, "
      f"{np.sqrt(post_gaps.variance[year == 1900, 0][0]):.0f} with the gap")
print(f"log-likelihood of the {int((~gaps).sum())} observed years: {model.log_likelihood(y_gaps)[0]:.3f}")

fig, ax = plt.subplots(figsize=(9, 3.8))
ax.plot(year[~gaps], y[~gaps, 0], "o", color="0.5", markersize=3, label="observed")
ax.plot(year[gaps], y[gaps, 0], "x", color="0.75", markersize=4, label="removed")
ax.fill_between(year, lo_g[:, 0], hi_g[:, 0], color="tab:green", alpha=0.2, label="95% band")
ax.plot(year, post_gaps.mean[:, 0], color="tab:green", label="smoothed level")
ax.set_xlabel("year")
ax.set_ylabel("flow ($10^8$ m³)")
ax.set_title("Two gaps of twenty years, bridged by the smoother")
ax.legend(loc="upper right", ncol=2)
fig.tight_layout()

# %%
# A drifting level or two regimes?
# --------------------------------
# The hidden Markov model of :ref:`sphx_glr_auto_examples_hmm_plot_nile_change_point.py`
# reads the same data as a jump between two flat regimes. Both are exact
# posteriors given their fitted parameters, and both give whole-path draws,
# so the same question can be put to each: *when did the flow fall?* The
# HMM answers with the first year of the low regime. For the local level
# model we ask for the first year in which the level is below the midpoint
# of the HMM's two regime means, a threshold both models can be read
# against. The log-likelihoods compare the two fits on the same data (BIC
# charges the HMM for its 7 parameters, the local level model for its 2).
hmm = max((probspace.GaussianHMM(2, max_iter=300, tol=1e-4, random_state=s).fit(y) for s in range(5)),
          key=lambda m: m.log_likelihood(y)[0])
hmm_post = hmm.posterior(y)
low = int(np.argmin(hmm.means_[:, 0]))
hmm_paths = hmm_post.sample(N_PATHS, random_state=2)
hmm_change = year[np.argmax(hmm_paths == low, axis=1)]
hmm_level = hmm_post.marginals @ hmm.means_[:, 0]  # posterior mean of the regime's mean flow
midpoint = hmm.means_[:, 0].mean()
below = paths < midpoint
ssm_change = np.where(below.any(axis=1), year[np.argmax(below, axis=1)], year[-1] + 1)
for name, ll, k in (("local level", model.log_likelihood(y)[0], 2), ("2-state HMM", hmm.log_likelihood(y)[0], 7)):
    print(f"{name:12s} log-likelihood {ll:9.3f}, BIC {-2 * ll + k * np.log(len(y)):8.2f}")
ci = np.quantile(hmm_change, [0.025, 0.975], method="inverted_cdf")
ci_ssm = np.quantile(ssm_change, [0.025, 0.975], method="inverted_cdf")
print(f"HMM: first low-flow year, 95% interval {ci[0]}-{ci[1]}")
print(f"local level: first year below {midpoint:.0f}, 95% interval {ci_ssm[0]}-{ci_ssm[1]}; "
      f"P(before 1890) = {np.mean(ssm_change < 1890):.3f}")

fig, (ax_level, ax_when) = plt.subplots(2, 1, figsize=(9, 6.5), height_ratios=[3, 2], sharex=True)
ax_level.plot(year, y[:, 0], "o", color="0.5", markersize=3, label="annual flow")
ax_level.fill_between(year, lower[:, 0], upper[:, 0], color="tab:blue", alpha=0.2)
ax_level.plot(year, level, color="tab:blue", label="local level: smoothed level, 95% band")
ax_level.plot(year, hmm_level, color="tab:red", label="HMM: posterior mean of the regime mean")
ax_level.axhline(midpoint, color="0.3", linestyle=":", label="midpoint of the HMM means")
ax_level.set_ylabel("flow ($10^8$ m³)")
ax_level.legend(loc="upper right")
ax_level.set_title("A drifting level or a jump between regimes")
bins = np.arange(year[0], year[-1] + 2) - 0.5
ax_when.hist(ssm_change, bins=bins, density=True, alpha=0.6, color="tab:blue",
             label=f"local level: first year below {midpoint:.0f}")
ax_when.hist(hmm_change, bins=bins, density=True, alpha=0.6, color="tab:red", label="HMM: first low-flow year")
ax_when.set_xlabel("year")
ax_when.set_ylabel("posterior probability")
ax_when.legend(loc="upper right")
fig.tight_layout()

# %%
# The HMM puts the change in a few years around 1898-1899 with near
# certainty, because its model allows nothing but a jump. The local level
# model agrees on the timing but is less sure: a drifting level can dip
# below the threshold earlier (the low years of the 1870s and 1880s) or
# decline gradually, and the data do not rule that out. Which story to
# believe is a modelling decision; path draws let both be asked the same
# question.
#
# Forecast
# --------
# ``model.forecast`` starts from the filtered level of 1970 and runs the
# random walk forward, drawing whole future paths; ``forecast_distribution``
# gives each future year's exact predictive normal. Under the local level
# model the uncertainty keeps growing with the horizon (the HMM's fan would
# not, in its absorbing low regime).
n_steps = 10
X_future, _ = model.forecast(y, n_steps, n_samples=N_PATHS, random_state=3)
exact = model.forecast_distribution(y, n_steps)
lo_f, hi_f = exact.credible_interval(0.90)
bands = np.quantile(X_future[:, :, 0], [0.05, 0.95], axis=0)
future = year[-1] + 1 + np.arange(n_steps)
print(f"forecast {future[0]}: mean {exact.mean[0, 0]:.0f}, exact 90% interval {lo_f[0, 0]:.0f}-{hi_f[0, 0]:.0f} "
      f"(draws: {bands[0, 0]:.0f}-{bands[1, 0]:.0f}); {future[-1]}: {lo_f[-1, 0]:.0f}-{hi_f[-1, 0]:.0f}")

fig, ax = plt.subplots(figsize=(9, 3.8))
recent = year >= 1940
ax.plot(year[recent], y[recent, 0], "o-", color="0.5", markersize=3, label="observed")
ax.fill_between(future, lo_f[:, 0], hi_f[:, 0], color="tab:purple", alpha=0.2, label="exact 90% interval")
ax.plot(future, exact.mean[:, 0], color="tab:purple", label="forecast mean")
for i in range(3):
    ax.plot(future, X_future[i, :, 0], color="tab:purple", linewidth=0.7, alpha=0.6)
ax.plot([], [], color="tab:purple", linewidth=0.7, alpha=0.6, label="simulated futures")
ax.set_xlabel("year")
ax.set_ylabel("flow ($10^8$ m³)")
ax.set_title(f"Forecast of {n_steps} years under the local level model")
ax.legend(loc="lower left", ncol=2)
fig.tight_layout()

# %%
# Parameter uncertainty: a Gibbs fit
# ----------------------------------
# EM gives one value of each variance, and every band above treats it as
# known. With ``sampler="gibbs"`` the two variances get a posterior: given
# the level path, each is inverse-gamma, so each sweep draws the whole path
# (the simulation smoother) and then both variances exactly. The prior here
# is :math:`\sigma^2_\varepsilon \sim \mathrm{IG}(2, 15000)` and
# :math:`\sigma^2_\eta \sim \mathrm{IG}(2, 1500)` (``df`` 4, ``scale``
# twice the rate). ``model_b.posterior(y)`` is then the mixture over the
# draws of the exact level posterior under each, so its band includes the
# uncertainty about the variances. The test suite checks this sampler
# against a numerical integration of the same posterior on a grid.
N_CHAINS, N_DRAWS = (2, 400) if FAST else (4, 2500)
model_b = probspace.LinearGaussianSSM(
    1, transition_matrix=one, observation_matrix=one, initial_mean=[1000.0], initial_covariance=[[1e5]],
    fixed=["transition_matrix", "observation_matrix", "initial_mean", "initial_covariance"],
    sampler="gibbs", n_chains=N_CHAINS, n_draws=N_DRAWS, n_warmup=N_DRAWS // 4,
    prior={"observation_covariance_df": 4, "observation_covariance_scale": 30000,
           "transition_covariance_df": 4, "transition_covariance_scale": 3000},
    random_state=0,
).fit(y)
eps_draws = model_b.draws_["observation_covariance"][..., 0, 0]
eta_draws = model_b.draws_["transition_covariance"][..., 0, 0]
for label, draws, em in (("observation noise", eps_draws, sigma2_eps), ("level disturbance", eta_draws, sigma2_eta)):
    lo_d, med, hi_d = np.quantile(draws, [0.05, 0.5, 0.95])
    print(f"{label} variance: posterior median {med:.0f}, 90% interval {lo_d:.0f}-{hi_d:.0f} (EM {em:.0f})")
post_b = model_b.posterior(y)
paths_b = post_b.sample(N_PATHS, random_state=5)[:, :, 0]
band_b = np.quantile(paths_b, [0.025, 0.975], axis=0)
ratio = (band_b[1] - band_b[0]) / (upper[:, 0] - lower[:, 0])
print(f"95% band of the level, with parameter uncertainty / plug-in: {ratio.min():.2f} to {ratio.max():.2f} "
      f"(median {np.median(ratio):.2f})")

fig, (ax_var, ax_band) = plt.subplots(1, 2, figsize=(10, 4), width_ratios=[2, 3])
ax_var.scatter(eps_draws.ravel(), eta_draws.ravel(), s=3, alpha=0.25, color="tab:blue", label="Gibbs draws")
ax_var.plot(sigma2_eps, sigma2_eta, "*", color="tab:red", markersize=12, label="EM (maximum likelihood)")
ax_var.set_xscale("log")
ax_var.set_yscale("log")
ax_var.set_xlabel(r"observation noise variance $\sigma^2_\varepsilon$")
ax_var.set_ylabel(r"level disturbance variance $\sigma^2_\eta$")
ax_var.set_title("Posterior of the two variances")
ax_var.legend(loc="lower left")
ax_band.plot(year, y[:, 0], "o", color="0.5", markersize=3, label="annual flow")
ax_band.fill_between(year, band_b[0], band_b[1], color="tab:green", alpha=0.25,
                     label="95% band, variances uncertain")
ax_band.plot(year, lower[:, 0], color="tab:blue", linewidth=0.8, linestyle="--", label="95% band, EM plug-in")
ax_band.plot(year, upper[:, 0], color="tab:blue", linewidth=0.8, linestyle="--")
ax_band.plot(year, post_b.mean[:, 0], color="tab:green", label="posterior mean level")
ax_band.set_xlabel("year")
ax_band.set_ylabel("flow ($10^8$ m³)")
ax_band.set_title("The level, averaged over the variances")
ax_band.legend(loc="lower left", fontsize=8)
fig.tight_layout()

# %%
# The Gibbs chains are real MCMC chains, so ``az.summary`` of its
# ``to_arviz`` output reports R-hat and effective sample sizes: the level
# variance mixes slowly (it is tied to the path it is drawn from), so its
# ESS is a small fraction of the draws.
import arviz as az

data_b = model_b.to_arviz(y, n_samples=N_DRAWS, random_state=6)
print(az.summary(data_b, var_names=["observation_covariance", "transition_covariance"]).to_string())

# %%
# ArviZ
# -----
# ``model.to_arviz`` writes the joint path draws (``state``, dims ``time`` and
# ``latent_dim``) to the ``latent_posterior`` group, and to
# ``constant_data`` the smoothed mean and sd and ``log_predictive``, the
# one-step-ahead log-likelihood of each year, :math:`\log p(y_t \mid
# y_{1:t-1})`, whose sum is the log-likelihood. The draws are independent,
# so the summary leaves out R-hat and ESS (``kind="stats"``).
data = model.to_arviz(y, n_samples=N_ARVIZ_DRAWS, random_state=4)
print(f"one-step-ahead terms sum to the log-likelihood: "
      f"{float(data['constant_data']['log_predictive'].sum()):.3f}")
window = np.flatnonzero((year >= 1895) & (year <= 1901))
summary = az.summary(data, group="latent_posterior", var_names=["state"], coords={"time": window}, kind="stats")
summary.insert(0, "year", year[window])
print(summary.to_string())
plt.show()

# sphinx_gallery_thumbnail_number = 3
