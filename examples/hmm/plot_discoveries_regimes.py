"""
Great discoveries per year: rate regimes of a Poisson HMM
=========================================================

How many "great" inventions and scientific discoveries were made each year
from 1860 to 1959? The counts scatter far more than a single Poisson rate
allows, which suggests that the rate itself changed over time. A Poisson
hidden Markov model describes this with a hidden *regime* per year, each
regime with its own rate.

This example chooses the number of regimes, fits the model, and then uses
the posterior over whole regime paths, a
:class:`~probspace.posteriors.MarkovChain`, for what a single decoded path
cannot give: the probability of each regime year by year, joint path draws
and the questions they answer (how many high-rate years, how many separate
bursts), and per-year uncertainty of the rate and of the counts. It also
shows a limit of any plug-in posterior: EM finds several fits that explain
the data almost equally well and tell different stories.
"""

# %%
# The data: counts that scatter too much for one rate
# ---------------------------------------------------
# A Poisson count has variance equal to its mean. If the discoveries of all
# 100 years came from one Poisson rate, the ratio of their variance to their
# mean (the dispersion index) would be close to 1.
# ``PROBSPACE_EXAMPLES_FAST=1`` only lowers the numbers of draws.
import os

import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_discoveries
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_PATHS = 2000 if FAST else 20000
N_SIMULATIONS = 300 if FAST else 3000
N_ARVIZ_DRAWS = 200 if FAST else 2000
N_RESTARTS = {1: 1, 2: 20, 3: 10}  # EM restarts per number of states (one state has a closed form)

discoveries = load_discoveries()
X, year = discoveries.data, discoveries.year
counts = X[:, 0]
dispersion = counts.var(ddof=1) / counts.mean()
print(f"{len(counts)} years, {counts.sum()} discoveries; mean {counts.mean():.2f} per year, "
      f"variance {counts.var(ddof=1):.2f}, dispersion index {dispersion:.2f}")

# %%
# How many regimes?
# -----------------
# We fit models with 1, 2 and 3 states from several random starts each (EM
# finds local optima; ``N_RESTARTS`` says how many) and keep the best
# log-likelihood of each.
# The in-sample log-likelihood can only grow with more states, so it cannot
# choose on its own; AIC and BIC add a penalty for the number of free
# parameters, :math:`K^2 + K - 1` for a ``K``-state Poisson HMM (``K``
# rates, :math:`K(K-1)` transition probabilities, :math:`K-1` initial
# probabilities). Lower is better. BIC treats the 100 years as 100
# observations, a rough count for a time series, so read the differences as
# a guide rather than a test. Three states get fewer restarts; the last line
# says how much log-likelihood a better three-state optimum would have to
# gain to win under BIC.
def fit_restarts(n_components, n_restarts):
    """Fit from several seeds; return (log-likelihood, seed, model) per fit, best first."""
    fits = []
    for seed in range(n_restarts):
        model = probspace.PoissonHMM(n_components, max_iter=1000, tol=1e-3, random_state=seed).fit(X)
        fits.append((model.log_likelihood(X)[0], seed, model))
    return sorted(fits, key=lambda fit: -fit[0])


restarts = {K: fit_restarts(K, n) for K, n in N_RESTARTS.items()}
print(f"{'K':>2} {'log-lik':>9} {'params':>7} {'AIC':>8} {'BIC':>8}  rates")
bic = {}
for K, fits in restarts.items():
    loglik, _, model = fits[0]
    n_params = K * K + K - 1
    bic[K] = -2 * loglik + n_params * np.log(len(X))
    aic = -2 * loglik + 2 * n_params
    rates = ", ".join(f"{r:.2f}" for r in np.sort(model.lambdas_[:, 0]))
    print(f"{K:2d} {loglik:9.3f} {n_params:7d} {aic:8.2f} {bic[K]:8.2f}  {rates}")
K_best = min(bic, key=bic.get)
print(f"BIC prefers K = {K_best}; BIC of K = 1 is higher by {bic[1] - bic[K_best]:.2f}")
print(f"K = 3 would need {(bic[3] - bic[K_best]) / 2:.1f} more nats of log-likelihood to match K = {K_best}")

