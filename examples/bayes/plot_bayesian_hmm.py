"""
Great discoveries by MCMC: regime probabilities that include parameter uncertainty
==================================================================================

The yearly counts of "great" inventions and scientific discoveries from 1860
to 1959 scatter more than a single Poisson rate allows, and a two-state
Poisson hidden Markov model explains the extra scatter with a low-rate and a
high-rate *regime*. Fitted by EM, the model has a catch (see
:ref:`sphx_glr_auto_examples_hmm_plot_discoveries_regimes.py`): different
starts end in different optima that fit the data almost equally well and
tell different stories, long eras of a moderately higher rate or short
bursts of a much higher rate. Each EM fit gives exact regime probabilities
*given its parameters*, and none of them includes the doubt between them.

With ``sampler="gibbs"`` the HMM is fitted by Markov chain Monte Carlo: the
chains draw the rates and the transition matrix from their posterior, and
``model.posterior(X)`` averages the exact posterior over regime paths over
those draws. This example checks the chains, reads the posterior of the
transition matrix, plots regime probabilities year by year with a band that
shows how much they move with the parameters, and forecasts the next two
decades with the parameter uncertainty included.
"""

# %%
# EM from many starts, and a Gibbs fit
# ------------------------------------
# First the EM picture: fits from several seeds, grouped by the rates they
# end at. Then the Bayesian fit: ``n_chains`` chains of blocked Gibbs
# sampling (regime paths given the parameters by forward filtering and
# backward sampling, then rates and transition rows from their conjugate
# Gamma and Dirichlet conditionals). States of every draw are sorted by
# their rate, so state 0 is always the low-rate regime and state 1 the
# high-rate one. ``prior_`` records the prior used: flat Dirichlet rows and
# a Gamma(1, 1 / mean count) prior on each rate.
# ``PROBSPACE_EXAMPLES_FAST=1`` shortens the chains and lowers the numbers
# of draws.
import os

import arviz as az
import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_discoveries
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_DRAWS = 500 if FAST else 5000  # per chain, after as many warm-up sweeps
N_ARVIZ = 200 if FAST else 1000  # draws per chain handed to ArviZ (evenly thinned)
N_BAND = 200 if FAST else 1000  # parameter draws behind the band of regime probabilities
N_FORECAST = 2000 if FAST else 20000
N_RESTARTS = 20
HORIZON = 20

discoveries = load_discoveries()
X, year = discoveries.data, discoveries.year
counts = X[:, 0]

em_fits = []
for seed in range(N_RESTARTS):
    em_model = probspace.PoissonHMM(2, max_iter=1000, tol=1e-3, random_state=seed).fit(X)
    em_fits.append((em_model.log_likelihood(X)[0], em_model))
em_fits.sort(key=lambda fit: -fit[0])
optima = {}  # distinct EM optima, keyed by their rounded rates
for loglik, em_model in em_fits:
    lo, hi = np.argsort(em_model.lambdas_[:, 0])
    optima.setdefault(tuple(em_model.lambdas_[[lo, hi], 0].round(1)), (loglik, em_model, lo, hi))
print(f"{'EM optimum: log-lik':>20} {'low rate':>9} {'high rate':>10} {'P(stay low)':>12} {'P(stay high)':>13}")
for loglik, em_model, lo, hi in optima.values():
    print(f"{loglik:20.3f} {em_model.lambdas_[lo, 0]:9.2f} {em_model.lambdas_[hi, 0]:10.2f} "
          f"{em_model.transmat_[lo, lo]:12.3f} {em_model.transmat_[hi, hi]:13.3f}")
best_loglik, em, em_low, em_high = next(iter(optima.values()))

hmm = probspace.PoissonHMM(2, sampler="gibbs", n_draws=N_DRAWS, n_warmup=N_DRAWS, random_state=0).fit(X)
print(f"prior_: {hmm.prior_}")
rates = hmm.draws_["lambdas"][..., 0]  # (chain, draw, state)
stay = np.diagonal(hmm.draws_["transmat"], axis1=-2, axis2=-1)  # (chain, draw, state): P(stay in state)


def interval(values):
    """Posterior median and 90% interval as text."""
    q = np.quantile(values, [0.05, 0.5, 0.95])
    return f"{q[1]:.2f} ({q[0]:.2f}-{q[2]:.2f})"


