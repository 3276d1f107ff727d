"""
ArviZ's default calls on a probspace fit
========================================

What an ArviZ user types first, with default arguments, on the output of
``model.to_arviz``: a summary table, trace, posterior, forest, rank, pair and
posterior predictive plots (and the energy plot for NUTS). The ``posterior``
group holds the parameters and a few summaries of the latent variables per
draw, so every default call stays short; each observation's latent draws are
one group away, in ``latent_posterior``. Data: Old Faithful's eruptions,
fitted by a two-component Gaussian mixture with compiled Gibbs sampling (four
chains). The same script runs on ArviZ 0.x (``InferenceData``) and 1.x
(``DataTree``), where some plots have other names.
"""

# %%
# Fit, then hand the posterior to ArviZ
# -------------------------------------
import os
import warnings

import arviz as az
import matplotlib.pyplot as plt

import probspace
from probspace.datasets import load_old_faithful
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_DRAWS = 300 if FAST else 1000
NEW = arviz_major_version() >= 1

X = load_old_faithful().data
model = probspace.GaussianMixture(2, sampler="gibbs", n_chains=4, n_draws=N_DRAWS, n_warmup=N_DRAWS,
                                  random_state=0).fit(X)
idata = model.to_arviz(X, n_samples=N_DRAWS, random_state=1)
print(idata)

# %%
# ``az.summary``: parameters and the share of eruptions in each component
# ------------------------------------------------------------------------
# R-hat, ESS and MCSE are convergence diagnostics here: four chains of MCMC.
print(az.summary(idata))

# %%
# The per-eruption labels are in ``latent_posterior``
# ---------------------------------------------------
print(az.summary(idata, group="latent_posterior", var_names=["label"], coords={"obs": [0, 1, 2]}, kind="stats"))

# %%
# Trace and rank plots
# --------------------
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    az.plot_trace(idata)
    az.plot_rank(idata, var_names=["means"])
plt.show()

# %%
# Posterior and forest plots
# --------------------------
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    (az.plot_dist if NEW else az.plot_posterior)(idata, var_names=["weights", "means"])
    az.plot_forest(idata, var_names=["means"])
plt.show()

# %%
# Pair plot of the parameters, and the posterior predictive check
# ---------------------------------------------------------------
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    az.plot_pair(idata, var_names=["means"])
    (az.plot_ppc_dist if NEW else az.plot_ppc)(idata)
plt.show()

# %%
# PSIS-LOO
# --------
# Each draw carries its pointwise log-likelihood, so ``loo`` is meaningful.
# (For an EM fit there is one plug-in value per observation: the bridge
# writes no ``log_likelihood`` group and ``probspace.compare`` is the tool.)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    print(az.loo(idata))
