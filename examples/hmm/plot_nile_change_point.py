"""
The Nile: when did the flow change? A posterior over whole state paths
======================================================================

The annual flow of the Nile at Aswan dropped around the end of the 19th
century, and stayed lower. A two-state hidden Markov model with Gaussian
emissions describes this as a high-flow and a low-flow *regime*, with a
hidden regime for every year. The usual outputs of an HMM are the Viterbi
path (the single most probable sequence of regimes) and the smoothed
marginals (the probability of each regime, year by year).

The question we care about, *in which year did the regime change, and how
sure are we?*, is about the whole path at once. ``model.posterior(X)``
returns a :class:`~probspace.posteriors.MarkovChain`, the exact posterior
over whole paths, and its ``sample`` draws whole paths jointly (forward
filtering, backward sampling). Reading the change year off each draw gives
its posterior distribution. This example does that, checks it, shows where
marginals stop being enough, forecasts the next decade and hands the path
draws to ArviZ.
"""

# %%
# Load the data and fit a two-state Gaussian HMM
# ----------------------------------------------
# 100 yearly flows, 1871-1970, in units of :math:`10^8` m³. We fit on the
# raw flows so that every number stays in those units. EM can stop in a
# poor local optimum (below, one seed ends with two nearly identical states),
# so we fit from a few seeds and keep the fit with the highest
# log-likelihood.
# ``PROBSPACE_EXAMPLES_FAST=1`` only lowers the numbers of draws.
import os

import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_nile
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_PATHS = 2000 if FAST else 20000
N_FORECAST = 500 if FAST else 5000
N_ARVIZ_DRAWS = 200 if FAST else 2000
MAX_ITER = 300

nile = load_nile()
X, year = nile.data, nile.year

fits = []
print(f"{'seed':>4} {'log-likelihood':>15} {'iterations':>11} {'state means':>14}")
for seed in range(5):
    candidate = probspace.GaussianHMM(n_components=2, max_iter=MAX_ITER, tol=1e-4, random_state=seed).fit(X)
    loglik = candidate.log_likelihood(X)[0]
    fits.append((loglik, seed, candidate))
    capped = " (hit max_iter)" if candidate.n_iter_ == MAX_ITER else ""
    means = " ".join(f"{m:6.0f}" for m in np.sort(candidate.means_[:, 0]))
    print(f"{seed:4d} {loglik:15.3f} {candidate.n_iter_:11d} {means:>14}{capped}")
best_loglik, best_seed, model = max(fits, key=lambda fit: fit[0])
print(f"kept seed {best_seed}, log-likelihood {best_loglik:.3f}")

low = int(np.argmin(model.means_[:, 0]))  # the state with the lower mean flow
high = 1 - low
sd = np.sqrt(model.covars_[:, 0, 0])
for k, name in ((high, "high"), (low, "low")):
    print(f"state {k} ({name} flow): mean {model.means_[k, 0]:.0f}, sd {sd[k]:.0f}, "
          f"P(start here) = {model.startprob_[k]:.3f}")
print(f"transition matrix (rows: from state 0, 1):\n{np.array2string(model.transmat_, precision=4)}")

# %%
# Marginals and the Viterbi path
# ------------------------------
# ``post.marginals[t, k]`` is :math:`P(z_t = k \mid x_{1:100})`, the
# probability of regime ``k`` in year ``t`` given *all* the data, and
# ``post.map()`` (the same as ``model.predict(X)``) is the Viterbi path. The
# marginals are certain for almost every year; only a few years around the
# drop are in doubt, so the lower panel zooms in on them.
post = model.posterior(X)
viterbi = post.map()
assert np.array_equal(viterbi, model.predict(X))
p_low = post.marginals[:, low]
viterbi_change = year[np.flatnonzero(np.diff(viterbi))[0] + 1]
print(post)
print(f"Viterbi path: high flow until {viterbi_change - 1}, low flow from {viterbi_change} on")
doubt = np.flatnonzero((p_low > 0.001) & (p_low < 0.999))
print("years in doubt:", ", ".join(f"{year[t]}: P(low) = {p_low[t]:.3f}" for t in doubt))