print("posterior medians (90% intervals):")
print(f"  rates: low {interval(rates[..., 0])}, high {interval(rates[..., 1])} discoveries per year")
print(f"  P(stay low) {interval(stay[..., 0])}, P(stay high) {interval(stay[..., 1])}")

# %%
# The chains and the transition matrix
# ------------------------------------
# ``to_arviz`` returns the chains with a regime path drawn under each
# parameter draw, so R-hat and ESS check the sampler. The transition matrix
# is the part of the model the data say least about: a high-rate spell is
# seen only a few times in a century, so how long such a spell lasts,
# :math:`1 / (1 - P(\text{stay high}))` years on average, is only loosely
# pinned down.
idata = hmm.to_arviz(X, n_samples=N_ARVIZ, random_state=1)
summary = az.summary(idata, var_names=["lambdas", "transmat"])
print(summary.to_string())
print(f"largest R-hat {summary['r_hat'].max():.3f}; smallest bulk ESS {summary['ess_bulk'].min():.0f} "
      f"of {idata.posterior.sizes['chain'] * idata.posterior.sizes['draw']} draws")
spell = 1.0 / (1.0 - stay)
print(f"mean length of a spell: low regime {interval(spell[..., 0])} years, high regime "
      f"{interval(spell[..., 1])} years")


def plot_transmat(data):
    """Posterior of the transition matrix with whichever ArviZ is installed."""
    if arviz_major_version() >= 1:
        return az.plot_dist(data, var_names=["transmat"])
    axes = az.plot_posterior(data, var_names=["transmat"], grid=(2, 2), figsize=(8, 5), hdi_prob=0.9)
    axes[0, 0].figure.tight_layout()
    return axes


plot_transmat(idata)

# %%
# The draws cover the EM stories
# ------------------------------
# Each point below is one parameter draw: the rate of the high regime
# against the probability of staying in it. The two are negatively
# correlated (printed below), and the cloud is wide: a moderately higher
# rate that persists, or a much higher rate in short bursts, explain the
# counts about equally well. The EM optima within one nat of the best
# (stars) all sit inside the cloud; the Bayesian fit keeps all of it
# instead of picking a point.
flat_rates, flat_stay = rates.reshape(-1, 2), stay.reshape(-1, 2)
print(f"correlation between the high rate and P(stay high) over the draws: "
      f"{np.corrcoef(flat_rates[:, 1], flat_stay[:, 1])[0, 1]:.2f}")
show = np.random.default_rng(0).choice(len(flat_rates), size=min(4000, len(flat_rates)), replace=False)
fig, ax = plt.subplots(figsize=(6.5, 4.5))
ax.scatter(flat_rates[show, 1], flat_stay[show, 1], s=4, alpha=0.3, color="tab:blue", label="posterior draws")
for loglik, em_model, _, hi in optima.values():
    if loglik > best_loglik - 1.0:
        ax.plot(em_model.lambdas_[hi, 0], em_model.transmat_[hi, hi], "*", markersize=14, markeredgecolor="k",
                label=f"EM optimum, log-lik {loglik:.2f}")
ax.set_xlabel("rate of the high regime (discoveries per year)")
ax.set_ylabel("P(stay in the high regime)")
ax.legend(fontsize=8, loc="lower right")
fig.tight_layout()

# %%
# Regime probabilities with parameter uncertainty
# -----------------------------------------------
# ``hmm.posterior(X)`` is a :class:`~probspace.posteriors.FiniteMixture`
# of exact path posteriors, one per parameter draw. Its ``mean[:, 1]`` is
# the probability that each year was in the high-rate regime with the
# parameter uncertainty integrated out. ``post.component(s).marginals`` are
# the exact marginals under draw ``s``; their 5-95% range over a thinned
# set of draws is the band: how much a year's regime probability depends on
# which parameters are right. The EM plug-in marginals of the best optimum
# are one curve inside (or outside) that band.
post = hmm.posterior(X)
p_high = post.mean[:, 1]
thin = np.unique(np.linspace(0, post.n_draws - 1, N_BAND).round().astype(int))
marginals = np.stack([post.component(s).marginals for s in thin])  # (draw, year, state)
per_draw = marginals[:, :, 1]
rate_mean = np.einsum("syk,sk->y", marginals, flat_rates[thin]) / len(thin)  # posterior mean rate per year
band_lo, band_hi = np.quantile(per_draw, [0.05, 0.95], axis=0)
p_em = em.posterior(X).marginals[:, em_high]