# %%
# Several fits, several stories
# -----------------------------
# The restarts of the two-state model do not all end in the same place. EM
# converges to a few distinct optima (grouped below by their rates), and the
# best of them differ in log-likelihood by a fraction of a nat: the data
# cannot tell them apart. The table lists every optimum and how many
# restarts found it; the figure shows the regime probabilities implied by
# those within one nat of the best.
fits2 = restarts[2]
optima = {}
for loglik, seed, model in fits2:
    key = tuple(np.round(np.sort(model.lambdas_[:, 0]), 1))
    if key not in optima:
        optima[key] = [loglik, seed, model, 0]
    optima[key][3] += 1
print(f"{'log-lik':>9} {'low rate':>9} {'high rate':>10} {'P(stay high)':>13} {'restarts':>9}")
for loglik, _, model, n_found in optima.values():
    lo, hi = np.argsort(model.lambdas_[:, 0])
    print(f"{loglik:9.3f} {model.lambdas_[lo, 0]:9.2f} {model.lambdas_[hi, 0]:10.2f} "
          f"{model.transmat_[hi, hi]:13.3f} {n_found:9d}")

fig, (ax_counts, ax_prob) = plt.subplots(2, 1, figsize=(9, 6), sharex=True, height_ratios=[1, 1])
ax_counts.bar(year, counts, width=0.8, color="0.6")
ax_counts.set_ylabel("discoveries")
ax_counts.set_title("Great discoveries per year and the distinct two-state fits")
close = [(loglik, model) for loglik, _, model, _ in optima.values() if loglik > fits2[0][0] - 1.0]
print(f"{len(close)} optima within one nat of the best; they span {close[0][0] - close[-1][0]:.3f} nats")
for loglik, model in close:
    hi = int(np.argmax(model.lambdas_[:, 0]))
    ax_prob.plot(year, model.posterior(X).marginals[:, hi], drawstyle="steps-mid",
                 label=f"log-lik {loglik:.3f}, rates {np.sort(model.lambdas_[:, 0]).round(2)}")
ax_prob.set_ylabel("P(high-rate regime)")
ax_prob.set_xlabel("year")
ax_prob.legend(fontsize=8, loc="upper right")
fig.tight_layout()

# %%
# One optimum has long eras of a moderately higher rate; the others have a
# low baseline and short bursts of a much higher rate. Each is an exact
# posterior over paths *given its parameters*; none of them includes the
# uncertainty between them. (hmmlearn has no variational Poisson HMM, so
# probspace cannot average over parameters here.) We follow the standard
# recipe and keep the fit with the highest likelihood, remembering that the
# runner-up is nearly as good, and that fewer restarts might have missed it.
loglik, seed, model = fits2[0]
low, high = np.argsort(model.lambdas_[:, 0])
post = model.posterior(X)
p_high = post.marginals[:, high]
viterbi = post.map()
n_found = optima[tuple(np.round(np.sort(model.lambdas_[:, 0]), 1))][3]
print(f"kept the fit of seed {seed} (found by {n_found} of {N_RESTARTS[2]} restarts): log-likelihood {loglik:.3f}, "
      f"rates {model.lambdas_[low, 0]:.2f} (low) and {model.lambdas_[high, 0]:.2f} (high) per year")
print(f"transition matrix (rows: from state {low} (low), {high} (high)):\n"
      f"{np.array2string(model.transmat_[np.ix_([low, high], [low, high])], precision=3)}")
runs = np.split(year[viterbi == high], np.flatnonzero(np.diff(year[viterbi == high]) > 1) + 1)
print("Viterbi high-rate years:", ", ".join(f"{r[0]}-{r[-1]}" for r in runs))

