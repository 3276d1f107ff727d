"""
Old Faithful: a posterior over cluster labels, not just a label
===============================================================

The Old Faithful geyser has two kinds of eruptions: short ones after a short
wait, and long ones after a long wait. A two-component Gaussian mixture finds
them easily. A clustering tool stops there and hands back one label per
eruption. probspace hands back a *posterior*: a distribution over each
eruption's label. This example shows what that gives you that the hard label
hides: how sure the model is about each eruption, label draws in which the
ambiguous eruptions change sides, new data from the fitted model, and ArviZ
summaries of a Bayesian fit.
"""

# %%
# Load the data and fit the mixture
# ----------------------------------
# 272 eruptions, each with its duration and the waiting time before the next
# one, both in minutes. We fit on the raw minutes: with full covariances the
# different scales of the two features do not matter, and the axes stay
# readable. ``PROBSPACE_EXAMPLES_FAST=1`` only lowers the number of ArviZ draws.
import os

import matplotlib.pyplot as plt
import numpy as np

import probspace
from probspace.datasets import load_old_faithful
from probspace.diagnostics import arviz_major_version

FAST = os.environ.get("PROBSPACE_EXAMPLES_FAST") == "1"
N_ARVIZ_DRAWS = 200 if FAST else 2000

faithful = load_old_faithful()
X = faithful.data
xlabel, ylabel = (f"{name} (minutes)" for name in faithful.feature_names)

gm = probspace.GaussianMixture(n_components=2, random_state=0).fit(X)
post = gm.posterior(X)
short = int(np.argmin(gm.means_[:, 0]))  # the component of short eruptions
print(post)
print(f"EM converged: {gm.converged_} after {gm.n_iter_} iterations")
print(f"component {short} holds the short eruptions; weights: {np.round(gm.weights_, 3)}")

# %%
# How sure is the model about each eruption?
# ------------------------------------------
# ``post.probs[i, k]`` is the posterior probability that eruption ``i`` came
# from component ``k``, and ``post.entropy()`` condenses that row into one
# number: 0 nats for a certain label, :math:`\log 2 \approx 0.69` for a coin
# flip. Most eruptions sit deep inside one cluster; the few between the
# clusters are the interesting ones.
p_short = post.probs[:, short]
entropy = post.entropy()
ambiguous = np.argsort(entropy)[::-1][:5]

print(f"{'eruption':>8} {'duration':>9} {'waiting':>8} {'P(short)':>9} {'entropy':>8}")
for i in ambiguous:
    print(f"{i:8d} {X[i, 0]:9.2f} {X[i, 1]:8.0f} {p_short[i]:9.3f} {entropy[i]:8.3f}")
print(f"eruptions with entropy above 0.01 nats: {np.sum(entropy > 0.01)} of {len(X)}")

# %%
# The hard label hides the ambiguity
# ----------------------------------
# ``gm.predict(X)`` (the same as ``post.mode``) is a deterministic embedding:
# one label per eruption, all shown with the same confidence. On the left, the
# most ambiguous eruptions look exactly like the rest. On the right, colour is
# the posterior probability of the short component, and the band between the
# 5% and 95% contours (computed on a grid) is where the label is in doubt.
hard = gm.predict(X)
assert np.array_equal(hard, post.mode)

pad = 0.05 * np.ptp(X, axis=0)
lo, hi = X.min(axis=0) - pad, X.max(axis=0) + pad
g0, g1 = np.meshgrid(np.linspace(lo[0], hi[0], 200), np.linspace(lo[1], hi[1], 200))
grid = np.column_stack([g0.ravel(), g1.ravel()])
p_grid = gm.posterior(grid).probs[:, short].reshape(g0.shape)

fig, (ax_hard, ax_post) = plt.subplots(1, 2, figsize=(11, 4.5), sharex=True, sharey=True)
for k, colour, name in ((short, "tab:blue", "short"), (1 - short, "tab:red", "long")):
    ax_hard.scatter(*X[hard == k].T, c=colour, s=15, label=f"label {k} ({name})")
ax_hard.legend(loc="upper left")
ax_hard.contour(g0, g1, p_grid, levels=[0.5], colors="k", linewidths=1)
ax_hard.set_title("Hard labels: gm.predict(X)")
sc = ax_post.scatter(X[:, 0], X[:, 1], c=p_short, cmap="coolwarm_r", vmin=0, vmax=1, s=15)
cs = ax_post.contour(g0, g1, p_grid, levels=[0.05, 0.5, 0.95], colors="k",
                     linestyles=["--", "-", "--"], linewidths=1)
ax_post.clabel(cs, fmt="%.2f", fontsize=8)
ax_post.scatter(X[ambiguous, 0], X[ambiguous, 1], s=120, facecolors="none", edgecolors="k")
for i in ambiguous[:2]:
    ax_post.annotate(f"#{i}: P(short)={p_short[i]:.2f}", X[i], xytext=(8, -14),
                     textcoords="offset points", fontsize=8)