width = band_hi - band_lo
print(f"band width (5-95%) of P(high): median over years {np.median(width):.2f}, "
      f"wider than 0.5 in {np.sum(width > 0.5)} of {len(year)} years")
print(f"{'year':>4} {'count':>5} {'EM P(high)':>10} {'Bayes P(high)':>13} {'5-95% over draws':>17}")
for t in np.sort(np.argsort(width)[::-1][:8]):
    print(f"{year[t]:4d} {counts[t]:5d} {p_em[t]:10.3f} {p_high[t]:13.3f} {band_lo[t]:8.3f}-{band_hi[t]:.3f}")
print(f"expected number of high-rate years: EM {p_em.sum():.1f}, Bayes {p_high.sum():.1f}")
inside = (p_em >= band_lo) & (p_em <= band_hi)
print(f"EM plug-in P(high) inside the 5-95% band in {inside.sum()} of {len(year)} years; "
      f"Bayes above EM in {np.sum(p_high > p_em)} years")
sure = band_lo > 0.9
print(f"years in the high regime with probability above 0.9 under 95% of the draws: {year[sure].tolist()} "
      f"(counts {counts[sure].tolist()})")

# %%
# Only in the few years with the highest counts of the 1880s (printed
# above) do nearly all parameter draws agree on the high regime, and there
# EM and the Bayesian mean agree too. Elsewhere the band is wide: a year
# with two to four discoveries is a low-rate year under a "short bursts"
# draw and may be a high-rate year under a "long eras" draw.
# The best EM optimum is a bursts story, so its plug-in probabilities sit
# near the bottom of the band in those years, and it expects far fewer
# high-rate years than the posterior mean does (printed above). Its
# certainty there is an artefact of conditioning on one point of a ridge.

fig, (ax_counts, ax_prob) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
ax_counts.bar(year, counts, width=0.8, color="0.6")
ax_counts.plot(year, rate_mean, color="tab:orange", label="posterior mean rate")
ax_counts.set_ylabel("discoveries")
ax_counts.legend(fontsize=8, loc="upper right")
ax_prob.fill_between(year, band_lo, band_hi, step="mid", color="tab:blue", alpha=0.25,
                     label="5-95% over parameter draws")
ax_prob.plot(year, p_high, drawstyle="steps-mid", color="tab:blue", label="Bayes: posterior mean")
ax_prob.plot(year, p_em, drawstyle="steps-mid", color="k", linestyle="--", linewidth=1,
             label=f"EM plug-in (best optimum, log-lik {best_loglik:.2f})")
ax_prob.set_ylabel("P(high-rate regime)")
ax_prob.set_xlabel("year")
ax_prob.legend(fontsize=8, loc="upper right")
fig.tight_layout()

# %%
# A forecast fan
# --------------
# ``hmm.forecast`` continues the series: for each continuation it picks a
# parameter draw, filters the observed century under it, and runs the
# regime chain and the Poisson counts forward. The fan therefore includes
# uncertainty about the current regime, about future switches, about the
# parameters and the Poisson noise. The EM forecast uses the best optimum
# only. Below: the yearly counts, the probability of being in the high-rate
# regime in each future year, and the cumulative number of discoveries.
future = year[-1] + 1 + np.arange(HORIZON)
x_bayes, z_bayes = hmm.forecast(X, HORIZON, n_samples=N_FORECAST, random_state=2)
x_em, z_em = em.forecast(X, HORIZON, n_samples=N_FORECAST, random_state=2)
x_bayes, x_em = x_bayes[..., 0], x_em[..., 0]
high_bayes, high_em = np.mean(z_bayes == 1, axis=0), np.mean(z_em == em_high, axis=0)
total_bayes, total_em = x_bayes.sum(axis=1), x_em.sum(axis=1)
print(f"P(high regime) in {future[0]} / {future[-1]}: Bayes {high_bayes[0]:.3f} / {high_bayes[-1]:.3f}, "
      f"EM {high_em[0]:.3f} / {high_em[-1]:.3f}")