zoom = (year >= viterbi_change - 10) & (year <= viterbi_change + 10)
fig, (ax_flow, ax_prob) = plt.subplots(2, 1, figsize=(9, 6.5), height_ratios=[3, 2])
ax_flow.plot(year, X[:, 0], "o-", color="0.4", markersize=3, label="annual flow")
ax_flow.step(year, model.means_[viterbi, 0], where="post", color="tab:red", label="Viterbi regime mean")
ax_flow.axvspan(year[zoom][0], year[zoom][-1], color="0.9", zorder=0, label="zoomed below")
ax_flow.set_ylabel("flow ($10^8$ m³)")
ax_flow.legend(loc="upper right")
ax_flow.set_title("Nile at Aswan: flow and the two-state HMM")
ax_prob.bar(year[zoom], p_low[zoom], width=0.8, alpha=0.6, label="P(low flow | all data)")
ax_prob.plot(year[zoom], (viterbi[zoom] == low).astype(float), "x", color="tab:red", markersize=8,
             label="Viterbi path (1 = low)")
ax_prob.set_xticks(year[zoom][::2])
ax_prob.set_ylabel("P(low flow)")
ax_prob.set_xlabel("year")
ax_prob.legend(loc="center left")
fig.tight_layout()

# %%
# When did the regime change? Ask the whole paths
# -----------------------------------------------
# ``post.sample(n)`` returns ``n`` whole paths, shape ``(n, 100)``, drawn
# jointly from the posterior. For each path we read off the *first year of
# the low regime*. The spread of those years over the draws is the
# posterior distribution of the change year; its 2.5% and 97.5% quantiles
# give a 95% credible interval, and the fraction of draws that changed
# before 1900 answers that question directly.
paths = post.sample(N_PATHS, random_state=1)  # shape (N_PATHS, 100), integer states
is_low = paths == low
change_year = np.where(is_low.any(axis=1), year[is_low.argmax(axis=1)], year[-1] + 1)

years_seen, counts = np.unique(change_year, return_counts=True)
freq = counts / N_PATHS
ci_low, ci_high = np.quantile(change_year, [0.025, 0.975], method="inverted_cdf")
p_before_1900 = np.mean(change_year < 1900)
for y, f in zip(years_seen, freq, strict=True):
    print(f"first low-flow year {y}: {f:.4f} of {N_PATHS} path draws")
print(f"95% credible interval for the change: {ci_low}-{ci_high}")
print(f"P(change before 1900) = {p_before_1900:.3f}")
p_viterbi = np.exp(post.log_prob(viterbi))
print(f"the Viterbi path (change in {viterbi_change}) has posterior probability {p_viterbi:.3f}")

fig, ax = plt.subplots(figsize=(7, 3.8))
ax.bar(years_seen, freq, width=0.8, color="tab:blue", label=f"{N_PATHS} path draws")
ax.axvspan(ci_low - 0.5, ci_high + 0.5, color="tab:blue", alpha=0.12, label="95% credible interval")
ax.axvline(viterbi_change, color="tab:red", linestyle="--", label=f"Viterbi: {viterbi_change}")
ax.set_xticks(years_seen)
ax.set_xlabel("first year of the low-flow regime")
ax.set_ylabel("posterior probability")
ax.set_title("Posterior of the change year")
ax.legend()
fig.tight_layout()

# %%
# The Viterbi path alone cannot answer this: it is a single point, one path
# with one change year, and says nothing about how much posterior mass the
# other years hold (the log probability printed above tells us how much
# mass the Viterbi path itself holds).
#
# What about the marginals? They are 100 separate statements, one per year,
# and the change year is a property of the *whole* path. Turning marginals
# into a change-year distribution takes an extra fact about the chain. Here
# the fit happens to supply it: the transition matrix makes the low regime
# absorbing (its probability of leaving is tiny), so every path switches
# exactly once, and "changed by year :math:`t`" is the same event as "low in
# year :math:`t`", so :math:`P(\text{change} \le t) = P(z_t = \text{low})`.
# The path draws confirm both facts: every draw switches once, and their
# cumulative distribution matches the marginals up to Monte Carlo error.
n_switches = np.count_nonzero(np.diff(paths, axis=1), axis=1)
print(f"P(leave the low regime) = {model.transmat_[low, high]:.2e} per year")
print("switches per path draw:", dict(zip(*(v.tolist() for v in np.unique(n_switches, return_counts=True)),
                                           strict=True)))
cdf_draws = np.array([np.mean(change_year <= y) for y in year])
print(f"largest gap between the draws' P(change <= t) and P(low in t): {np.max(np.abs(cdf_draws - p_low)):.4f}")

