"""
A family of your own: a Poisson mixture in one file
===================================================

``poisson_mixture.py``, next to this script, defines ``PoissonMixture``: a
mixture of Poisson counts with an exact posterior over each observation's
component, written against probspace's public extension API
(:mod:`probspace.extend`) in about 150 lines. Nothing inside probspace knows
about it, yet it behaves like a built-in family: the conformance suite passes,
``save``/``probspace.load`` round-trip it, and ``to_arviz`` feeds ArviZ.

The data are the yearly numbers of great discoveries, 1860-1959 (shipped with
probspace). Their variance is well above their mean, more than one Poisson
rate allows: a two-component mixture asks, for each year, how sure we are
that it belongs to the busier regime.
"""

# %%
# The family passes the conformance suite
# ---------------------------------------
# :func:`probspace.testing.check_model` runs every check the built-in families
# pass (API, bad input, shapes, Monte Carlo moments, enumeration, seeding,
# save/load, ArviZ, documented attributes) and raises on the first failure.
import os
import sys
import tempfile

import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_discoveries
from probspace.testing import check_model

# poisson_mixture.py sits next to this script (sphinx-gallery runs it from that folder, without __file__)
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)) if "__file__" in globals() else os.getcwd())
from poisson_mixture import PoissonMixture  # noqa: E402

check_model(PoissonMixture())
print("PoissonMixture passes probspace.testing.check_model")

# %%
# Fit it on real counts and ask for the posterior
# -----------------------------------------------
discoveries = load_discoveries()
X, years = discoveries.data, discoveries.year
model = PoissonMixture(2, random_state=0).fit(X)
order = np.argsort(model.lambdas_[:, 0])
print(f"rates {model.lambdas_[order, 0].round(2)}, weights {model.weights_[order].round(2)}, "
      f"{model.n_iter_} EM iterations")
post = model.posterior(X)
busy = post.probs[:, order[1]]
print(f"years sure to be busy (P > 0.95): {int((busy > 0.95).sum())}; in doubt (0.05-0.95): "
      f"{int(((busy > 0.05) & (busy < 0.95)).sum())}")

# %%
# Save and load, as with any family
# ---------------------------------
path = os.path.join(tempfile.mkdtemp(), "poisson_mixture.npz")
model.save(path)
loaded = probspace.load(path)
assert np.array_equal(loaded.posterior(X).probs, post.probs)
print(f"reloaded a {type(loaded).__name__} from {os.path.basename(path)}: same posterior")

# %%
# ArviZ output
# ------------
idata = model.to_arviz(X, n_samples=200, random_state=0)
print(idata["latent_posterior"]["label"].dims, idata["latent_posterior"]["label"].shape)
print(idata.posterior["label_share"].mean(("chain", "draw")).values)  # share of years per component

fig, ax = plt.subplots(figsize=(8, 3))
ax.bar(years, X[:, 0], color="0.8", label="discoveries")
ax2 = ax.twinx()
ax2.plot(years, busy, color="C3", label="P(busy regime)")
ax2.set_ylim(0, 1)
ax.set_xlabel("year")
ax.set_ylabel("discoveries")
ax2.set_ylabel("P(busy regime)")
ax.set_title("Posterior of each year's component under a two-component Poisson mixture")
fig.tight_layout()
plt.show()
