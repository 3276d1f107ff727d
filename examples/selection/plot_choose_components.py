"""
How many clusters do the Old Faithful eruptions have?
=====================================================

Three ways to choose the number of mixture components, through one function,
:func:`probspace.compare`:

* **BIC and AIC** of maximum-likelihood (EM) fits: the in-sample
  log-likelihood penalised by the number of free parameters;
* **held-out log-likelihood**, per eruption, estimated by cross-validation
  (any probspace model works with scikit-learn's ``GridSearchCV`` because
  ``score`` is the mean log-likelihood per observation);
* **PSIS-LOO** through ArviZ for Bayesian fits, which have parameter draws.

Then the chosen model is saved to a single file of arrays plus a JSON header
(no pickle) and loaded back.
"""

# %%
import os
import tempfile

import matplotlib.pyplot as plt
import numpy as np
from sklearn.model_selection import GridSearchCV, KFold

import probspace
from probspace import GaussianMixture
from probspace.datasets import load_old_faithful

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
X = load_old_faithful().data
KS = [1, 2, 3, 4] if FAST else [1, 2, 3, 4, 5, 6]

# %%
# BIC and AIC of EM fits
# ----------------------
# Each row of the table is one fitted model; ``compare`` ranks them by BIC
# because every model has one.
N_INIT = 1 if FAST else 3
em = {f"K={k}": GaussianMixture(k, n_init=N_INIT, random_state=0).fit(X) for k in KS}
table = probspace.compare(em, X)
print(table[["log_likelihood", "se", "bic", "aic", "rank"]].round(3))
best_bic = table.index[0]
print(f"BIC prefers {best_bic}")

# %%
# Held-out log-likelihood by cross-validation
# -------------------------------------------
# ``GridSearchCV`` maximises ``score``: the mean log-likelihood of held-out
# eruptions. The spread over folds gives a standard error.
search = GridSearchCV(GaussianMixture(n_init=N_INIT, random_state=0), {"n_components": KS},
                      cv=KFold(5, shuffle=True, random_state=0)).fit(X)
cv_mean = search.cv_results_["mean_test_score"]
cv_se = search.cv_results_["std_test_score"] / np.sqrt(5)
print(f"cross-validation prefers K={search.best_params_['n_components']}")

# %%
# PSIS-LOO of Bayesian fits
# -------------------------
# A Bayesian (variational) mixture has draws of its weights, means and
# precisions, so ArviZ can estimate the expected log predictive density by
# Pareto-smoothed importance sampling. ``max_pareto_k`` above 0.7 flags an
# unreliable estimate.
bayes = {f"K={k}": GaussianMixture(k, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                                   random_state=0).fit(X) for k in KS}
loo = probspace.compare(bayes, X, n_draws=200 if FAST else 1000, random_state=0)
print(loo[["elpd_loo", "se_loo", "max_pareto_k", "rank"]].round(2))
loo = loo.loc[[f"K={k}" for k in KS]]

# %%
# The three criteria side by side
# -------------------------------
fig, axes = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
axes[0].plot(KS, table.loc[[f"K={k}" for k in KS], "bic"], "o-", label="BIC")
axes[0].plot(KS, table.loc[[f"K={k}" for k in KS], "aic"], "s--", label="AIC")
axes[0].set_title("information criteria (lower is better)")
axes[0].legend()
axes[1].errorbar(KS, cv_mean, yerr=2 * cv_se, fmt="o-", capsize=3)
axes[1].set_title("held-out log-likelihood per eruption (5-fold)")
axes[2].errorbar(KS, loo["elpd_loo"], yerr=2 * loo["se_loo"], fmt="o-", capsize=3)
axes[2].set_title("PSIS-LOO of Bayesian fits (higher is better)")
for ax in axes:
    ax.set_xlabel("number of components K")
    ax.set_xticks(KS)
plt.show()

# %%
# Save the chosen model and load it back
# --------------------------------------
# One ``.npz`` file: arrays and a versioned JSON header that records the
# family, the parameters, the fitted state and the library versions. Loading
# never unpickles anything, and the loaded model answers exactly as the saved
# one, random stream included.
chosen = em[best_bic]
path = os.path.join(tempfile.mkdtemp(), "old_faithful_gmm.npz")
chosen.save(path)
loaded = probspace.load(path)
same = np.array_equal(loaded.posterior(X).probs, chosen.posterior(X).probs)
print(f"saved {os.path.getsize(path)} bytes; loaded {loaded!r}; identical posterior: {same}")