# %%
# The same absorbing structure makes a path a function of its change year
# alone, so the *entropy* of the path posterior, ``post.entropy()`` (exact,
# in nats), must equal the entropy of the change-year distribution, which we
# can also get exactly from the marginals here. The sum of the 100 marginal
# entropies is larger: it counts the uncertainty of neighbouring years as if
# they were independent, when they are tightly coupled.
p_change = np.diff(np.r_[0.0, p_low])  # exact P(change in year t), valid for an absorbing low regime
p_change = p_change[p_change > 0]
marginal_entropy = -np.sum(post.marginals * np.log(np.clip(post.marginals, 1e-300, None)))
print(f"entropy of the path posterior:              {post.entropy():.4f} nats")
print(f"entropy of the change-year distribution:    {-np.sum(p_change * np.log(p_change)):.4f} nats")
print(f"sum of the per-year marginal entropies:     {marginal_entropy:.4f} nats")

# %%
# When the chain can switch back, marginals are not enough
# --------------------------------------------------------
# Nothing in the plain EM fit forbids switching back; the data merely pushed
# the estimate of leaving the low regime to almost zero, from a single
# observed change. A mild prior changes that: ``transmat_prior=2.0`` adds one
# pseudo-count to every transition (a MAP fit), so the chain may leave the
# low regime, for example in the high-flow years 1916 and 1917. Its
# log-likelihood is barely lower, and its Viterbi path is the same path as
# before, but the posteriors differ: paths now switch several times, and
# questions about several years at once cannot be read off the marginals.
#
# Take "was the flow low in *every* year from 1900 to 1970?". The marginals
# only bound the answer: it is at most the smallest marginal and at least
# :math:`1 - \sum_t P(z_t = \text{high})` (or 0). Multiplying the marginals,
# as if the years were independent, gives a wrong number. The path draws
# give the answer, with a Monte Carlo standard error.
sticky = probspace.GaussianHMM(2, transmat_prior=2.0, max_iter=MAX_ITER, tol=1e-4, random_state=best_seed).fit(X)
post_sticky = sticky.posterior(X)
low_s = int(np.argmin(sticky.means_[:, 0]))
paths_s = post_sticky.sample(N_PATHS, random_state=2)
print(f"log-likelihood: plain EM {best_loglik:.3f}, with transmat_prior=2 {sticky.log_likelihood(X)[0]:.3f}")
print(f"P(leave the low regime) = {sticky.transmat_[low_s, 1 - low_s]:.4f} per year")
print(f"same Viterbi regimes as the plain fit: {np.array_equal(post_sticky.map() == low_s, viterbi == low)}")
print(f"entropy of the path posterior: {post_sticky.entropy():.3f} nats (plain fit: {post.entropy():.3f})")
p_back = post_sticky.marginals[:, 1 - low_s]
print("years after 1900 with P(high flow) > 0.05:",
      ", ".join(f"{year[t]} ({p_back[t]:.2f})" for t in np.flatnonzero((year > 1900) & (p_back > 0.05))))

after = year >= 1900
p_low_s = post_sticky.marginals[after, low_s]
all_low = np.all(paths_s[:, after] == low_s, axis=1)
mc_se = np.sqrt(all_low.mean() * (1 - all_low.mean()) / N_PATHS)
print("P(low flow in every year 1900-1970):")
print(f"  from path draws:          {all_low.mean():.3f} +/- {mc_se:.3f}")
print(f"  bounds from marginals:    [{max(0.0, 1 - np.sum(1 - p_low_s)):.3f}, {p_low_s.min():.3f}]")
print(f"  product of marginals:     {np.prod(p_low_s):.3f}  (wrong: the years are not independent)")

switches_s = np.count_nonzero(np.diff(paths_s, axis=1), axis=1)
values = np.arange(max(switches_s.max(), n_switches.max()) + 1)
fig, ax = plt.subplots(figsize=(7, 3.5))
for offset, switches, label in ((-0.2, n_switches, "plain EM fit"), (0.2, switches_s, "transmat_prior=2")):
    ax.bar(values + offset, np.bincount(switches, minlength=values.size) / N_PATHS, width=0.4, label=label)
ax.set_xticks(values)
ax.set_xlabel("number of regime switches in a path draw")
ax.set_ylabel("fraction of draws")
ax.set_title("Switches per path draw")
ax.legend()
fig.tight_layout()
values, counts = np.unique(switches_s, return_counts=True)
print("switches per path draw:", dict(zip(values.tolist(), counts.tolist(), strict=True)))

