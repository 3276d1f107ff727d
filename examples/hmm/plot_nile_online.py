"""
The Nile, online: a left-to-right HMM that detects the drop as the years arrive
===============================================================================

The annual flow of the Nile at Aswan dropped around the end of the 19th
century and never came back (see
:ref:`sphx_glr_auto_examples_hmm_plot_nile_change_point.py` for the offline
analysis). A change that happens once is a *left-to-right* HMM: state 0
(high flow) may move to state 1 (low flow), never back. With
``topology="left-to-right"`` the forbidden transition is a structural zero
that stays exactly zero through EM, so the model cannot explain a dry year
in the 1880s by a brief visit to the low regime and back.

Then we play the record forward as if it arrived one year at a time:
``model.filter()`` updates the regime probabilities with each new year
(``O(K^2)`` per year, the batch filter's numbers exactly), and
``filter(lag=L)`` also revises the year ``L`` years back. How many years of
data does it take to be sure the flow has dropped?
"""

# %%
# Fit a left-to-right Gaussian HMM
# --------------------------------
# 100 yearly flows, 1871-1970, in units of :math:`10^8` m³. A held zero is
# exact: ``transmat_[1, 0]`` is ``0.0``, and the chain starts in state 0.
import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_nile

nile = load_nile()
X, year = nile.data, nile.year

model = probspace.GaussianHMM(2, topology="left-to-right", max_iter=300, tol=1e-6, random_state=0).fit(X)
print(f"means: high {model.means_[0, 0]:.0f}, low {model.means_[1, 0]:.0f}")
print(f"transmat_:\n{model.transmat_}")
assert model.transmat_[1, 0] == 0.0 and model.startprob_[1] == 0.0
assert np.all(np.diff(model.history_) >= -1e-12)  # EM with the zero held is still monotone

# %%
# The change year, offline
# ------------------------
# With a single change, :math:`P(\text{changed by year } t) = P(z_t = 1 \mid x)`,
# so the posterior of the change year is the increment of the smoothed
# marginals. Joint path draws agree (each draw has exactly one change).
post = model.posterior(X)
p_changed = post.marginals[:, 1]
change_pmf = np.diff(np.r_[0.0, p_changed])
draws = post.sample(4000, random_state=0)
first_low = year[np.argmax(draws == 1, axis=1)]
print(f"most probable change year: {year[np.argmax(change_pmf)]} "
      f"(P = {change_pmf.max():.2f}; path draws: {np.mean(first_low == year[np.argmax(change_pmf)]):.2f})")

# %%
# Streaming: the record, one year at a time
# -----------------------------------------
# ``step.filtered`` uses the years up to ``t``; ``step.smoothed`` (lag 5) the
# years up to ``t + 5`` for year ``t``. Both equal the batch answers on the
# data seen so far; here we check the filter against ``posterior(X).filtered``.
lag = 5
f = model.filter(lag=lag)
filtered, smoothed = [], []
for x in X:
    step = f.update(x)
    filtered.append(step.filtered[1])
    if step.smoothed is not None:
        smoothed.append(step.smoothed[1])
filtered, smoothed = np.array(filtered), np.array(smoothed)
assert np.allclose(filtered, post.filtered[:, 1], atol=1e-10)
assert abs(f.log_likelihood - model.log_likelihood(X)[0]) < 1e-8

detect = year[np.argmax(filtered > 0.95)]
revised = year[np.argmax(smoothed > 0.95)]
print(f"the filter is 95% sure of the low regime in {detect}; "
      f"fixed-lag ({lag} years) revises {revised} to 95% by {revised + lag}")

# %%
# Plot: what was known when
# -------------------------
fig, (ax0, ax1) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
ax0.plot(year, X[:, 0], ".-", color="0.4", lw=0.8)
ax0.axhline(model.means_[0, 0], color="C0", ls="--", label="high regime mean")
ax0.axhline(model.means_[1, 0], color="C3", ls="--", label="low regime mean")
ax0.set_ylabel("flow (1e8 m³)")
ax0.legend(loc="upper right")
ax1.step(year, filtered, where="mid", label="filtered: years up to t (online)")
ax1.step(year[: len(smoothed)], smoothed, where="mid", label=f"fixed-lag: years up to t + {lag}")
ax1.step(year, p_changed, where="mid", color="k", lw=1, label="smoothed: all 100 years")
ax1.set_ylabel("P(low regime in year t)")
ax1.set_xlabel("year")
ax1.legend(loc="center right")
fig.suptitle("Nile flow: a left-to-right HMM read online")
fig.tight_layout()
plt.show()