# %%
# Posterior path draws
# --------------------
# ``post.sample(n)`` draws whole paths jointly: each row of the image below
# is one plausible regime history. The draws agree where the data are clear
# and disagree at the edges of the bursts and in isolated years. Path draws
# also answer questions about a whole history, which the per-year
# probabilities cannot: how many years were in the high-rate regime, and in
# how many separate bursts?
paths = post.sample(N_PATHS, random_state=1)
in_high = paths == high
n_high_years = in_high.sum(axis=1)
n_bursts = in_high[:, 0] + np.count_nonzero(np.diff(in_high.astype(int), axis=1) == 1, axis=1)
lo90, hi90 = np.quantile(n_high_years, [0.05, 0.95], method="inverted_cdf")
print(f"high-rate years: median {np.median(n_high_years):.0f}, 90% interval {lo90}-{hi90} "
      f"(Viterbi: {np.sum(viterbi == high)}; expected from the marginals: {p_high.sum():.1f})")
values, freq = np.unique(n_bursts, return_counts=True)
print(f"separate high-rate bursts per path draw (counts out of {N_PATHS}):",
      ", ".join(f"{v}: {f}" for v, f in zip(values, freq, strict=True)))
print(f"the Viterbi path has {len(runs)} bursts and posterior probability {np.exp(post.log_prob(viterbi)):.2e}")
print(f"entropy of the path posterior: {post.entropy():.2f} nats")

fig = plt.figure(figsize=(10, 6))
grid = fig.add_gridspec(2, 2, height_ratios=[3, 2])
ax_paths = fig.add_subplot(grid[0, :])
n_show = 40
ax_paths.imshow(in_high[:n_show], aspect="auto", cmap="Oranges", interpolation="nearest",
                extent=(year[0] - 0.5, year[-1] + 0.5, n_show + 0.5, 0.5))
ax_paths.set_xlabel("year")
ax_paths.set_ylabel("path draw")
ax_paths.set_title(f"{n_show} posterior path draws (dark: high-rate regime)")
ax_years = fig.add_subplot(grid[1, 0])
ax_years.hist(n_high_years, bins=np.arange(n_high_years.min(), n_high_years.max() + 2) - 0.5, density=True)
ax_years.axvline(np.sum(viterbi == high), color="tab:red", linestyle="--", label="Viterbi")
ax_years.set_xlabel("number of high-rate years")
ax_years.set_ylabel("posterior probability")
ax_years.legend()
ax_bursts = fig.add_subplot(grid[1, 1])
ax_bursts.bar(values, freq / N_PATHS, width=0.8)
ax_bursts.axvline(len(runs), color="tab:red", linestyle="--", label="Viterbi")
ax_bursts.set_xticks(values)
ax_bursts.set_xlabel("number of separate high-rate bursts")
ax_bursts.legend()
fig.tight_layout()

# %%
# Per-year uncertainty: the rate and the counts
# ---------------------------------------------
# Each path draw gives every year a rate, :math:`\lambda_{z_t}`, and drawing
# a Poisson count from that rate gives a replicated count. Their spread over
# the draws is the per-year uncertainty: of the rate (through the regime) and
# of the count (regime plus Poisson noise). The posterior mean rate,
# :math:`\sum_k P(z_t = k \mid x)\,\lambda_k`, follows the data more
# smoothly than any single path. As a rough check, count the years whose
# observed count falls inside its 90% predictive interval: counts are
# integers, so each interval covers at least 90%, and the check is in-sample,
# so a share well above 90% is expected and a share well below would signal
# a misfit.
rng = np.random.default_rng(2)
rate_draws = model.lambdas_[paths, 0]  # (N_PATHS, 100)
count_draws = rng.poisson(rate_draws)
rate_mean = post.marginals @ model.lambdas_[:, 0]
rate_sd = rate_draws.std(axis=0)
count_lo, count_hi = np.quantile(count_draws, [0.05, 0.95], axis=0, method="inverted_cdf")
inside = np.mean((counts >= count_lo) & (counts <= count_hi))
print(f"years inside their 90% predictive interval: {inside:.2f}")
most_uncertain = np.argsort(rate_sd)[::-1][:3]
print("years with the most uncertain rate:",
      ", ".join(f"{year[t]} (rate {rate_mean[t]:.2f} +/- {rate_sd[t]:.2f})" for t in np.sort(most_uncertain)))