# %%
# Which model to believe is a modelling decision the data hardly settle. The
# path posterior is exact *given* the fitted parameters (a plug-in posterior);
# it does not include uncertainty about the parameters themselves, such as
# whether the low regime is truly permanent. We continue with the plain fit.
#
# Forecasting the next decade
# ---------------------------
# ``model.forecast(X, n_steps, n_samples)`` starts from the filtered
# distribution of the last year's regime, runs the chain forward and draws a
# flow for every future year. The quantiles of those draws form a fan chart.
# Under the plain fit the low regime is permanent, so the fan is the
# low-regime distribution, year after year. The chain fitted with
# ``transmat_prior=2`` can return to high flow, and its upper 95% quantile
# (dashed) rises with the horizon.
n_steps = 10
X_future, Z_future = model.forecast(X, n_steps, n_samples=N_FORECAST, random_state=3)
future_years = year[-1] + 1 + np.arange(n_steps)
flows = X_future[:, :, 0]
bands = np.quantile(flows, [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
X_future_s, Z_future_s = sticky.forecast(X, n_steps, n_samples=N_FORECAST, random_state=3)
bands_s = np.quantile(X_future_s[:, :, 0], [0.05, 0.95], axis=0)
period = f"{future_years[0]}-{future_years[-1]}"
print(f"{future_years[0]}: median {bands[2, 0]:.0f}, 90% interval {bands[0, 0]:.0f}-{bands[4, 0]:.0f}")
print(f"P(any high-flow year in {period}): plain fit {np.mean(np.any(Z_future == high, axis=1)):.3f}, "
      f"transmat_prior=2 {np.mean(np.any(Z_future_s != low_s, axis=1)):.3f}")
print(f"95% quantile in {future_years[-1]}: plain fit {bands[4, -1]:.0f}, transmat_prior=2 {bands_s[1, -1]:.0f}")

fig, ax = plt.subplots(figsize=(9, 4))
recent = year >= 1930
ax.plot(year[recent], X[recent, 0], "o-", color="0.4", markersize=3, label="observed")
ax.fill_between(future_years, bands[0], bands[4], alpha=0.25, color="tab:blue", label="90% interval")
ax.fill_between(future_years, bands[1], bands[3], alpha=0.45, color="tab:blue", label="50% interval")
ax.plot(future_years, bands[2], color="tab:blue", label="median")
ax.plot(future_years, bands_s.T, color="tab:orange", linestyle="--")
ax.plot([], [], color="tab:orange", linestyle="--", label="90% interval, transmat_prior=2")
for i in range(3):
    ax.plot(future_years, flows[i], color="tab:blue", linewidth=0.7, alpha=0.6)
ax.set_xlabel("year")
ax.set_ylabel("flow ($10^8$ m³)")
ax.set_title(f"Forecast of {n_steps} years ({N_FORECAST} draws, three shown)")
ax.legend(loc="upper left", ncol=2)
fig.tight_layout()

# %%
# ArviZ
# -----
# ``model.to_arviz(X, n_samples=...)`` puts joint path draws in the
# ``posterior`` group (variable ``path``, dims ``chain, draw, time``), data
# replicated from each path in ``posterior_predictive``, the one-step-ahead
# log predictive densities in ``log_likelihood`` and the marginals in
# ``constant_data``. It is an ``InferenceData`` on ArviZ 0.x and a
# ``DataTree`` on ArviZ 1.x. ``time`` is the index of the year (0 for 1871).
#
# ``az.summary`` works on the path draws (group ``latent_posterior``) as on
# any posterior variable: the mean of ``path`` in a year is the fraction of
# draws in state 1. The draws
# are independent and come from a single "chain", so R-hat and ESS would say
# nothing about the fit; ``kind="stats"`` leaves them out.
import arviz as az

idata = model.to_arviz(X, n_samples=N_ARVIZ_DRAWS, random_state=4)
groups = idata.groups() if arviz_major_version() < 1 else list(idata.children)
print(f"ArviZ {az.__version__}: {type(idata).__name__} with groups {groups}")

window = np.flatnonzero((year >= viterbi_change - 3) & (year <= viterbi_change + 3))
summary = az.summary(idata, group="latent_posterior", var_names=["path"], coords={"time": window}, kind="stats")
summary.insert(0, "year", year[window])
summary.insert(2, "P(state 1), exact", post.marginals[window, 1].round(3))
print(f"state 1 is the {'high' if high == 1 else 'low'}-flow regime")
print(summary.to_string())
plt.show()

# sphinx_gallery_thumbnail_number = 2