ax_post.set_title("Posterior: P(short | eruption), most ambiguous circled")
fig.colorbar(sc, ax=ax_post, label="P(short)")
for ax in (ax_hard, ax_post):
    ax.set_xlabel(xlabel)
ax_hard.set_ylabel(ylabel)
fig.tight_layout()

# %%
# Label draws: ambiguous eruptions change sides
# ---------------------------------------------
# ``post.sample`` draws whole labellings of the data set. In each of 1000
# draws, a confident eruption keeps its label, while an ambiguous one lands
# in the short component in about ``P(short)`` of the draws.
draws = post.sample(1000, random_state=1)  # shape (1000, 272), integer labels
freq_short = (draws == short).mean(axis=0)
for i in ambiguous:
    print(f"eruption {i:3d}: P(short) = {p_short[i]:.3f}, short in {freq_short[i]:.3f} of the draws")
flips = np.any(draws != hard, axis=0)
print(f"eruptions whose label differs from the hard label in some draw: {flips.sum()}")

# %%
# Because the posterior can *score* a labelling, we can ask how likely it is
# that the hard labelling is right everywhere: the sum of ``log_prob`` over
# eruptions. And because draws are whole labellings, any quantity computed from
# labels gets a distribution too. Here, the number of short eruptions: the hard
# labels give one number; the draws give its spread.
log_p_hard = post.log_prob(hard).sum()
print(f"P(every hard label is correct) = {np.exp(log_p_hard):.3f}")
print(f"expected number of wrong hard labels = {np.sum(1 - post.probs.max(axis=1)):.2f}")

n_short = (draws == short).sum(axis=1)
fig, ax = plt.subplots(figsize=(6, 3.5))
values, counts = np.unique(n_short, return_counts=True)
ax.bar(values, counts / counts.sum(), width=0.8, label="label draws")
ax.axvline(np.sum(hard == short), color="k", linestyle="--", label="hard labels")
ax.set_xticks(values)
ax.set_xlabel("number of short eruptions")
ax.set_ylabel("fraction of draws")
ax.legend()
fig.tight_layout()

# %%
# New eruptions from the fitted model
# -----------------------------------
# ``gm.sample(n)`` is the generative direction: it draws a component from the
# mixing weights, then an eruption from that component's Gaussian. If the
# model fits, the simulated cloud should look like the real one.
X_new, Z_new = gm.sample(len(X), random_state=2)
fig, ax = plt.subplots(figsize=(6, 4.5))
ax.scatter(X[:, 0], X[:, 1], c="0.7", s=15, label="observed")
for k, colour in ((short, "tab:blue"), (1 - short, "tab:red")):
    name = "short" if k == short else "long"
    ax.scatter(*X_new[Z_new == k].T, marker="x", s=18, c=colour, label=f"simulated, {name}")
ax.set_xlabel(xlabel)
ax.set_ylabel(ylabel)
ax.legend()
fig.tight_layout()

# %%
# A Bayesian fit and its ArviZ summary
# ------------------------------------
# With ``bayesian=True`` the mixture is fitted by variational Bayes and keeps
# a posterior over its weights and means as well. ``to_arviz`` draws labels
# and parameters together and returns an ArviZ object (``InferenceData`` on
# ArviZ 0.x, a ``DataTree`` on 1.x). The draws are independent, from a single
# "chain", so R-hat is undefined and the ESS only reflects the number of
# draws (ArviZ 0.x also logs a warning about the single chain): neither says
# anything about whether the fit converged. For that, look at the fit's
# objective trace, ``history_``, which should rise and level off.
import arviz as az

bgm = probspace.GaussianMixture(2, bayesian=True, weight_concentration_prior_type="dirichlet_distribution",
                                random_state=0).fit(X)
print(f"posterior method: {bgm.posterior(X).method}; converged: {bgm.converged_}, "
      f"lower bound per iteration: {np.round(bgm.history_, 4)}")
idata = bgm.to_arviz(X, n_samples=N_ARVIZ_DRAWS, random_state=3)
summary = az.summary(idata, var_names=["weights", "means"])
print(summary.to_string())


# %%
# The posterior of the component means. The plot is called ``plot_posterior``
# in ArviZ 0.x and ``plot_dist`` in ArviZ 1.x.
def plot_means(data):
    """Plot the posterior of ``means`` with whichever ArviZ is installed."""
    if arviz_major_version() >= 1:
        return az.plot_dist(data, var_names=["means"])
    return az.plot_posterior(data, var_names=["means"], grid=(2, 2), figsize=(8, 5))


plot_means(idata)
plt.show()

# sphinx_gallery_thumbnail_number = 1