fig, ax = plt.subplots(figsize=(9, 4))
ax.fill_between(year, count_lo, count_hi, step="mid", color="tab:blue", alpha=0.15,
                label="90% predictive interval of the count")
ax.fill_between(year, rate_mean - rate_sd, rate_mean + rate_sd, color="tab:orange", alpha=0.35,
                label="rate: posterior mean ± sd")
ax.plot(year, rate_mean, color="tab:orange")
ax.plot(year, counts, "o", color="k", markersize=3, label="observed")
ax.set_xlabel("year")
ax.set_ylabel("discoveries per year")
ax.legend(loc="upper right", fontsize=8)
fig.tight_layout()

# %%
# Does the model explain the overdispersion?
# ------------------------------------------
# ``model.sample(100)`` simulates a fresh century from the fitted model
# (regimes from the Markov chain, counts from their rates). If the regimes
# account for the extra scatter, the dispersion index of simulated centuries
# should often reach the observed one; under a single rate it would stay
# near 1.
sim_dispersion = np.empty(N_SIMULATIONS)
for i in range(N_SIMULATIONS):
    X_sim, _ = model.sample(len(X), random_state=1000 + i)
    sim_dispersion[i] = X_sim[:, 0].var(ddof=1) / X_sim[:, 0].mean()
print(f"dispersion index: observed {dispersion:.2f}; simulated centuries median "
      f"{np.median(sim_dispersion):.2f}, 90% interval "
      f"{np.quantile(sim_dispersion, 0.05):.2f}-{np.quantile(sim_dispersion, 0.95):.2f}; "
      f"P(simulated >= observed) = {np.mean(sim_dispersion >= dispersion):.2f}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.hist(sim_dispersion, bins=30, density=True, color="tab:blue", alpha=0.7, label="simulated centuries")
ax.axvline(dispersion, color="k", linestyle="--", label="observed")
ax.axvline(1.0, color="0.5", linestyle=":", label="a single Poisson rate")
ax.set_xlabel("dispersion index (variance / mean)")
ax.legend()
fig.tight_layout()

# %%
# ArviZ
# -----
# ``model.to_arviz`` stores joint path draws (group ``latent_posterior``),
# the share of years in each state per draw (``posterior``, what ArviZ's
# default calls read), and replicated counts (``posterior_predictive``). An
# EM fit has one plug-in log-likelihood per year, on which PSIS-LOO would be
# meaningless, so no ``log_likelihood`` group is written; the one-step-ahead
# log predictive densities are ``posterior.log_predictive`` and sum to the
# sequence's log-likelihood. ``az.summary(..., group="latent_posterior")``
# with ``kind="stats"`` summarises the path draws around the first burst: the
# mean of ``path`` is the fraction of draws in state 1. ``time`` is the index of the year (0 for 1860). The
# draws are independent and from one "chain", so R-hat and ESS are left out:
# they would say nothing about the EM fit.
import arviz as az

idata = model.to_arviz(X, n_samples=N_ARVIZ_DRAWS, random_state=3)
pointwise = model.posterior(X).log_predictive
print(f"ArviZ {az.__version__} ({'DataTree' if arviz_major_version() >= 1 else 'InferenceData'}): "
      f"sum of pointwise log-likelihoods {pointwise.sum():.3f}, model.log_likelihood {loglik:.3f}")

first_burst = np.flatnonzero((year >= runs[0][0] - 2) & (year <= runs[0][0] + 2))
summary = az.summary(idata, group="latent_posterior", var_names=["path"], coords={"time": first_burst},
                     kind="stats")
summary.insert(0, "year", year[first_burst])
summary.insert(1, "count", counts[first_burst])
print(f"state 1 is the {'high' if high == 1 else 'low'}-rate regime")
print(summary.to_string())
plt.show()

# sphinx_gallery_thumbnail_number = 3