for name, total in (("Bayes", total_bayes), ("EM", total_em)):
    q = np.quantile(total, [0.05, 0.5, 0.95])
    print(f"{name:>5}: discoveries {future[0]}-{future[-1]}: mean {total.mean():.1f}, median {q[1]:.0f}, "
          f"90% interval {q[0]:.0f}-{q[2]:.0f} (width {q[2] - q[0]:.0f})")

quantiles = np.quantile(x_bayes, [0.05, 0.25, 0.75, 0.95], axis=0)
em_lo, em_hi = np.quantile(x_em, [0.05, 0.95], axis=0)
cum_bayes = np.quantile(np.cumsum(x_bayes, axis=1), [0.05, 0.25, 0.5, 0.75, 0.95], axis=0)
cum_em = np.quantile(np.cumsum(x_em, axis=1), [0.05, 0.5, 0.95], axis=0)

fig, (ax, ax_high, ax_cum) = plt.subplots(1, 3, figsize=(13, 4), width_ratios=[3, 2, 2])
recent = year >= 1920
ax.plot(year[recent], counts[recent], "o-", color="k", markersize=3, linewidth=0.8, label="observed")
ax.fill_between(future, quantiles[0], quantiles[3], step="mid", color="tab:blue", alpha=0.2,
                label="Bayes 90% interval")
ax.fill_between(future, quantiles[1], quantiles[2], step="mid", color="tab:blue", alpha=0.35,
                label="Bayes 50% interval")
ax.plot(future, x_bayes.mean(axis=0), color="tab:blue", label="Bayes mean")
ax.plot(future, x_em.mean(axis=0), color="tab:red", linestyle=":", label="EM mean")
ax.plot(future, em_hi, drawstyle="steps-mid", color="tab:red", linestyle="--", linewidth=1,
        label="EM 90% interval")
ax.plot(future, em_lo, drawstyle="steps-mid", color="tab:red", linestyle="--", linewidth=1)
ax.set_xlabel("year")
ax.set_ylabel("discoveries per year")
ax.set_ylim(0, 1.5 * counts[recent].max())
ax.legend(fontsize=7, loc="upper left", ncol=3)
ax_high.plot(future, high_bayes, "o-", color="tab:blue", markersize=3, label="Bayes")
ax_high.plot(future, high_em, "s--", color="tab:red", markersize=3, label="EM")
ax_high.set_ylim(0, 1)
ax_high.set_xlabel("year")
ax_high.set_ylabel("P(high-rate regime)")
ax_high.legend(fontsize=8)
ax_cum.fill_between(future, cum_bayes[0], cum_bayes[4], color="tab:blue", alpha=0.2, label="Bayes 90%")
ax_cum.fill_between(future, cum_bayes[1], cum_bayes[3], color="tab:blue", alpha=0.35, label="Bayes 50%")
ax_cum.plot(future, cum_bayes[2], color="tab:blue", label="Bayes median")
ax_cum.plot(future, cum_em[0], color="tab:red", linestyle="--", linewidth=1, label="EM 90%")
ax_cum.plot(future, cum_em[2], color="tab:red", linestyle="--", linewidth=1)
ax_cum.set_xlabel("year")
ax_cum.set_ylabel(f"discoveries after {year[-1]}")
ax_cum.legend(fontsize=8, loc="upper left")
for axis in (ax_high, ax_cum):
    axis.set_xticks(future[::5])
fig.tight_layout()

# %%
# The two forecasts differ most in the regime, not in the counts. Averaged
# over its parameter draws, the Bayesian fit gives a clearly higher chance
# that the next year is a high-rate year than the EM plug-in, and more
# high-rate years in the long run: compared with the best EM optimum, the
# posterior leaves the low regime more often (compare P(stay low) in the
# first two printed tables) and gives the high regime a lower rate. For the
# counts the two effects cancel (more high-rate years, at lower rates), and
# Poisson noise and regime switches dominate the spread:
# the printed means of the twenty-year total are nearly equal and the two
# 90% intervals have about the same width. Here parameter uncertainty
# changes *why* the model expects the counts it does more than *how many*
# it expects.
plt.show()

# sphinx_gallery_thumbnail_number = 3
