"""A short tour of probspace: a posterior, not just an embedding.

Fits a two-component Gaussian mixture to the Old Faithful eruptions (real data
that ships with probspace), then shows what a posterior over the hidden
component labels gives that a deterministic embedding cannot. Prints its
findings and writes a figure to ``demo_output/tour.png``.

Run with ``bash scripts/demo.sh`` (sets everything up first).
"""

import os
import pathlib
import time

import matplotlib

matplotlib.use(os.environ.get("MPLBACKEND", "Agg"))
import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_old_faithful

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
OUT = pathlib.Path("demo_output")
OUT.mkdir(exist_ok=True)

data = load_old_faithful()
X = data.data
print(f"probspace {probspace.__version__}: Old Faithful, {X.shape[0]} eruptions x {data.feature_names}\n")

# 1. Fit. Any probspace model is a scikit-learn estimator.
t0 = time.perf_counter()
model = probspace.GaussianMixture(n_components=2, random_state=0).fit(X)
print(f"fitted {model!r} in {time.perf_counter() - t0:.2f} s, {model.n_iter_} EM iterations")
order = np.argsort(model.means_[:, 0])  # call the short-eruption component "short"
names = np.array(["short", "long"])[np.argsort(order)]
for k in order:
    print(f"  {names[k]:>5}: weight {model.weights_[k]:.2f}, mean eruption {model.means_[k, 0]:.2f} min, "
          f"mean wait {model.means_[k, 1]:.1f} min")

# 2. The embedding: one deterministic vector per eruption.
embedding = model.embed(X)
hard = embedding.argmax(axis=1)

# 3. The posterior: a distribution over each eruption's hidden label.
post = model.posterior(X)
print(f"\nposterior: {post}")
entropy = post.entropy()
ambiguous = np.argsort(entropy)[::-1][:5]
print("most ambiguous eruptions (the hard label hides this):")
for i in ambiguous:
    p_long = post.probs[i, order[1]]
    print(f"  #{i:3d}: eruption {X[i, 0]:.2f} min, wait {X[i, 1]:.0f} min -> P(long) = {p_long:.2f}, "
          f"entropy {entropy[i]:.2f} nats, hard label '{names[hard[i]]}'")

# Joint draws of all 272 labels: how many long eruptions were there, with uncertainty?
draws = post.sample(200 if FAST else 4000, random_state=1)
n_long = (draws == order[1]).sum(axis=1)
lo, hi = np.percentile(n_long, [2.5, 97.5])
print(f"\nnumber of long-type eruptions: hard labels say {int((hard == order[1]).sum())}; "
      f"posterior draws say {n_long.mean():.1f} (95% interval {lo:.0f}-{hi:.0f})")

# 4. Generation: new eruptions from the fitted model, labels drawn from the prior.
X_new, z_new = model.sample(272, random_state=2)
print(f"generated {len(X_new)} eruptions; {np.mean(z_new == order[1]):.0%} from the long component")

# 5. Model choice with an exact per-eruption log-likelihood.
for k in (1, 2, 3):
    m = probspace.GaussianMixture(k, random_state=0).fit(X)
    print(f"  K={k}: mean log-likelihood {m.score(X):7.3f}, BIC {m.bic(X):8.1f}")

# 6. ArviZ: a Bayesian fit hands parameter and label draws to ArviZ.
bayes = probspace.GaussianMixture(2, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                                  random_state=0).fit(X)
idata = bayes.to_arviz(X, n_samples=100 if FAST else 1000, random_state=0)
from probspace.diagnostics._arviz import _import_arviz

az = _import_arviz()
print("\nArviZ summary of the Bayesian fit's parameters:")
print(az.summary(idata, var_names=["weights", "means"], kind="stats").round(3))

# 7. A picture: the embedding (hard labels) beside the posterior (probabilities and entropy).
fig, axes = plt.subplots(1, 3, figsize=(15, 4.5), constrained_layout=True)
axes[0].scatter(X[:, 0], X[:, 1], c=hard == order[1], cmap="coolwarm", s=14)
axes[0].set_title("embedding: one hard label per eruption")
sc = axes[1].scatter(X[:, 0], X[:, 1], c=post.probs[:, order[1]], cmap="coolwarm", s=14, vmin=0, vmax=1)
axes[1].scatter(X[ambiguous, 0], X[ambiguous, 1], s=120, facecolors="none", edgecolors="k",
                label="most ambiguous")
axes[1].legend(loc="upper left")
fig.colorbar(sc, ax=axes[1], label="P(long component | eruption)")
axes[1].set_title("posterior: belief over the hidden label")
axes[2].hist(n_long, bins=np.arange(n_long.min(), n_long.max() + 2) - 0.5, color="grey")
axes[2].axvline((hard == order[1]).sum(), color="k", ls="--", label="count of hard labels")
axes[2].set_xlabel("number of long-type eruptions (joint posterior draws)")
axes[2].legend()
axes[2].set_title("a question only joint draws answer")
for ax in axes[:2]:
    ax.set_xlabel("eruption (min)")
    ax.set_ylabel("waiting (min)")
fig.savefig(OUT / "tour.png", dpi=110)
print(f"\nfigure written to {OUT / 'tour.png'}")
